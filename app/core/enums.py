"""The closed vocabularies of the contract (docs/api.md), shared by the API and the workers."""

from collections.abc import Iterable
from enum import StrEnum


class HttpMethod(StrEnum):
    POST = "POST"
    PUT = "PUT"


class PayloadType(StrEnum):
    JSON = "json"
    XML = "xml"
    FORM = "form"


class EventType(StrEnum):
    PURCHASE = "purchase"
    SUBSCRIPTION_CANCELLED = "subscription_cancelled"


class DeliveryKind(StrEnum):
    EVENT = "event"
    TEST = "test"
    OPERATIONAL = "operational"  # a notice, sent to an operations endpoint


class WebhookPurpose(StrEnum):
    """What a webhook row receives: store events through its actions (`/webhooks`), or the
    account's operational events (`/operations-webhooks`, docs/api.md#operations-webhooks)."""

    EVENTS = "events"
    OPERATIONS = "operations"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ErrorClass(StrEnum):
    """Why an attempt failed, for code to act on (docs/api.md#error-classes); an attempt
    that succeeded has none."""

    TIMEOUT = "timeout"  # no complete answer within the delivery timeout
    CONNECT = "connect"  # refused, reset, or the exchange broke off
    DNS = "dns"  # the host name did not resolve
    TLS = "tls"  # the handshake or the certificate failed
    REFUSED_TARGET = "refused_target"  # an address outbound safety refuses (private)
    HTTP_STATUS = "http_status"  # an answer whose status does not count as success
    RATE_LIMITED = "rate_limited"  # 429, or 503 with Retry-After
    PAYLOAD = "payload"  # the body could not be rendered
    INTERRUPTED = "interrupted"  # the worker stopped before the attempt had an outcome


class DisabledReason(StrEnum):
    TEST_FAILED = "test_failed"
    MANUAL = "manual"
    GONE = "gone"  # the receiver answered 410
    FAILING = "failing"  # every attempt failed for STOREHOOKS_AUTO_DISABLE_AFTER_HOURS


class SuccessStatuses(StrEnum):
    """Which answers count as delivered (docs/delivery.md, Delivery policies)."""

    ONLY_200 = "200"
    ANY_2XX = "2xx"

    def accepts(self, status_code: int) -> bool:
        if self is SuccessStatuses.ANY_2XX:
            return 200 <= status_code <= 299
        return status_code == 200


class SignatureScheme(StrEnum):
    """How a webhook's notifications are signed (docs/api.md#headers-and-signatures):
    Standard Webhooks' symmetric `v1` with a shared secret, or its asymmetric `v1a`, which
    receivers check with a public key while only storehooks holds the private key."""

    HMAC_SHA256 = "hmac-sha256"
    ED25519 = "ed25519"


class NoticeKind(StrEnum):
    """What a notice says about a webhook (docs/api.md#notices); each is also an
    operational event, named by `event_type`."""

    DISABLED = "disabled"  # turned off by the service: gone (410) or failing
    FAILING = "failing"  # failing for 50, 75 or 90 % of the time that turns it off
    RECOVERED = "recovered"  # the first success after a failing notice
    DELIVERY_EXHAUSTED = "delivery_exhausted"  # a delivery used its last attempt
    TEST_FAILED = "test_failed"  # its test ping failed, which turned it off

    @property
    def event_type(self) -> "OperationalEventType":
        return _EVENT_TYPES[self]


class OperationalEventType(StrEnum):
    """The `type` of what an operations endpoint receives, one per kind of notice."""

    WEBHOOK_DISABLED = "webhook.disabled"
    WEBHOOK_FAILING = "webhook.failing"
    WEBHOOK_RECOVERED = "webhook.recovered"
    DELIVERY_EXHAUSTED = "delivery.exhausted"
    WEBHOOK_TEST_FAILED = "webhook.test_failed"


_EVENT_TYPES = {
    NoticeKind.DISABLED: OperationalEventType.WEBHOOK_DISABLED,
    NoticeKind.FAILING: OperationalEventType.WEBHOOK_FAILING,
    NoticeKind.RECOVERED: OperationalEventType.WEBHOOK_RECOVERED,
    NoticeKind.DELIVERY_EXHAUSTED: OperationalEventType.DELIVERY_EXHAUSTED,
    NoticeKind.TEST_FAILED: OperationalEventType.WEBHOOK_TEST_FAILED,
}


class Scope(StrEnum):
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_CREATE = "webhooks:create"
    WEBHOOKS_UPDATE = "webhooks:update"
    WEBHOOKS_DELETE = "webhooks:delete"
    WEBHOOKS_TEST = "webhooks:test"
    ACTIONS_READ = "actions:read"
    ACTIONS_WRITE = "actions:write"
    EVENTS_WRITE = "events:write"
    EVENTS_READ = "events:read"
    DELIVERIES_READ = "deliveries:read"
    DELIVERIES_RETRY = "deliveries:retry"
    KEYS_MANAGE = "keys:manage"
    AUDIT_READ = "audit:read"

    @classmethod
    def known(cls, names: Iterable[object]) -> frozenset["Scope"]:
        """The scopes among `names`: one no longer (or never) known grants nothing, so a
        key's retired scope or a provider's other permission is dropped."""
        return frozenset(
            cls(name) for name in names if isinstance(name, str) and name in _SCOPE_NAMES
        )


_SCOPE_NAMES = frozenset(scope.value for scope in Scope)


class ActorType(StrEnum):
    """Who made a change the audit log records (docs/api.md#audit-log)."""

    API_KEY = "api_key"
    USER = "user"  # a person, signed in at the identity provider


class AuditTarget(StrEnum):
    """What kind of object an audit entry is about."""

    WEBHOOK = "webhook"
    OPERATIONS_WEBHOOK = "operations_webhook"
    API_KEY = "api_key"
    DELIVERY = "delivery"


class AuditAction(StrEnum):
    """What was done, `<target type>.<verb>` (docs/api.md#audit-log)."""

    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"
    WEBHOOK_TESTED = "webhook.tested"
    WEBHOOK_RECOVERED = "webhook.recovered"
    # An action binds a webhook to events: adding or removing one changes what the webhook
    # receives, so it is in the webhook's history (`?target_id=wh_…`).
    WEBHOOK_ACTION_ADDED = "webhook.action_added"
    WEBHOOK_ACTION_REMOVED = "webhook.action_removed"
    OPERATIONS_WEBHOOK_CREATED = "operations_webhook.created"
    OPERATIONS_WEBHOOK_UPDATED = "operations_webhook.updated"
    OPERATIONS_WEBHOOK_DELETED = "operations_webhook.deleted"
    OPERATIONS_WEBHOOK_SECRET_ROTATED = "operations_webhook.secret_rotated"
    OPERATIONS_WEBHOOK_TESTED = "operations_webhook.tested"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    DELIVERY_RETRIED = "delivery.retried"

    @property
    def target_type(self) -> AuditTarget:
        return AuditTarget(self.value.partition(".")[0])
