"""Events from the store backend, and their fan-out to deliveries (docs/api.md, Events)."""
