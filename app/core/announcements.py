"""Notices, and the operational events they become (docs/api.md#operations-webhooks).

Whatever the service notices about a webhook (turned off, failing, recovered, a
delivery's attempts used up, a failed test) is recorded as a notice and, in the same
transaction, becomes one delivery of kind `operational` to each active operations
endpoint of the account. Those deliveries are sent by the same worker, claim, retries
and signatures as any event's, and queued after the commit by the caller's unit of work.

No loops: a notice about an operations endpoint is recorded (its state shows in
`GET /notices`) but sent nowhere, so an operations endpoint's own failures can never
make operational deliveries that fail in their turn.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, select

from app.core import queue
from app.core.db import Connection
from app.core.enums import (
    DeliveryKind,
    DeliveryStatus,
    DisabledReason,
    ErrorClass,
    NoticeKind,
    WebhookPurpose,
)
from app.core.ids import new_id
from app.core.metrics import NOTICES
from app.core.tables import deliveries, notices, webhooks


@dataclass
class Announcer:
    """The notices of one transaction, and the operational deliveries they made, which
    the caller queues after its commit (`attempts`)."""

    connection: Connection
    now: datetime
    # Each operational delivery's budget: STOREHOOKS_MAX_ATTEMPTS, as for an event's.
    attempt_limit: int
    attempts: list[queue.Attempt] = field(default_factory=list)
    kinds: list[NoticeKind] = field(default_factory=list)

    async def announce(
        self,
        kind: NoticeKind,
        webhook_id: str,
        *,
        reason: DisabledReason | None = None,
        percent: int | None = None,
        delivery_id: str | None = None,
        error_class: ErrorClass | None = None,
    ) -> None:
        """Records a notice about `webhook_id` and, unless that webhook is an operations
        endpoint, one operational delivery of it to each of the account's active ones."""
        subject = (
            await self.connection.execute(
                select(webhooks.c.account_id, webhooks.c.purpose).where(webhooks.c.id == webhook_id)
            )
        ).one()
        notice_id = new_id("ntc")
        await self.connection.execute(
            insert(notices).values(
                id=notice_id,
                account_id=subject.account_id,
                webhook_id=webhook_id,
                kind=kind,
                reason=reason,
                percent=percent,
                delivery_id=delivery_id,
                error_class=error_class,
                created_at=self.now,
            )
        )
        self.kinds.append(kind)
        if subject.purpose is WebhookPurpose.OPERATIONS:
            return
        await self._send(subject.account_id, notice_id)

    async def _send(self, account_id: str, notice_id: str) -> None:
        endpoints = (
            await self.connection.execute(
                select(webhooks.c.id)
                .where(
                    webhooks.c.account_id == account_id,
                    webhooks.c.purpose == WebhookPurpose.OPERATIONS,
                    webhooks.c.active.is_(True),
                    webhooks.c.deleted_at.is_(None),
                )
                .order_by(webhooks.c.id)
            )
        ).scalars()
        rows = [
            {
                "id": new_id("dlv"),
                "account_id": account_id,
                "webhook_id": endpoint_id,
                "event_id": None,
                "notice_id": notice_id,
                "kind": DeliveryKind.OPERATIONAL,
                "status": DeliveryStatus.PENDING,
                "attempt_count": 0,
                "attempt_limit": self.attempt_limit,
                "next_attempt_at": self.now,
                "created_at": self.now,
                "updated_at": self.now,
            }
            for endpoint_id in endpoints
        ]
        if rows:
            await self.connection.execute(insert(deliveries), rows)
            self.attempts += [queue.Attempt(row["id"]) for row in rows]

    def count(self) -> None:
        """After the commit: the notices metric, by kind."""
        for kind in self.kinds:
            NOTICES.labels(kind.value).inc()
        self.kinds.clear()
