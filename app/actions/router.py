"""The action routes: under a webhook, and the account-wide search."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.actions import service
from app.actions.schemas import ActionCreate, ActionOut, ActionPage
from app.audit.recorder import AuditDep
from app.auth.dependencies import Principal, requires
from app.core.enums import AuditAction, EventType, Scope
from app.deps import SessionDep
from app.errors import problem_responses
from app.json_body import JsonRoute
from app.pagination import PageDep
from app.webhooks.dependencies import WebhookDep

router = APIRouter(
    route_class=JsonRoute, tags=["actions"], responses=problem_responses(401, 403, 422, 429, 503)
)
Write = Annotated[Principal, requires(Scope.ACTIONS_WRITE)]
Read = Annotated[Principal, requires(Scope.ACTIONS_READ)]


@router.post(
    "/webhooks/{webhook_id}/actions",
    status_code=201,
    response_model=ActionOut,
    responses=problem_responses(404, 409, 413, 422),
    operation_id="createAction",
)
async def create_action(
    body: ActionCreate, _: Write, webhook: WebhookDep, session: SessionDep, audit: AuditDep
) -> ActionOut:
    created = ActionOut.model_validate(await service.create(session, webhook, body))
    audit.record(AuditAction.WEBHOOK_ACTION_ADDED, webhook.id, after={"action": binding(created)})
    return created


@router.get(
    "/webhooks/{webhook_id}/actions",
    response_model=ActionPage,
    responses=problem_responses(404, 422),
    operation_id="listWebhookActions",
)
async def list_webhook_actions(
    _: Read, webhook: WebhookDep, session: SessionDep, page: PageDep
) -> ActionPage:
    rows, next_cursor = await service.list_for_webhook(session, webhook, page)
    return ActionPage(data=[ActionOut.model_validate(row) for row in rows], next_cursor=next_cursor)


@router.get(
    "/actions",
    response_model=ActionPage,
    responses=problem_responses(422),
    operation_id="searchActions",
)
async def search_actions(
    principal: Read,
    session: SessionDep,
    page: PageDep,
    app_id: Annotated[str | None, Query(max_length=200)] = None,
    sku_id: Annotated[str | None, Query(max_length=200)] = None,
    event_type: EventType | None = None,
) -> ActionPage:
    rows, next_cursor = await service.search(
        session, principal.account_id, page, app_id=app_id, sku_id=sku_id, event_type=event_type
    )
    return ActionPage(data=[ActionOut.model_validate(row) for row in rows], next_cursor=next_cursor)


@router.delete(
    "/webhooks/{webhook_id}/actions/{action_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(404),
    operation_id="deleteAction",
)
async def delete_action(
    action_id: str, _: Write, webhook: WebhookDep, session: SessionDep, audit: AuditDep
) -> None:
    removed = ActionOut.model_validate(await service.remove(session, webhook, action_id))
    audit.record(
        AuditAction.WEBHOOK_ACTION_REMOVED, webhook.id, before={"action": binding(removed)}
    )


def binding(action: ActionOut) -> dict[str, Any]:
    """An action as its webhook's audit entry shows it: its id and what it matches."""
    return action.model_dump(mode="json", exclude={"webhook_id", "created_at"}, exclude_none=True)
