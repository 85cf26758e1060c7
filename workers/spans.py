"""The worker's spans, made only while tracing is on (docs/operations.md#tracing).

An attempt is a span in its event's trace, a child of the `traceparent` stored with the
event; under it the send (a CLIENT span, whose context the notification's `traceparent`
carries) and the record. A claim is shared by every job that starts at once, so it
cannot sit in each of their traces: it is a trace of its own, and each attempt it
claimed links to it. An attempt handed off by a record links to that record's span.

A span names the receiver's host and the webhook, never the URL's path or query (a
merchant's URL may carry a credential there, as Slack-style hooks do), and never a header:
the signature stays out of every span.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, Tracer

from app.core.delivery_states import Claim, Outcome
from app.core.tracing import parent_from

CLAIM = "storehooks.claim"
ATTEMPT = "storehooks.attempt"
RECORD = "storehooks.record"


@contextmanager
def claiming(tracer: Tracer, delivery_id: str) -> Iterator[Span]:
    """The claim of a job taken from the queue: a new trace, current while it runs, so
    that the statements of a batch it opens are its children."""
    with tracer.start_as_current_span(
        CLAIM, kind=SpanKind.INTERNAL, attributes={"storehooks.delivery_id": delivery_id}
    ) as span:
        yield span


@contextmanager
def attempting(tracer: Tracer, claim: Claim, claimed_by: SpanContext | None) -> Iterator[Span]:
    """One attempt, in the trace of its event (a test ping's starts a trace)."""
    with tracer.start_as_current_span(
        ATTEMPT,
        context=parent_from(claim.traceparent),
        kind=SpanKind.INTERNAL,
        links=[Link(claimed_by)] if claimed_by is not None else None,
        attributes={
            "storehooks.delivery_id": claim.delivery_id,
            "storehooks.webhook_id": claim.webhook_id,
            "storehooks.attempt": claim.number,
            "storehooks.delivery_kind": claim.kind.value,
        },
    ) as span:
        yield span


@contextmanager
def recording(tracer: Tracer) -> Iterator[Span]:
    with tracer.start_as_current_span(RECORD, kind=SpanKind.INTERNAL) as span:
        yield span


@contextmanager
def sending(tracer: Tracer, claim: Claim) -> Iterator[Span]:
    """The HTTP request, named by its method as OpenTelemetry's HTTP client spans are."""
    target = urlsplit(claim.url)
    port = target.port or (443 if target.scheme == "https" else 80)
    with tracer.start_as_current_span(
        claim.method.value,
        kind=SpanKind.CLIENT,
        record_exception=False,  # send() turns every failure into an outcome
        attributes={
            "http.request.method": claim.method.value,
            "url.scheme": target.scheme,
            "server.address": target.hostname or "",
            "server.port": port,
            "storehooks.delivery_id": claim.delivery_id,
            "storehooks.webhook_id": claim.webhook_id,
            "storehooks.attempt": claim.number,
        },
    ) as span:
        yield span


def annotate(span: Span, outcome: Outcome) -> None:
    """The send's outcome: its status code, and on failure its error class."""
    if outcome.status_code is not None:
        span.set_attribute("http.response.status_code", outcome.status_code)
    if outcome.error_class is not None:
        span.set_attribute("error.type", outcome.error_class.value)
        span.set_attribute("storehooks.error_class", outcome.error_class.value)
        span.set_status(Status(StatusCode.ERROR, outcome.error_class.value))
