"""Events from the store backend, and their fan-out to deliveries (API.md §3 Events)."""
