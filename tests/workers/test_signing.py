import base64
import hashlib
import hmac
import time

import nacl.exceptions
import nacl.signing
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.core.enums import PayloadType, SignatureScheme
from app.core.signing import (
    generate_secret,
    generate_signing_key,
    notification_headers,
    readable_secret,
    scheme_of,
    sign,
)
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


# --- ed25519 (Standard Webhooks v1a), checked with PyNaCl (libsodium) ---------------------

# The known answer of the Standard Webhooks Go library's own test (TestAsymmetricWebhookSign):
# a 32-byte seed in base64, the id, timestamp and body it signs, and its v1a signature.
REFERENCE_SEED = "VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
REFERENCE_SIGNATURE = (
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="
)


def verify_key(public_key: str) -> nacl.signing.VerifyKey:
    assert public_key.startswith("whpk_"), public_key
    return nacl.signing.VerifyKey(base64.b64decode(public_key.removeprefix("whpk_"), validate=True))


def test_the_reference_libraries_known_answer() -> None:
    body = b'{"test": 2432232314}'
    secret = "whsk_" + REFERENCE_SEED
    assert sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, [secret]) == REFERENCE_SIGNATURE


def test_an_ed25519_key_pair_is_a_seed_and_its_public_half() -> None:
    key = generate_signing_key(SignatureScheme.ED25519)
    assert key.secret.startswith("whsk_") and key.public_key is not None
    seed = base64.b64decode(key.secret.removeprefix("whsk_"), validate=True)
    assert len(seed) == 32
    derived = nacl.signing.SigningKey(seed).verify_key.encode()
    assert verify_key(key.public_key).encode() == derived
    assert generate_signing_key(SignatureScheme.ED25519).public_key != key.public_key


def test_an_hmac_key_has_no_public_half() -> None:
    key = generate_signing_key(SignatureScheme.HMAC_SHA256)
    assert key.secret.startswith("whsec_")
    assert key.public_key is None


def test_a_v1a_signature_verifies_until_one_byte_changes() -> None:
    key = generate_signing_key(SignatureScheme.ED25519)
    assert key.public_key is not None
    body = '{"a":"café"}'.encode()
    header = sign("dlv_1", 1466526410, body, [key.secret])
    version, signature = header.split(",")
    assert version == "v1a"
    raw = base64.b64decode(signature, validate=True)
    assert len(raw) == 64
    verify_key(key.public_key).verify(b"dlv_1.1466526410." + body, raw)
    for changed in (b"dlv_1.1466526410." + body[:-1] + b"]", b"dlv_2.1466526410." + body):
        with pytest.raises(nacl.exceptions.BadSignatureError):
            verify_key(key.public_key).verify(changed, raw)


def test_both_schemes_sign_side_by_side_in_the_order_given() -> None:
    pair = generate_signing_key(SignatureScheme.ED25519)
    secret = generate_secret()
    header = sign("msg_1", 1, b"{}", [pair.secret, secret])
    assert header.split(" ") == [
        sign("msg_1", 1, b"{}", [pair.secret]),
        sign("msg_1", 1, b"{}", [secret]),
    ]
    assert [entry.split(",")[0] for entry in header.split(" ")] == ["v1a", "v1"]
    # An HMAC receiver skips the v1a entry and still finds its own.
    Webhook(secret).verify(b"{}", headers_for(b"{}", [pair.secret, secret]), json_parse=False)


def test_the_scheme_and_what_may_be_shown_are_read_from_the_key() -> None:
    pair = generate_signing_key(SignatureScheme.ED25519)
    secret = generate_secret()
    assert (scheme_of(secret), scheme_of(pair.secret)) == (
        SignatureScheme.HMAC_SHA256,
        SignatureScheme.ED25519,
    )
    assert readable_secret(secret) == secret
    assert readable_secret(pair.secret) is None
    with pytest.raises(ValueError):
        scheme_of("whpk_" + REFERENCE_SEED)  # a public key signs nothing


@pytest.mark.parametrize(
    "secret",
    [
        "whsk_",
        "whsk_not*base64",
        "whsk_" + base64.b64encode(bytes(31)).decode(),
        "whsk_" + base64.b64encode(bytes(64)).decode(),
        "whpk_" + REFERENCE_SEED,
        REFERENCE_SEED,  # no prefix: which scheme would it be?
    ],
)
def test_sign_rejects_bad_private_keys(secret: str) -> None:
    with pytest.raises(ValueError):
        sign("msg_1", 1, b"{}", [secret])
