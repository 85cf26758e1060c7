"""Notices: what the service did to a webhook on its own, such as turning it off."""
