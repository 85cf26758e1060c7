"""API key tokens: `<key id>.<secret>`; only a SHA-256 of the secret is stored.

The secret has 256 bits of entropy, so a fast hash is enough (nothing to
brute-force), and the id in front lets one indexed lookup find the row.
"""

import hashlib
import hmac
import secrets


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def make_token(key_id: str, secret: str) -> str:
    return f"{key_id}.{secret}"


def split_token(token: str) -> tuple[str, str] | None:
    key_id, dot, secret = token.partition(".")
    if not dot or not key_id or not secret or "\x00" in token:  # no stored id holds a NUL
        return None
    return key_id, secret


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
