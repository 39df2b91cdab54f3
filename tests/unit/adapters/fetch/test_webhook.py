"""The webhook sender: one deadline that includes connecting, a cap on what is read of
an answer, and errors turned into outcomes (never exceptions)."""

from __future__ import annotations

import time

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
