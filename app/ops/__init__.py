"""Operations endpoints: liveness, readiness, metrics (docs/api.md, Operations)."""
