"""Deliveries: one notification of one event (or test ping) to one webhook (API.md §3)."""
