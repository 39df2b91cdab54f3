"""The SSRF guard: its decisions (stubbed resolvers, never a connection to a refused
address) and the guarded client against real loopback servers."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from assetvault.adapters.fetch.client import GuardedClient, ResponseTooLarge, read_capped
from assetvault.adapters.fetch.guard import AllowList, FetchBlocked, Guard, address_refusal
from assetvault.settings import Settings
from tests.receivers import Reply, receiver


def resolving_to(*addresses: str):
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "reserved"),  # shared address space (carrier-grade NAT)
        ("192.0.2.10", "private"),  # documentation range
    ],
)
def test_non_public_addresses_are_refused(address: str, why: str) -> None:
    refusal = address_refusal(ipaddress.ip_address(address))
    assert refusal is not None and why in refusal


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def _v6(high: int, v4: ipaddress.IPv4Address, shift: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(high | (int(v4) << shift))


def _rfc6052(prefix: int, length: int, v4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    """RFC 6052's placing of an IPv4 address after a prefix of ``length`` bits, the
    octet at bits 64-71 left zero (written out here, not taken from the guard)."""
    bits = f"{prefix:0128b}"[:length] + f"{int(v4):032b}"
    if length <= 64:
        bits = bits[:64] + "00000000" + bits[64:]
    return ipaddress.IPv6Address(int(bits.ljust(128, "0")[:128], 2))


def _teredo(v4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    # 2001:0::/32, a public Teredo server, flags, port, and the client obfuscated (XOR)
    server = int(ipaddress.IPv4Address("65.54.227.120"))
    return ipaddress.IPv6Address(
        (0x20010000 << 96)
        | (server << 64)
        | (0x8000 << 48)
        | (0xFFFF << 32)
        | (int(v4) ^ 0xFFFFFFFF)
    )


# Every way an IPv6 address carries an IPv4 address; each builds the address from v4.
EMBEDDINGS = {
    "ipv4-mapped": lambda v4: _v6(0xFFFF << 32, v4, 0),
    "ipv4-compatible": lambda v4: _v6(0, v4, 0),
    "ipv4-translated": lambda v4: _v6(0xFFFF << 48, v4, 0),
    "6to4": lambda v4: _v6(0x2002 << 112 | 1, v4, 80),
    "nat64-well-known": lambda v4: _v6(0x64FF9B << 96, v4, 0),
    **{
        f"nat64-local-use/{n}": (
            lambda v4, n=n: _rfc6052(0x0064FF9B0001 << 80, n, v4)  # type: ignore[misc]
        )
        for n in (48, 56, 64, 96)
    },
    "teredo": _teredo,
}
REFUSED_IPV4 = ["127.0.0.1", "10.0.0.7", "192.168.1.1", "169.254.169.254", "0.0.0.0"]


@pytest.mark.parametrize("v4", REFUSED_IPV4)
@pytest.mark.parametrize("how", sorted(EMBEDDINGS))
async def test_an_ipv6_address_embedding_a_refused_ipv4_is_refused(how: str, v4: str) -> None:
    address = EMBEDDINGS[how](ipaddress.IPv4Address(v4))
    refusal = address_refusal(address)
    assert refusal is not None, f"{address} ({how} of {v4}) passed"
    # directly, as a literal in the URL, and through a DNS answer
    with pytest.raises(FetchBlocked):
        await Guard().vet(f"http://[{address}]/latest/meta-data/")
    with pytest.raises(FetchBlocked):
        await Guard(resolver=resolving_to(str(address))).vet("http://sneaky.example.com/")


@pytest.mark.parametrize("how", ["6to4", "ipv4-mapped"])
def test_an_ipv6_address_embedding_a_public_ipv4_passes(how: str) -> None:
    assert address_refusal(EMBEDDINGS[how](ipaddress.IPv4Address("8.8.8.8"))) is None


async def test_a_name_resolving_to_the_metadata_address_is_refused() -> None:
    guard = Guard(resolver=resolving_to("169.254.169.254"))
    with pytest.raises(FetchBlocked, match="link-local"):
        await guard.vet("http://metadata.example.com/latest/meta-data/")


async def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    guard = Guard(resolver=resolving_to("93.184.216.34", "10.0.0.7"))
    with pytest.raises(FetchBlocked, match="private"):
        await guard.vet("https://mixed.example.com/")


async def test_a_public_name_is_pinned_to_its_resolved_address() -> None:
    guard = Guard(resolver=resolving_to("93.184.216.34"))
    target = await guard.vet("https://files.example.com/a.jpg")
    assert (target.host, target.port, target.address) == ("files.example.com", 443, "93.184.216.34")


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/x",
        "gopher://example.com/",
        "http://user:pw@example.com/",
        "http:///nohost",
        "http://example.com:99999/",
        "http://example.com:0/",
        "not a url at all \x00",
    ],
)
async def test_only_plain_http_and_https_urls(url: str) -> None:
    with pytest.raises(FetchBlocked):
        await Guard(resolver=resolving_to("93.184.216.34")).vet(url)


async def test_an_unresolvable_name_is_refused() -> None:
    async def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(FetchBlocked, match="does not resolve"):
        await Guard(resolver=fails).vet("http://nowhere.invalid/")


def test_allow_list_entries() -> None:
    allow = AllowList.parse(" 127.0.0.1:8080, hooks.internal ,10.0.0.0/8,[::1]:9000, ::1 ")
    assert allow.names("127.0.0.1", 8080) and not allow.names("127.0.0.1", 8081)
    assert allow.names("HOOKS.internal", 1234)
    assert allow.names("[::1]", 9000) and allow.names("0:0:0:0:0:0:0:1", 9000)
    assert allow.holds(ipaddress.ip_address("10.200.0.1"))
    assert allow.holds(ipaddress.ip_address("::1"))
    assert not allow.holds(ipaddress.ip_address("11.0.0.1"))
    assert not AllowList.parse("")


@pytest.mark.parametrize(
    "entry", ["10.0.0.0/33", "host:0", "host:99999", "host:abc", ":80", "[::1"]
)
def test_a_bad_allow_list_entry_is_refused_at_start(entry: str) -> None:
    with pytest.raises(ValueError):
        AllowList.parse(entry)
    with pytest.raises(ValueError):
        Settings(fetch_allow=entry)


async def test_allowed_by_network_or_by_host_and_port() -> None:
    by_network = Guard(AllowList.parse("10.0.0.0/8"), resolver=resolving_to("10.1.1.1"))
    assert (await by_network.vet("http://nas.lan/x")).address == "10.1.1.1"
    by_port = Guard(AllowList.parse("127.0.0.1:8080"))
    assert (await by_port.vet("http://127.0.0.1:8080/")).address == "127.0.0.1"
    with pytest.raises(FetchBlocked, match="loopback"):
        await by_port.vet("http://127.0.0.1:8081/")


async def test_the_client_never_connects_to_a_refused_loopback_server() -> None:
    with receiver() as server:
        async with GuardedClient(Guard()) as client:
            with pytest.raises(FetchBlocked, match="loopback"):
                async with client.stream("GET", server.url + "/x"):
                    pass
        assert server.received == []


async def test_a_name_resolving_to_loopback_is_refused_by_the_real_resolver() -> None:
    with receiver() as server:
        async with GuardedClient(Guard()) as client:
            with pytest.raises(FetchBlocked, match="loopback"):
                async with client.stream("GET", f"http://localhost:{server.port}/x"):
                    pass
        assert server.received == []


async def test_an_allowed_server_is_reached_with_its_name_in_the_host_header() -> None:
    with receiver(lambda r: Reply(200, b"hello")) as server:
        guard = Guard(AllowList.parse("files.test"), resolver=resolving_to("127.0.0.1"))
        url = f"http://files.test:{server.port}/a?b=1"
        async with GuardedClient(guard) as client, client.stream("GET", url) as fetch:
            assert fetch.response.status_code == 200
            assert await read_capped(fetch.response, 100) == b"hello"
        assert server.received[0].headers["host"] == f"files.test:{server.port}"
        assert server.received[0].path == "/a?b=1"


async def test_a_redirect_to_a_refused_address_is_refused_before_connecting() -> None:
    with receiver() as inner:
        with receiver(
            lambda r: Reply(302, headers={"location": f"http://127.0.0.1:{inner.port}/secret"})
        ) as outer:
            guard = Guard(AllowList.parse(f"127.0.0.1:{outer.port}"))
            async with GuardedClient(guard) as client:
                with pytest.raises(FetchBlocked, match="loopback"):
                    async with client.stream("GET", outer.url + "/start"):
                        pass
            assert len(outer.received) == 1
        assert inner.received == []


async def test_a_redirect_to_an_allowed_address_is_followed() -> None:
    with receiver(lambda r: Reply(200, b"final")) as inner:
        moved = Reply(301, headers={"location": inner.url + "/end"})
        with receiver(lambda r: moved) as outer:
            guard = Guard(AllowList.parse(f"127.0.0.1:{outer.port},127.0.0.1:{inner.port}"))
            async with (
                GuardedClient(guard) as client,
                client.stream("GET", outer.url + "/start") as fetch,
            ):
                assert await read_capped(fetch.response, 100) == b"final"
                assert str(fetch.url) == inner.url + "/end"


async def test_redirects_are_bounded() -> None:
    with receiver(lambda r: Reply(302, headers={"location": "/again"})) as loop:
        guard = Guard(AllowList.parse(f"127.0.0.1:{loop.port}"))
        async with GuardedClient(guard, max_redirects=3) as client:
            with pytest.raises(FetchBlocked, match="more than 3 redirects"):
                async with client.stream("GET", loop.url + "/"):
                    pass
        assert len(loop.received) == 4


async def test_a_huge_body_is_cut_off() -> None:
    with receiver(lambda r: Reply(200, b"x" * 10_000)) as server:
        guard = Guard(AllowList.parse(f"127.0.0.1:{server.port}"))
        async with GuardedClient(guard) as client, client.stream("GET", server.url) as fetch:
            with pytest.raises(ResponseTooLarge):
                await read_capped(fetch.response, 1000)


@pytest.mark.parametrize("location", ["http://xn--/", "http://[::1", "http://a:b:c@/x", "//["])
async def test_a_malformed_redirect_is_an_http_error_or_refused(location: str) -> None:
    """Never an error of another type (httpx's own parsing of an IDNA name raises one)."""
    with receiver(lambda r: Reply(302, headers={"location": location})) as server:
        guard = Guard(AllowList.parse(f"127.0.0.1:{server.port}"))
        async with GuardedClient(guard) as client:
            with pytest.raises((httpx.HTTPError, FetchBlocked)):
                async with client.stream("GET", server.url + "/start"):
                    pass


@pytest.mark.parametrize("url", ["http://xn--/", "http://xn--a.\u00e9/", "http://[::1/"])
async def test_a_malformed_host_is_refused(url: str) -> None:
    with pytest.raises(FetchBlocked, match="no valid URL"):
        await Guard().vet(url)
