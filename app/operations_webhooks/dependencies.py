"""`valid_operations_webhook`: loads the path's operations endpoint for the caller's
account, or answers 404 (a webhook of /webhooks is none)."""

from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import AnyKey
from app.core.enums import WebhookPurpose
from app.core.models import Webhook
from app.deps import SessionDep
from app.webhooks import service


async def valid_operations_webhook(
    webhook_id: str, principal: AnyKey, session: SessionDep
) -> Webhook:
    return await service.get(session, principal.account_id, webhook_id, WebhookPurpose.OPERATIONS)


OperationsWebhookDep = Annotated[Webhook, Depends(valid_operations_webhook)]
