"""Standard Webhooks signatures: webhook signing keys and the headers of every notification
(docs/api.md#headers-and-signatures).

Two schemes, told apart by the prefix of the stored secret, as the Standard Webhooks
specification has it (so a secret can never be used with the wrong scheme):

- ``hmac-sha256``: a secret ``whsec_`` + base64 of 32 random bytes, shared with the
  receiver; the HMAC-SHA256 key is those bytes; signatures read ``v1,<base64>``.
- ``ed25519``: a private key ``whsk_`` + base64 of its 32-byte seed, which never leaves
  storehooks, and its public key ``whpk_`` + base64 of its 32 raw bytes, which receivers
  verify with; signatures read ``v1a,<base64 of the 64-byte signature>`` (the encodings of
  the specification's reference libraries).

The signed content is ``{msg_id}.{timestamp}.{body}`` for both. During a rotation (or a
switch of scheme) the header carries one entry per secret, space-separated, and a receiver
accepts the notification if any entry matches its key; entries of a scheme it does not
check are skipped.
"""

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from secrets import token_bytes
from typing import assert_never

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.enums import SignatureScheme

SECRET_PREFIX = "whsec_"
PRIVATE_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"
SECRET_BYTES = 32
ED25519_KEY_BYTES = 32


@dataclass(frozen=True)
class SigningKey:
    """What a webhook signs with (`secret`, stored) and, for ed25519, the public key its
    receivers verify with (null for hmac-sha256, whose secret is the receivers' key)."""

    secret: str
    public_key: str | None


def generate_secret() -> str:
    return SECRET_PREFIX + _b64(token_bytes(SECRET_BYTES))


def generate_signing_key(scheme: SignatureScheme) -> SigningKey:
    """A new key of `scheme`, made here: a private key is never taken from a client."""
    match scheme:
        case SignatureScheme.HMAC_SHA256:
            return SigningKey(secret=generate_secret(), public_key=None)
        case SignatureScheme.ED25519:
            private = Ed25519PrivateKey.generate()
            public = private.public_key().public_bytes_raw()
            return SigningKey(
                secret=PRIVATE_KEY_PREFIX + _b64(private.private_bytes_raw()),
                public_key=PUBLIC_KEY_PREFIX + _b64(public),
            )
        case _:
            assert_never(scheme)


def scheme_of(secret: str) -> SignatureScheme:
    """The scheme a stored secret signs with, read from its prefix."""
    if secret.startswith(SECRET_PREFIX):
        return SignatureScheme.HMAC_SHA256
    if secret.startswith(PRIVATE_KEY_PREFIX):
        return SignatureScheme.ED25519
    raise ValueError("not a webhook signing secret (whsec_… or whsk_…)")


def readable_secret(secret: str) -> str | None:
    """The secret as the API may show it: a shared HMAC secret is the receivers' own key,
    an Ed25519 private key is never shown to anyone (None). Decided by the key itself, so
    that no row whose scheme column disagrees could let a private key out."""
    return secret if scheme_of(secret) is SignatureScheme.HMAC_SHA256 else None


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> str:
    """The ``webhook-signature`` value: one entry per secret, in the order given."""
    # A lone str is a Sequence[str] too, and would be signed one character at a time.
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of secrets, not one string")
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    signed_content = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(_signature(secret, signed_content) for secret in secrets)


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


def _signature(secret: str, signed_content: bytes) -> str:
    scheme = scheme_of(secret)
    match scheme:
        case SignatureScheme.HMAC_SHA256:
            key = _decoded(secret.removeprefix(SECRET_PREFIX))
            digest = hmac.new(key, signed_content, hashlib.sha256).digest()
            return "v1," + _b64(digest)
        case SignatureScheme.ED25519:
            return "v1a," + _b64(_private_key(secret).sign(signed_content))
        case _:
            assert_never(scheme)


# Loading a key derives its public half: 70 µs a signature instead of 36 µs with the key
# kept (HMAC: 2 µs). A worker signs with the same keys over and over; it keeps at most 1,024.
@lru_cache(maxsize=1024)
def _private_key(secret: str) -> Ed25519PrivateKey:
    seed = _decoded(secret.removeprefix(PRIVATE_KEY_PREFIX))
    if len(seed) != ED25519_KEY_BYTES:
        raise ValueError(f"an Ed25519 private key holds {ED25519_KEY_BYTES} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _decoded(text: str) -> bytes:
    # Strict decoding: a mangled secret should fail here, not sign with the wrong key.
    key = base64.b64decode(text, validate=True)
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
