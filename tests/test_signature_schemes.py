"""A webhook's signature scheme through the API (docs/api.md#webhooks): hmac-sha256 by
default, ed25519 on request, the public key shown and the private key in no answer and
no log line, a change of scheme kept as safe as a rotation. Keys are checked with PyNaCl
(libsodium), not with the code under test."""

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nacl.signing
import pytest
from fastapi import FastAPI

from app import resources
from app.core.log_format import logging_config
from app.core.models import Webhook
from tests.conftest import WEBHOOK_BODY, Tenant
from tests.support.problems import assert_invalid

SECRET_FIELDS = {"signature_scheme", "secret", "public_key"}


def raw_key(text: str, prefix: str) -> bytes:
    assert text.startswith(prefix), text
    raw = base64.b64decode(text.removeprefix(prefix), validate=True)
    assert len(raw) == 32, text
    return raw


async def row_of(app: FastAPI, webhook_id: str) -> Webhook:
    async with resources.of(app).sessionmaker() as session:
        row = await session.get(Webhook, webhook_id)
    assert row is not None
    return row


def assert_key_pair(private: str, public: str) -> None:
    """`public` (whpk_) is the public half of `private` (whsk_, a 32-byte seed)."""
    seed = raw_key(private, "whsk_")
    derived = nacl.signing.SigningKey(seed).verify_key.encode()
    assert derived == raw_key(public, "whpk_")


# --- create -----------------------------------------------------------------------------


async def test_the_default_scheme_is_hmac_sha256_without_a_public_key(tenant: Tenant) -> None:
    created = await tenant.webhook()
    assert created["signature_scheme"] == "hmac-sha256"
    assert created["public_key"] is None
    raw_key(created["secret"], "whsec_")
    assert (await tenant.fetch(f"/webhooks/{created['id']}"))["signature_scheme"] == "hmac-sha256"


async def test_create_hmac_sha256_when_asked(tenant: Tenant) -> None:
    created = await tenant.webhook(signature_scheme="hmac-sha256")
    assert (created["signature_scheme"], created["public_key"]) == ("hmac-sha256", None)
    raw_key(created["secret"], "whsec_")


async def test_create_ed25519_shows_the_public_key_and_never_the_private_one(
    app: FastAPI, tenant: Tenant
) -> None:
    created = await tenant.webhook(signature_scheme="ed25519")

    assert created["signature_scheme"] == "ed25519"
    assert created["secret"] is None
    nacl.signing.VerifyKey(raw_key(created["public_key"], "whpk_"))  # a valid Ed25519 point
    row = await row_of(app, created["id"])
    assert row.public_key == created["public_key"]
    assert_key_pair(row.secret, created["public_key"])
    assert (await tenant.fetch(f"/webhooks/{created['id']}/secret")) == {
        "signature_scheme": "ed25519",
        "secret": None,
        "public_key": created["public_key"],
    }


async def test_each_ed25519_webhook_gets_its_own_key_pair(tenant: Tenant) -> None:
    first = await tenant.webhook(signature_scheme="ed25519")
    second = await tenant.webhook(signature_scheme="ed25519")
    assert first["public_key"] != second["public_key"]


@pytest.mark.parametrize(
    "value",
    ["rsa", "HMAC-SHA256", "Ed25519", "v1a", "", None, 1, ["ed25519"]],
)
async def test_an_unknown_scheme_is_422_naming_the_field(tenant: Tenant, value: Any) -> None:
    assert_invalid(
        await tenant.api.post("/webhooks", json={**WEBHOOK_BODY, "signature_scheme": value}),
        "signature_scheme",
    )
    created = await tenant.webhook()
    path = f"/webhooks/{created['id']}"
    assert_invalid(
        await tenant.api.patch(path, json={"signature_scheme": value}), "signature_scheme"
    )
    assert (await tenant.fetch(path))["signature_scheme"] == "hmac-sha256"


@pytest.mark.parametrize("field", ["public_key", "secret"])
async def test_a_client_cannot_bring_its_own_key(tenant: Tenant, field: str) -> None:
    """Keys are made by storehooks alone: a body naming one is refused, not ignored."""
    key = "whpk_" + base64.b64encode(bytes(32)).decode()
    body = {**WEBHOOK_BODY, "signature_scheme": "ed25519", field: key}
    assert_invalid(await tenant.api.post("/webhooks", json=body), field)
    created = await tenant.webhook(signature_scheme="ed25519")
    assert_invalid(await tenant.api.patch(f"/webhooks/{created['id']}", json={field: key}), field)


# --- switching and rotating ---------------------------------------------------------------


async def test_switching_to_ed25519_keeps_the_old_secret_signing_for_24_hours(
    app: FastAPI, tenant: Tenant
) -> None:
    created = await tenant.webhook()
    path = f"/webhooks/{created['id']}"

    switched = await tenant.api.patch(path, json={"signature_scheme": "ed25519"})
    at = datetime.now(UTC)

    assert switched.status_code == 200, switched.text
    body = switched.json()
    assert "secret" not in body
    assert body["signature_scheme"] == "ed25519"
    assert {key: body[key] for key in WEBHOOK_BODY} == WEBHOOK_BODY  # nothing else moved
    row = await row_of(app, created["id"])
    assert_key_pair(row.secret, body["public_key"])
    assert row.previous_secret == created["secret"]
    assert row.previous_secret_expires_at is not None
    assert abs(row.previous_secret_expires_at - (at + timedelta(hours=24))) < timedelta(minutes=1)
    assert (await tenant.fetch(f"{path}/secret"))["public_key"] == body["public_key"]


