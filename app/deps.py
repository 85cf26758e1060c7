"""Request-scoped dependencies: the session that owns the request's transaction.

Every dependency is `async def`: FastAPI runs a plain `def` one in a thread pool,
which costs more than the work of any of these."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app import resources
from app.core import queue
from app.core.db import one_snapshot, session_scope
from app.core.settings import Settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    state = resources.of(request.app)
    async with session_scope(state.sessionmaker) as session:
        if request.method == "GET":  # a page read in several statements shows one moment
            await one_snapshot(session)
        try:
            yield session
        except BaseException:
            queue.discard_pending(session)
            raise
    # Reached only after the commit: jobs never point at rows that were rolled back.
    await queue.flush_pending(session, state.redis)


# scope="function": the commit happens before the response is sent, so a 2xx
# always means the rows are durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_settings(request: Request) -> Settings:
    return resources.of(request.app).settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
