"""The per-key request budget: 429 with Retry-After above it, other keys untouched."""

import dataclasses
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from app import resources
from app.auth.rate_limit import RateLimiter, TooManyRequests
from app.core.settings import Settings
from tests.conftest import Tenant, client_for, running_app, tenant_of
from tests.support.problems import assert_problem


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spend_until_refused(limiter: RateLimiter, key_id: str) -> tuple[int, TooManyRequests]:
    for spent in range(1000):
        try:
            limiter.spend(key_id)
        except TooManyRequests as refused:
            return spent, refused
    raise AssertionError("never refused")


def test_a_key_may_spend_one_seconds_worth_at_once_then_is_refused() -> None:
    limiter = RateLimiter(5, clock=Clock())
    spent, refused = spend_until_refused(limiter, "key_a")
    assert spent == 5
    assert refused.status == 429
    assert refused.headers == {"Retry-After": "1"}
    assert "5 requests a second" in refused.detail


def test_the_budget_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(5, clock=clock)
    spend_until_refused(limiter, "key_a")
    clock.now += 0.5  # two and a half tokens back
    assert spend_until_refused(limiter, "key_a")[0] == 2
    clock.now += 60  # never more than one second's worth
    assert spend_until_refused(limiter, "key_a")[0] == 5


def test_retry_after_counts_whole_seconds_until_a_token_is_back() -> None:
    clock = Clock()
    limiter = RateLimiter(0.25, clock=clock)  # one request every 4 s
    limiter.spend("key_a")  # a bucket always holds at least one request
    clock.now += 1  # a quarter of a token back
    with pytest.raises(TooManyRequests) as refused:
        limiter.spend("key_a")
    assert refused.value.headers == {"Retry-After": "3"}


def test_keys_have_budgets_of_their_own() -> None:
    limiter = RateLimiter(3, clock=Clock())
    spend_until_refused(limiter, "key_a")
    assert spend_until_refused(limiter, "key_b")[0] == 3


def test_a_rate_of_zero_switches_the_limit_off() -> None:
    limiter = RateLimiter(0, clock=Clock())
    for _ in range(10_000):
        limiter.spend("key_a")


@pytest.fixture
async def limited_app(database_url: str, redis_url: str) -> AsyncIterator[FastAPI]:
    """An app whose budget of 3 requests a second runs on a clock that stands still: a
    slow machine must not refill the bucket between two requests of a test."""
    settings = Settings(database_url=database_url, redis_url=redis_url, rate_limit_per_second=3)
    async with running_app(settings) as application:
        application.state.resources = dataclasses.replace(
            resources.of(application), rate_limiter=RateLimiter(3, clock=Clock())
        )
        yield application


@pytest.fixture
async def limited(limited_app: FastAPI) -> AsyncIterator[Tenant]:
    async with tenant_of(limited_app, "Busy Studio") as tenant:
        yield tenant


async def test_the_api_answers_429_with_retry_after_above_the_budget(limited: Tenant) -> None:
    statuses = [(await limited.api.get("/me")).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = await limited.api.get("/me")
    assert_problem(refused, 429)
    assert refused.headers["retry-after"] == "1"
    # What is refused is the key, not the route: every route shares the budget.
    assert_problem(await limited.api.post("/events", json={"type": "purchase"}), 429)


async def test_another_key_of_the_same_account_keeps_its_budget(limited: Tenant) -> None:
    for _ in range(3):
        assert (await limited.api.get("/me")).status_code == 200
    assert (await limited.api.get("/me")).status_code == 429
    async with client_for(limited.app, await limited.key()) as second:
        assert (await second.get("/me")).status_code == 200


async def test_requests_without_a_valid_key_are_401_not_429(limited: Tenant) -> None:
    async with client_for(limited.app, "key_unknown.secret") as stranger:
        statuses = [(await stranger.get("/me")).status_code for _ in range(5)]
    assert statuses == [401] * 5


async def test_every_authenticated_operation_declares_429(app: FastAPI) -> None:
    document = app.openapi()
    operations = [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if "401" in operation["responses"]
    ]
    assert len(operations) > 10
    for path, method, operation in operations:
        declared = operation["responses"].get("429", {})
        assert "application/problem+json" in declared.get("content", {}), (method, path)
