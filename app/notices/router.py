"""The /notices route (docs/api.md#notices)."""

from typing import Annotated

from fastapi import APIRouter

from app.auth.dependencies import Principal, requires
from app.core.enums import Scope
from app.deps import SessionDep
from app.errors import problem_responses
from app.notices import service
from app.notices.schemas import NoticeOut, NoticePage
from app.pagination import PageDep

router = APIRouter(
    prefix="/notices", tags=["notices"], responses=problem_responses(401, 403, 422, 429, 503)
)


@router.get("", response_model=NoticePage, operation_id="listNotices")
async def list_notices(
    principal: Annotated[Principal, requires(Scope.WEBHOOKS_READ)],
    session: SessionDep,
    page: PageDep,
    webhook_id: str | None = None,
) -> NoticePage:
    """What the service noticed about the account's webhooks and operations endpoints
    (turned off, failing, recovered, a delivery exhausted, a test failed), newest first;
    each was also sent to the operations webhooks as an operational event."""
    rows, next_cursor = await service.list_page(
        session, principal.account_id, page, webhook_id=webhook_id
    )
    return NoticePage(data=[NoticeOut.model_validate(row) for row in rows], next_cursor=next_cursor)
