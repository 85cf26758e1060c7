"""The /audit-events route (docs/api.md#audit-log)."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.audit import service
from app.audit.schemas import AuditEvent, AuditEventPage
from app.auth.dependencies import Principal, requires
from app.core.enums import Scope
from app.deps import SessionDep
from app.errors import problem_responses
from app.pagination import PageDep

router = APIRouter(
    prefix="/audit-events", tags=["audit"], responses=problem_responses(401, 403, 422, 429, 503)
)
TargetFilter = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Only changes to this object: a webhook's, operations webhook's, "
        "action's, API key's or delivery's id.",
    ),
]
ActorFilter = Annotated[
    str | None,
    Query(
        max_length=255,
        description="Only changes made by this actor: an API key's id or a person's subject.",
    ),
]


@router.get("", response_model=AuditEventPage, operation_id="listAuditEvents")
async def list_audit_events(
    principal: Annotated[Principal, requires(Scope.AUDIT_READ)],
    session: SessionDep,
    page: PageDep,
    target_id: TargetFilter = None,
    actor: ActorFilter = None,
) -> AuditEventPage:
    """Who changed what in the account, when, and the fields before and after, newest
    first."""
    rows, next_cursor = await service.list_page(
        session, principal.account_id, page, target_id=target_id, actor=actor
    )
    return AuditEventPage(
        data=[AuditEvent.model_validate(row) for row in rows], next_cursor=next_cursor
    )
