"""Cursor pagination: `?limit=` (1–200, default 50) and `?cursor=`.

Ids sort by creation time (app.core.ids), so a list is newest first by `id DESC`, a
page is `id < cursor`, and the cursor is the last id of the previous page, wrapped so
clients treat it as opaque.

A list bounded by a time column (`GET /events?since=`) is ordered by that time and then
the id instead, so that the bound and the order are one index range (an id order would
scan every row before `since`); it may run oldest first. Its cursor carries the last
item's time and the direction as well, and is refused by a list in another order: a
client that drops `since` between pages would otherwise walk back over what it has seen.
"""

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.ids import ID_PATTERN
from app.errors import Unprocessable

T = TypeVar("T")
Row = TypeVar("Row")

# The cursor of an id-ordered newest-first list is the bare id (every cursor given out
# before time-ordered lists existed, still valid); any other joins these parts with "|".
_ASCENDING, _DESCENDING = "asc", "desc"
_SEPARATOR = "|"


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class Position:
    """Where the previous page ended: its last item's id, its time in a list ordered by
    time (None in one ordered by id), and which way that list ran."""

    id: str
    time: datetime | None = None
    ascending: bool = False


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: Position | None


def encode_cursor(position: Position) -> str:
    if position.time is None and not position.ascending:
        text = position.id
    else:
        direction = _ASCENDING if position.ascending else _DESCENDING
        time = "" if position.time is None else position.time.isoformat()
        text = _SEPARATOR.join((direction, time, position.id))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _position(text: str) -> Position | None:
    parts = text.split(_SEPARATOR)
    if len(parts) == 1:
        return Position(text) if ID_PATTERN.fullmatch(text) else None
    if len(parts) != 3 or parts[0] not in (_ASCENDING, _DESCENDING):
        return None
    direction, time_text, last_id = parts
    if not ID_PATTERN.fullmatch(last_id):
        return None
    time = None
    if time_text:
        try:
            time = datetime.fromisoformat(time_text)
            time = time.astimezone(UTC) if time.tzinfo is not None else None
        except (ValueError, OverflowError):  # not a time, or none UTC can hold
            return None
        if time is None:
            return None
    return Position(last_id, time, direction == _ASCENDING)


def _decode_cursor(cursor: str) -> Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        standard = padded.translate(str.maketrans("-_", "+/"))
        text = base64.b64decode(standard.encode("ascii"), validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        text = ""
    position = _position(text)
    if position is None:
        raise Unprocessable(["query", "cursor"], "not a cursor this API gave out")
    return position


async def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, after=_decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]


def _after(
    position: Position,
    id_column: InstrumentedAttribute[str],
    time_column: InstrumentedAttribute[datetime] | None,
    ascending: bool,
) -> ColumnElement[bool]:
    """The rows past `position` in this order, or a 422 for a cursor of another order."""
    if (position.time is None) != (time_column is None) or position.ascending != ascending:
        raise Unprocessable(
            ["query", "cursor"],
            "was given out by a list in another order: repeat the query that gave it out",
        )
    if time_column is None or position.time is None:
        return id_column > position.id if ascending else id_column < position.id
    keys = tuple_(time_column, id_column)
    last = (position.time, position.id)
    return keys > last if ascending else keys < last


async def fetch_page(
    session: AsyncSession,
    statement: Select[Row],
    id_column: InstrumentedAttribute[str],
    params: PageParams,
    *,
    time_column: InstrumentedAttribute[datetime] | None = None,
    ascending: bool = False,
) -> tuple[Sequence[Row], str | None]:
    """One page of `statement`: ordered by `id_column`, or by `time_column` and then
    `id_column`; newest first unless `ascending`."""
    keys = (id_column,) if time_column is None else (time_column, id_column)
    if params.after is not None:
        statement = statement.where(_after(params.after, id_column, time_column, ascending))
    order = [key.asc() if ascending else key.desc() for key in keys]
    rows = (await session.scalars(statement.order_by(*order).limit(params.limit + 1))).all()
    if len(rows) <= params.limit:
        return rows, None
    rows = rows[: params.limit]
    last: Any = rows[-1]
    time = None if time_column is None else getattr(last, time_column.key)
    return rows, encode_cursor(Position(getattr(last, id_column.key), time, ascending))
