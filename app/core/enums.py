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
