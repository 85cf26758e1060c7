"""GET /me and the /api-keys routes."""

from typing import Annotated, Any

from fastapi import APIRouter, Response

from app.audit.recorder import AuditDep
from app.auth import service
from app.auth.dependencies import AnyKey, Principal, requires
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeyPage, Me
from app.core.enums import AuditAction, Scope
from app.core.models import ApiKey
from app.deps import SessionDep
from app.errors import Forbidden, problem_responses
from app.json_body import JsonRoute
from app.pagination import PageDep

router = APIRouter(
    route_class=JsonRoute, tags=["auth"], responses=problem_responses(401, 403, 422, 429, 503)
)
ManageKeys = Annotated[Principal, requires(Scope.KEYS_MANAGE)]


@router.get("/me", response_model=Me, operation_id="getMe")
async def me(principal: AnyKey) -> Me:
    return Me(
        account_id=principal.account_id,
        key_id=principal.key_id,
        subject=principal.subject,
        name=principal.name,
        scopes=sorted(principal.scopes),
    )


@router.post(
    "/api-keys",
    status_code=201,
    response_model=ApiKeyCreated,
    responses=problem_responses(413),
    operation_id="createApiKey",
)
async def create_key(
    body: ApiKeyCreate, principal: ManageKeys, session: SessionDep, audit: AuditDep
) -> ApiKeyCreated:
    # A key may hand out only what it holds itself, or keys:manage would be root.
    missing = sorted(set(body.scopes) - principal.scopes)
    if missing:
        raise Forbidden(f"A key cannot grant scopes it does not hold: {', '.join(missing)}.")
    key, token = await service.create_key(session, principal.account_id, body.name, body.scopes)
    audit.record(AuditAction.API_KEY_CREATED, key.id, after=_audited(key))
    return ApiKeyCreated.model_validate(
        {**ApiKeyOut.model_validate(key).model_dump(), "api_key": token}
    )


@router.get("/api-keys", response_model=ApiKeyPage, operation_id="listApiKeys")
async def list_keys(principal: ManageKeys, session: SessionDep, page: PageDep) -> ApiKeyPage:
    keys, next_cursor = await service.list_keys(session, principal.account_id, page)
    return ApiKeyPage(data=[ApiKeyOut.model_validate(key) for key in keys], next_cursor=next_cursor)


@router.delete(
    "/api-keys/{key_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(404, 409),
    operation_id="revokeApiKey",
)
async def revoke_key(
    key_id: str, principal: ManageKeys, session: SessionDep, audit: AuditDep
) -> None:
    key = await service.revoke_key(session, principal.account_id, key_id, principal.scopes)
    audit.record(AuditAction.API_KEY_REVOKED, key.id, before=_audited(key))


def _audited(key: ApiKey) -> dict[str, Any]:
    """A key as the audit log shows it: never its secret or hash. Its stored scopes, a
    retired one too, which ApiKeyOut would refuse."""
    return {"name": key.name, "scopes": list(key.scopes)}
