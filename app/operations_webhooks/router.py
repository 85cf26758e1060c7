"""The /operations-webhooks routes: CRUD, the signing secret and the test ping of an
account's operations endpoints, through the webhooks' own service under the same
webhooks:* scopes. No actions and no recovery: they receive operational events only."""

from typing import Annotated

from fastapi import APIRouter, Response

from app.audit.recorder import AuditDep
from app.auth.dependencies import Principal, requires
from app.core.enums import AuditAction, Scope, WebhookPurpose
from app.deliveries import service as deliveries_service
from app.deliveries.schemas import PingAccepted
from app.deps import SessionDep, SettingsDep, WorkDep
from app.errors import problem_responses
from app.json_body import JsonRoute
from app.operations_webhooks.dependencies import OperationsWebhookDep
from app.operations_webhooks.schemas import OperationsWebhookPage
from app.pagination import PageDep
from app.webhooks import service
from app.webhooks.schemas import Secret, WebhookCreate, WebhookCreated, WebhookOut, WebhookUpdate

OPERATIONS = WebhookPurpose.OPERATIONS
router = APIRouter(
    route_class=JsonRoute,
    prefix="/operations-webhooks",
    tags=["operations-webhooks"],
    responses=problem_responses(401, 403, 422, 429, 503),
)
ONE = problem_responses(404)
LOCATION = {
    "description": "The new operations webhook's path, `/operations-webhooks/{id}`.",
    "required": True,
    "schema": {"type": "string"},
}


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses={201: {"headers": {"Location": LOCATION}}, **problem_responses(413, 422)},
    operation_id="createOperationsWebhook",
)
async def create_operations_webhook(
    body: WebhookCreate,
    principal: Annotated[Principal, requires(Scope.WEBHOOKS_CREATE)],
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    audit: AuditDep,
) -> WebhookCreated:
    """An endpoint for the account's operational events, signed like any webhook."""
    service.check_target(body.url, settings.allow_private_networks)
    webhook = await service.create(session, principal.account_id, body, OPERATIONS)
    created = WebhookOut.model_validate(webhook)
    audit.record(AuditAction.OPERATIONS_WEBHOOK_CREATED, webhook.id, after=created)
    response.headers["Location"] = f"/operations-webhooks/{webhook.id}"
    return WebhookCreated.of(webhook)


@router.get(
    "",
    response_model=OperationsWebhookPage,
    responses=problem_responses(422),
    operation_id="listOperationsWebhooks",
)
async def list_operations_webhooks(
    principal: Annotated[Principal, requires(Scope.WEBHOOKS_READ)],
    session: SessionDep,
    page: PageDep,
) -> OperationsWebhookPage:
    rows, next_cursor = await service.list_page(session, principal.account_id, page, OPERATIONS)
    return OperationsWebhookPage(
        data=[WebhookOut.model_validate(row) for row in rows], next_cursor=next_cursor
    )


@router.get(
    "/{webhook_id}",
    response_model=WebhookOut,
    responses=ONE,
    operation_id="getOperationsWebhook",
)
async def get_operations_webhook(
    _: Annotated[Principal, requires(Scope.WEBHOOKS_READ)], webhook: OperationsWebhookDep
) -> WebhookOut:
    return WebhookOut.model_validate(webhook)


@router.patch(
    "/{webhook_id}",
    response_model=WebhookOut,
    responses=problem_responses(404, 413, 422),
    operation_id="updateOperationsWebhook",
)
async def update_operations_webhook(
    body: WebhookUpdate,
    _: Annotated[Principal, requires(Scope.WEBHOOKS_UPDATE)],
    webhook: OperationsWebhookDep,
    work: WorkDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> WebhookOut:
    if body.url is not None:
        service.check_target(body.url, settings.allow_private_networks)
    before = WebhookOut.model_validate(webhook)
    after = WebhookOut.model_validate(await service.update_fields(work, webhook, body))
    audit.record(AuditAction.OPERATIONS_WEBHOOK_UPDATED, webhook.id, before, after)
    return after


@router.delete(
    "/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses=ONE,
    operation_id="deleteOperationsWebhook",
)
async def delete_operations_webhook(
    _: Annotated[Principal, requires(Scope.WEBHOOKS_DELETE)],
    webhook: OperationsWebhookDep,
    session: SessionDep,
    audit: AuditDep,
) -> None:
    deleted = WebhookOut.model_validate(webhook)
    audit.record(AuditAction.OPERATIONS_WEBHOOK_DELETED, webhook.id, before=deleted)
    await service.soft_delete(session, webhook)


@router.get(
    "/{webhook_id}/secret",
    response_model=Secret,
    responses=ONE,
    operation_id="getOperationsWebhookSecret",
)
async def read_operations_secret(
    _: Annotated[Principal, requires(Scope.WEBHOOKS_UPDATE)], webhook: OperationsWebhookDep
) -> Secret:
    """The shared secret of an `hmac-sha256` endpoint, the public key of an `ed25519` one."""
    return Secret.of(webhook)


@router.post(
    "/{webhook_id}/secret/rotate",
    response_model=Secret,
    responses=problem_responses(404, 413),
    operation_id="rotateOperationsWebhookSecret",
)
async def rotate_operations_secret(
    _: Annotated[Principal, requires(Scope.WEBHOOKS_UPDATE)],
    webhook: OperationsWebhookDep,
    session: SessionDep,
    audit: AuditDep,
) -> Secret:
    """A new key of the endpoint's scheme; the previous one signs beside it for 24 hours."""
    before = WebhookOut.model_validate(webhook)
    await service.rotate_secret(session, webhook)
    after = WebhookOut.model_validate(webhook)
    audit.record(AuditAction.OPERATIONS_WEBHOOK_SECRET_ROTATED, webhook.id, before, after)
    return Secret.of(webhook)


@router.post(
    "/{webhook_id}/test",
    status_code=202,
    response_model=PingAccepted,
    responses=problem_responses(404, 409, 413),
    operation_id="testOperationsWebhook",
)
async def test_operations_webhook(
    _: Annotated[Principal, requires(Scope.WEBHOOKS_TEST)],
    webhook: OperationsWebhookDep,
    work: WorkDep,
    audit: AuditDep,
) -> PingAccepted:
    """A ping, as for a webhook: one attempt; a failure switches the endpoint off
    (`test_failed`) and leaves a notice."""
    delivery = await deliveries_service.create_test(work, webhook)
    ping = {"delivery_id": delivery.id}
    audit.record(AuditAction.OPERATIONS_WEBHOOK_TESTED, webhook.id, after=ping)
    return PingAccepted(delivery_id=delivery.id)
