"""scripts/echo_receiver.py --secret against real deliveries of each payload type: it
verifies the signature of JSON, XML and form bodies alike and answers 200, and answers
400 to a body with one byte changed."""

import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from arq.worker import Worker

from app.core.enums import PayloadType
from app.core.signing import notification_headers
from tests.conftest import ROOT, Tenant, free_port
from tests.support.line_servers import LineServer, line_server
from tests.workers.conftest import post_purchase, wait_for_delivery
from tests.workers.test_lifecycle import ping
from workers.payloads import ping_payload, render_body

DATA = {"order_id": "o-1", "amount": "4.99", "buyer": "Zoë"}


@pytest.fixture(params=list(PayloadType), ids=lambda kind: kind.value)
async def echo(
    request: pytest.FixtureRequest, tenant: Tenant
) -> AsyncIterator[tuple[dict[str, Any], LineServer]]:
    """A webhook of each payload type whose URL is an echo receiver started with its secret."""
    port = free_port()
    webhook = await tenant.subscribed_webhook(
        url=f"http://127.0.0.1:{port}/hook", payload_type=request.param.value
    )
    command = [sys.executable, "scripts/echo_receiver.py", str(port)]
    async with line_server(
        *command, "--secret", webhook["secret"], cwd=ROOT, env=dict(os.environ)
    ) as server:
        yield webhook, server


async def test_a_ping_and_a_purchase_verify_and_are_answered_200(
    tenant: Tenant, worker: Worker, echo: tuple[dict[str, Any], LineServer]
) -> None:
    webhook, server = echo
    content_type = render_body(PayloadType(webhook["payload_type"]), ping_payload(0))[1]
    for delivery_id in [await ping(tenant, webhook["id"]), await post_purchase(tenant, data=DATA)]:
        delivery = await wait_for_delivery(tenant, delivery_id)
        printed = await server.json_document()
        assert printed["webhook-id"] == delivery_id
        assert printed["content-type"] == content_type
        assert printed["signature"] == "valid", printed
        assert delivery["status"] == "succeeded", delivery
    assert "Zo" in printed["body"]


async def test_a_body_with_one_byte_changed_is_answered_400(
    echo: tuple[dict[str, Any], LineServer],
) -> None:
    webhook, server = echo
    body, content_type = render_body(PayloadType(webhook["payload_type"]), ping_payload(1))
    headers = notification_headers(
        delivery_id="dlv_echo",
        timestamp=int(time.time()),
        body=body,
        content_type=content_type,
        secrets=[webhook["secret"]],
        user_agent="storehooks/test",
    )
    changed = body.replace(b"ping", b"pong")
    assert changed != body
    async with httpx.AsyncClient() as client:
        intact = await client.post(webhook["url"], content=body, headers=headers)
        assert (await server.json_document())["signature"] == "valid"
        tampered = await client.post(webhook["url"], content=changed, headers=headers)
        assert (await server.json_document())["signature"].startswith("INVALID")
    assert (intact.status_code, tampered.status_code) == (200, 400)
