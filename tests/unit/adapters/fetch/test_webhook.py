"""The webhook sender: one deadline that includes connecting, a cap on what is read of
an answer, and errors turned into outcomes (never exceptions)."""

from __future__ import annotations

import time

import pytest

from assetvault.adapters.fetch.guard import AllowList, Guard
from assetvault.adapters.fetch.webhook import GuardedWebhookSender
from tests.receivers import Received, Reply, receiver


def sender(timeout: float = 0.5, cap: int = 1000) -> GuardedWebhookSender:
    return GuardedWebhookSender(Guard(AllowList.parse("127.0.0.1")), timeout=timeout, max_body=cap)


async def test_a_slow_receiver_is_cut_off_at_the_deadline() -> None:
    def slow(r: Received) -> Reply:
        time.sleep(2)
        return Reply(200)

    with receiver(slow) as hook:
        s = sender(timeout=0.5)
        started = time.monotonic()
        outcome = await s.send("POST", hook.url, headers={}, body=b"{}")
        took = time.monotonic() - started
        await s.aclose()
    assert outcome.status is None and "timed out" in (outcome.error or "")
    assert outcome.retryable and 0.4 < took < 1.5


async def test_a_huge_answer_is_not_read_but_its_status_counts() -> None:
    with receiver(lambda r: Reply(200, b"x" * 5_000_000)) as hook:
        s = sender(cap=1000)
        outcome = await s.send("POST", hook.url, headers={}, body=b"{}")
        await s.aclose()
    assert outcome.ok and len(outcome.body) <= 1000


async def test_a_closed_port_is_a_retryable_outcome() -> None:
    with receiver() as hook:
        url = hook.url
    s = sender()
    outcome = await s.send("POST", url, headers={}, body=b"{}")
    await s.aclose()
    assert outcome.status is None and outcome.retryable and outcome.error


async def test_a_refused_address_is_final_and_nothing_is_sent() -> None:
    with receiver() as hook:
        s = GuardedWebhookSender(Guard(), timeout=0.5, max_body=100)
        outcome = await s.send("POST", hook.url, headers={}, body=b"{}")
        assert await s.vet(hook.url) is not None
        await s.aclose()
        assert hook.received == []
    assert outcome.blocked and not outcome.retryable and "loopback" in (outcome.error or "")


async def test_redirects_are_not_followed() -> None:
    with receiver() as target:
        moved = Reply(307, headers={"location": target.url})
        with receiver(lambda r: moved) as hook:
            s = sender()
            outcome = await s.send("POST", hook.url, headers={}, body=b"{}")
            await s.aclose()
        assert outcome.status == 307 and not outcome.ok and not outcome.retryable
        assert target.received == []


REDIRECT = b"HTTP/1.1 302 Found\r\ncontent-length: 0\r\nconnection: close\r\n"


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (Reply(302, headers={"location": "http://xn--/"}), 302),  # an IDNA error in httpx
        (Reply(307, headers={"location": "http://[::1"}), 307),
        (Reply(301, headers={"location": "http://a:b:c@/x"}), 301),
        (Reply(raw=REDIRECT + "location: http://\u00e9x\u2028.com/\r\n\r\n".encode()), 302),
        (Reply(raw=REDIRECT + b"location: \xff\xfe\r\n\r\n"), 302),
        (Reply(raw=b"HTTP/1.1 600 Odd\r\ncontent-length: 0\r\n\r\n"), 600),
        # Once the status has come, a body that breaks is not read: the status counts.
        (Reply(raw=b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc"), 200),
        (Reply(200, b"not gzip", {"content-encoding": "gzip"}), 200),
        # A head and a broken body that come in one read are parsed as one answer (by the
        # C parser): no status can be told, so it is a failed attempt with the parser's
        # reason, retried as a 503 would be.
        (Reply(raw=b"HTTP/1.1 503 No\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"), None),
        # No status: a failed attempt retried as a connection error is.
        (Reply(raw=b"garbage\r\n\r\n"), None),
        (Reply(raw=REDIRECT + b"location: \x00\r\n\r\n"), None),
        (Reply(raw=b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\n"), None),
        (Reply(raw=b""), None),
    ],
    ids=lambda v: repr(v)[:60] if not isinstance(v, int | None) else str(v),
)
async def test_any_answer_is_an_outcome_never_an_exception(
    reply: Reply, status: int | None
) -> None:
    with receiver(lambda r: reply) as hook:
        s = sender()
        outcome = await s.send("POST", hook.url, headers={}, body=b"{}")
        await s.aclose()
    assert outcome.status == status and outcome.ok == (status == 200)
    if status is None:
        assert outcome.retryable and outcome.error and outcome.error.isprintable()
        assert len(outcome.error) <= 500
