"""Actions: which events (type, app, SKU) go to which webhook (docs/api.md, Actions)."""
