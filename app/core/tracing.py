"""OpenTelemetry tracing for both processes: off unless an OTLP endpoint is configured
(docs/operations.md#tracing).

Off, nothing is built: no provider, no exporter, no instrumentation, and the SDK and
instrumentation packages are not even imported. The code that would make spans takes a
`Tracing` or None and does nothing but a `None` test when it has none, so the hot paths
pay nothing measurable (`make bench-smoke`).

On, each process gets its own TracerProvider (service.name `storehooks-api` or
`storehooks-worker`) with a BatchSpanProcessor and the OTLP exporter over HTTP/protobuf.
Every instrumentation is handed that provider rather than a global one, so the API and an
in-process worker (as the tests run them) keep their spans apart, and switching one
off undoes nothing of the other's.

What travels between them is the W3C `traceparent` stored with each event
(`app/core/traceparent.py`), read here as the parent of the worker's attempt spans.
"""

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from app.core import traceparent
from app.core.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from redis.asyncio import Redis
    from sqlalchemy import Engine

API = "storehooks-api"
WORKER = "storehooks-worker"
TRACER_NAME = "storehooks"
# The API's routes whose spans would be noise: probes and scrapes, many a minute.
UNTRACED_ROUTES = "/healthz,/readyz,/metrics"
# Request headers whose value never reaches a span, whatever OTEL_INSTRUMENTATION_HTTP_
# CAPTURE_HEADERS_* asks for: the API key.
SECRET_HEADERS = ["authorization", "cookie"]


def wanted(settings: Settings) -> bool:
    """Whether this process traces: STOREHOOKS_OTEL_EXPORTER_OTLP_ENDPOINT, or the
    standard variables (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, OTEL_TRACES_EXPORTER other
    than `none`); OTEL_SDK_DISABLED=true wins over the standard ones."""
    if settings.otel_exporter_otlp_endpoint:
        return True
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER")
    if exporter is not None:
        return exporter.strip().lower() not in ("", "none")
    return any(
        os.environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


@dataclass(frozen=True)
class Tracing:
    """A process's tracing, while it is on."""

    provider: "TracerProvider"
    tracer: trace.Tracer

    def instrument_engine(self, engine: "Engine") -> None:
        """A span per SQL statement on this engine (the statement with its placeholders,
        never the bound values: secrets and payloads are parameters)."""
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpUpDownCounter

        tracer = self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
        # Its pool gauge is a metric, and storehooks' metrics are Prometheus': a no-op.
        usage = NoOpUpDownCounter("db.client.connections.usage")
        EngineTracer(tracer, engine, usage)  # type: ignore[no-untyped-call]

    def instrument_redis(self, client: "Redis") -> None:
        """A span per Redis command of this client (arguments written as `?`)."""
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Exports what is still batched, then stops."""
        self.provider.shutdown()


def start(
    settings: Settings, service_name: str, exporter: "SpanExporter | None" = None
) -> Tracing | None:
    """This process's tracing, or None when it is off. `exporter` replaces the OTLP one
    (the tests' in-memory exporter) and switches tracing on by itself."""
    if exporter is None:
        if not wanted(settings):
            return None
        exporter = _otlp_exporter(settings)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes: dict[str, Any] = {}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = service_name
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider, provider.get_tracer(TRACER_NAME))


def _otlp_exporter(settings: Settings) -> "SpanExporter":
    """OTLP over HTTP with protobuf: the exporter any collector takes on port 4318, with
    no gRPC stack in the image. STOREHOOKS_OTEL_EXPORTER_OTLP_ENDPOINT is a base URL,
    as OTEL_EXPORTER_OTLP_ENDPOINT is (`/v1/traces` is added); without it the exporter
    reads the standard variables itself."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = settings.otel_exporter_otlp_endpoint
    if base:
        return OTLPSpanExporter(endpoint=base.rstrip("/") + "/v1/traces")
    return OTLPSpanExporter()


def current_traceparent() -> str | None:
    """The span being recorded here and now, as a `traceparent` (None: no span, which is
    always so while tracing is off)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return header_of(context)


def header_of(context: SpanContext) -> str:
    return traceparent.TraceParent(
        trace_id=trace.format_trace_id(context.trace_id),
        parent_id=trace.format_span_id(context.span_id),
        flags=f"{int(context.trace_flags):02x}",
    ).header


def parent_from(header: str | None) -> Context:
    """The context a span continuing `header` starts in: its remote parent, or an empty
    context (a new trace) when there is none, rather than whatever span is current."""
    parsed = traceparent.parse(header) if header else None
    if parsed is None:
        return Context()
    remote = SpanContext(
        trace_id=int(parsed.trace_id, 16),
        span_id=int(parsed.parent_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(int(parsed.flags, 16)),
    )
    return trace.set_span_in_context(NonRecordingSpan(remote), Context())
