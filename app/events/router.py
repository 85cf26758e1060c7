"""POST /events from the store backend, and the event reads."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app import resources
from app.auth.dependencies import Principal, requires
from app.core.enums import DeliveryStatus, EventType, Scope
from app.core.metrics import DELIVERIES_CREATED, EVENTS_ACCEPTED
from app.deps import SessionDep
from app.errors import problem_responses
from app.events import service
from app.events.idempotency import IdempotencyKeyDep
from app.events.schemas import EventAccepted, EventCreate, EventOut, EventPage
from app.events.trace_context import TraceParentDep
from app.events.writer import Submission
from app.json_body import JsonRoute
from app.pagination import PageDep
from app.times import UtcDatetime

router = APIRouter(
    route_class=JsonRoute,
    prefix="/events",
    tags=["events"],
    responses=problem_responses(401, 403, 422, 429, 503),
)
Read = Annotated[Principal, requires(Scope.EVENTS_READ)]
REPLAYED = {
    "description": "`true` when this answers a repeated Idempotency-Key: the answer of the "
    "first request, and nothing created. Absent otherwise.",
    "required": False,
    "schema": {"type": "string", "enum": ["true"]},
}


@router.post(
    "",
    status_code=202,
    response_model=EventAccepted,
    responses={202: {"headers": {"Idempotent-Replayed": REPLAYED}}, **problem_responses(413, 422)},
    operation_id="createEvent",
)
async def post_event(
    body: EventCreate,
    principal: Annotated[Principal, requires(Scope.EVENTS_WRITE)],
    idempotency_key: IdempotencyKeyDep,
    traceparent: TraceParentDep,
    request: Request,
    response: Response,
) -> EventAccepted:
    writer = resources.of(request.app).event_writer
    submission = Submission(principal.account_id, body, idempotency_key, traceparent)
    accepted = await writer.accept(submission)
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        EVENTS_ACCEPTED.labels(accepted.event_type.value).inc()
        DELIVERIES_CREATED.inc(accepted.deliveries)
    return EventAccepted(id=accepted.event_id, deliveries=accepted.deliveries)


@router.get(
    "/{event_id}",
    response_model=EventOut,
    responses=problem_responses(404),
    operation_id="getEvent",
)
async def get_event(event_id: str, principal: Read, session: SessionDep) -> EventOut:
    return EventOut.model_validate(await service.get(session, principal.account_id, event_id))


DeliveryStatusFilter = Annotated[
    DeliveryStatus | None,
    Query(
        description="Only events with at least one delivery in this state (to `webhook_id`, "
        "when given), each event once. `failed`: its attempts ran out; `cancelled`: its "
        "webhook was switched off before it was sent; both were missed by the receiver.",
    ),
]
WebhookFilter = Annotated[
    str | None,
    Query(
        description="Only events with a delivery to this webhook (in `delivery_status`, "
        "when given)."
    ),
]
Since = Annotated[
    UtcDatetime | None,
    Query(
        description="Only events received at or after this time (`created_at >= since`; RFC "
        "3339 with an offset, `+` written `%2B`). The list then runs oldest first.",
    ),
]
Until = Annotated[
    UtcDatetime | None,
    Query(
        description="Only events received before this time (`created_at < until`; RFC 3339 "
        "with an offset); later than `since`.",
    ),
]


@router.get(
    "", response_model=EventPage, responses=problem_responses(422), operation_id="listEvents"
)
async def list_events(
    principal: Read,
    session: SessionDep,
    page: PageDep,
    type: EventType | None = None,
    app_id: str | None = None,
    delivery_status: DeliveryStatusFilter = None,
    webhook_id: WebhookFilter = None,
    since: Since = None,
    until: Until = None,
) -> EventPage:
    """The account's events, newest first; with `since`, oldest first, so that a receiver
    that was down can walk forward through what it missed (`delivery_status=failed`),
    then have it sent again with `POST /webhooks/{webhook_id}/recover`."""
    filters = service.EventFilters(
        event_type=type,
        app_id=app_id,
        delivery_status=delivery_status,
        webhook_id=webhook_id,
        since=since,
        until=until,
    )
    rows, next_cursor = await service.list_page(session, principal.account_id, page, filters)
    return EventPage(data=[EventOut.model_validate(row) for row in rows], next_cursor=next_cursor)
