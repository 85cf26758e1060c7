import base64
import hashlib
import hmac
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.core.enums import PayloadType
from app.core.signing import generate_secret, notification_headers, sign
from workers.payloads import ping_payload, render_body

# 32 known bytes, so the expected signature can be computed independently below.
KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def headers_for(body: bytes, secrets: list[str], timestamp: int | None = None) -> dict[str, str]:
    return notification_headers(
        delivery_id="dlv_1",
        # The reference verifier rejects timestamps more than five minutes from now.
        timestamp=int(time.time()) if timestamp is None else timestamp,
        body=body,
        content_type="application/json",
        secrets=secrets,
        user_agent="storehooks/0.1.0",
    )


def test_generate_secret_shape() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert generate_secret() != secret


def test_sign_matches_hmac_of_id_timestamp_body() -> None:
    body = '{"a":"café"}'.encode()
    digest = hmac.new(KEY, b"msg_1.1466526410." + body, hashlib.sha256).digest()
    assert sign("msg_1", 1466526410, body, [SECRET]) == "v1," + base64.b64encode(digest).decode()


def test_two_secrets_are_space_separated_in_order() -> None:
    old, new = generate_secret(), generate_secret()
    header = sign("msg_1", 1, b"{}", [old, new])
    assert header.split(" ") == [sign("msg_1", 1, b"{}", [old]), sign("msg_1", 1, b"{}", [new])]


def test_headers() -> None:
    headers = headers_for(b"{}", [SECRET], timestamp=1466526410)
    assert headers == {
        "webhook-id": "dlv_1",
        "webhook-timestamp": "1466526410",
        "webhook-signature": sign("dlv_1", 1466526410, b"{}", [SECRET]),
        "content-type": "application/json",
        "user-agent": "storehooks/0.1.0",
    }


@pytest.mark.parametrize("payload_type", list(PayloadType))
def test_standardwebhooks_verifies(payload_type: PayloadType) -> None:
    body, _ = render_body(payload_type, {"type": "ping", "note": "café"})
    secret = generate_secret()
    Webhook(secret).verify(body, headers_for(body, [secret]), json_parse=False)


def test_standardwebhooks_returns_json_body() -> None:
    body, _ = render_body(PayloadType.JSON, ping_payload(1466526410))
    secret = generate_secret()
    verified = Webhook(secret).verify(body, headers_for(body, [secret]))
    assert verified["payload"] == {"type": "ping", "epoch_timestamp": 1466526410}


def test_rotation_each_secret_alone_verifies() -> None:
    old, new = generate_secret(), generate_secret()
    body, _ = render_body(PayloadType.JSON, ping_payload(1466526410))
    headers = headers_for(body, [old, new])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, headers)


def test_tampered_body_or_timestamp_fails() -> None:
    secret = generate_secret()
    headers = headers_for(b'{"a":1}', [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)
    moved = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":1}', moved)


def test_sign_rejects_a_lone_string_and_no_secrets() -> None:
    with pytest.raises(TypeError):
        sign("msg_1", 1, b"{}", SECRET)
    with pytest.raises(ValueError):
        sign("msg_1", 1, b"{}", [])


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not*base64"])
def test_sign_rejects_bad_secrets(secret: str) -> None:
    with pytest.raises(ValueError):
        sign("msg_1", 1, b"{}", [secret])
