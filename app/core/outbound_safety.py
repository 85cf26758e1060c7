"""Which addresses a webhook may never reach (docs/security.md, Outbound requests),
unless private networks are allowed.

Shared by the API (refusing IP literals at create/update) and the worker
(refusing every resolved address at each attempt).
"""

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def refused_reason(address: IPAddress) -> str | None:
    """Why `address` is refused ("127.0.0.1 (loopback)"), or None when it is
    a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv6Address) and address.sixtofour is not None:
        # 2002:7f00:1:: is 6to4 for 127.0.0.1, yet `ipaddress` calls 2002::/16 global.
        inner = refused_reason(address.sixtofour)
        if inner is not None:
            return f"{address} (6to4 of {inner})"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        # fec0::/10, deprecated but still routed where configured; `ipaddress` calls it global.
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        # Everything else that is not globally routable: shared address space
        # (100.64/10), documentation and benchmarking ranges, 6to4 relays...
        ("non-public", not address.is_global),
    )
    for name, hit in checks:
        if hit:
            return f"{address} ({name})"
    return None


def literal_ip(host: str) -> IPAddress | None:
    """The address a host names literally, including the legacy IPv4 spellings
    (`2130706433`, `0x7f.1`, `017700000001`) that resolvers still accept."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if host and all(char in "0123456789abcdefxABCDEFX." for char in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None
