"""The one pass over a stream's bytes (``pump``: a write and two digests, each a lane of
its own), and the hashing threads of blob writes in a forked process: serve forks its
API processes after work in its own process (a seed, a snapshot load) may have started
them."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from assetvault.adapters.blobs import hashing
from assetvault.adapters.blobs.hashing import BATCH_BYTES, Hashes, HashingWriter, pump


def _hash_once(data: bytes) -> str:
    hashes = Hashes()
    hashes.start_batch([data])()
    return hashes.digests().sha256


def test_a_forked_process_hashes_on_threads_of_its_own() -> None:
    for _ in range(8):  # the pool's threads are started and left idle in this process
        assert _hash_once(b"parent") == hashlib.sha256(b"parent").hexdigest()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a batch must be hashed, not queued for threads it lacks
        os.close(read)
        try:
            ok = _hash_once(b"child") == hashlib.sha256(b"child").hexdigest()
            os.write(write, b"ok" if ok else b"wrong")
        finally:
            os._exit(0)
    os.close(write)
    import select

    ready, _, _ = select.select([read], [], [], 10)
    answer = os.read(read, 16) if ready else b"hung"
    os.close(read)
    if not ready:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    assert answer == b"ok"


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
        await asyncio.sleep(0)


async def test_a_stream_goes_through_its_lanes_in_small_batches_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written and hashed in batches of about BATCH_BYTES (little left to do after the
    last byte), each lane in the stream's order."""
    written: list[int] = []
    plain = hashing.writev_all

    def recording(fd: int, batch: list[bytes]) -> None:
        written.append(sum(len(c) for c in batch))
        plain(fd, batch)

    monkeypatch.setattr(hashing, "writev_all", recording)
    data = os.urandom(10 * 1024 * 1024 + 12345)
    hashes = Hashes()
    with open(tmp_path / "out", "wb", buffering=0) as fh:
        size = await pump(_chunks(data, 100_000), HashingWriter(fh.fileno(), hashes))
    assert size == len(data) == sum(written)
    assert (tmp_path / "out").read_bytes() == data
    digests = hashes.digests()
    assert digests.size == len(data)
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests.sha1 == hashlib.sha1(data).hexdigest()
    assert max(written) < BATCH_BYTES + 100_000 and len(written) > 8


async def test_a_failing_lane_fails_the_stream_and_no_lane_works_on_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails (a full disk) ends the stream with its error, and when pump
    returns no lane is still at work on the file (the caller closes it)."""
    active = 0
    after_return: list[int] = []
    calls = 0
    plain = hashing._update_all

    def failing(fd: int, batch: list[bytes]) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(28, "No space left on device")

    def slow_digest(h: Any, batch: list[bytes]) -> None:
        nonlocal active
        active += 1
        time.sleep(0.01)
        plain(h, batch)
        active -= 1

    monkeypatch.setattr(hashing, "writev_all", failing)
    monkeypatch.setattr(hashing, "_update_all", slow_digest)
    with open(tmp_path / "out", "wb", buffering=0) as fh, pytest.raises(OSError, match="space"):
        try:
            await pump(
                _chunks(os.urandom(20 * 1024 * 1024), 256 * 1024),
                HashingWriter(fh.fileno(), Hashes()),
            )
        finally:
            after_return.append(active)
    assert after_return == [0]


async def test_a_stream_that_fails_midway_leaves_no_lane_at_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client gone mid-part: the error goes on once the lanes stopped (the caller then
    truncates and closes the file)."""
    active = 0
    plain = hashing.writev_all

    def slow_write(fd: int, batch: list[bytes]) -> None:
        nonlocal active
        active += 1
        time.sleep(0.02)
        plain(fd, batch)
        active -= 1

    async def cut() -> AsyncIterator[bytes]:
        for _ in range(12):
            yield os.urandom(512 * 1024)
        raise ConnectionError("the client went away")

    monkeypatch.setattr(hashing, "writev_all", slow_write)
    with open(tmp_path / "out", "wb", buffering=0) as fh, pytest.raises(ConnectionError):
        try:
            await pump(cut(), HashingWriter(fh.fileno(), Hashes()))
        finally:
            assert active == 0
