"""Traces across the hop: POST /events, the stored traceparent, the worker's attempt and
its send, and the `traceparent` a real receiver on 127.0.0.1 gets; with tracing on (the
SDK's in-memory exporter, through the same start-up as OTLP) and off."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest
from arq.worker import Worker
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from app import resources
from app.core import traceparent
from app.core.settings import Settings
from app.main import create_app
from tests.conftest import Tenant, tenant_of
from tests.support.receivers import Receiver
from tests.workers.conftest import received, running_worker, wait_for_delivery
from workers import resources as worker_resources
from workers import spans as worker_spans

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"


@dataclass
class Traced:
    app: FastAPI
    tenant: Tenant
    worker: Worker
    exporter: InMemorySpanExporter

    def spans(self) -> Sequence[ReadableSpan]:
        """Every span both processes have ended (they share the exporter)."""
        for held in (resources.of(self.app).tracing, worker_resources.of(self.worker.ctx).tracing):
            assert held is not None
            held.provider.force_flush()
        return self.exporter.get_finished_spans()

    async def spans_once(
        self, done: Callable[[Sequence[ReadableSpan]], bool]
    ) -> Sequence[ReadableSpan]:
        """The spans once `done` holds of them: the worker ends an attempt's span just
        after the record that a test waits for."""
        deadline = time.monotonic() + 10
        while not done(spans := self.spans()):
            if time.monotonic() > deadline:
                raise AssertionError([span.name for span in spans])
            await asyncio.sleep(0.05)
        return spans


@pytest.fixture
async def traced(settings: Settings) -> AsyncIterator[Traced]:
    """The API and an in-process worker, both tracing into one in-memory exporter."""
    exporter = InMemorySpanExporter()
    application = create_app(settings, span_exporter=exporter)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(application.router.lifespan_context(application))
        tenant = await stack.enter_async_context(tenant_of(application, "Acme Games"))
        worker = await stack.enter_async_context(running_worker(settings, exporter))
        yield Traced(application, tenant, worker, exporter)


def hex_trace(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


def hex_span(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.span_id:016x}"


def parent_of(span: ReadableSpan) -> str | None:
    return None if span.parent is None else f"{span.parent.span_id:016x}"


async def post(tenant: Tenant, headers: dict[str, str]) -> str:
    """Posts a purchase of app_42; its one delivery's id."""
    response = await tenant.api.post(
        "/events", json={"type": "purchase", "app_id": "app_42"}, headers=headers
    )
    assert response.status_code == 202, response.text
    listing = await tenant.api.get("/deliveries", params={"event_id": response.json()["id"]})
    delivery_id: str = listing.json()["data"][0]["id"]
    return delivery_id


def attempts_ended(count: int) -> Callable[[Sequence[ReadableSpan]], bool]:
    return lambda spans: sum(s.name == worker_spans.ATTEMPT for s in spans) >= count


# --- tracing on -------------------------------------------------------------------------


async def test_on_one_trace_runs_from_the_callers_request_to_the_receiver(
    traced: Traced, receiver: Receiver
) -> None:
    await traced.tenant.subscribed_webhook(url=receiver.url)
    delivery_id = await post(traced.tenant, {"traceparent": CALLER})
    [arrived] = await received(receiver, 1)
    await wait_for_delivery(traced.tenant, delivery_id, "succeeded")
    spans = await traced.spans_once(attempts_ended(1))

    sent = traceparent.parse(arrived.headers["traceparent"])
    assert sent is not None and sent.trace_id == CALLER_TRACE and sent.flags == "01"
    in_trace = [s for s in spans if hex_trace(s) == CALLER_TRACE]
    named = {s.name: s for s in in_trace}
    server, attempt = named["POST /events"], named[worker_spans.ATTEMPT]
    send, record = named["POST"], named[worker_spans.RECORD]
    # The hop: the attempt is a child of the request's span, through the stored header;
    # the send and the record are the attempt's; the receiver's parent is the send.
    assert parent_of(attempt) == hex_span(server)
    assert parent_of(send) == parent_of(record) == hex_span(attempt)
    assert sent.parent_id == hex_span(send)
    assert server.resource.attributes["service.name"] == "storehooks-api"
    assert send.resource.attributes["service.name"] == "storehooks-worker"
    assert send.kind is SpanKind.CLIENT
    assert dict(send.attributes or {}) == {
        "http.request.method": "POST",
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "server.port": receiver.port,
        "storehooks.delivery_id": delivery_id,
        "storehooks.webhook_id": (attempt.attributes or {})["storehooks.webhook_id"],
        "storehooks.attempt": 1,
        "http.response.status_code": 200,
    }
    assert send.status.status_code is StatusCode.UNSET
    # The API's statements and its enqueue are in the same trace, and so is the record's SQL.
    assert any((s.attributes or {}).get("db.system") == "redis" for s in in_trace)
    sql = [s for s in in_trace if "db.statement" in (s.attributes or {})]
    assert any(s.resource.attributes["service.name"] == "storehooks-api" for s in sql)
    assert any(parent_of(s) == hex_span(record) for s in sql)
    # The claim, shared by the jobs that start together, is a trace of its own, linked.
    claim = next(s for s in spans if s.name == worker_spans.CLAIM)
    assert claim.context is not None and hex_trace(claim) != CALLER_TRACE
    assert [link.context.span_id for link in attempt.links] == [claim.context.span_id]


