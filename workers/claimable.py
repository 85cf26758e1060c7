"""What a claim reads: deliveries that may be sent, with their webhook and event, locked,
as typed rows (`Claimable`). The statements are built once, with bound parameters:
SQLAlchemy then reuses both the statement's cache key and its compiled form (building
them anew for every batch was a fifth of the worker's CPU)."""

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, bindparam, select, union_all

from app.core.db import Connection
from app.core.enums import (
    DeliveryKind,
    DeliveryStatus,
    DisabledReason,
    ErrorClass,
    EventType,
    HttpMethod,
    NoticeKind,
    PayloadType,
    SuccessStatuses,
)
from app.core.tables import deliveries, events, notices, webhooks
from workers import payloads

# A job that comes a little before its time (clock skew, arq's poll) still runs.
EARLY_TOLERANCE = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Claimable:
    """One delivery a claim may take, as read (and locked) by `_claimable`: the fields
    are its columns, in its order."""

    id: str
    status: DeliveryStatus
    kind: DeliveryKind
    attempt_count: int
    attempt_limit: int
    next_attempt_at: datetime | None
    created_at: datetime
    event_id: str | None
    webhook_id: str
    active: bool
    deleted_at: datetime | None
    url: str
    http_method: HttpMethod
    payload_type: PayloadType
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    success_statuses: SuccessStatuses
    ordered: bool
    max_in_flight: int
    ordering_key: str | None
    ordered_at: datetime | None
    event_type: EventType | None  # the event's columns: None for a test ping
    occurred_at: datetime | None
    app_id: str | None
    sku_id: str | None
    data: dict[str, Any] | None
    traceparent: str | None
    notice_id: str | None  # the notice's columns: None unless an operational delivery
    notice_kind: NoticeKind | None
    notice_webhook_id: str | None
    notice_reason: DisabledReason | None
    notice_percent: int | None
    notice_delivery_id: str | None
    notice_error_class: ErrorClass | None
    notice_created_at: datetime | None

    def is_due(self, now: datetime) -> bool:
        if self.status != DeliveryStatus.PENDING:
            return False
        # Not due yet: its own deferred job, or the sweeper, will come.
        return self.next_attempt_at is None or self.next_attempt_at <= now + EARLY_TOLERANCE

    def payload(self) -> dict[str, Any]:
        if self.kind == DeliveryKind.OPERATIONAL:
            return self._operational_payload()
        if (
            self.event_id is None
            or self.event_type is None
            or self.occurred_at is None
            or self.app_id is None
            or self.data is None
        ):  # a test ping: no event
            return payloads.ping_payload(int(self.created_at.timestamp()))
        return payloads.event_payload(
            event_id=self.event_id,
            event_type=self.event_type.value,
            occurred_at=self.occurred_at,
            app_id=self.app_id,
            sku_id=self.sku_id,
            data=self.data,
        )

    def _operational_payload(self) -> dict[str, Any]:
        if (
            self.notice_id is None
            or self.notice_kind is None
            or self.notice_webhook_id is None
            or self.notice_created_at is None
        ):
            raise ValueError(f"operational delivery {self.id} names no notice")
        facts = {
            "reason": self.notice_reason,
            "percent": self.notice_percent,
            "delivery_id": self.notice_delivery_id,
            "error_class": self.notice_error_class,
        }
        return payloads.operational_payload(
            event_type=self.notice_kind.event_type.value,
            notice_id=self.notice_id,
            webhook_id=self.notice_webhook_id,
            noticed_at=self.notice_created_at,
            # Only the facts of its kind: each kind always has the same ones.
            facts={key: value for key, value in facts.items() if value is not None},
        )

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, and the previous one while its rotation window lasts."""
        secrets = [self.secret]
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and expires > now:
            secrets.append(self.previous_secret)
        return secrets


def _claimable(which: ColumnElement[bool]) -> Select[Any]:
    """The rows a claim reads, of the deliveries `which` picks, locked."""
    return (
        select(
            deliveries.c.id,
            deliveries.c.status,
            deliveries.c.kind,
            deliveries.c.attempt_count,
            deliveries.c.attempt_limit,
            deliveries.c.next_attempt_at,
            deliveries.c.created_at,
            deliveries.c.event_id,
            webhooks.c.id.label("webhook_id"),
            webhooks.c.active,
            webhooks.c.deleted_at,
            webhooks.c.url,
            webhooks.c.http_method,
            webhooks.c.payload_type,
            webhooks.c.secret,
            webhooks.c.previous_secret,
            webhooks.c.previous_secret_expires_at,
            webhooks.c.success_statuses,
            webhooks.c.ordered,
            webhooks.c.max_in_flight,
            deliveries.c.ordering_key,
            deliveries.c.ordered_at,
            events.c.type.label("event_type"),
            events.c.occurred_at,
            events.c.app_id,
            events.c.sku_id,
            events.c.data,
            events.c.traceparent,
            deliveries.c.notice_id,
            notices.c.kind.label("notice_kind"),
            notices.c.webhook_id.label("notice_webhook_id"),
            notices.c.reason.label("notice_reason"),
            notices.c.percent.label("notice_percent"),
            notices.c.delivery_id.label("notice_delivery_id"),
            notices.c.error_class.label("notice_error_class"),
            notices.c.created_at.label("notice_created_at"),
        )
        .join_from(deliveries, webhooks, webhooks.c.id == deliveries.c.webhook_id)
        .outerjoin(events, events.c.id == deliveries.c.event_id)
        .outerjoin(notices, notices.c.id == deliveries.c.notice_id)
        .where(which)
        .order_by(deliveries.c.id)
        # PostgreSQL: a row another worker is claiming or recording is left to it.
        .with_for_update(of=deliveries, skip_locked=True)
    )


CLAIMABLE_BY_ID = _claimable(deliveries.c.id.in_(bindparam("ids", expanding=True)))


@functools.cache
def _claimable_next_due(webhook_count: int) -> Select[Any]:
    """The oldest due deliveries of `webhook_count` webhooks, as many of each as it has
    free slots (`w0`, `n0`, `w1`, `n1`, …; `now`): a union of one indexed, limited select
    per webhook."""
    selects = [
        select(deliveries.c.id)
        .where(
            deliveries.c.webhook_id == bindparam(f"w{index}"),
            deliveries.c.status == DeliveryStatus.PENDING,
            deliveries.c.next_attempt_at <= bindparam("now"),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(bindparam(f"n{index}", type_=Integer))
        .subquery()
        .select()
        for index in range(webhook_count)
    ]
    among = selects[0] if webhook_count == 1 else union_all(*selects)
    return _claimable(deliveries.c.id.in_(among))


async def lock_claimable(connection: Connection, delivery_ids: list[str]) -> list[Claimable]:
    rows = await connection.execute(CLAIMABLE_BY_ID, {"ids": delivery_ids})
    return [Claimable(*row) for row in rows]


async def lock_next_due(
    connection: Connection, free: dict[str, int], now: datetime
) -> list[Claimable]:
    """The oldest due deliveries of each webhook in `free`, up to its free slots."""
    parameters: dict[str, Any] = {"now": now}
    for index, (webhook_id, slots) in enumerate(sorted(free.items())):
        parameters[f"w{index}"] = webhook_id
        parameters[f"n{index}"] = slots
    rows = await connection.execute(_claimable_next_due(len(free)), parameters)
    return [Claimable(*row) for row in rows]
