"""Creating accounts and keys, listing and revoking keys (lookup.py finds a token's key)."""

from collections.abc import Sequence, Set

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import keys
from app.core.db import utcnow
from app.core.enums import Scope
from app.core.ids import new_id
from app.core.models import Account, ApiKey
from app.errors import Conflict, Forbidden
from app.pagination import PageParams, fetch_page
from app.tenancy import get_owned


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


async def revoke_key(
    session: AsyncSession, account_id: str, key_id: str, revoker_scopes: Set[Scope]
) -> ApiKey:
    """Revokes a key of the account and returns it. A key may revoke only keys whose scopes it holds
    itself (403), and the account's last key holding `keys:manage` stays (409): without
    it no key could ever be minted or revoked through the API again."""
    # The account's row is the lock (PostgreSQL; SQLite's BEGIN IMMEDIATE serializes
    # anyway), so two requests revoking the last two managing keys cannot both pass.
    await session.execute(select(Account.id).where(Account.id == account_id).with_for_update())
    key = await get_owned(
        session, ApiKey, account_id, key_id, "API key", ended=lambda k: k.revoked_at is not None
    )
    beyond = sorted(Scope.known(key.scopes) - revoker_scopes)
    if beyond:
        raise Forbidden(
            f"A key cannot revoke a key holding scopes it does not hold: {', '.join(beyond)}."
        )
    if Scope.KEYS_MANAGE in Scope.known(key.scopes) and not await _another_manager(
        session, account_id, key.id
    ):
        raise Conflict(
            f"API key {key_id} is the account's last key holding `keys:manage`; "
            "mint another such key before revoking it."
        )
    key.revoked_at = utcnow()
    await session.flush()
    return key


async def _another_manager(session: AsyncSession, account_id: str, key_id: str) -> bool:
    live = await session.scalars(
        select(ApiKey.scopes).where(
            ApiKey.account_id == account_id, ApiKey.id != key_id, ApiKey.revoked_at.is_(None)
        )
    )
    return any(Scope.KEYS_MANAGE in Scope.known(scopes) for scopes in live)
