"""Actions: which events (type, app, SKU) go to which webhook (API.md §3 Actions)."""
