"""The job table queue on both databases: claiming, leases, retries, reaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from assetvault.adapters.database.tables import jobs
from assetvault.services import Services


async def enqueue(services: Services, n: int = 1, max_attempts: int = 3) -> list[str]:
    async with services.db.write() as conn:
        return [
            await services.queue.enqueue(conn, "test", {"n": i}, max_attempts=max_attempts)
            for i in range(n)
        ]


async def state(services: Services, job_id: str) -> dict:
    async with services.db.read() as conn:
        row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).first()
    return dict(row._mapping)


async def expire_leases(services: Services) -> None:
    async with services.db.write() as conn:
        await conn.execute(
            update(jobs)
            .where(jobs.c.state == "running")
            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )


async def test_a_job_is_visible_only_after_its_transaction_commits(services: Services) -> None:
    class Rollback(Exception):
        pass

    try:
        async with services.db.write() as conn:
            await services.queue.enqueue(conn, "test", {})
            raise Rollback
    except Rollback:
        pass
    assert await services.queue.claim("w", 60) is None
    await enqueue(services)
    assert await services.queue.claim("w", 60) is not None


async def test_claims_in_order_and_once(services: Services) -> None:
    ids = await enqueue(services, 3)
    q = services.queue
    got = [await q.claim("w1", 60), await q.claim("w2", 60), await q.claim("w1", 60)]
    assert [j.id for j in got if j] == ids
    assert await q.claim("w3", 60) is None
    job = got[0]
    assert job is not None and job.attempts == 1 and job.payload == {"n": 0}


async def test_succeed_and_fail_with_backoff(services: Services) -> None:
    [job_id] = await enqueue(services, 1, max_attempts=2)
    q = services.queue
    job = await q.claim("w", 60)
    assert job is not None
    async with services.db.write() as conn:
        assert await q.fail(conn, job, "w", "boom", retry=True) is False
    row = await state(services, job_id)
    assert row["state"] == "queued" and row["last_error"] == "boom"
    assert await q.claim("w", 60) is None  # backing off
    async with services.db.write() as conn:
        await conn.execute(update(jobs).values(run_after=datetime.now(UTC)))
    job = await q.claim("w", 60)
    assert job is not None and job.attempts == 2
    async with services.db.write() as conn:
        assert await q.fail(conn, job, "w", "boom again", retry=True) is True  # last attempt
    assert (await state(services, job_id))["state"] == "failed"


async def test_a_dead_workers_job_is_claimed_again_then_reaped(services: Services) -> None:
    [job_id] = await enqueue(services, 1, max_attempts=2)
    q = services.queue
    first = await q.claim("dies", 60)
    assert first is not None
    assert await q.claim("other", 60) is None  # leased
    await expire_leases(services)
    second = await q.claim("other", 60)
    assert second is not None and second.attempts == 2
    # The first worker wakes up late: its result is refused.
    async with services.db.write() as conn:
        assert await q.succeed(conn, first, "dies") is False
    await expire_leases(services)
    assert await q.claim("third", 60) is None  # no attempts left
    async with services.db.write() as conn:
        [reaped] = await q.reap(conn)
    assert reaped.id == job_id
    row = await state(services, job_id)
    assert row["state"] == "failed" and "every attempt" in row["last_error"]


async def test_extend_keeps_the_lease(services: Services) -> None:
    await enqueue(services)
    q = services.queue
    job = await q.claim("w", 60)
    assert job is not None
    await expire_leases(services)
    assert await q.extend(job, "w", 60)
    assert await q.claim("other", 60) is None
    assert not await q.extend(job, "other", 60)
    async with services.db.write() as conn:
        assert await q.succeed(conn, job, "w")
    assert await q.counts() == {"succeeded": 1}


async def test_a_claim_takes_only_the_kinds_it_asks_for(services: Services) -> None:
    """Processing workers and import runners share the table: each claims and reaps only
    its own kinds, whatever is older or due in the other's."""
    q = services.queue
    async with services.db.write() as conn:
        imp = await q.enqueue(conn, "import", {}, max_attempts=1)
        proc = await q.enqueue(conn, "process", {}, max_attempts=1)
    assert await q.claim("w", 60, {"other"}) is None
    got = await q.claim("w", 60, {"process", "delete"})
    assert got is not None and got.id == proc  # the older import job is not its kind
    assert await q.claim("w", 60, {"process"}) is None
    taken = await q.claim("r", 60, {"import"})
    assert taken is not None and taken.id == imp
    await expire_leases(services)  # both died on their last attempt
    async with services.db.write() as conn:
        assert [j.id for j in await q.reap(conn, {"process"})] == [proc]
    assert (await state(services, imp))["state"] == "running"
    async with services.db.write() as conn:
        assert [j.id for j in await q.reap(conn, {"import"})] == [imp]
    # A job whose lease ran out is claimed again only by its own kind.
    async with services.db.write() as conn:
        again = await q.enqueue(conn, "import", {})
    assert (await q.claim("r", 60, {"import"})) is not None
    await expire_leases(services)
    assert await q.claim("w", 60, {"process"}) is None
    retaken = await q.claim("r2", 60, {"import"})
    assert retaken is not None and retaken.id == again and retaken.attempts == 2
