"""Request-scoped dependencies: the unit of work that owns the request's transaction.

Every dependency is `async def`: FastAPI runs a plain `def` one in a thread pool,
which costs more than the work of any of these."""

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app import resources
from app.core.db import one_snapshot, session_scope
from app.core.settings import Settings
from app.core.unit_of_work import UnitOfWork, unit_of_work


async def get_work(request: Request) -> AsyncIterator[UnitOfWork[AsyncSession]]:
    state = resources.of(request.app)
    begin = partial(session_scope, state.sessionmaker)
    async with unit_of_work(begin, state.redis) as work:
        if request.method == "GET":  # a page read in several statements shows one moment
            await one_snapshot(work.transaction)
        yield work


# scope="function": the commit (and the enqueue after it) happens before the response is
# sent, so a 2xx always means the rows are durable.
WorkDep = Annotated[UnitOfWork[AsyncSession], Depends(get_work, scope="function")]


async def get_session(work: WorkDep) -> AsyncSession:
    """The unit of work's session, for routes that queue nothing."""
    return work.transaction


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_settings(request: Request) -> Settings:
    return resources.of(request.app).settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
