"""Outbound safety (API.md §6) and the one shared HTTP client of a worker process.

Each new connection resolves the target's host, refuses it when any address is
in a refused range, and connects to the address that was checked: the host name
is kept for the Host header and for TLS (SNI and certificate checks), so a DNS
answer that changes between the check and the connect cannot reach inside.
Pooled keep-alive connections are reused only for the origin whose address was
checked when they were opened.
"""

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable

import certifi
import httpcore
import httpx

from app import __version__
from app.outbound_safety import IPAddress, refused_reason
from app.settings import Settings

USER_AGENT = f"storehooks/{__version__}"


class RefusedTarget(Exception):
    """The target resolves to an address that webhooks may not reach."""


class UnresolvableHost(Exception):
    """The target's host name does not resolve."""


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to addresses that passed the check."""

    def __init__(self, allow_private_networks: bool) -> None:
        self._allow_private = allow_private_networks
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port)
        if not self._allow_private:
            for address in addresses:
                reason = refused_reason(address)
                if reason is not None:
                    raise RefusedTarget(
                        f"Refused to connect: {host} resolves to {reason}; private "
                        "networks are not allowed (STOREHOOKS_ALLOW_PRIVATE_NETWORKS)."
                    )
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedTarget("Unix sockets are never a webhook target.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

    @staticmethod
    async def _resolve(host: str, port: int) -> list[IPAddress]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise UnresolvableHost(f"Could not resolve the host {host} ({exc.strerror}).") from None
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if address not in addresses:
                addresses.append(address)
        return addresses


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Certifi's roots plus STOREHOOKS_CA_BUNDLE; verification is never switched off."""
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return context


def make_client(settings: Settings, max_connections: int = 100) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(verify=ssl_context(settings.ca_bundle), trust_env=False)
    # httpx takes no network backend argument, so its pool is rebuilt around ours
    # (tests/workers/test_outbound_safety.py fails loudly if this stops working).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context(settings.ca_bundle),
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=30,
        network_backend=CheckedBackend(settings.allow_private_networks),
    )
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(settings.delivery_timeout_seconds),
        headers={"user-agent": USER_AGENT},
    )
