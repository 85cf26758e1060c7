"""Webhook configurations: CRUD, signing secrets (API.md §3 Webhooks)."""
