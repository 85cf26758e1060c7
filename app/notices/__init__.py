"""Notices: what the service noticed about a webhook on its own (turned it off, failing,
recovered, a delivery's attempts used up, a failed test), each also an operational event."""
