"""Prometheus metrics. The API serves its own at GET /metrics; each worker serves its
attempt and delivery metrics on a port of its own (STOREHOOKS_WORKER_METRICS_PORT)."""

from prometheus_client import Counter, Gauge, Histogram

# API process
EVENTS_ACCEPTED = Counter(
    "storehooks_events_accepted", "Events accepted by POST /events (replays not counted).", ["type"]
)
DELIVERIES_CREATED = Counter(
    "storehooks_deliveries_created", "Deliveries created by accepted events."
)
QUEUE_DEPTH = Gauge("storehooks_queue_depth", "Jobs in the arq queue, deferred retries included.")
DUE_DELIVERIES = Gauge(
    "storehooks_due_deliveries", "Pending deliveries whose next attempt is due now."
)
OLDEST_DUE_AGE = Gauge(
    "storehooks_oldest_due_delivery_age_seconds",
    "How long the longest-waiting due pending delivery has been due (0 when none).",
)

# Worker processes
ATTEMPTS = Counter(
    "storehooks_attempts",
    "Delivery attempts by outcome: succeeded, or the error class (timeout, connect, dns, "
    "tls, refused_target, http_status, rate_limited, payload).",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "storehooks_attempt_duration_seconds",
    "Duration of one attempt, from request to the first KiB of the answer.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERIES_FINISHED = Counter(
    "storehooks_deliveries_finished", "Deliveries that reached a final status.", ["status"]
)
WEBHOOKS_DISABLED = Counter(
    "storehooks_webhooks_disabled",
    "Webhooks turned off by the service, by reason: test_failed, gone (410), failing.",
    ["reason"],
)
NOTICES = Counter(
    "storehooks_notices",
    "Notices recorded, by kind (each also an operational event): disabled, failing, "
    "recovered, delivery_exhausted, test_failed.",
    ["kind"],
)
