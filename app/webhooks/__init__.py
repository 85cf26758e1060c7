"""Webhook configurations: CRUD, signing secrets (docs/api.md, Webhooks)."""
