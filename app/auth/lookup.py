"""Finds the API key a request presents, batched: requests that arrive together share
one SELECT instead of opening a transaction each (and, on SQLite, taking the write
lock each). Nothing is cached: a revoked key fails on its very next request."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import keys
from app.core.coalescer import Coalescer
from app.core.tables import api_keys


@dataclass(frozen=True)
class ActiveKey:
    id: str
    account_id: str
    name: str
    scopes: list[str]


class KeyLookup:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._coalescer = Coalescer(self._find_batch)

    async def find(self, token: str) -> ActiveKey | None:
        """The unrevoked key whose id and secret the token carries, if there is one."""
        parts = keys.split_token(token)
        if parts is None:
            return None
        return await self._coalescer.submit(parts)

    async def _find_batch(self, tokens: Sequence[tuple[str, str]]) -> list[ActiveKey | None]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(
                    api_keys.c.id,
                    api_keys.c.account_id,
                    api_keys.c.name,
                    api_keys.c.scopes,
                    api_keys.c.secret_hash,
                )
                .where(api_keys.c.id.in_(sorted({key_id for key_id, _ in tokens})))
                .where(api_keys.c.revoked_at.is_(None))
            )
            found = {row.id: row for row in rows}
        matches: list[ActiveKey | None] = []
        for key_id, secret in tokens:
            row = found.get(key_id)
            if row is None or not keys.secret_matches(secret, row.secret_hash):
                matches.append(None)
            else:
                matches.append(ActiveKey(row.id, row.account_id, row.name, row.scopes))
        return matches
