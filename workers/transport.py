"""Outbound safety (docs/api.md#outbound-safety) and a worker's one shared HTTP client.

The code speaks httpx; underneath, an aiohttp connection pool does the sending (about
four times the throughput of httpx's own pool, see docs/performance.md). Each new
connection resolves the target's host through `CheckedResolver`, which refuses it when
any address is in a refused range; aiohttp then connects to the addresses the resolver
returned, keeping the host name for the Host header and for TLS (SNI and certificate
checks), so a DNS answer that changes between the check and the connect cannot reach
inside. IP-literal hosts never reach a resolver, so `CheckedTransport` checks them
before sending. Keep-alive connections are reused only for the origin whose addresses
were checked when they were opened.
"""

import asyncio
import ipaddress
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from httpx_aiohttp.transport import AiohttpResponseStream, AiohttpTransport, map_aiohttp_exceptions

from app import __version__
from app.core.outbound_safety import IPAddress, literal_ip, refused_reason
from app.core.settings import Settings
from app.core.tls import ssl_context

USER_AGENT = f"storehooks/{__version__}"
PRIVATE_HINT = "private networks are not allowed (STOREHOOKS_ALLOW_PRIVATE_NETWORKS)"


class RefusedTarget(Exception):
    """The target resolves to an address that webhooks may not reach."""


class UnresolvableHost(Exception):
    """The target's host name does not resolve."""


def _check(host: str, addresses: list[IPAddress]) -> None:
    for address in addresses:
        reason = refused_reason(address)
        if reason is not None:
            raise RefusedTarget(f"Refused to connect: {host} resolves to {reason}; {PRIVATE_HINT}.")


AddrInfo = tuple[Any, Any, int, str, tuple[Any, ...]]
Lookup = Callable[..., Awaitable[list[AddrInfo]]]

# At most this many failed names are remembered; past it the oldest are forgotten first.
NEGATIVE_CACHE_SIZE = 10_000


class CheckedResolver(AbstractResolver):
    """Resolves with the system resolver and refuses private answers.

    A name that fails to resolve is remembered for `negative_ttl_seconds`: attempts to it
    in that time fail with the same reason without asking the machine's resolver again,
    so a hook whose name does not exist cannot flood it (docs/security.md, Names that do
    not resolve). Answers that do resolve are never cached: each new connection checks
    them again. `lookup` is `getaddrinfo`'s signature (the running loop's by default) and
    `clock` a monotonic clock in seconds.
    """

    def __init__(
        self,
        allow_private_networks: bool,
        negative_ttl_seconds: float = 30,
        lookup: Lookup | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allow_private = allow_private_networks
        self._negative_ttl = negative_ttl_seconds
        self._lookup = lookup
        self._clock = clock
        # (host, family) -> (until when, the failure's reason); insertion order is age.
        self._failed: OrderedDict[tuple[str, int], tuple[float, str]] = OrderedDict()

    def _cached_failure(self, key: tuple[str, int]) -> str | None:
        entry = self._failed.get(key)
        if entry is None:
            return None
        until, reason = entry
        if self._clock() < until:
            return reason
        del self._failed[key]
        return None

    def _remember_failure(self, key: tuple[str, int], reason: str) -> None:
        if self._negative_ttl <= 0:
            return
        self._failed.pop(key, None)
        self._failed[key] = (self._clock() + self._negative_ttl, reason)
        while len(self._failed) > NEGATIVE_CACHE_SIZE:
            self._failed.popitem(last=False)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        key = (host.lower(), int(family))
        cached = self._cached_failure(key)
        if cached is not None:
            raise UnresolvableHost(cached)
        lookup = self._lookup or asyncio.get_running_loop().getaddrinfo
        try:
            infos = await lookup(host, port, family=family, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            reason = f"Could not resolve the host {host} ({exc.strerror})."
            self._remember_failure(key, reason)
            raise UnresolvableHost(reason) from None
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if address not in addresses:
                addresses.append(address)
        if not self._allow_private:
            _check(host, addresses)
        return [
            {
                "hostname": host,
                "host": str(address),
                "port": port,
                "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        pass


class CheckedTransport(AiohttpTransport):
    """Refuses IP-literal targets in refused ranges, which no resolver sees."""

    def __init__(self, client: aiohttp.ClientSession, allow_private_networks: bool) -> None:
        super().__init__(client=client)
        self._session = client
        self._allow_private = allow_private_networks

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise RefusedTarget(f"Refused to connect: {url.scheme} is not http or https.")
        host = url.host
        address = literal_ip(host)
        if address is not None and not self._allow_private:
            _check(host, [address])
        if address is not None and address.version == 4 and str(address) != host:
            # 2130706433, 0x7f.1, 127.1: spellings made to slip past filters; aiohttp
            # refuses them too, and no real receiver needs them.
            raise RefusedTarget(f"Refused to connect: {host} is not a canonical IPv4 address.")
        # The request as aiohttp takes it, built straight from httpx's raw headers: the
        # library transport's per-request conversions cost more than the send itself.
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers.raw
        }
        with map_aiohttp_exceptions():
            response = await self._session.request(
                request.method,
                str(url),
                headers=headers,
                data=request.content or None,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=AiohttpResponseStream(response),
            request=request,
        )


def make_transport(settings: Settings, max_connections: int = 100) -> CheckedTransport:
    """The worker's one connection pool, as an httpx transport (`handle_async_request`);
    call it inside the event loop that will use it."""
    connector = aiohttp.TCPConnector(
        ssl=ssl_context(settings.ca_bundle),
        resolver=CheckedResolver(
            settings.allow_private_networks, settings.dns_negative_ttl_seconds
        ),
        use_dns_cache=False,  # every new connection resolves, and is checked, again
        limit=max_connections,
        keepalive_timeout=30,
    )
    session = aiohttp.ClientSession(connector=connector, trust_env=False)
    return CheckedTransport(session, settings.allow_private_networks)


def make_client(settings: Settings, max_connections: int = 100) -> httpx.AsyncClient:
    """An httpx client over the same checked transport, for callers that want httpx's
    whole client (redirects off, no proxy from the environment)."""
    return httpx.AsyncClient(
        transport=make_transport(settings, max_connections),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(settings.delivery_timeout_seconds),
        headers={"user-agent": USER_AGENT},
    )
