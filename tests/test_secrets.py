"""An API key's secret is shown once, at its creation, and nowhere else: not in any other
answer, not in a log line, not in an exception message (issue: hardening, abuse)."""

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import WEBHOOK_BODY, Tenant, client_for, secret_part


def wrong_variants(token: str, secret: str) -> list[str]:
    """Tokens that carry (most of) the secret but fail: a typo, a stray suffix, no dot."""
    prefix = token.removesuffix(secret)
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]
    return [prefix + flipped, token + "x", token.replace(".", "", 1), f"Basic {token}"]


async def exercise(app: FastAPI, token: str, secret: str) -> list[httpx.Response]:
    """Every kind of answer a key can get: successes, 4xx of each kind, bad tokens."""
    answers: list[httpx.Response] = []
    async with client_for(app, token) as client:
        answers.append(await client.get("/me"))
        answers.append(await client.get("/api-keys"))
        answers.append(await client.post("/webhooks", json=WEBHOOK_BODY))
        answers.append(await client.post("/webhooks", json={"name": secret}))  # 422
        answers.append(await client.get("/webhooks/wh_missing"))  # 404
        answers.append(await client.post("/events", content=b"{not json"))  # 422
        answers.append(await client.post("/events", json={"type": "purchase", "app_id": "a"}))
        answers.append(await client.get(f"/events?cursor={secret}"))  # 422 on the cursor
    for wrong in wrong_variants(token, secret):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://storehooks.test",
            headers={"Authorization": wrong if wrong.startswith("Basic") else f"Bearer {wrong}"},
        ) as client:
            answers.append(await client.get("/me"))
            answers.append(await client.post("/events", content=b"{not json"))
    return answers


def record_texts(records: list[logging.LogRecord]) -> list[str]:
    """Each record as everything a formatter could print: message, arguments, extras,
    the exception and its traceback."""
    texts = []
    formatter = logging.Formatter()
    for record in records:
        text = record.getMessage() + repr(record.__dict__)
        if record.exc_info:
            text += formatter.formatException(record.exc_info)
        texts.append(text)
    return texts


async def test_the_secret_is_only_in_the_answer_that_created_it(
    app: FastAPI, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    scopes = ["keys:manage", "webhooks:create", "webhooks:read", "events:write", "events:read"]
    created = await tenant.api.post("/api-keys", json={"name": "ci", "scopes": scopes})
    assert created.status_code == 201
    body: dict[str, Any] = created.json()
    token, secret = body["api_key"], secret_part(body["api_key"], body["id"])
    assert len(secret) >= 32

    answers = await exercise(app, token, secret)
    answers.append(await tenant.api.get("/api-keys"))
    answers.append(await tenant.api.get("/api-keys?limit=200"))

    statuses = sorted({answer.status_code for answer in answers})
    assert statuses == [200, 201, 202, 401, 404, 422], statuses  # every kind was seen
    for answer in answers:
        assert secret not in answer.text, (answer.request.url, answer.text)
        assert secret not in str(answer.headers), answer.headers
    listed = {key["id"]: key for key in (await tenant.api.get("/api-keys")).json()["data"]}
    assert body["id"] in listed and "api_key" not in listed[body["id"]]

    # The test's own HTTP client logs the URLs it requests (one carries the secret on
    # purpose, as a cursor); everything else is storehooks and its libraries.
    texts = record_texts([record for record in caplog.records if record.name != "httpx"])
    # SQL statements are logged with their parameters (INFO on sqlalchemy.engine, set
    # above): the key lookup's names the key id, so the grep below sees what flowed
    # around the key, on every backend.
    assert [text for text in texts if body["id"] in text], "no log record names the key id"
    assert not [text for text in texts if secret in text]
    assert not [text for text in texts if secret[:16] in text]  # not even a prefix
