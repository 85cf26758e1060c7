"""`valid_webhook`: loads the path's webhook for the caller's account, or answers 404."""

from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import AnyKey
from app.core.models import Webhook
from app.deps import SessionDep
from app.webhooks import service


async def valid_webhook(webhook_id: str, principal: AnyKey, session: SessionDep) -> Webhook:
    return await service.get(session, principal.account_id, webhook_id)


WebhookDep = Annotated[Webhook, Depends(valid_webhook)]
