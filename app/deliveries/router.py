"""The /deliveries routes."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.audit.recorder import AuditDep
from app.auth.dependencies import Principal, requires
from app.core.enums import AuditAction, DeliveryStatus, ErrorClass, Scope
from app.deliveries import service
from app.deliveries.schemas import (
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    RetryAccepted,
)
from app.deps import SessionDep, SettingsDep, WorkDep
from app.errors import problem_responses
from app.pagination import PageDep

router = APIRouter(
    prefix="/deliveries", tags=["deliveries"], responses=problem_responses(401, 403, 422, 429, 503)
)
Read = Annotated[Principal, requires(Scope.DELIVERIES_READ)]


@router.get(
    "",
    response_model=DeliveryPage,
    responses=problem_responses(422),
    operation_id="listDeliveries",
)
async def list_deliveries(
    principal: Read,
    session: SessionDep,
    page: PageDep,
    webhook_id: str | None = None,
    event_id: str | None = None,
    status: DeliveryStatus | None = None,
    error_class: Annotated[
        ErrorClass | None,
        Query(description="Only deliveries whose last attempt failed with this error class."),
    ] = None,
) -> DeliveryPage:
    rows, next_cursor = await service.list_page(
        session,
        principal.account_id,
        page,
        webhook_id=webhook_id,
        event_id=event_id,
        status=status,
        error_class=error_class,
    )
    return DeliveryPage(
        data=[DeliveryOut.model_validate(row) for row in rows], next_cursor=next_cursor
    )


@router.get(
    "/{delivery_id}",
    response_model=DeliveryDetail,
    responses=problem_responses(404),
    operation_id="getDelivery",
)
async def get_delivery(delivery_id: str, principal: Read, session: SessionDep) -> DeliveryDetail:
    delivery = await service.get(session, principal.account_id, delivery_id)
    attempts = await service.attempts(session, delivery)
    return DeliveryDetail.model_validate(
        {
            **DeliveryOut.model_validate(delivery).model_dump(),
            "attempts": [AttemptOut.model_validate(attempt) for attempt in attempts],
            "waiting_for": await service.waiting_for(session, delivery),
        }
    )


@router.post(
    "/{delivery_id}/retry",
    status_code=202,
    response_model=RetryAccepted,
    responses=problem_responses(404, 409, 413),
    operation_id="retryDelivery",
)
async def retry_delivery(
    delivery_id: str,
    principal: Annotated[Principal, requires(Scope.DELIVERIES_RETRY)],
    work: WorkDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> RetryAccepted:
    delivery = await service.get(work.transaction, principal.account_id, delivery_id)
    before = DeliveryOut.model_validate(delivery)
    await service.retry(work, delivery, settings.max_attempts)
    audit.record(
        AuditAction.DELIVERY_RETRIED, delivery.id, before, DeliveryOut.model_validate(delivery)
    )
    return RetryAccepted(delivery_id=delivery.id)