async def test_switching_back_to_hmac_makes_a_new_secret_and_keeps_the_key_signing(
    app: FastAPI, tenant: Tenant
) -> None:
    created = await tenant.webhook(signature_scheme="ed25519")
    path = f"/webhooks/{created['id']}"
    private = (await row_of(app, created["id"])).secret

    switched = await tenant.api.patch(path, json={"signature_scheme": "hmac-sha256"})

    assert switched.status_code == 200, switched.text
    assert (switched.json()["signature_scheme"], switched.json()["public_key"]) == (
        "hmac-sha256",
        None,
    )
    secret = await tenant.fetch(f"{path}/secret")
    assert (secret["signature_scheme"], secret["public_key"]) == ("hmac-sha256", None)
    raw_key(secret["secret"], "whsec_")
    row = await row_of(app, created["id"])
    assert (row.secret, row.previous_secret) == (secret["secret"], private)


async def test_patching_the_same_scheme_changes_no_key(app: FastAPI, tenant: Tenant) -> None:
    created = await tenant.webhook(signature_scheme="ed25519")
    path = f"/webhooks/{created['id']}"
    before = await row_of(app, created["id"])

    again = await tenant.api.patch(path, json={"signature_scheme": "ed25519", "name": "n2"})

    assert again.status_code == 200, again.text
    assert again.json()["public_key"] == created["public_key"]
    after = await row_of(app, created["id"])
    assert (after.secret, after.previous_secret) == (before.secret, None)


async def test_rotating_an_ed25519_webhook_makes_a_new_pair_and_keeps_the_old_key(
    app: FastAPI, tenant: Tenant
) -> None:
    created = await tenant.webhook(signature_scheme="ed25519")
    old_private = (await row_of(app, created["id"])).secret

    rotated = await tenant.api.post(f"/webhooks/{created['id']}/secret/rotate")

    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert set(body) == SECRET_FIELDS
    assert (body["signature_scheme"], body["secret"]) == ("ed25519", None)
    assert body["public_key"] != created["public_key"]
    assert (await tenant.fetch(f"/webhooks/{created['id']}"))["public_key"] == body["public_key"]
    row = await row_of(app, created["id"])
    assert_key_pair(row.secret, body["public_key"])
    assert row.previous_secret == old_private


# --- the private key in no answer, no log line ------------------------------------------


async def every_answer_about(tenant: Tenant, webhook_id: str) -> list[httpx.Response]:
    path = f"/webhooks/{webhook_id}"
    return [
        await tenant.api.get(path),
        await tenant.api.get("/webhooks"),
        await tenant.api.get("/webhooks?limit=1"),
        await tenant.api.patch(path, json={"name": "renamed"}),
        await tenant.api.get(f"{path}/secret"),
        await tenant.api.post(f"{path}/test"),
        await tenant.api.patch(path, json={"signature_scheme": "hmac-sha256"}),
        await tenant.api.patch(path, json={"signature_scheme": "ed25519"}),
        await tenant.api.post(f"{path}/secret/rotate"),
        await tenant.api.get(f"{path}/secret"),
        await tenant.api.patch(path, json={"signature_scheme": "rsa"}),  # 422
        await tenant.api.get(f"/deliveries?webhook_id={webhook_id}"),
    ]


def capture_as_the_service_logs(caplog: pytest.LogCaptureFixture, level: str) -> None:
    """Every record at `level`, but each library at the level the service's own logging
    configuration gives it (app/core/log_format.py)."""
    for name, config in logging_config(level)["loggers"].items():
        caplog.set_level(config["level"], logger=name)
    caplog.set_level(level)  # last: each call sets the capturing handler's level too


async def test_no_answer_or_log_line_carries_a_private_key(
    app: FastAPI, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    capture_as_the_service_logs(caplog, "DEBUG")
    created = await tenant.api.post(
        "/webhooks", json={**WEBHOOK_BODY, "signature_scheme": "ed25519"}
    )
    assert created.status_code == 201, created.text
    webhook_id = created.json()["id"]

    answers = [created, *await every_answer_about(tenant, webhook_id)]

    assert sorted({answer.status_code for answer in answers}) == [200, 201, 202, 422]
    row = await row_of(app, webhook_id)
    private_keys = {row.secret, row.previous_secret}
    assert all(key and key.startswith("whsk_") for key in private_keys), private_keys
    secrets = {key.removeprefix("whsk_") for key in private_keys if key}
    for answer in answers:
        assert "whsk_" not in answer.text, (answer.request.url, answer.text)
        assert not any(secret in answer.text for secret in secrets), answer.request.url
        assert "whsk_" not in str(answer.headers)
    # At DEBUG aiosqlite would log each statement with its parameters, keys included; the
    # service's configuration keeps it quiet. The worker's attempt lines are checked in
    # tests/workers/test_asymmetric_signatures.py.
    logged = [record.getMessage() + repr(record.__dict__) for record in caplog.records]
    assert not [text for text in logged if "whsk_" in text or any(s in text for s in secrets)]


async def test_the_openapi_field_is_a_named_enum(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    assert schemas["SignatureScheme"]["enum"] == ["hmac-sha256", "ed25519"]
    assert schemas["SignatureScheme"]["x-enum-varnames"] == ["HMAC_SHA256", "ED25519"]
    for name in ("WebhookCreate", "WebhookUpdate", "WebhookOut", "Secret"):
        field = schemas[name]["properties"]["signature_scheme"]
        assert field["$ref"] == "#/components/schemas/SignatureScheme", name
        assert "v1a" in field["description"], name
    assert "never shown" in schemas["WebhookCreated"]["properties"]["secret"]["description"]
