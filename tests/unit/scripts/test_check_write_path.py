"""The lint check that keeps every write of the tree in the write path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "check_write_path.py"
spec = importlib.util.spec_from_file_location("check_write_path", SCRIPT)
assert spec and spec.loader
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


@pytest.mark.parametrize(
    "source",
    [
        "await conn.execute(update(nodes).values(x=1))",
        "await conn.execute(insert(relations).values(x=1))",
        "await conn.execute(delete(renditions))",
        "await conn.execute(comments.insert().values(x=1))",
        "await conn.execute(outbox.delete())",
        "await conn.execute(update(outbox_floor).values(seq=9))",
        "await conn.exec_driver_sql('UPDATE outbox_floor SET seq = 9')",
        "await conn.exec_driver_sql('UPDATE nodes SET revision = 2')",
        "await conn.exec_driver_sql('delete from \"asset_versions\"')",
        "await conn.exec_driver_sql('INSERT OR REPLACE INTO comments VALUES (1)')",
        "blob = await svc.blobs.put(request.stream())",
        "info = await self.blobs.put_file(path)",
        "await services(request).blobs.delete(key)",
        "await self.queue.enqueue(ch.conn, 'process', {})",
        "await services.queue.fail(ch.conn, job, name, 'x', retry=True)",
        "await self._queue.enqueue(conn, kind, payload)",
    ],
)
def test_writes_outside_the_write_path_are_reported(source: str) -> None:
    assert check.problems_in("api/routes.py", source)
    assert not check.problems_in("tree/writes.py", source)


@pytest.mark.parametrize(
    "source",
    [
        "await conn.execute(select(nodes))",
        "await conn.execute(update(jobs).values(state='x'))",
        "await conn.execute(insert(search_snapshots).values(x=1))",
        "await conn.exec_driver_sql('SELECT * FROM nodes')",
        "chunks = svc.blobs.read(key)",
        "await self.staging.write_part(upload_id, 1, chunks, 10)",
        "await ch.enqueue('process', {})",
        "await ch.fail_job(job, name, 'x', retry=True)",
        "await self.services.queue.claim(name, 60)",
    ],
)
def test_reads_and_other_tables_pass(source: str) -> None:
    assert check.problems_in("api/routes.py", source) == []


def test_only_the_sweep_removes_blobs() -> None:
    source = "await self.blobs.delete(key)"
    assert check.problems_in("maintenance/service.py", source) == []
    assert check.problems_in("processing/service.py", source)


def test_the_package_keeps_the_rule() -> None:
    assert check.main([]) == 0
