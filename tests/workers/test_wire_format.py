"""What a receiver gets on the wire (docs/api.md#notifications): each body format parsed
field by field, the md5 recomputed, the Standard Webhooks headers verified with the
reference library, the method, the headers across retries and a secret rotation, and HTTPS
through the tests' CA."""

import hashlib
import json
import time
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
from arq.worker import Worker
from standardwebhooks.webhooks import Webhook

from app import __version__
from tests.conftest import Tenant
from tests.support.receivers import Receiver
from tests.workers.conftest import post_purchase, wait_for_delivery

OCCURRED_AT = "2026-11-28T10:00:00Z"
OCCURRED_EPOCH = 1795860000  # 2026-11-28T10:00:00Z in Unix seconds
DATA = {"order_id": "o-1", "amount": "4.99", "currency": "USD", "buyer": "Zoë"}
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" ?>'


def md5_of(payload: dict[str, Any]) -> str:
    """docs/api.md#payloads, written out here rather than imported from the code under test."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.md5(canonical.encode("utf-8")).hexdigest()


def expected_payload(event_id: str, sku_id: str | None) -> dict[str, Any]:
    return {
        "type": "purchase",
        "epoch_timestamp": OCCURRED_EPOCH,
        "event_id": event_id,
        "app_id": "app_42",
        "sku_id": sku_id,
        "data": DATA,
    }


async def delivered(
    tenant: Tenant, receiver: Receiver, payload_type: str, sku_id: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sends one purchase through a webhook of `payload_type`; the delivery and its event."""
    await tenant.subscribed_webhook(url=receiver.url, payload_type=payload_type)
    delivery_id = await post_purchase(tenant, sku_id=sku_id, occurred_at=OCCURRED_AT, data=DATA)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "succeeded", delivery
    return delivery, (await tenant.api.get(f"/events/{delivery['event_id']}")).json()


@pytest.mark.parametrize("sku_id", [None, "gems_100"])
async def test_json_body_field_by_field(
    tenant: Tenant, receiver: Receiver, worker: Worker, sku_id: str | None
) -> None:
    _delivery, event = await delivered(tenant, receiver, "json", sku_id)
    [received] = receiver.requests
    assert received.headers["content-type"] == "application/json"
    body = json.loads(received.body.decode("utf-8"))
    assert list(body) == ["payload", "md5"]
    payload = body["payload"]
    assert payload == expected_payload(event["id"], sku_id)
    assert list(payload) == ["type", "epoch_timestamp", "event_id", "app_id", "sku_id", "data"]
    assert type(payload["epoch_timestamp"]) is int
    # The md5 rebuilt from what the receiver parsed, non-ASCII kept as is.
    rebuilt = {key: payload[key] for key in payload}
    assert body["md5"] == md5_of(rebuilt)
    assert body["md5"] == md5_of(expected_payload(event["id"], sku_id))


@pytest.mark.parametrize("sku_id", [None, "gems_100"])
async def test_xml_body_field_by_field(
    tenant: Tenant, receiver: Receiver, worker: Worker, sku_id: str | None
) -> None:
    _delivery, event = await delivered(tenant, receiver, "xml", sku_id)
    [received] = receiver.requests
    assert received.headers["content-type"] == "application/xml"
    assert received.body.startswith(XML_DECLARATION)
    root = ET.fromstring(received.body)
    assert root.tag == "notification"
    assert [child.tag for child in root] == ["payload", "md5"]
    payload = root.find("payload")
    assert payload is not None
    assert [child.tag for child in payload] == [
        "type",
        "epoch_timestamp",
        "event_id",
        "app_id",
        "sku_id",
        "data",
    ]
    assert payload.findtext("type") == "purchase"
    assert payload.findtext("epoch_timestamp") == str(OCCURRED_EPOCH)
    assert payload.findtext("event_id") == event["id"]
    assert payload.findtext("app_id") == "app_42"
    sku = payload.find("sku_id")
    assert sku is not None
    if sku_id is None:
        assert sku.text is None  # an empty element
        assert len(sku) == 0
    else:
        assert sku.text == sku_id
    data = payload.find("data")
    assert data is not None
    assert {child.tag: child.text for child in data} == DATA
    assert root.findtext("md5") == md5_of(expected_payload(event["id"], sku_id))


