"""Which push endpoints the server will POST to: https to a public host, nothing else.

A push endpoint comes from the patient's browser, so it is untrusted input: without these
checks a device token could make the server POST into the clinic's own network. An
endpoint is checked when it is saved (`check_endpoint_resolves`) and again when a push is
sent (`check_endpoint`, and `guarded_socket` on the address actually connected to).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from backend.platform.messages import Refusal


class EndpointRefused(Refusal, ValueError):
    """A push endpoint the server will not POST to (422); str() is the Dutch text."""


class RefusedAddress(OSError):
    """A push endpoint's host is (or resolves to) an address inside a private network."""


# 64:ff9b::/96 (NAT64) carries an IPv4 address in its last 32 bits, like ::ffff:0:0/96.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def address_is_public(address: str) -> bool:
    """True for an address on the public internet; False for private, loopback, link-local,
    CGNAT, unique-local, multicast, reserved and unspecified ones, also when an IPv4 address
    hides inside an IPv6 form (mapped, compatible, 6to4, Teredo, NAT64)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not address_is_public(str(embedded)):
            return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback or ip.is_link_local
    )


def _address_is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _numeric_host(host: str) -> str | None:
    """The address a host written as a number stands for ("2130706433", "0x7f.1", "127.1",
    "[::1]"), as the C resolver would read it; None for a name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-FxX.]+", host) and not host.endswith(".."):
        try:
            return socket.inet_ntoa(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def check_endpoint(endpoint: Any, *, allow_loopback: bool = False) -> str:
    """The endpoint if it is an https URL to a public host (or, with `allow_loopback`, plain
    http to this machine); ValueError naming `endpoint` otherwise. A host name is checked
    by `check_endpoint_resolves` and again, address by address, when connecting."""
    if not isinstance(endpoint, str) or not endpoint:
        raise EndpointRefused("push.endpoint_missing")
    if len(endpoint) > 2048 or any(c.isspace() for c in endpoint):
        raise EndpointRefused("push.endpoint_invalid")
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise EndpointRefused("push.endpoint_invalid") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EndpointRefused("push.endpoint_https")
    if parts.username or parts.password or parts.fragment:
        raise EndpointRefused("push.endpoint_not_push")
    host = parts.hostname
    numeric = _numeric_host(host)
    loopback = host == "localhost" or (numeric is not None and _address_is_loopback(numeric))
    if allow_loopback and loopback:
        return endpoint
    if parts.scheme != "https":
        raise EndpointRefused("push.endpoint_https")
    # A push service is on the public internet; anything else would let a device token make
    # the server POST into the clinic's own network.
    if loopback or (numeric is not None and not address_is_public(numeric)):
        raise EndpointRefused("push.endpoint_private")
    return endpoint


async def check_endpoint_resolves(endpoint: Any, *, allow_loopback: bool = False) -> str:
    """`check_endpoint`, and every address the host name resolves to now must be public.

    A name that does not resolve at this moment is kept (push services' names do resolve;
    a failing resolver must not cost a patient their reminders): the connection checks the
    address it actually connects to anyway (`guarded_socket`).
    """
    endpoint = check_endpoint(endpoint, allow_loopback=allow_loopback)
    host = urlsplit(endpoint).hostname or ""
    if _numeric_host(host) is not None or (allow_loopback and host == "localhost"):
        return endpoint
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, 443, type=socket.SOCK_STREAM), 3.0)
    except (OSError, TimeoutError):
        return endpoint
    if any(not address_is_public(str(info[4][0])) for info in infos):
        raise EndpointRefused("push.endpoint_private")
    return endpoint


def guarded_socket(allow_loopback: bool):
    """aiohttp's socket factory: refuses to connect to a non-public address. It sees the
    address actually connected to (after DNS), so a name that resolved to a public address
    when subscribing and to 10.0.0.5 now (DNS rebinding) is still refused."""

    def make(addr_info: tuple) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = str(sockaddr[0])
        if not (address_is_public(address) or (allow_loopback and _address_is_loopback(address))):
            raise RefusedAddress(f"push endpoint resolves to a non-public address {address}")
        return socket.socket(family=family, type=type_, proto=proto)

    return make
