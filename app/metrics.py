"""Prometheus metrics of the API process, served at GET /metrics."""

from prometheus_client import Counter

EVENTS_ACCEPTED = Counter(
    "storehooks_events_accepted", "Events accepted by POST /events (replays not counted).", ["type"]
)
DELIVERIES_CREATED = Counter(
    "storehooks_deliveries_created", "Deliveries created by accepted events."
)
