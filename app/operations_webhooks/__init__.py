"""Operations webhooks: an account's endpoints for operational events (a webhook failing,
turned off, recovered, a delivery's attempts used up, a failed test), webhook rows of
purpose `operations` served under /operations-webhooks (docs/api.md#operations-webhooks)."""
