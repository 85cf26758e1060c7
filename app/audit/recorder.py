"""Writes the audit log: one entry per change made through the API, added to the session
of the change itself, so that the request's unit of work commits both or neither.

Routes take `AuditDep` and make one `record` call with what the API shows of the object
before and after (its `…Out` model): a secret is never shown there, and `diff` drops any
field named like one besides, so no value of a secret reaches the log."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from fastapi import Depends
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AnyKey, Principal
from app.core.db import utcnow
from app.core.enums import ActorType, AuditAction
from app.core.ids import new_id
from app.core.models import AuditEntry
from app.deps import SessionDep

# Never recorded, whoever passes them: the log is read with `audit:read`, which secrets
# are not.
NEVER_RECORDED = frozenset({"secret", "previous_secret", "secret_hash", "api_key"})
# The entry has an id and a time of its own; the object's would only repeat them.
_BOOKKEEPING = frozenset({"id", "created_at", "updated_at"})

Fields = Mapping[str, Any]
Shown = BaseModel | Fields


class Change(TypedDict):
    before: Any
    after: Any


def fields(shown: Shown | None) -> Fields:
    """An object as the log compares it: the JSON of what the API shows of it, without
    its id, its timestamps and any secret. None (before a creation, after a deletion) has
    no fields."""
    if shown is None:
        return {}
    if isinstance(shown, BaseModel):
        shown = shown.model_dump(mode="json")
    return {name: value for name, value in shown.items() if name not in _BOOKKEEPING}


def diff(before: Fields, after: Fields) -> dict[str, Change]:
    """The fields whose values differ, each as `{"before", "after"}`; a field that one side
    lacks is null there (a creation's `before`, a deletion's `after`)."""
    names = [*before, *(name for name in after if name not in before)]
    return {
        name: Change(before=before.get(name), after=after.get(name))
        for name in names
        if name not in NEVER_RECORDED and before.get(name) != after.get(name)
    }


def record(
    session: AsyncSession,
    principal: Principal,
    action: AuditAction,
    target_id: str,
    changes: Mapping[str, Change],
) -> AuditEntry:
    """Adds the entry to `session`; it is written when the session flushes or commits."""
    entry = AuditEntry(
        id=new_id("aud"),
        account_id=principal.account_id,
        occurred_at=utcnow(),
        actor_type=ActorType.API_KEY if principal.key_id is not None else ActorType.USER,
        actor_id=principal.actor_id,
        actor_name=principal.name,
        action=action,
        target_type=action.target_type,
        target_id=target_id,
        changes=dict(changes),
    )
    session.add(entry)
    return entry


@dataclass(frozen=True)
class AuditLog:
    """The request's principal and session, so that a route records in one call."""

    session: AsyncSession
    principal: Principal

    def record(
        self,
        action: AuditAction,
        target_id: str,
        before: Shown | None = None,
        after: Shown | None = None,
    ) -> None:
        """`before` None for a creation, `after` None for a deletion; a call that is no
        edit (a test ping, a recovery) passes what it did as `after`."""
        record(self.session, self.principal, action, target_id, diff(fields(before), fields(after)))


async def audit_log(principal: AnyKey, session: SessionDep) -> AuditLog:
    return AuditLog(session, principal)


AuditDep = Annotated[AuditLog, Depends(audit_log)]
