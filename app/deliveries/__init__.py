"""Deliveries: one notification of one event (or test ping) to one webhook (docs/api.md,
Deliveries)."""
