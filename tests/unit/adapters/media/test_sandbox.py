from __future__ import annotations

import os
import time

import pytest

from assetvault.adapters.media import sandbox


def add(a: int, b: int) -> int:
    return a + b


def sleep_forever() -> None:
    while True:
        time.sleep(1)


def allocate(n: int) -> int:
    return len(bytearray(n))


def crash() -> None:
    os.abort()


def broken() -> None:
    raise ValueError("the file is\n  broken")


def test_returns_the_result() -> None:
    assert sandbox.run(add, 2, 3, timeout=30, memory_bytes=0) == 5


def test_a_loop_is_stopped_at_the_deadline() -> None:
    start = time.monotonic()
    with pytest.raises(sandbox.SandboxError, match="longer than 1 s"):
        sandbox.run(sleep_forever, timeout=1, memory_bytes=0)
    assert time.monotonic() - start < 10


def test_memory_is_limited() -> None:
    with pytest.raises(sandbox.SandboxError, match="more memory"):
        sandbox.run(allocate, 4 * 2**30, timeout=30, memory_bytes=1 * 2**30)
    assert sandbox.run(allocate, 2**20, timeout=30, memory_bytes=1 * 2**30) == 2**20


def test_a_crash_is_reported_not_raised_into_the_worker() -> None:
    with pytest.raises(sandbox.SandboxError, match="crashed \\(SIGABRT\\)"):
        sandbox.run(crash, timeout=30, memory_bytes=0)


def test_errors_come_back_as_one_line() -> None:
    with pytest.raises(sandbox.SandboxError, match=r"^the file is broken$"):
        sandbox.run(broken, timeout=30, memory_bytes=0)


def test_jobs_started_at_once_from_threads_leave_main_as_it_was() -> None:
    """A worker runs several jobs at once, each starting its child from a thread: the
    parent's __main__ is hidden from each start and shown again after all of them."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    main = sys.modules["__main__"]
    before = (main.__dict__.get("__file__"), getattr(main, "__spec__", None))
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda i: sandbox.run(add, i, 1, timeout=60, memory_bytes=0), range(32))
        )
    assert results == [i + 1 for i in range(32)]
    assert (main.__dict__.get("__file__"), getattr(main, "__spec__", None)) == before
