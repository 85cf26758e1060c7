"""The API's spans: one per request, from FastAPI's instrumentation, and those of its
database and Redis (docs/operations.md#tracing)."""

from fastapi import FastAPI

from app.core.tracing import SECRET_HEADERS, UNTRACED_ROUTES, Tracing


def instrument(app: FastAPI, tracing: Tracing) -> None:
    """A server span per request, a child of the caller's `traceparent` when it sent a
    valid one. Before the app first runs: the instrumentation wraps its middleware stack.
    Not the ASGI messages' own spans (`http send`, `http receive`): two or three more per
    request that say nothing a request span does not."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracing.provider,
        excluded_urls=UNTRACED_ROUTES,
        exclude_spans=["receive", "send"],
        http_capture_headers_sanitize_fields=SECRET_HEADERS,
    )
