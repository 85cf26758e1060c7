"""Bodies of the /operations-webhooks routes: those of /webhooks (the same fields and
signing), and a page class of their own so that the OpenAPI document names the list."""

from app.pagination import Page
from app.webhooks.schemas import WebhookOut


class OperationsWebhookPage(Page[WebhookOut]):
    """One page of operations webhooks, newest first."""
