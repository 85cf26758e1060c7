"""Outbound safety corners (docs/api.md#outbound-safety, docs/security.md) with private
networks NOT allowed: every spelling of an inside address, at the API and at the worker's
real HTTP client; names that resolve inside; DNS rebinding between the check and the
connect.

The receivers are real servers on 127.0.0.1, and every test checks that the one standing
for "inside" got no request. Two stand-ins keep the tests off the internet:

- `dns` answers made-up names (`rebind.example`) from a script, in place of the system
  resolver that `CheckedResolver` calls (the running loop's `getaddrinfo`); other names
  are resolved for real.
- `connections` records every address aiohttp opens a socket to. A public address never
  leaves the machine: it is rerouted to a receiver standing for the public host, or the
  connect fails as unreachable. Inside addresses are connected to for real, so a transport
  that let one through would reach the inside receiver and fail the test.
"""

import asyncio
import errno
import ipaddress
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import aiohappyeyeballs
import httpx
import pytest
from arq.worker import Worker

from app.core.outbound_safety import refused_reason
from app.core.settings import Settings
from tests.conftest import Tenant
from tests.support.problems import assert_problem
from tests.support.receivers import Answer, Receiver
from tests.workers.conftest import post_purchase, wait_for_delivery
from workers.transport import PRIVATE_HINT, RefusedTarget, make_client

PUBLIC = "93.184.216.34"  # a public address; never really connected to here

AddrInfo = tuple[Any, Any, int, str, tuple[Any, ...]]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The worker tests' settings (tests/workers/conftest.py) with private networks refused."""
    return settings.model_copy(update={"allow_private_networks": False, "max_attempts": 2})


def refusing_client() -> httpx.AsyncClient:
    return make_client(Settings(allow_private_networks=False, delivery_timeout_seconds=2))


def addrinfo(address: str, port: int) -> AddrInfo:
    if ipaddress.ip_address(address).version == 6:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


