"""Standard Webhooks signatures: webhook secrets and the headers of every notification
(docs/api.md#headers-and-signatures).

A secret is ``whsec_`` followed by the base64 of 32 random bytes; the HMAC key is those bytes.
The signed content is ``{msg_id}.{timestamp}.{body}``; during a rotation the signature header
carries one ``v1,<base64>`` entry per secret, space-separated, and a receiver accepts the
notification if any of them matches its secret.
"""

import base64
import hashlib
import hmac
from collections.abc import Sequence
from secrets import token_bytes

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode("ascii")


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> str:
    """The ``webhook-signature`` value: one ``v1,<sig>`` per secret, in the order given."""
    # A lone str is a Sequence[str] too, and would be signed one character at a time.
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of secrets, not one string")
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    signed_content = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(_signature(_secret_key(secret), signed_content) for secret in secrets)


def notification_headers(
    *,
    delivery_id: str,
    timestamp: int,
    body: bytes,
    content_type: str,
    secrets: Sequence[str],
    user_agent: str,
) -> dict[str, str]:
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(delivery_id, timestamp, body, secrets),
        "content-type": content_type,
        "user-agent": user_agent,
    }


def _secret_key(secret: str) -> bytes:
    # Strict decoding: a mangled secret should fail here, not sign with the wrong key.
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def _signature(key: bytes, signed_content: bytes) -> str:
    digest = hmac.new(key, signed_content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")