async def test_on_without_a_header_a_new_trace_is_stored_and_every_attempt_continues_it(
    traced: Traced, receiver: Receiver
) -> None:
    receiver.answer(500)
    await traced.tenant.subscribed_webhook(url=receiver.url)
    delivery_id = await post(traced.tenant, {})
    first, second = await received(receiver, 2)
    await wait_for_delivery(traced.tenant, delivery_id, "succeeded")
    spans = await traced.spans_once(attempts_ended(2))

    one, two = (traceparent.parse(r.headers["traceparent"]) for r in (first, second))
    assert one is not None and two is not None
    assert one.trace_id == two.trace_id != CALLER_TRACE
    assert one.parent_id != two.parent_id  # each attempt's own send span
    sends = sorted(
        (s for s in spans if s.kind is SpanKind.CLIENT and s.name == "POST"),
        key=lambda s: s.start_time or 0,
    )
    assert [hex_span(s) for s in sends] == [one.parent_id, two.parent_id]
    failed = sends[0]
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "http_status"
    assert (failed.attributes or {})["storehooks.error_class"] == "http_status"
    assert (failed.attributes or {})["http.response.status_code"] == 500
    server = next(s for s in spans if s.name == "POST /events")
    assert server.parent is None and hex_trace(server) == one.trace_id


async def test_on_a_test_ping_starts_a_trace_of_its_own(traced: Traced, receiver: Receiver) -> None:
    webhook = await traced.tenant.webhook(url=receiver.url)
    response = await traced.tenant.api.post(f"/webhooks/{webhook['id']}/test")
    assert response.status_code == 202
    [arrived] = await received(receiver, 1)
    spans = await traced.spans_once(attempts_ended(1))

    attempt = next(s for s in spans if s.name == worker_spans.ATTEMPT)
    sent = traceparent.parse(arrived.headers["traceparent"])
    assert attempt.parent is None
    assert sent is not None and sent.trace_id == hex_trace(attempt)
    server = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert hex_trace(server) != sent.trace_id


async def test_on_no_span_holds_a_secret_the_signature_or_the_urls_path(
    traced: Traced, receiver: Receiver
) -> None:
    url = f"http://127.0.0.1:{receiver.port}/hooks/T0001/B0002/pathcredential?token=querycredential"
    webhook = await traced.tenant.subscribed_webhook(url=url)
    delivery_id = await post(traced.tenant, {"traceparent": CALLER})
    [arrived] = await received(receiver, 1)
    await wait_for_delivery(traced.tenant, delivery_id, "succeeded")
    spans = await traced.spans_once(attempts_ended(1))

    printed = "".join(span.to_json() for span in spans)
    signature = arrived.headers["webhook-signature"].split(",", 1)[1]
    for secret in (
        webhook["secret"],
        webhook["secret"].removeprefix("whsec_"),
        signature,
        "pathcredential",
        "querycredential",
        traced.tenant.token.split(".", 1)[1],
    ):
        assert secret not in printed


# --- tracing off ------------------------------------------------------------------------


async def test_off_the_receiver_gets_the_stored_traceparent_and_nothing_is_traced(
    app: FastAPI, tenant: Tenant, worker: Worker, receiver: Receiver
) -> None:
    receiver.answer(500)
    await tenant.subscribed_webhook(url=receiver.url)
    delivery_id = await post(tenant, {"traceparent": CALLER})
    first, second = await received(receiver, 2)
    await wait_for_delivery(tenant, delivery_id, "succeeded")

    # A hop that records nothing passes its parent on: every attempt carries the header
    # the event was posted with, so the receiver's spans hang under the caller's.
    assert first.headers["traceparent"] == second.headers["traceparent"] == CALLER
    assert resources.of(app).tracing is None
    assert worker_resources.of(worker.ctx).tracing is None
    assert worker_resources.of(worker.ctx).dispatcher._tracer is None


@pytest.mark.parametrize("header", [None, "00-not-a-trace-01"], ids=["absent", "malformed"])
async def test_off_an_event_without_a_valid_header_sends_a_new_valid_one(
    tenant: Tenant, worker: Worker, receiver: Receiver, header: str | None
) -> None:
    await tenant.subscribed_webhook(url=receiver.url)
    await post(tenant, {"traceparent": header} if header else {})
    await post(tenant, {"traceparent": header} if header else {})
    arrived = await received(receiver, 2)

    sent = [traceparent.parse(r.headers["traceparent"]) for r in arrived]
    assert all(s is not None and s.flags == "01" for s in sent)
    assert len({s.trace_id for s in sent if s is not None}) == 2


async def test_off_each_test_ping_attempt_starts_a_trace(
    tenant: Tenant, worker: Worker, receiver: Receiver
) -> None:
    webhook = await tenant.webhook(url=receiver.url)
    for _ in range(2):
        assert (await tenant.api.post(f"/webhooks/{webhook['id']}/test")).status_code == 202
    arrived = await received(receiver, 2)
    sent = [traceparent.parse(r.headers["traceparent"]) for r in arrived]
    assert len({s.trace_id for s in sent if s is not None}) == 2
