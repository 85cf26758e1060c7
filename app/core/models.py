"""Every table, in one place: accounts, API keys, webhooks, actions, events,
deliveries and their attempts, notices, the audit log."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    literal_column,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow
from app.core.enums import (
    ActorType,
    AuditAction,
    AuditTarget,
    DeliveryKind,
    DeliveryStatus,
    DisabledReason,
    ErrorClass,
    EventType,
    HttpMethod,
    NoticeKind,
    PayloadType,
    SignatureScheme,
    SuccessStatuses,
    WebhookPurpose,
)

JSONValue = JSON().with_variant(JSONB(), "postgresql")


def _enum(enum_class: type[StrEnum], length: int = 32) -> Enum:
    # Stored as plain strings (no native ENUM types), so adding a value later is
    # a code change, not a schema migration.
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_account_id_id", "account_id", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSONValue)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Webhook(Base):
    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_account_id_id", "account_id", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2048))
    http_method: Mapped[HttpMethod] = mapped_column(_enum(HttpMethod))
    payload_type: Mapped[PayloadType] = mapped_column(_enum(PayloadType))
    active: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[DisabledReason | None] = mapped_column(
        _enum(DisabledReason), default=None
    )
    # Delivery policies (docs/delivery.md, Delivery policies).
    success_statuses: Mapped[SuccessStatuses] = mapped_column(
        _enum(SuccessStatuses), default=SuccessStatuses.ONLY_200, server_default="200"
    )
    ordered: Mapped[bool] = mapped_column(default=False, server_default=false())
    max_in_flight: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    # Since when every attempt has failed (null after any success): past
    # STOREHOOKS_AUTO_DISABLE_AFTER_HOURS the webhook is turned off.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The highest share of that time (50, 75, 90 %) a webhook.failing notice has told of in
    # the current streak (0: none), so each threshold is announced once per streak.
    failing_notified_percent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Events through its actions (/webhooks), or the account's operational events
    # (/operations-webhooks): one table, one delivery engine for both.
    purpose: Mapped[WebhookPurpose] = mapped_column(
        _enum(WebhookPurpose),
        default=WebhookPurpose.EVENTS,
        server_default=WebhookPurpose.EVENTS.value,
    )
    # How notifications are signed, and with what (app/core/signing.py): `secret` is a
    # shared HMAC secret (whsec_…) or an Ed25519 private key (whsk_…), stored alike, the
    # latter never shown; `public_key` (whpk_…) is the ed25519 receivers' key, else null.
    signature_scheme: Mapped[SignatureScheme] = mapped_column(
        _enum(SignatureScheme),
        default=SignatureScheme.HMAC_SHA256,
        server_default=SignatureScheme.HMAC_SHA256.value,
    )
    secret: Mapped[str] = mapped_column(String(128))
    public_key: Mapped[str | None] = mapped_column(String(64), default=None)
    # After a rotation (or a switch of scheme) the previous secret, of either scheme,
    # keeps signing beside the new one until it expires, so receivers can switch over
    # without dropping anything.
    previous_secret: Mapped[str | None] = mapped_column(String(128), default=None)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Soft delete: the delivery history of a deleted webhook stays readable.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Action(Base):
    __tablename__ = "actions"
    __table_args__ = (
        Index("ix_actions_match_app", "account_id", "event_type", "app_id"),
        Index("ix_actions_match_sku", "account_id", "event_type", "sku_id"),
        Index("ix_actions_account_id_id", "account_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_type: Mapped[EventType] = mapped_column(_enum(EventType))
    app_id: Mapped[str | None] = mapped_column(String(200), default=None)
    sku_id: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# NULLs never collide in a plain unique constraint, hence the coalesce.
Index(
    "uq_actions_binding",
    Action.webhook_id,
    Action.event_type,
    func.coalesce(Action.app_id, literal_column("''")),
    func.coalesce(Action.sku_id, literal_column("''")),
    unique=True,
)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("account_id", "idempotency_key", name="uq_events_idempotency"),
        Index("ix_events_account_id_id", "account_id", "id"),
        # GET /events?since=&until=: the window and its order (time, then id) in one
        # range; without it PostgreSQL scanned every event of the account before `since`.
        Index("ix_events_account_id_created_at", "account_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    type: Mapped[EventType] = mapped_column(_enum(EventType))
    app_id: Mapped[str] = mapped_column(String(200))
    sku_id: Mapped[str | None] = mapped_column(String(200), default=None)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSONValue)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    ordering_key: Mapped[str | None] = mapped_column(String(200), default=None)
    # Kept so that a repeated Idempotency-Key can answer the first response again.
    delivery_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The W3C traceparent the event's notifications continue (app/core/traceparent.py);
    # null for events stored before it was kept.
    traceparent: Mapped[str | None] = mapped_column(String(55), default=None)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_webhook_id_id", "webhook_id", "id"),
        Index("ix_deliveries_account_id_id", "account_id", "id"),
        # An event's deliveries, and GET /events?delivery_status=&webhook_id=: the EXISTS
        # probe reads this index alone (app/events/service.py says why it must cover it).
        Index("ix_deliveries_event_status", "event_id", "status", "webhook_id"),
        # An ordered webhook's deliveries of one key, in event order
        # (docs/delivery.md, Ordered delivery).
        Index("ix_deliveries_ordering", "webhook_id", "ordering_key", "status", "ordered_at"),
        # The attempts in flight to a webhook, for max_in_flight.
        Index("ix_deliveries_in_flight", "webhook_id", "leased_until"),
        # A webhook's due deliveries, to start one when a slot frees.
        Index("ix_deliveries_webhook_due", "webhook_id", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str | None] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), default=None
    )
    # What an operational delivery tells (kind `operational`), else null. No foreign key:
    # notices are never deleted on their own, and adding one would rebuild this table on
    # SQLite.
    notice_id: Mapped[str | None] = mapped_column(String(64), default=None)
    kind: Mapped[DeliveryKind] = mapped_column(_enum(DeliveryKind))
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    # The delivery fails once attempt_count reaches this; a manual retry raises
    # it by a fresh budget instead of renumbering the attempts already made.
    attempt_limit: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_error_class: Mapped[ErrorClass | None] = mapped_column(_enum(ErrorClass), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The event's ordering_key and occurred_at, copied so that ordering needs no join:
    # deliveries of one key go out by (ordered_at, id), id being the order of receipt.
    ordering_key: Mapped[str | None] = mapped_column(String(200), default=None)
    ordered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Set while an attempt is in flight (until its outcome is recorded, or the lease ends).
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"
    # One row per (delivery, number): the database refuses a second send of the
    # same attempt however many times its job runs.
    __table_args__ = (UniqueConstraint("delivery_id", "number", name="uq_attempts_number"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    error_class: Mapped[ErrorClass | None] = mapped_column(_enum(ErrorClass), default=None)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)


class Notice(Base):
    """Something the merchant should know about a webhook (docs/api.md#notices): turned
    off, failing, recovered, a delivery's attempts used up, a failed test. Each is also an
    operational event, sent to the account's operations endpoints
    (`app/core/announcements.py`)."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_account_id_id", "account_id", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    kind: Mapped[NoticeKind] = mapped_column(_enum(NoticeKind))
    # The facts of its kind, null where they do not apply: why it was turned off
    # (disabled), how far into the failing time (failing), which delivery (exhausted,
    # recovered, test_failed) and the class of the failure that led to it.
    reason: Mapped[DisabledReason | None] = mapped_column(_enum(DisabledReason), default=None)
    percent: Mapped[int | None] = mapped_column(Integer, default=None)
    delivery_id: Mapped[str | None] = mapped_column(String(64), default=None)
    error_class: Mapped[ErrorClass | None] = mapped_column(_enum(ErrorClass), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEntry(Base):
    """One change made through the API (docs/api.md#audit-log): who, what, when, and the
    fields it changed, written in the change's own transaction. Never holds a secret."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_account_id_id", "account_id", "id"),
        Index("ix_audit_events_target", "account_id", "target_id", "id"),
        Index("ix_audit_events_actor", "account_id", "actor_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_type: Mapped[ActorType] = mapped_column(_enum(ActorType))
    # The API key's id, or the person's subject at the identity provider.
    actor_id: Mapped[str] = mapped_column(String(255))
    # The key's or the person's name as it was then: a revoked key's entries keep it.
    actor_name: Mapped[str | None] = mapped_column(String(255), default=None)
    action: Mapped[AuditAction] = mapped_column(_enum(AuditAction, length=64))
    target_type: Mapped[AuditTarget] = mapped_column(_enum(AuditTarget))
    # No foreign key: an entry outlives its target (a deleted action's row is gone).
    target_id: Mapped[str] = mapped_column(String(64))
    # {field: {"before": value, "after": value}}, only the fields that changed.
    changes: Mapped[dict[str, Any]] = mapped_column(JSONValue)