class FakeDNS:
    """Scripted answers for made-up names; each lookup takes the next answer, the last
    one repeating. `lookups` lists every lookup of a scripted name, in order."""

    def __init__(self, real: Callable[..., Awaitable[list[AddrInfo]]]) -> None:
        self._real = real
        self._answers: dict[str, deque[list[str]]] = {}
        self.lookups: list[str] = []

    def answer(self, name: str, *answers: list[str]) -> None:
        self._answers[name] = deque(answers)

    async def getaddrinfo(
        self,
        host: str,
        port: int,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[AddrInfo]:
        script = self._answers.get(host)
        if script is None:
            return await self._real(host, port, family=family, type=type, proto=proto, flags=flags)
        self.lookups.append(host)
        addresses = script.popleft() if len(script) > 1 else script[0]
        return [addrinfo(address, port) for address in addresses]


class Connections:
    """Every (address, port) aiohttp opens a socket to, in order; see the module docstring."""

    def __init__(self, real: Callable[..., Awaitable[socket.socket]]) -> None:
        self._real = real
        self.addresses: list[tuple[str, int]] = []
        self.stand_ins: dict[tuple[str, int], int] = {}  # public (address, port) → local port

    async def start_connection(
        self, addr_infos: Sequence[AddrInfo], **options: Any
    ) -> socket.socket:
        reachable: list[AddrInfo] = []
        for family, type_, proto, name, sockaddr in addr_infos:
            target = (str(sockaddr[0]), int(sockaddr[1]))
            self.addresses.append(target)
            if refused_reason(ipaddress.ip_address(target[0])) is not None:
                reachable.append((family, type_, proto, name, sockaddr))  # really connected
            elif target in self.stand_ins:
                local = ("127.0.0.1", self.stand_ins[target])
                reachable.append((socket.AF_INET, type_, proto, name, local))
        if not reachable:
            raise OSError(errno.ENETUNREACH, "no route (the tests never leave the machine)")
        return await self._real(reachable, **options)


@pytest.fixture
async def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    loop = asyncio.get_running_loop()
    fake = FakeDNS(loop.getaddrinfo)
    monkeypatch.setattr(loop, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Connections:
    # aiohttp's connector opens every socket with aiohappyeyeballs.start_connection.
    recorder = Connections(aiohappyeyeballs.start_connection)
    monkeypatch.setattr(aiohappyeyeballs, "start_connection", recorder.start_connection)
    return recorder


@pytest.fixture
def public_host() -> Iterator[Receiver]:
    """The receiver that stands for a public host (see `Connections.stand_ins`)."""
    with Receiver() as running:
        yield running


# Every spelling of an inside address in a URL, and what it is refused as.
LOOPBACK = "127.0.0.1 (loopback)"
METADATA = "169.254.169.254 (link-local)"
INSIDE_LITERALS = [
    pytest.param("2130706433", LOOPBACK, id="decimal"),
    pytest.param("0177.0.0.1", LOOPBACK, id="octal-dotted"),
    pytest.param("017700000001", LOOPBACK, id="octal"),
    pytest.param("0x7f.0.0.1", LOOPBACK, id="hex-dotted"),
    pytest.param("0x7f000001", LOOPBACK, id="hex"),
    pytest.param("127.1", LOOPBACK, id="short"),
    pytest.param("127.000.000.001", LOOPBACK, id="zero-padded"),
    pytest.param("0.0.0.0", "0.0.0.0 (unspecified)", id="unspecified"),
    pytest.param("0", "0.0.0.0 (unspecified)", id="zero"),
    pytest.param("[::ffff:127.0.0.1]", LOOPBACK, id="v4-mapped-dotted"),
    pytest.param("[::ffff:7f00:1]", LOOPBACK, id="v4-mapped-hex"),
    pytest.param("[::1]", "::1 (loopback)", id="v6-loopback"),
    pytest.param("[::]", ":: (unspecified)", id="v6-unspecified"),
    pytest.param("169.254.169.254", METADATA, id="metadata"),
    pytest.param("2852039166", METADATA, id="metadata-decimal"),
    pytest.param("[::ffff:a9fe:a9fe]", METADATA, id="metadata-v4-mapped"),
    pytest.param("[2002:7f00:1::]", f"2002:7f00:1:: (6to4 of {LOOPBACK})", id="6to4-loopback"),
    pytest.param(
        "[2002:a9fe:a9fe::]", f"2002:a9fe:a9fe:: (6to4 of {METADATA})", id="6to4-metadata"
    ),
    pytest.param("[fec0::1]", "fec0::1 (site-local)", id="v6-site-local"),
]
# httpx itself refuses to parse these dotted spellings with leading zeros (InvalidURL),
# before any transport sees them; the API refuses them as the addresses they spell.
UNPARSED_BY_HTTPX = {"0177.0.0.1", "127.000.000.001"}


def webhook_body(url: str) -> dict[str, str]:
    return {"name": "inside", "url": url, "http_method": "POST", "payload_type": "json"}


def url_error(response: httpx.Response) -> str:
    """The msg of the one error of a 422 problem, which must be about `url`."""
    [error] = assert_problem(response, 422)["errors"]
    assert error["loc"] == ["body", "url"], error
    message: str = error["msg"]
    return message


# --- at the API: create and update ------------------------------------------------------


@pytest.mark.parametrize(("host", "reason"), INSIDE_LITERALS)
async def test_the_api_refuses_every_spelling_of_an_inside_address(
    tenant: Tenant, receiver: Receiver, host: str, reason: str
) -> None:
    url = f"http://{host}:{receiver.port}/hook"

    created = await tenant.api.post("/webhooks", json=webhook_body(url))
    assert reason in url_error(created)
    assert (await tenant.api.get("/webhooks")).json()["data"] == []

    webhook = await tenant.webhook()
    updated = await tenant.api.patch(f"/webhooks/{webhook['id']}", json={"url": url})
    assert reason in url_error(updated)
    assert (await tenant.fetch(f"/webhooks/{webhook['id']}"))["url"] == webhook["url"]
    assert receiver.requests == []


@pytest.mark.parametrize("host", ["localhost", "localhost.", "rebind.example"])
async def test_the_api_accepts_host_names_and_leaves_them_to_the_worker(
    tenant: Tenant, receiver: Receiver, host: str
) -> None:
    """docs/api.md#outbound-safety: IP literals are refused at create; a name is judged
    where it resolves, at each attempt (below, and tests/workers/test_lifecycle.py)."""
    url = f"http://{host}:{receiver.port}/hook"
    response = await tenant.api.post("/webhooks", json=webhook_body(url))
    assert response.status_code == 201, response.text
    assert response.json()["url"] == url
    assert receiver.requests == []


# --- at the worker's client: IP literals --------------------------------------------------


@pytest.mark.parametrize(("host", "reason"), INSIDE_LITERALS)
async def test_the_client_refuses_every_spelling_of_an_inside_address_before_connecting(
    receiver: Receiver, connections: Connections, host: str, reason: str
) -> None:
    url = f"http://{host}:{receiver.port}/hook"
    async with refusing_client() as client:
        if host in UNPARSED_BY_HTTPX:
            with pytest.raises(httpx.InvalidURL, match="Invalid IPv4 address"):
                await client.post(url, content=b"{}")
        else:
            with pytest.raises(RefusedTarget) as refused:
                await client.post(url, content=b"{}")
            assert f"resolves to {reason}; {PRIVATE_HINT}." in str(refused.value)
    assert connections.addresses == []
    assert receiver.requests == []


# --- at the worker's client: names that resolve inside ------------------------------------


@pytest.mark.parametrize(
    ("name", "answer", "reason"),
    [
        pytest.param("localhost.", ["127.0.0.1"], LOOPBACK, id="localhost-dot"),
        pytest.param("rebind.example", ["127.0.0.1"], LOOPBACK, id="loopback"),
        pytest.param("rebind.example", ["::1"], "::1 (loopback)", id="v6-loopback"),
        pytest.param("rebind.example", ["::ffff:127.0.0.1"], LOOPBACK, id="v4-mapped"),
        pytest.param("metadata.example", ["169.254.169.254"], METADATA, id="metadata"),
        pytest.param("rebind.example", ["10.0.0.7"], "10.0.0.7 (private)", id="private"),
        # One inside answer among public ones is enough: aiohttp might try any of them.
        pytest.param("rebind.example", [PUBLIC, "127.0.0.1"], LOOPBACK, id="mixed"),
    ],
)
async def test_the_client_refuses_a_name_resolving_inside_before_connecting(
    receiver: Receiver,
    dns: FakeDNS,
    connections: Connections,
    name: str,
    answer: list[str],
    reason: str,
) -> None:
    dns.answer(name, answer)
    async with refusing_client() as client:
        with pytest.raises(RefusedTarget) as refused:
            await client.post(f"http://{name}:{receiver.port}/hook", content=b"{}")
    assert str(refused.value).startswith(f"Refused to connect: {name} resolves to {reason};")
    assert dns.lookups == [name]
    assert connections.addresses == []
    assert receiver.requests == []


# --- DNS rebinding: the answer changes between the check and the connect ------------------


async def test_the_address_connected_to_is_the_one_checked(
    receiver: Receiver, public_host: Receiver, dns: FakeDNS, connections: Connections
) -> None:
    """First lookup public, any later one inside. A transport that checked one lookup and
    connected by another would reach `receiver` (inside); this one connects to the very
    address it checked, and looks the name up once."""
    dns.answer("rebind.example", [PUBLIC], ["127.0.0.1"])
    connections.stand_ins[(PUBLIC, receiver.port)] = public_host.port

    async with refusing_client() as client:
        response = await client.post(f"http://rebind.example:{receiver.port}/hook", content=b"{}")

    assert response.status_code == 200
    assert dns.lookups == ["rebind.example"]
    assert connections.addresses == [(PUBLIC, receiver.port)]
    [request] = public_host.requests
    assert request.headers["host"] == f"rebind.example:{receiver.port}"
    assert receiver.requests == []


async def test_a_kept_alive_connection_stays_with_the_checked_address(
    receiver: Receiver, public_host: Receiver, dns: FakeDNS, connections: Connections
) -> None:
    dns.answer("rebind.example", [PUBLIC], ["127.0.0.1"])
    connections.stand_ins[(PUBLIC, receiver.port)] = public_host.port

    async with refusing_client() as client:
        for _ in range(3):
            response = await client.post(
                f"http://rebind.example:{receiver.port}/hook", content=b"{}"
            )
            assert response.status_code == 200

    assert dns.lookups == ["rebind.example"]  # one connection, reused
    assert connections.addresses == [(PUBLIC, receiver.port)]
    assert len(public_host.requests) == 3
    assert receiver.requests == []


async def test_each_new_connection_resolves_and_is_checked_again(
    receiver: Receiver, public_host: Receiver, dns: FakeDNS, connections: Connections
) -> None:
    """The public host closes the connection; the next request needs a new one, whose
    lookup now answers inside: refused, before any connect."""
    dns.answer("rebind.example", [PUBLIC], ["127.0.0.1"])
    connections.stand_ins[(PUBLIC, receiver.port)] = public_host.port
    public_host.default = Answer(headers={"Connection": "close"})
    url = f"http://rebind.example:{receiver.port}/hook"

    async with refusing_client() as client:
        first = await client.post(url, content=b"{}")
        with pytest.raises(RefusedTarget, match=r"rebind\.example resolves to 127\.0\.0\.1"):
            await client.post(url, content=b"{}")

    assert first.status_code == 200
    assert dns.lookups == ["rebind.example", "rebind.example"]
    assert connections.addresses == [(PUBLIC, receiver.port)]
    assert len(public_host.requests) == 1
    assert receiver.requests == []


async def test_rebinding_between_attempts_is_a_refused_attempt(
    tenant: Tenant,
    receiver: Receiver,
    public_host: Receiver,
    dns: FakeDNS,
    connections: Connections,
    worker: Worker,
) -> None:
    """The whole path: a name that passed creation answers public for the first attempt
    (a 500, so there is a second) and inside for the second, which is refused."""
    dns.answer("rebind.example", [PUBLIC], ["127.0.0.1"])
    connections.stand_ins[(PUBLIC, receiver.port)] = public_host.port
    public_host.default = Answer(500, body=b"try again", headers={"Connection": "close"})
    await tenant.subscribed_webhook(url=f"http://rebind.example:{receiver.port}/hook")
    delivery_id = await post_purchase(tenant)

    delivery = await wait_for_delivery(tenant, delivery_id)

    assert delivery["status"] == "failed"
    first, second = delivery["attempts"]
    assert (first["status_code"], first["response_body"]) == (500, "try again")
    assert second["status_code"] is None
    assert second["error"] == (
        f"Refused to connect: rebind.example resolves to {LOOPBACK}; {PRIVATE_HINT}."
    )
    assert delivery["last_error"] == second["error"]
    assert [first["error_class"], second["error_class"]] == ["http_status", "refused_target"]
    assert delivery["last_error_class"] == "refused_target"
    assert dns.lookups == ["rebind.example", "rebind.example"]
    assert connections.addresses == [(PUBLIC, receiver.port)]
    assert len(public_host.requests) == 1
    assert receiver.requests == []
