"""Outbound safety (docs/api.md#outbound-safety) below the job: the worker's real HTTP
client against a real receiver on 127.0.0.1, and the address rules it shares with the
API."""

import ipaddress

import pytest

from app.core.outbound_safety import literal_ip, refused_reason
from app.core.settings import Settings
from tests.support.receivers import Receiver
from workers.transport import RefusedTarget, make_client

# Every spelling of the loopback receiver that a resolver accepts.
CANONICAL_LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::ffff:127.0.0.1]"]
LOOPBACK_HOSTS = [*CANONICAL_LOOPBACK_HOSTS, "2130706433"]


def client_settings(allow_private_networks: bool) -> Settings:
    return Settings(allow_private_networks=allow_private_networks, delivery_timeout_seconds=2)


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
async def test_the_client_refuses_to_connect_to_loopback(receiver: Receiver, host: str) -> None:
    async with make_client(client_settings(allow_private_networks=False)) as client:
        with pytest.raises(RefusedTarget, match=r"127\.0\.0\.1|::1"):
            await client.post(f"http://{host}:{receiver.port}/hook", content=b"{}")
    assert receiver.requests == []


@pytest.mark.parametrize("host", CANONICAL_LOOPBACK_HOSTS)
async def test_the_client_reaches_loopback_when_private_networks_are_allowed(
    receiver: Receiver, host: str
) -> None:
    async with make_client(client_settings(allow_private_networks=True)) as client:
        response = await client.post(f"http://{host}:{receiver.port}/hook", content=b"{}")
    assert response.status_code == 200
    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.body == b"{}"


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "127.0.0.1",
        "::1",
        "fe80::1",
        "224.0.0.1",
        "0.0.0.0",
        "100.64.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    reason = refused_reason(ipaddress.ip_address(address))
    assert reason is not None
    assert reason


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refused_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("93.184.216.34", "93.184.216.34"),
    ],
)
def test_literal_ip_reads_every_spelling_of_an_address(host: str, address: str) -> None:
    assert literal_ip(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "hooks.example.com", "localhost", ""])
def test_literal_ip_is_none_for_a_host_name(host: str) -> None:
    assert literal_ip(host) is None


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1"])
async def test_legacy_ipv4_spellings_are_refused_even_when_private_networks_are_allowed(
    receiver: Receiver, host: str
) -> None:
    async with make_client(client_settings(allow_private_networks=True)) as client:
        with pytest.raises(RefusedTarget, match="not a canonical IPv4 address"):
            await client.post(f"http://{host}:{receiver.port}/hook", content=b"{}")
    assert receiver.requests == []
