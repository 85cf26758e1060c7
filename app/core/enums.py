"""The closed vocabularies of the contract (docs/api.md), shared by the API and the workers."""

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


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


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
    DISABLED = "disabled"


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
