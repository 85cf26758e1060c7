"""Operations endpoints: liveness, readiness, metrics (API.md §7)."""
