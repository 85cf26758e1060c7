"""Ed25519 webhooks on the wire (docs/api.md#headers-and-signatures): real deliveries to a
receiver on 127.0.0.1, their `v1a` signatures checked with PyNaCl (libsodium, apart from
the OpenSSL that signs them) against the public key the API shows; a rotation and a
change of scheme each sign with both keys, so receivers holding either key verify."""

import base64
from datetime import UTC, datetime

import nacl.exceptions
import nacl.signing
import pytest
from arq.worker import Worker
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook as HmacVerifier

from app import resources
from app.core.models import Webhook
from tests.conftest import Tenant
from tests.support.receivers import Received, Receiver
from tests.test_signature_schemes import capture_as_the_service_logs
from tests.workers.conftest import post_purchase, received, wait_for_delivery
from tests.workers.test_lifecycle import ping

DATA = {"order_id": "o-1", "amount": "4.99", "buyer": "Zoë"}


def v1a_entries(headers: dict[str, str]) -> list[bytes]:
    """The raw signatures of the header's v1a entries (other versions skipped)."""
    entries = []
    for entry in headers["webhook-signature"].split(" "):
        version, _, signature = entry.partition(",")
        if version == "v1a":
            entries.append(base64.b64decode(signature, validate=True))
    return entries


def verifies(public_key: str, body: bytes, headers: dict[str, str]) -> bool:
    """Standard Webhooks v1a, written out with libsodium: any v1a entry that is an Ed25519
    signature of "{webhook-id}.{webhook-timestamp}.{body}" by `public_key`."""
    key = nacl.signing.VerifyKey(base64.b64decode(public_key.removeprefix("whpk_"), validate=True))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    for signature in v1a_entries(headers):
        try:
            key.verify(signed, signature)
        except nacl.exceptions.BadSignatureError:
            continue
        return True
    return False


def one_byte_changed(body: bytes, at: int) -> bytes:
    return body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]


async def delivered(tenant: Tenant, receiver: Receiver) -> Received:
    """One purchase through the tenant's webhook, answered 200; what the receiver got."""
    delivery_id = await post_purchase(tenant, data=DATA)
    delivery = await wait_for_delivery(tenant, delivery_id)
    assert delivery["status"] == "succeeded", delivery
    return receiver.requests[-1]


