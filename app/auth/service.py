"""Creating accounts and keys, listing and revoking keys (lookup.py finds a token's key)."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import keys
from app.db import utcnow
from app.enums import Scope
from app.errors import NotFound
from app.ids import new_id
from app.models import Account, ApiKey
from app.pagination import PageParams, fetch_page
from app.text import storable


async def create_account(session: AsyncSession, name: str) -> tuple[Account, ApiKey, str]:
    account = Account(id=new_id("acc"), name=name)
    session.add(account)
    await session.flush()
    key, token = await create_key(session, account.id, "owner", list(Scope))
    return account, key, token


async def create_key(
    session: AsyncSession, account_id: str, name: str, scopes: Sequence[Scope]
) -> tuple[ApiKey, str]:
    secret = keys.new_secret()
    key = ApiKey(
        id=new_id("key"),
        account_id=account_id,
        name=name,
        scopes=[scope.value for scope in dict.fromkeys(scopes)],
        secret_hash=keys.hash_secret(secret),
        created_at=utcnow(),
    )
    session.add(key)
    await session.flush()
    return key, keys.make_token(key.id, secret)


async def list_keys(
    session: AsyncSession, account_id: str, params: PageParams
) -> tuple[Sequence[ApiKey], str | None]:
    statement = select(ApiKey).where(ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
    return await fetch_page(session, statement, ApiKey.id, params)


async def revoke_key(session: AsyncSession, account_id: str, key_id: str) -> None:
    key = await session.get(ApiKey, key_id) if storable(key_id) else None
    if key is None or key.account_id != account_id or key.revoked_at is not None:
        raise NotFound(f"No API key {key_id}.")
    key.revoked_at = utcnow()
    await session.flush()
