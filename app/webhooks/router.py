"""The /webhooks routes: CRUD and the signing secret."""

from typing import Annotated

from fastapi import APIRouter, Response

from app.audit.recorder import AuditDep
from app.auth.dependencies import Principal, requires
from app.core.enums import AuditAction, Scope
from app.deliveries import service as deliveries_service
from app.deliveries.schemas import PingAccepted, Recovered, RecoverWindow
from app.deps import SessionDep, SettingsDep, WorkDep
from app.errors import problem_responses
from app.json_body import JsonRoute
from app.pagination import PageDep
from app.webhooks import service
from app.webhooks.dependencies import WebhookDep
from app.webhooks.schemas import (
    Secret,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookPage,
    WebhookUpdate,
)

router = APIRouter(
    route_class=JsonRoute,
    prefix="/webhooks",
    tags=["webhooks"],
    responses=problem_responses(401, 403, 422, 429, 503),
)
ONE = problem_responses(404)
LOCATION = {
    "description": "The new webhook's path, `/webhooks/{id}`.",
    "required": True,
    "schema": {"type": "string"},
}


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses={
        201: {"headers": {"Location": LOCATION}},
        **problem_responses(413, 422),
    },
    operation_id="createWebhook",
)
async def create_webhook(
    body: WebhookCreate,
    principal: Annotated[Principal, requires(Scope.WEBHOOKS_CREATE)],
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    audit: AuditDep,
) -> WebhookCreated:
    service.check_target(body.url, settings.allow_private_networks)
    webhook = await service.create(session, principal.account_id, body)
    audit.record(AuditAction.WEBHOOK_CREATED, webhook.id, after=WebhookOut.model_validate(webhook))
    response.headers["Location"] = f"/webhooks/{webhook.id}"
    return WebhookCreated.of(webhook)


@router.get(
    "",
    response_model=WebhookPage,
    responses=problem_responses(422),
    operation_id="listWebhooks",
)
async def list_webhooks(
    principal: Annotated[Principal, requires(Scope.WEBHOOKS_READ)],
    session: SessionDep,
    page: PageDep,
) -> WebhookPage:
    rows, next_cursor = await service.list_page(session, principal.account_id, page)
    return WebhookPage(
        data=[WebhookOut.model_validate(row) for row in rows], next_cursor=next_cursor
    )


@router.get("/{webhook_id}", response_model=WebhookOut, responses=ONE, operation_id="getWebhook")
async def get_webhook(
    _: Annotated[Principal, requires(Scope.WEBHOOKS_READ)], webhook: WebhookDep
) -> WebhookOut:
    return WebhookOut.model_validate(webhook)


@router.patch(
    "/{webhook_id}",
    response_model=WebhookOut,
    responses=problem_responses(404, 413, 422),
    operation_id="updateWebhook",
)
async def update_webhook(
    body: WebhookUpdate,
    _: Annotated[Principal, requires(Scope.WEBHOOKS_UPDATE)],
    webhook: WebhookDep,
    work: WorkDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> WebhookOut:
    if body.url is not None:
        service.check_target(body.url, settings.allow_private_networks)
    before = WebhookOut.model_validate(webhook)
    after = WebhookOut.model_validate(await service.update_fields(work, webhook, body))
    audit.record(AuditAction.WEBHOOK_UPDATED, webhook.id, before, after)
    return after


@router.delete(
    "/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses=ONE,
    operation_id="deleteWebhook",
)
async def delete_webhook(
    _: Annotated[Principal, requires(Scope.WEBHOOKS_DELETE)],
    webhook: WebhookDep,
    session: SessionDep,
    audit: AuditDep,
) -> None:
    audit.record(AuditAction.WEBHOOK_DELETED, webhook.id, before=WebhookOut.model_validate(webhook))
    await service.soft_delete(session, webhook)


@router.get(
    "/{webhook_id}/secret", response_model=Secret, responses=ONE, operation_id="getWebhookSecret"
)
async def read_secret(
    _: Annotated[Principal, requires(Scope.WEBHOOKS_UPDATE)], webhook: WebhookDep
) -> Secret:
    """The shared secret of an `hmac-sha256` webhook, the public key of an `ed25519` one."""
    return Secret.of(webhook)


# Every POST may answer 413: BodyLimitMiddleware reads a body even where none is expected.
@router.post(
    "/{webhook_id}/secret/rotate",
    response_model=Secret,
    responses=problem_responses(404, 413),
    operation_id="rotateWebhookSecret",
)
async def rotate_secret(
    _: Annotated[Principal, requires(Scope.WEBHOOKS_UPDATE)],
    webhook: WebhookDep,
    session: SessionDep,
    audit: AuditDep,
) -> Secret:
    """A new key of the webhook's scheme; the previous one signs beside it for 24 hours."""
    before = WebhookOut.model_validate(webhook)
    await service.rotate_secret(session, webhook)
    audit.record(
        AuditAction.WEBHOOK_SECRET_ROTATED, webhook.id, before, WebhookOut.model_validate(webhook)
    )
    return Secret.of(webhook)


@router.post(
    "/{webhook_id}/test",
    status_code=202,
    response_model=PingAccepted,
    responses=problem_responses(404, 409, 413),
    operation_id="testWebhook",
)
async def test_webhook(
    _: Annotated[Principal, requires(Scope.WEBHOOKS_TEST)],
    webhook: WebhookDep,
    work: WorkDep,
    audit: AuditDep,
) -> PingAccepted:
    delivery = await deliveries_service.create_test(work, webhook)
    audit.record(AuditAction.WEBHOOK_TESTED, webhook.id, after={"delivery_id": delivery.id})
    return PingAccepted(delivery_id=delivery.id)


@router.post(
    "/{webhook_id}/recover",
    status_code=202,
    response_model=Recovered,
    responses=problem_responses(404, 409, 413),
    operation_id="recoverDeliveries",
)
async def recover_deliveries(
    body: RecoverWindow,
    _: Annotated[Principal, requires(Scope.DELIVERIES_RETRY)],
    webhook: WebhookDep,
    work: WorkDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> Recovered:
    """Every failed delivery of the webhook created in [since, until) (at most 14 days;
    until defaults to now) goes back to pending with a fresh attempt budget, oldest
    first, at most 10,000 a call."""
    count = await deliveries_service.recover(
        work, webhook, body.since, body.until, settings.max_attempts
    )
    window = body.model_dump(mode="json")
    audit.record(AuditAction.WEBHOOK_RECOVERED, webhook.id, after={**window, "deliveries": count})
    return Recovered(deliveries=count)