@pytest.mark.parametrize("sku_id", [None, "gems_100"])
async def test_form_body_field_by_field(
    tenant: Tenant, receiver: Receiver, worker: Worker, sku_id: str | None
) -> None:
    _delivery, event = await delivered(tenant, receiver, "form", sku_id)
    [received] = receiver.requests
    assert received.headers["content-type"] == "application/x-www-form-urlencoded"
    fields = parse_qs(received.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert fields == {
        "payload[type]": ["purchase"],
        "payload[epoch_timestamp]": [str(OCCURRED_EPOCH)],
        "payload[event_id]": [event["id"]],
        "payload[app_id]": ["app_42"],
        "payload[sku_id]": ["" if sku_id is None else sku_id],
        "payload[data][order_id]": ["o-1"],
        "payload[data][amount]": ["4.99"],
        "payload[data][currency]": ["USD"],
        "payload[data][buyer]": ["Zoë"],
        "md5": [md5_of(expected_payload(event["id"], sku_id))],
    }


@pytest.mark.parametrize(
    ("occurred_at", "epoch"),
    [
        ("2026-11-28T10:00:00Z", 1795860000),
        ("2026-11-28T11:30:00+01:30", 1795860000),
        ("2001-09-09T01:46:40Z", 1000000000),
    ],
)
async def test_epoch_timestamp_is_occurred_at_in_unix_seconds(
    tenant: Tenant, receiver: Receiver, worker: Worker, occurred_at: str, epoch: int
) -> None:
    await tenant.subscribed_webhook(url=receiver.url)
    delivery_id = await post_purchase(tenant, occurred_at=occurred_at)
    assert (await wait_for_delivery(tenant, delivery_id))["status"] == "succeeded"
    [received] = receiver.requests
    assert json.loads(received.body)["payload"]["epoch_timestamp"] == epoch


async def test_headers_verify_with_standardwebhooks(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    delivery_id = await post_purchase(tenant, occurred_at=OCCURRED_AT, data=DATA)
    assert (await wait_for_delivery(tenant, delivery_id))["status"] == "succeeded"
    [received] = receiver.requests
    assert received.headers["webhook-id"] == delivery_id
    assert abs(int(received.headers["webhook-timestamp"]) - time.time()) <= 5
    assert received.headers["user-agent"] == f"storehooks/{__version__}"
    assert received.headers["webhook-signature"].startswith("v1,")
    Webhook(webhook["secret"]).verify(received.body, received.headers)


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_the_webhooks_http_method_is_used(
    tenant: Tenant, receiver: Receiver, worker: Worker, method: str
) -> None:
    webhook = await tenant.subscribed_webhook(url=receiver.url, http_method=method)
    delivery_id = await post_purchase(tenant)
    assert (await wait_for_delivery(tenant, delivery_id))["status"] == "succeeded"
    [received] = receiver.requests
    assert received.method == method
    assert received.path == "/hook"
    Webhook(webhook["secret"]).verify(received.body, received.headers)


async def test_after_rotation_both_secrets_verify_alone(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    old_secret = webhook["secret"]
    rotated = await tenant.api.post(f"/webhooks/{webhook['id']}/secret/rotate")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != old_secret

    delivery_id = await post_purchase(tenant)
    assert (await wait_for_delivery(tenant, delivery_id))["status"] == "succeeded"
    [received] = receiver.requests
    signatures = received.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(signature.startswith("v1,") for signature in signatures)
    assert signatures[0] != signatures[1]
    Webhook(old_secret).verify(received.body, received.headers)
    Webhook(new_secret).verify(received.body, received.headers)


async def test_every_attempt_carries_the_same_id_and_its_own_timestamp(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    receiver.answer(500, 500)
    delivery_id = await post_purchase(tenant)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "succeeded"
    assert len(receiver.requests) == 3
    assert len(delivery["attempts"]) == 3
    for received, attempt in zip(receiver.requests, delivery["attempts"], strict=True):
        assert received.headers["webhook-id"] == delivery_id
        started = datetime.fromisoformat(attempt["started_at"]).timestamp()
        assert abs(int(received.headers["webhook-timestamp"]) - started) <= 1.5
        # Each attempt is signed over its own timestamp.
        Webhook(webhook["secret"]).verify(received.body, received.headers)
    assert len({received.body for received in receiver.requests}) == 1


async def test_https_receiver_trusted_through_the_ca_bundle(
    tenant: Tenant, https_receiver: Receiver, worker: Worker
) -> None:
    assert https_receiver.url.startswith("https://localhost:")
    webhook = await tenant.subscribed_webhook(url=https_receiver.url)
    delivery_id = await post_purchase(tenant)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "succeeded", delivery
    assert delivery["attempt_count"] == 1
    [received] = https_receiver.requests
    assert received.headers["webhook-id"] == delivery_id
    Webhook(webhook["secret"]).verify(received.body, received.headers)
