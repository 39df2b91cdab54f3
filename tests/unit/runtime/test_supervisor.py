"""serve's supervisor of its worker and background processes: one that keeps dying soon
after its start (a full disk, say) is restarted after a growing back-off with a cap, not
in a loop, and the log says so once per step. They run below the API processes' CPU
priority, unless the operator turns that off."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path

import pytest

from assetvault.runtime import supervisor
from assetvault.runtime.supervisor import Supervisor, restart_delay


def test_the_restart_delay_doubles_up_to_its_cap() -> None:
    delays = [restart_delay(n, first=1.0, cap=60.0) for n in range(1, 10)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert restart_delay(10_000, first=1.0, cap=60.0) == 60.0  # no overflow
    assert restart_delay(supervisor.RESTART_MAX_SECONDS) <= supervisor.RESTART_MAX_SECONDS


class Dying(Supervisor):
    """A supervisor of a process that exits at once (or after ``lives`` seconds)."""

    TICK_SECONDS = 0.02

    def __init__(self, tmp: Path, lives: float = 0.0, **backoff: float) -> None:
        super().__init__(1, tmp, ("background",), **backoff)
        self.lives = lives
        self.spawned: list[float] = []

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.spawned.append(time.monotonic())
        return subprocess.Popen(["sleep", str(self.lives)])


def restarts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "starting another" in r.getMessage()]


def test_a_process_that_keeps_dying_is_restarted_after_a_growing_back_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "assetvault.supervisor")
    watched = Dying(tmp_path, first=0.2, cap=0.8, healthy_after=60.0)
    watched.start()
    time.sleep(4.0)
    watched.stop()
    gaps = [b - a for a, b in zip(watched.spawned, watched.spawned[1:], strict=False)]
    # 0.2, 0.4, 0.8, 0.8, ... s after each death: a loop would restart every tick.
    assert 5 <= len(watched.spawned) <= 8, gaps
    for gap, delay in zip(gaps, [0.2, 0.4, 0.8, 0.8, 0.8, 0.8, 0.8], strict=False):
        assert gap >= delay, gaps
    # Once per step of the back-off, however many deaths: 0.2, 0.4 and the cap.
    logged = restarts(caplog)
    assert [m.split(" in ")[-1] for m in logged] == [
        "0.2 s",
        "0.4 s",
        "0.8 s (and so after each such exit)",
    ], logged


def test_a_process_that_ran_long_enough_is_restarted_after_the_first_delay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "assetvault.supervisor")
    watched = Dying(tmp_path, lives=0.3, first=0.1, cap=10.0, healthy_after=0.2)
    watched.start()
    time.sleep(2.0)
    watched.stop()
    gaps = [b - a for a, b in zip(watched.spawned, watched.spawned[1:], strict=False)]
    assert len(gaps) >= 3 and all(gap < 1.0 for gap in gaps), gaps  # no growing back-off
    assert all(m.endswith(" in 0.1 s") for m in restarts(caplog)), restarts(caplog)


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("MALLOC_ARENA_MAX", None, "2"),
        ("MALLOC_ARENA_MAX", "8", "8"),
        ("MALLOC_MMAP_THRESHOLD_", None, "262144"),
        ("MALLOC_MMAP_THRESHOLD_", "131072", "131072"),
        ("MALLOC_TRIM_THRESHOLD_", None, "1048576"),
        ("MALLOC_TRIM_THRESHOLD_", "0", "0"),
    ],
)
def test_the_roles_start_with_fixed_malloc_settings_unless_the_operator_says(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    given: str | None,
    expected: str,
) -> None:
    """glibc's arena per allocating thread, and its mmap and trim thresholds that rise
    with every large block freed, grew the background process under a steady load (the
    soak); its processes get two arenas and fixed thresholds, and an operator's own
    setting is kept."""
    for each in supervisor.CHILD_ENV_DEFAULTS:
        monkeypatch.delenv(each, raising=False)
    if given is not None:
        monkeypatch.setenv(name, given)
    seen: list[dict[str, str]] = []

    class Recorded:
        def __init__(self, argv: list[str], **kwargs: object) -> None:
            env = kwargs["env"]
            assert isinstance(env, dict)
            seen.append(env)

    monkeypatch.setattr(supervisor.subprocess, "Popen", Recorded)
    Supervisor(1, tmp_path, ("background",))._spawn()
    assert seen[0][name] == expected
    assert seen[0]["PATH"] == supervisor.os.environ["PATH"]  # the rest as it was


class Sleeping(Supervisor):
    """A supervisor of a process that sleeps (its priority is what is looked at)."""

    def argv(self) -> list[str]:
        return ["sleep", "30"]


def priority(pid: int) -> tuple[int, int]:
    return os.getpriority(os.PRIO_PROCESS, pid), os.sched_getscheduler(pid)


@pytest.mark.parametrize("nice", [0, 5])
def test_the_roles_run_below_the_api_processes_priority_unless_turned_off(
    tmp_path: Path, nice: int
) -> None:
    """The event dispatcher's signing and sending, the indexer and an ingest's renditions
    would otherwise take the two cores from the requests: the processes the supervisor
    starts run ``nice`` steps nicer, as SCHED_BATCH; 0 starts them as this process."""
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    watched = Sleeping(1, tmp_path, ("background",), nice=nice)
    watched.start()
    try:
        deadline = time.monotonic() + 10
        while not watched.processes:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        found = priority(watched.processes[0].pid)
    finally:
        watched.stop()
    if nice:
        assert found == (min(19, ours + nice), os.SCHED_BATCH)
    else:
        assert found == (ours, os.sched_getscheduler(0))


def test_the_roles_pass_their_priority_to_the_worker_and_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[tuple[str, ...], int]] = []

    class Recorded(Supervisor):
        def start(self) -> None:
            started.append((self.command, self.nice))

    monkeypatch.setattr(supervisor, "Supervisor", Recorded)
    roles = supervisor.Roles(tmp_path, jobs=2, wait_seconds=0.1, nice=7)
    roles.start(time.time())
    assert roles._starter is not None
    roles._starter.join(10)
    roles.stop()
    assert sorted((command[0], nice) for command, nice in started) == [
        ("background", 7),
        ("worker", 7),
    ]
