"""Who makes a request (app/auth/dependencies.py finds it for each request)."""

from dataclasses import dataclass

from app.core.enums import Scope


@dataclass(frozen=True)
class Principal:
    """Who makes a request: an API key (`key_id`, and the key's `name`), or a person
    signed in at the identity provider (`subject`, their `name`)."""

    account_id: str
    scopes: frozenset[Scope]
    key_id: str | None = None
    subject: str | None = None
    name: str | None = None

    @property
    def actor_id(self) -> str:
        """The key's id or the person's subject: what the audit log names as the actor."""
        actor = self.key_id or self.subject
        assert actor is not None, "a principal is a key or a person"
        return actor
