"""Traces on the API's side: the `traceparent` POST /events stores, with tracing off and
on, and the spans of a request (its own, its SQL, its Redis enqueue) in one trace.
The worker's side, and the hop to the receiver: tests/workers/test_tracing.py."""

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from app import resources
from app.core import traceparent, tracing
from app.core.db import session_scope
from app.core.models import Event
from app.core.settings import Settings
from app.main import create_app
from tests.conftest import Tenant, tenant_of

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (CALLER, traceparent.TraceParent(CALLER_TRACE, CALLER_SPAN, "01")),
        (f"  {CALLER}  ", traceparent.TraceParent(CALLER_TRACE, CALLER_SPAN, "01")),
        # A later version: its first four fields, whatever follows.
        (
            f"cc-{CALLER_TRACE}-{CALLER_SPAN}-00-extra",
            traceparent.TraceParent(CALLER_TRACE, CALLER_SPAN, "00"),
        ),
        (CALLER.upper(), None),  # lowercase hex only
        (f"00-{'0' * 32}-{CALLER_SPAN}-01", None),  # the invalid trace id
        (f"00-{CALLER_TRACE}-{'0' * 16}-01", None),  # the invalid parent id
        (f"ff-{CALLER_TRACE}-{CALLER_SPAN}-01", None),  # the forbidden version
        (f"{CALLER}-extra", None),  # version 00 has exactly four fields
        (f"00-{CALLER_TRACE[:-1]}-{CALLER_SPAN}-01", None),
        ("garbage", None),
        ("", None),
    ],
)
def test_a_header_is_read_as_w3c_trace_context_says(
    header: str, expected: traceparent.TraceParent | None
) -> None:
    assert traceparent.parse(header) == expected


def test_two_headers_are_no_header_and_a_new_trace_is_sampled() -> None:
    assert traceparent.from_headers([CALLER, CALLER]) is None
    assert traceparent.from_headers([]) is None
    made = traceparent.new()
    assert traceparent.parse(made.header) == made
    assert made.flags == "01"
    assert made.trace_id != traceparent.new().trace_id


@pytest.mark.parametrize(
    ("environment", "setting", "on"),
    [
        ({}, None, False),
        ({}, "http://collector:4318", True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, None, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, None, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, None, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, None, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, None, False),
        ({"OTEL_SDK_DISABLED": "true"}, "http://collector:4318", True),
    ],
)
def test_tracing_is_off_unless_an_exporter_is_configured(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], setting: str | None, on: bool
) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_SDK_DISABLED",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert tracing.wanted(Settings(otel_exporter_otlp_endpoint=setting)) is on


def test_the_otlp_exporter_sends_to_the_endpoints_traces_path() -> None:
    settings = Settings(otel_exporter_otlp_endpoint="http://collector:4318/")
    started = tracing.start(settings, tracing.API)
    assert started is not None
    try:
        processor = started.provider._active_span_processor._span_processors[0]
        exporter = processor._batch_processor._exporter  # type: ignore[attr-defined]
        assert exporter._endpoint == "http://collector:4318/v1/traces"
    finally:
        started.shutdown()


async def stored_traceparent(app: FastAPI, event_id: str) -> str:
    async with session_scope(resources.of(app).sessionmaker) as session:
        stored = await session.scalar(select(Event.traceparent).where(Event.id == event_id))
    assert stored is not None
    return stored


async def post_event(tenant: Tenant, *headers: tuple[str, str]) -> str:
    response = await tenant.api.post(
        "/events", json={"type": "purchase", "app_id": "app_42"}, headers=list(headers)
    )
    assert response.status_code == 202, response.text
    event_id: str = response.json()["id"]
    return event_id


# --- tracing off ------------------------------------------------------------------------


async def test_off_the_callers_traceparent_is_stored_as_it_came(
    app: FastAPI, tenant: Tenant
) -> None:
    event_id = await post_event(tenant, ("traceparent", CALLER))
    assert await stored_traceparent(app, event_id) == CALLER


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("traceparent", "00-not-a-trace-01")],
        [("traceparent", CALLER.upper())],
        [("traceparent", CALLER), ("traceparent", CALLER)],
    ],
    ids=["absent", "malformed", "uppercase", "twice"],
)
async def test_off_without_a_valid_traceparent_a_new_trace_is_stored_never_a_422(
    app: FastAPI, tenant: Tenant, headers: list[tuple[str, str]]
) -> None:
    first = traceparent.parse(await stored_traceparent(app, await post_event(tenant, *headers)))
    second = traceparent.parse(await stored_traceparent(app, await post_event(tenant, *headers)))
    assert first is not None and second is not None
    assert CALLER_TRACE not in (first.trace_id, second.trace_id)
    assert first.trace_id != second.trace_id
    assert first.flags == "01"


