"""Settings, read from STOREHOOKS_* environment variables (docs/api.md, Running it)."""

from functools import lru_cache

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STOREHOOKS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./storehooks.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    max_attempts: int = Field(default=20, ge=1)
    retry_base_seconds: float = Field(default=10, gt=0)
    retry_max_delay_seconds: float = Field(default=14400, gt=0)
    delivery_timeout_seconds: float = Field(default=10, gt=0)
    allow_private_networks: bool = False
    ca_bundle: str | None = None
    # A webhook host name that failed to resolve is not looked up again for this long, per
    # worker (0: every attempt asks the resolver); docs/security.md, Names that do not resolve.
    dns_negative_ttl_seconds: float = Field(default=30, ge=0)
    retention_days: float = Field(default=30, gt=0)
    # A webhook whose every attempt has failed for this long is turned off (docs/delivery.md,
    # Automatic disabling).
    auto_disable_after_hours: float = Field(default=72, gt=0)
    # Requests a second each API key may make, per API process (0: no limit); above it
    # the API answers 429 with Retry-After.
    rate_limit_per_second: float = Field(default=2000, ge=0)
    # A request's line and headers must arrive within this long, or the API answers 408
    # and closes (docs/security.md, Request heads).
    header_timeout_seconds: float = Field(default=10, gt=0)
    # Attempts one worker has in flight at once, across all webhooks (docs/deploy.md).
    worker_concurrency: int = Field(default=200, ge=1, le=10_000)
    # How often the sweeper queues due deliveries again from the database (what brings
    # back work after Redis lost it, or a worker died): a divisor of 60, in seconds.
    sweep_interval_seconds: int = Field(default=5, ge=1, le=60)
    # Each worker serves its metrics on this port (0: none); run several workers on
    # one host with a port each.
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)
    # The interface it listens on: this machine only, like the API, unless told otherwise.
    worker_metrics_host: str = "127.0.0.1"
    # Where both processes send their traces (OTLP over HTTP, a base URL such as
    # http://collector:4318); unset, and without the standard OTEL_* variables, nothing is
    # traced (docs/operations.md#tracing).
    otel_exporter_otlp_endpoint: str | None = None
    # The store's identity provider (docs/security.md#identity-provider-tokens): with an
    # issuer and an audience set, the API also takes its JWT access tokens as bearer
    # tokens, beside API keys. The key set's URL is discovered from the issuer when unset.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    # The claims that carry the account id and the permissions (storehooks' scope names;
    # a list, or one space-separated string such as a `scope` claim).
    oidc_account_claim: str = "account_id"
    oidc_permissions_claim: str = "permissions"
    # How far `exp` and `nbf` may be off, for clocks that disagree.
    oidc_leeway_seconds: float = Field(default=30, ge=0, le=300)
    # The console's public client at the provider; set, the console signs people in there.
    oidc_console_client_id: str | None = None

    @model_validator(mode="after")
    def _issuer_with_audience(self) -> "Settings":
        if bool(self.oidc_issuer) != bool(self.oidc_audience):
            raise ValueError("STOREHOOKS_OIDC_ISSUER and STOREHOOKS_OIDC_AUDIENCE go together")
        return self

    @field_validator("sweep_interval_seconds")
    @classmethod
    def _divides_a_minute(cls, seconds: int) -> int:
        if 60 % seconds:
            raise ValueError("must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60)")
        return seconds


@lru_cache
def get_settings() -> Settings:
    return Settings()
