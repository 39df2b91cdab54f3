"""The one SSRF guard of every outgoing request (URL imports, webhook deliveries).

A request may reach only public unicast addresses over http or https. Loopback,
private, shared, link-local (the cloud metadata address 169.254.169.254 among them),
multicast, reserved and unspecified addresses are refused, whether named by an IP
literal, by a DNS name that resolves there, or by a redirect, unless the operator's
allow-list (``ASSETVAULT_FETCH_ALLOW``) names the host, the host and port, or a network
holding the address. An IPv6 address that carries an IPv4 address by a transition
mechanism (IPv4-mapped, IPv4-compatible, IPv4-translated, 6to4, Teredo, NAT64 with
the well-known or a local-use prefix) is judged by that IPv4 address too, since a
relay or translator on the way delivers to it. The guard resolves a name once and the
client connects to the address it approved, so a name that resolves anew elsewhere
(DNS rebinding) gains nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses it resolves to (tests stub this; nothing else should)
Resolver = Callable[[str, int], Awaitable[list[str]]]

ALLOWED_SCHEMES = ("http", "https")
RESOLVE_SECONDS = 5.0
DEFAULT_PORTS = {"http": 80, "https": 443}


class FetchBlocked(Exception):
    """An outgoing request the guard refuses; ``reason`` says why, for a job's result
    or a delivery attempt."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AllowList:
    """Entries of ``ASSETVAULT_FETCH_ALLOW``: ``host``, ``host:port`` (``[v6]:port``)
    or a CIDR network (a bare IP is a host entry and a /32 network both)."""

    hosts: frozenset[str] = frozenset()
    host_ports: frozenset[tuple[str, int]] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> AllowList:
        hosts: set[str] = set()
        host_ports: set[tuple[str, int]] = set()
        networks: list[IPNetwork] = []
        for raw in (text or "").split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(
                        f"fetch allow-list: {raw.strip()!r} is no CIDR network"
                    ) from None
                continue
            host, port = _split_host_port(entry, raw.strip())
            literal = _ip_or_none(host)
            if literal is not None:
                host = str(literal)
            if port is not None:
                host_ports.add((host, port))
            elif literal is not None:
                networks.append(ipaddress.ip_network(literal))
            else:
                hosts.add(host)
        return cls(frozenset(hosts), frozenset(host_ports), tuple(networks))

    def names(self, host: str, port: int) -> bool:
        """Whether the operator allowed this host (or host and port) by name."""
        host = host.lower().strip("[]")
        literal = _ip_or_none(host)
        if literal is not None:
            host = str(literal)
        return host in self.hosts or (host, port) in self.host_ports

    def holds(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def __bool__(self) -> bool:
        return bool(self.hosts or self.host_ports or self.networks)


def _ip_or_none(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _split_host_port(entry: str, raw: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"fetch allow-list: {raw!r} is no host[:port]")
        port_text = rest[1:] if rest else None
    elif entry.count(":") == 1:
        host, port_text = entry.split(":")
    else:
        host, port_text = entry, None  # a name, an IPv4 address or a bare IPv6 address
    if not host:
        raise ValueError(f"fetch allow-list: {raw!r} names no host")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"fetch allow-list: {raw!r} has no valid port")
    return host, int(port_text)


# IPv6 prefixes whose last 32 bits are an IPv4 address: IPv4-compatible (RFC 4291,
# deprecated; :: and ::1 are not), IPv4-translated (RFC 2765), NAT64's well-known
# prefix (RFC 6052).
_LAST_32_BITS = (
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
    ipaddress.IPv6Network("64:ff9b::/96"),
)
# NAT64's local-use prefix (RFC 8215) may be any of RFC 6052's lengths from /48 on:
# the IPv4 address sits at the place each length gives it (bits 64-71 skipped).
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_RFC6052_PLACES = (48, 56, 64, 96)


def _rfc6052(value: int, prefix_length: int) -> ipaddress.IPv4Address:
    bits = f"{value:0128b}"
    if prefix_length < 64:
        raw = bits[prefix_length:64] + bits[72 : 72 + 32 - (64 - prefix_length)]
    elif prefix_length == 64:
        raw = bits[72:104]
    else:
        raw = bits[96:128]
    return ipaddress.IPv4Address(int(raw, 2))


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries by a transition mechanism (none for
    an ordinary one): where a packet to it may in the end be delivered."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # the server, and the client (deobfuscated)
    if int(address) > 1 and any(address in net for net in _LAST_32_BITS):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address in _NAT64_LOCAL:
        found.extend(_rfc6052(int(address), length) for length in _RFC6052_PLACES)
    return list(dict.fromkeys(found))


def _own_refusal(address: IPAddress) -> str | None:
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved address"
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why an address is no public unicast address, or None when it is one. An IPv6
    address embedding an IPv4 address is refused when either of them is."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _own_refusal(address.ipv4_mapped)
        for inner in embedded_ipv4(address):
            refusal = _own_refusal(inner)
            if refusal is not None:
                return f"an IPv6 address embedding {inner}, {refusal}"
    return _own_refusal(address)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """A URL the guard approved and the address to connect to for it."""

    url: httpx.URL
    host: str
    port: int
    address: str


@dataclass
class Guard:
    allow: AllowList = field(default_factory=AllowList)
    resolver: Resolver = system_resolver

    async def vet(self, url: str | httpx.URL) -> Target:
        """Approve ``url`` and pick the address to connect to, or raise FetchBlocked."""
        try:
            parsed = httpx.URL(url)
            host = parsed.host.lower()  # decoded here: a malformed IDNA name raises
        except (httpx.InvalidURL, TypeError, ValueError):
            raise FetchBlocked(f"{str(url)[:200]!r} is no valid URL") from None
        scheme = parsed.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise FetchBlocked(f"scheme {scheme or '(none)'!r} is not allowed; use http or https")
        if not host:
            raise FetchBlocked("the URL names no host")
        if parsed.userinfo:
            raise FetchBlocked("credentials in the URL are not allowed")
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise FetchBlocked(f"port {parsed.port} is no TCP port")
        port = parsed.port or DEFAULT_PORTS[scheme]
        named = self.allow.names(host, port)
        literal = _ip_or_none(host)
        if literal is not None:
            candidates = [str(literal)]
        else:
            try:
                async with asyncio.timeout(RESOLVE_SECONDS):
                    candidates = await self.resolver(host, port)
            except TimeoutError:
                raise FetchBlocked(
                    f"host {host!r} did not resolve within {RESOLVE_SECONDS:g} s"
                ) from None
            except (OSError, UnicodeError) as exc:
                raise FetchBlocked(f"host {host!r} does not resolve ({exc})") from None
            if not candidates:
                raise FetchBlocked(f"host {host!r} does not resolve")
        chosen: str | None = None
        for candidate in candidates:
            address = ipaddress.ip_address(candidate)
            refusal = None if named or self.allow.holds(address) else address_refusal(address)
            if refusal is not None:
                # Every address of the name must be public: a name with one private
                # address among public ones is refused, not tried address by address.
                where = host if literal is not None else f"{host} ({candidate})"
                raise FetchBlocked(
                    f"{where} is {refusal}; outgoing requests may reach only public "
                    "addresses unless ASSETVAULT_FETCH_ALLOW allows it"
                )
            chosen = chosen or candidate
        assert chosen is not None
        return Target(parsed, host, port, chosen)
