"""Webhook rows: create, read, update, soft delete, and secret rotation (a switch of
signature scheme is one too)."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import lifecycle, queue
from app.core.db import utcnow
from app.core.enums import DeliveryStatus, DisabledReason, SignatureScheme, WebhookPurpose
from app.core.ids import new_id
from app.core.models import Delivery, Webhook
from app.core.outbound_safety import literal_ip, refused_reason
from app.core.signing import generate_signing_key
from app.core.unit_of_work import UnitOfWork
from app.errors import Unprocessable
from app.pagination import PageParams, fetch_page
from app.tenancy import get_owned
from app.webhooks.schemas import WebhookCreate, WebhookUpdate

PREVIOUS_SECRET_LIFETIME = timedelta(hours=24)


def check_target(url: str, allow_private_networks: bool) -> None:
    """Refuses a URL whose host is an IP literal in a refused range (docs/security.md, Outbound
    requests)."""
    if allow_private_networks:
        return
    address = literal_ip(urlsplit(url).hostname or "")
    reason = refused_reason(address) if address is not None else None
    if reason is not None:
        raise Unprocessable(
            ["body", "url"],
            f"targets a private network: {reason} "
            "(set STOREHOOKS_ALLOW_PRIVATE_NETWORKS=true to allow)",
        )


async def create(
    session: AsyncSession,
    account_id: str,
    body: WebhookCreate,
    purpose: WebhookPurpose = WebhookPurpose.EVENTS,
) -> Webhook:
    now = utcnow()
    key = generate_signing_key(body.signature_scheme)
    webhook = Webhook(
        id=new_id("wh"),
        account_id=account_id,
        name=body.name,
        url=body.url,
        http_method=body.http_method,
        payload_type=body.payload_type,
        active=body.active,
        disabled_reason=None if body.active else DisabledReason.MANUAL,
        success_statuses=body.success_statuses,
        ordered=body.ordered,
        max_in_flight=body.max_in_flight,
        signature_scheme=body.signature_scheme,
        secret=key.secret,
        public_key=key.public_key,
        purpose=purpose,
        created_at=now,
        updated_at=now,
    )
    session.add(webhook)
    await session.flush()
    return webhook


async def get(
    session: AsyncSession,
    account_id: str,
    webhook_id: str,
    purpose: WebhookPurpose = WebhookPurpose.EVENTS,
) -> Webhook:
    """The caller's live webhook of that purpose, or 404 exactly as if it did not exist:
    an operations endpoint is no webhook under /webhooks, and the other way round."""
    noun = "webhook" if purpose is WebhookPurpose.EVENTS else "operations webhook"
    return await get_owned(
        session,
        Webhook,
        account_id,
        webhook_id,
        noun,
        ended=lambda w: w.deleted_at is not None or w.purpose is not purpose,
    )


async def list_page(
    session: AsyncSession,
    account_id: str,
    params: PageParams,
    purpose: WebhookPurpose = WebhookPurpose.EVENTS,
) -> tuple[Sequence[Webhook], str | None]:
    statement = select(Webhook).where(
        Webhook.account_id == account_id,
        Webhook.deleted_at.is_(None),
        Webhook.purpose == purpose,
    )
    return await fetch_page(session, statement, Webhook.id, params)


async def update_fields(
    work: UnitOfWork[AsyncSession], webhook: Webhook, body: WebhookUpdate
) -> Webhook:
    session = work.transaction
    changes = body.model_dump(exclude_unset=True)
    switch = changes.pop("active", None)
    scheme = changes.pop("signature_scheme", webhook.signature_scheme)
    stops_ordering = webhook.ordered and changes.get("ordered") is False
    now = utcnow()
    for field, value in changes.items():
        setattr(webhook, field, value)
    if scheme is not webhook.signature_scheme:
        _replace_key(webhook, scheme, now)
    webhook.updated_at = now
    await session.flush()
    if switch is not None:
        connection = await session.connection()
        if switch:
            await lifecycle.switch_on(connection, webhook.id, now)
        else:
            await lifecycle.switch_off(connection, webhook.id, DisabledReason.MANUAL, now)
        await session.refresh(webhook)
    if stops_ordering:
        await _release_held(work, webhook.id)
    return webhook


async def _release_held(work: UnitOfWork[AsyncSession], webhook_id: str) -> None:
    """Ordering switched off: the deliveries held back for it become due now."""
    held = (
        await work.transaction.execute(
            update(Delivery)
            .where(Delivery.webhook_id == webhook_id, Delivery.status == DeliveryStatus.PENDING)
            .where(Delivery.next_attempt_at.is_(None))
            .values(next_attempt_at=utcnow())
            .returning(Delivery.id, Delivery.attempt_count)
            .execution_options(synchronize_session=False)
        )
    ).all()
    work.enqueue_after_commit(
        *(queue.Attempt(delivery_id, attempt_count + 1) for delivery_id, attempt_count in held)
    )


async def soft_delete(session: AsyncSession, webhook: Webhook) -> None:
    await lifecycle.delete_webhook(await session.connection(), webhook.id, utcnow())
    session.expire(webhook)


async def rotate_secret(session: AsyncSession, webhook: Webhook) -> Webhook:
    now = utcnow()
    _replace_key(webhook, webhook.signature_scheme, now)
    webhook.updated_at = now
    await session.flush()
    return webhook


def _replace_key(webhook: Webhook, scheme: SignatureScheme, now: datetime) -> None:
    """A new key of `scheme` signs from now on, and the current one beside it for 24 hours
    (dropping an older previous key), so receivers lose nothing while they switch: after a
    rotation to the new key, after a change of scheme to the new scheme's key (the header
    then holds a v1 and a v1a entry, and each receiver checks the one it knows). Pending
    deliveries need nothing: every attempt is signed when it is sent."""
    key = generate_signing_key(scheme)
    webhook.previous_secret = webhook.secret
    webhook.previous_secret_expires_at = now + PREVIOUS_SECRET_LIFETIME
    webhook.signature_scheme = scheme
    webhook.secret = key.secret
    webhook.public_key = key.public_key