@pytest.mark.parametrize("payload_type", ["json", "xml", "form"])
async def test_a_delivery_verifies_with_the_public_key_until_one_byte_changes(
    tenant: Tenant, receiver: Receiver, worker: Worker, payload_type: str
) -> None:
    webhook = await tenant.subscribed_webhook(
        url=receiver.url, payload_type=payload_type, signature_scheme="ed25519"
    )
    sent = await delivered(tenant, receiver)

    assert sent.headers["webhook-signature"].startswith("v1a,")
    assert [len(signature) for signature in v1a_entries(sent.headers)] == [64]
    assert verifies(webhook["public_key"], sent.body, sent.headers)
    for at in (0, len(sent.body) // 2, len(sent.body) - 1):
        assert not verifies(webhook["public_key"], one_byte_changed(sent.body, at), sent.headers)
    later = {**sent.headers, "webhook-timestamp": str(int(sent.headers["webhook-timestamp"]) + 1)}
    assert not verifies(webhook["public_key"], sent.body, later)
    other = await tenant.webhook(signature_scheme="ed25519")
    assert not verifies(other["public_key"], sent.body, sent.headers)


async def test_a_test_ping_is_signed_alike(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    webhook = await tenant.webhook(url=receiver.url, signature_scheme="ed25519")
    delivery_id = await ping(tenant, webhook["id"])
    assert (await wait_for_delivery(tenant, delivery_id))["status"] == "succeeded"
    [sent] = receiver.requests
    assert verifies(webhook["public_key"], sent.body, sent.headers)


async def test_after_rotation_both_public_keys_verify_alone(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    webhook = await tenant.subscribed_webhook(url=receiver.url, signature_scheme="ed25519")
    rotated = await tenant.api.post(f"/webhooks/{webhook['id']}/secret/rotate")
    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["public_key"]

    sent = await delivered(tenant, receiver)

    entries = sent.headers["webhook-signature"].split(" ")
    assert [entry.split(",")[0] for entry in entries] == ["v1a", "v1a"]
    assert verifies(new_key, sent.body, sent.headers)
    assert verifies(webhook["public_key"], sent.body, sent.headers)
    stranger = (await tenant.webhook(signature_scheme="ed25519"))["public_key"]
    assert not verifies(stranger, sent.body, sent.headers)


async def test_a_change_of_scheme_signs_with_both_schemes_so_no_receiver_misses_one(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    """hmac-sha256 → ed25519: a receiver still checking v1 with the old secret and one
    already checking v1a with the public key both accept; and back again."""
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    path = f"/webhooks/{webhook['id']}"
    switched = await tenant.api.patch(path, json={"signature_scheme": "ed25519"})
    assert switched.status_code == 200, switched.text
    public_key = switched.json()["public_key"]

    sent = await delivered(tenant, receiver)
    assert [entry[:3] for entry in sent.headers["webhook-signature"].split(" ")] == ["v1a", "v1,"]
    HmacVerifier(webhook["secret"]).verify(sent.body, sent.headers, json_parse=False)
    assert verifies(public_key, sent.body, sent.headers)

    back = await tenant.api.patch(path, json={"signature_scheme": "hmac-sha256"})
    assert back.status_code == 200, back.text
    secret = (await tenant.fetch(f"{path}/secret"))["secret"]
    sent = await delivered(tenant, receiver)
    assert [entry[:3] for entry in sent.headers["webhook-signature"].split(" ")] == ["v1,", "v1a"]
    HmacVerifier(secret).verify(sent.body, sent.headers, json_parse=False)
    assert verifies(public_key, sent.body, sent.headers)


async def test_a_pending_retry_after_a_change_of_scheme_carries_both(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    """Nothing is signed ahead: an attempt due after the switch is signed with the keys of
    that moment, the old secret among them."""
    webhook = await tenant.subscribed_webhook(url=receiver.url)
    receiver.answer(500, 500, 500)
    delivery_id = await post_purchase(tenant, data=DATA)
    [first] = await received(receiver, 1)
    switched = await tenant.api.patch(
        f"/webhooks/{webhook['id']}", json={"signature_scheme": "ed25519"}
    )
    assert switched.status_code == 200, switched.text

    assert (await wait_for_delivery(tenant, delivery_id))["status"] == "succeeded"
    last = receiver.requests[-1]
    assert first.headers["webhook-signature"].startswith("v1,")
    assert v1a_entries(first.headers) == []
    assert last.headers["webhook-id"] == first.headers["webhook-id"] == delivery_id
    HmacVerifier(webhook["secret"]).verify(last.body, last.headers, json_parse=False)
    assert verifies(switched.json()["public_key"], last.body, last.headers)


async def test_the_workers_log_lines_carry_no_private_key(
    app: FastAPI,
    tenant: Tenant,
    receiver: Receiver,
    worker: Worker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    capture_as_the_service_logs(caplog, "DEBUG")
    webhook = await tenant.subscribed_webhook(url=receiver.url, signature_scheme="ed25519")
    await tenant.api.post(f"/webhooks/{webhook['id']}/secret/rotate")
    receiver.answer(500)
    await delivered(tenant, receiver)

    async with resources.of(app).sessionmaker() as session:
        row = await session.get(Webhook, webhook["id"])
    assert row is not None and row.previous_secret is not None
    private_parts = [key.removeprefix("whsk_") for key in (row.secret, row.previous_secret)]
    texts = [record.getMessage() + repr(record.__dict__) for record in caplog.records]
    attempts = [record for record in caplog.records if record.getMessage().startswith("attempt ")]
    assert len(attempts) == 2, "the worker logs a line per attempt: a failed one, then 200"
    assert not [text for text in texts if "whsk_" in text]
    assert not [text for text in texts if any(part in text for part in private_parts)]


async def test_a_leaked_secret_forges_a_notification_and_a_leaked_public_key_cannot(
    tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    """The threat ed25519 answers (docs/security.md): what a receiver holds leaks (a config
    file, a repository). Given a real notification to each kind of webhook, the holder of
    an HMAC secret makes a forged body pass; the holder of a public key cannot: neither
    its own key nor the captured signature makes the forged body verify."""
    hmac_webhook = await tenant.subscribed_webhook(url=receiver.url)
    ed25519_webhook = await tenant.subscribed_webhook(url=receiver.url, signature_scheme="ed25519")
    assert (await tenant.event(data=DATA))["deliveries"] == 2
    by_scheme = {
        request.headers["webhook-signature"].split(",")[0]: request
        for request in await received(receiver, 2)
    }
    forged = b'{"payload":{"type":"purchase","data":{"order_id":"forged"}},"md5":"x"}'

    sent = by_scheme["v1"]
    leaked = HmacVerifier(hmac_webhook["secret"])
    moment = int(sent.headers["webhook-timestamp"])
    signature = leaked.sign(sent.headers["webhook-id"], datetime.fromtimestamp(moment, UTC), forged)
    leaked.verify(forged, {**sent.headers, "webhook-signature": signature}, json_parse=False)

    sent = by_scheme["v1a"]
    public_key = ed25519_webhook["public_key"]
    own = nacl.signing.SigningKey.generate()  # the best a forger can sign with
    content = f"{sent.headers['webhook-id']}.{sent.headers['webhook-timestamp']}.".encode()
    own_signature = base64.b64encode(own.sign(content + forged).signature).decode()
    assert not verifies(
        public_key, forged, {**sent.headers, "webhook-signature": f"v1a,{own_signature}"}
    )
    assert not verifies(public_key, forged, sent.headers)  # the captured signature
    assert verifies(public_key, sent.body, sent.headers)
