"""kill -9 under mixed load: uploads, metadata writes, moves, deletes, URL imports and
webhook deliveries run while the whole server, its worker, its background process or one
of its API processes is killed at random points. Afterwards every acknowledged change is
there, every job is terminal, every event was delivered, and after the sweep no blob or
row is left without its owner.

`make test` runs a short round (ASSETVAULT_KILLS, default 4: the server and each kind of
child once); `make soak` a long one. ASSETVAULT_KILL_SEED replays a run."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer, create_token
from tests.receivers import receiver
from tests.soak import checks
from tests.soak.load import (
    ENV,
    Lane,
    Stats,
    files_handler,
    make_images,
    run_lanes,
    watch,
    webhook_handler,
)

pytestmark = pytest.mark.e2e

KILLS = int(os.environ.get("ASSETVAULT_KILLS", "4"))
SEED = int(os.environ.get("ASSETVAULT_KILL_SEED", str(random.randrange(10**6))))
LANES = 4


def victims(rng: random.Random, count: int) -> list[str]:
    """The whole server first, then its children in a random order, round after round:
    a short run still kills each kind of process once."""
    order: list[str] = []
    while len(order) < count:
        order += ["server", *rng.sample(["worker", "background", "api"], 3)]
    return order[:count]


async def kill_one(server: LiveServer, victim: str, rng: random.Random) -> str:
    """kill -9 the victim; the whole server is started again, a child is restarted by
    the server itself."""
    if victim == "server":
        await asyncio.to_thread(server.kill)
        await asyncio.to_thread(server.start)
        return victim
    processes = checks.children(server, victim)
    if not processes:  # between its death and its restart by an earlier kill
        return f"{victim} (none running)"
    rng.choice(processes).send_signal(signal.SIGKILL)
    return victim


@pytest.mark.timeout(300 + 60 * KILLS)  # each kill and restart takes its time on a loaded machine
def test_every_acknowledged_change_survives_kill_9_under_mixed_load(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    images = make_images(6)
    events: dict[str, int] = {}
    stats = Stats()
    killed: list[str] = []
    with receiver(files_handler) as files, receiver(webhook_handler(events)) as hook:
        server = LiveServer(data_dir=tmp_path / "data", env=ENV).start()
        try:
            token = create_token(server.data_dir, "soak")
            auth = {"Authorization": f"Bearer {token}", "X-Api-Key": "soak"}
            watch(server.url, token, hook.url)

            async def main() -> list[str]:
                limits = httpx.Timeout(30, connect=5)
                async with httpx.AsyncClient(base_url=server.url, timeout=limits) as http:
                    lanes = [
                        Lane(n, http, token, images, random.Random(SEED + n), files.url, stats)
                        for n in range(LANES)
                    ]
                    for lane in lanes:
                        await lane.setup()
                    stop = asyncio.Event()
                    load = asyncio.create_task(run_lanes(lanes, 3600, rate=12, stop=stop))
                    for victim in victims(rng, KILLS):
                        await asyncio.sleep(rng.uniform(2.0, 5.0))
                        killed.append(await kill_one(server, victim, rng))
                    await asyncio.sleep(3)  # load goes on after the last kill
                    stop.set()
                    await load
                    wrong = [w for lane in lanes for w in await lane.check()]
                    for url in (url for lane in lanes for url, _ in lane.imports):
                        for _ in range(600):  # an import resumed after a kill ends by itself
                            state = (await http.get(url, headers=auth)).json()
                            if state["state"] != "PROCESSING":
                                break
                            await asyncio.sleep(0.2)
                        if state["state"] != "COMPLETED":
                            wrong.append(f"import {url}: {state}")
                    return wrong

            wrong = asyncio.run(main())
            checks.wait_until(lambda: checks.jobs_terminal(server.data_dir), 180, "jobs terminal")
            registration = checks.registration_row(server.data_dir, "soak")
            reg_id = str(registration["id"])
            try:
                checks.wait_until(
                    lambda: not checks.undelivered(server.data_dir, reg_id, events), 120, "delivery"
                )
            except AssertionError:
                missed = checks.undelivered(server.data_dir, reg_id, events)
                raise AssertionError(f"not delivered: {len(missed)}: {missed[:5]}") from None
        finally:
            server.stop()
    checks.sweep(server.data_dir)
    left = checks.orphans(server.data_dir)
    report = (
        f"seed {SEED}, kills {killed}, {stats.operations} operations, {stats.unanswered} unanswered"
    )
    print(report)
    assert stats.operations > 50, report
    assert not wrong, f"{report}\n" + "\n".join(wrong[:20])
    # 5xx answers from a process on its way down are not acknowledgements; none other
    assert not stats.errors, f"{report}\n" + "\n".join(stats.errors[:20])
    assert not left, f"{report}\n" + "\n".join(left[:20])
