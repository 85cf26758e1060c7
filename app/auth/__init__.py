"""Accounts, scoped API keys and the dependency that authenticates a request."""