async def test_off_nothing_is_instrumented(app: FastAPI) -> None:
    held = resources.of(app)
    assert held.tracing is None
    assert not getattr(held.redis, "_is_instrumented_by_opentelemetry", False)
    assert all("OpenTelemetry" not in str(m.cls) for m in app.user_middleware)


async def test_each_event_of_a_group_commit_keeps_its_own_traceparent(
    app: FastAPI, tenant: Tenant
) -> None:
    """Requests that arrive together share a transaction (app/events/writer.py)."""
    parents = [f"00-{index:032x}-{index:016x}-01" for index in range(1, 21)]
    event_ids = await asyncio.gather(*(post_event(tenant, ("traceparent", p)) for p in parents))
    assert [await stored_traceparent(app, e) for e in event_ids] == parents


# --- tracing on -------------------------------------------------------------------------


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced_app(settings: Settings, exporter: InMemorySpanExporter) -> AsyncIterator[FastAPI]:
    """The app, tracing into `exporter` through the same start-up as OTLP would."""
    application = create_app(settings, span_exporter=exporter)
    async with application.router.lifespan_context(application):
        yield application


def finished(app: FastAPI, exporter: InMemorySpanExporter) -> Sequence[ReadableSpan]:
    held = resources.of(app).tracing
    assert held is not None
    held.provider.force_flush()
    return exporter.get_finished_spans()


def _statement(span: ReadableSpan) -> str:
    return str((span.attributes or {}).get("db.statement", ""))


def hex_trace(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


async def test_on_the_request_its_sql_and_its_enqueue_are_one_trace_under_the_callers(
    traced_app: FastAPI, exporter: InMemorySpanExporter
) -> None:
    async with tenant_of(traced_app, "Acme Games") as tenant:
        await tenant.subscribed_webhook()
        event_id = await post_event(tenant, ("traceparent", CALLER))
        stored = traceparent.parse(await stored_traceparent(traced_app, event_id))
        spans = [s for s in finished(traced_app, exporter) if hex_trace(s) == CALLER_TRACE]

    server = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert server.name == "POST /events"
    assert server.parent is not None and f"{server.parent.span_id:016x}" == CALLER_SPAN
    assert server.resource.attributes["service.name"] == "storehooks-api"
    # What is stored is this request's span: the worker's spans become its children.
    assert stored is not None and stored.trace_id == CALLER_TRACE
    assert server.context is not None and stored.parent_id == f"{server.context.span_id:016x}"
    inserts = [s for s in spans if _statement(s).startswith("INSERT INTO events")]
    redis = [s for s in spans if s.attributes and s.attributes.get("db.system") == "redis"]
    assert len(inserts) == 1 and redis
    # The deliveries' enqueue (one script; loaded first by a Redis that lacks it), after
    # the commit: every Redis span starts once the INSERT has ended.
    assert redis[-1].name == "EVALSHA"
    assert all(r.start_time >= inserts[0].end_time for r in redis)  # type: ignore[operator]


async def test_on_a_malformed_traceparent_starts_a_trace_of_our_own(
    traced_app: FastAPI, exporter: InMemorySpanExporter
) -> None:
    async with tenant_of(traced_app, "Acme Games") as tenant:
        exporter.clear()
        event_id = await post_event(tenant, ("traceparent", f"00-{CALLER_TRACE}-{'0' * 16}-01"))
        stored = traceparent.parse(await stored_traceparent(traced_app, event_id))
        server = next(s for s in finished(traced_app, exporter) if s.kind is SpanKind.SERVER)
    assert stored is not None and stored.trace_id != CALLER_TRACE
    assert server.parent is None and hex_trace(server) == stored.trace_id


async def test_on_no_span_carries_the_api_key_and_probes_make_none(
    traced_app: FastAPI, exporter: InMemorySpanExporter
) -> None:
    async with tenant_of(traced_app, "Acme Games") as tenant:
        await post_event(tenant, ("traceparent", CALLER))
        for probe in ("/healthz", "/readyz", "/metrics"):
            assert (await tenant.api.get(probe)).status_code == 200
        spans = finished(traced_app, exporter)
        token = tenant.token
    assert spans
    printed = "".join(span.to_json() for span in spans)
    assert token not in printed and token.split(".", 1)[1] not in printed
    assert not any(
        str(s.attributes.get("url.path", s.attributes.get("http.target", ""))).endswith(
            ("/healthz", "/readyz", "/metrics")
        )
        for s in spans
        if s.attributes
    )
