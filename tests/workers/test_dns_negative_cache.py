"""Names that do not resolve (docs/security.md, Names that do not resolve): the worker's
`CheckedResolver` remembers a failed lookup for `STOREHOOKS_DNS_NEGATIVE_TTL_SECONDS`, so a
hook whose name does not exist costs the machine's resolver one lookup per TTL, not one
per attempt.

Every lookup goes to the machine's real resolver (`nonexistent.invalid` can never resolve:
RFC 6761 reserves `.invalid`); the tests only count the calls, through the resolver's own
`lookup` parameter or the running loop's `getaddrinfo` that the production code calls.
"""

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from app.core.settings import Settings
from workers.transport import CheckedResolver, UnresolvableHost, make_client

BAD_NAME = "nonexistent.invalid"


class CountingLookup:
    """The real `getaddrinfo`, counting each host it is asked for."""

    def __init__(self, real: Callable[..., Awaitable[list[Any]]]) -> None:
        self._real = real
        self.hosts: list[str] = []

    async def __call__(self, host: str, port: int, **options: Any) -> list[Any]:
        self.hosts.append(host)
        return await self._real(host, port, **options)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def lookup() -> CountingLookup:
    return CountingLookup(asyncio.get_running_loop().getaddrinfo)


async def failure(resolver: CheckedResolver, host: str = BAD_NAME) -> str:
    with pytest.raises(UnresolvableHost) as failed:
        await resolver.resolve(host, 80)
    return str(failed.value)


async def test_a_failed_name_is_not_looked_up_again_within_the_ttl(lookup: CountingLookup) -> None:
    clock = Clock()
    resolver = CheckedResolver(False, negative_ttl_seconds=30, lookup=lookup, clock=clock)

    first = await failure(resolver)
    assert first.startswith(f"Could not resolve the host {BAD_NAME} (")
    assert lookup.hosts == [BAD_NAME]

    clock.now += 29.9
    assert await failure(resolver) == first  # the same reason, from the cache
    assert await failure(resolver, BAD_NAME.upper()) == first  # names are case-blind
    assert lookup.hosts == [BAD_NAME]

    clock.now += 0.1  # the TTL is over: asked again, and remembered again
    assert await failure(resolver) == first
    assert await failure(resolver) == first
    assert lookup.hosts == [BAD_NAME, BAD_NAME]


async def test_names_that_resolve_are_asked_every_time(lookup: CountingLookup) -> None:
    """A negative cache only: a name that resolves is checked again at each connection
    (rebinding, docs/security.md), even right after another name failed."""
    resolver = CheckedResolver(True, negative_ttl_seconds=30, lookup=lookup, clock=Clock())
    await failure(resolver)
    for _ in range(3):
        answers = await resolver.resolve("localhost", 80, socket.AF_INET)
        assert [answer["host"] for answer in answers] == ["127.0.0.1"]
    assert lookup.hosts == [BAD_NAME, "localhost", "localhost", "localhost"]


async def test_a_ttl_of_zero_asks_every_time(lookup: CountingLookup) -> None:
    resolver = CheckedResolver(False, negative_ttl_seconds=0, lookup=lookup, clock=Clock())
    assert await failure(resolver) == await failure(resolver)
    assert lookup.hosts == [BAD_NAME, BAD_NAME]


@pytest.mark.parametrize(("ttl", "lookups"), [(30, 1), (0, 3)])
async def test_the_workers_client_uses_the_setting(
    monkeypatch: pytest.MonkeyPatch, ttl: float, lookups: int
) -> None:
    """Through the worker's real client (`make_client`), counting the running loop's
    `getaddrinfo`, which `CheckedResolver` calls by default: three sends to a name that
    does not resolve cost one lookup with the default TTL, three with 0."""
    loop = asyncio.get_running_loop()
    counting = CountingLookup(loop.getaddrinfo)
    monkeypatch.setattr(loop, "getaddrinfo", counting)
    settings = Settings(delivery_timeout_seconds=2, dns_negative_ttl_seconds=ttl)
    reasons = []
    async with make_client(settings) as client:
        for _ in range(3):
            with pytest.raises(UnresolvableHost) as failed:
                await client.post(f"http://{BAD_NAME}/hook", content=b"{}")
            reasons.append(str(failed.value))
    assert reasons[0].startswith(f"Could not resolve the host {BAD_NAME} (")
    assert reasons == [reasons[0]] * 3
    assert counting.hosts == [BAD_NAME] * lookups
