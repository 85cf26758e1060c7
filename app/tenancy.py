"""An account sees only its own objects: any other is a 404, worded exactly as for an
id that does not exist (docs/security.md, API keys and tenants)."""

from collections.abc import Callable
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.text import storable


class Owned(Protocol):
    @property
    def account_id(self) -> str: ...


Row = TypeVar("Row", bound=Owned)


async def get_owned(
    session: AsyncSession,
    model: type[Row],
    account_id: str,
    object_id: str,
    noun: str,
    ended: Callable[[Row], bool] = lambda _: False,
) -> Row:
    """The account's `model` row `object_id`, or a 404 naming the `noun`: for an id that
    cannot be stored, another account's object, or one `ended` (deleted, revoked)."""
    found = await session.get(model, object_id) if storable(object_id) else None
    if found is None or found.account_id != account_id or ended(found):
        raise NotFound(f"No {noun} {object_id}.")
    return found
