"""Cursor pagination, newest first: `?limit=` (1–200, default 50) and `?cursor=`.

Ids sort by creation time (app.core.ids), so a page is `id < cursor ORDER BY id DESC`
and the cursor is the last id of the previous page, wrapped so clients treat it
as opaque.
"""

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.ids import ID_PATTERN
from app.errors import Unprocessable

T = TypeVar("T")
Row = TypeVar("Row")


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class PageParams:
    limit: int
    after_id: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        standard = padded.translate(str.maketrans("-_", "+/"))
        last_id = base64.b64decode(standard.encode("ascii"), validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        last_id = ""
    if not ID_PATTERN.fullmatch(last_id):
        raise Unprocessable(["query", "cursor"], "not a cursor this API gave out")
    return last_id


async def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, after_id=_decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]


async def fetch_page(
    session: AsyncSession,
    statement: Select[Row],
    id_column: InstrumentedAttribute[str],
    params: PageParams,
) -> tuple[Sequence[Row], str | None]:
    if params.after_id is not None:
        statement = statement.where(id_column < params.after_id)
    rows = (
        await session.scalars(statement.order_by(id_column.desc()).limit(params.limit + 1))
    ).all()
    if len(rows) <= params.limit:
        return rows, None
    rows = rows[: params.limit]
    last: Any = rows[-1]
    return rows, encode_cursor(last.id)
