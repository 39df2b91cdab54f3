"""Starting a disposable Assetvault from Python: ``assetvault serve --ephemeral --port 0``
as a child process, its ready line read and returned (docs/ci.md, "Ephemeral servers").
The test harnesses (the pytest plugin among them) start their servers with this."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

START_TIMEOUT_SECONDS = 120.0  # a loaded two-core CI runner starts a server slowly
STOP_TIMEOUT_SECONDS = 60.0
MAX_READY_LINE = 64 * 1024


class StartFailed(RuntimeError):
    """The server exited, or said nothing usable, before its ready line."""


@dataclass(frozen=True)
class Ready:
    """What the ready line says: where the server answers, its admin token (None when
    the server did not create one) and its data directory."""

    url: str
    token: str | None
    data_dir: Path


def parse_ready_line(line: bytes | str) -> Ready:
    """The ready line's fields, or StartFailed naming what is wrong with it."""
    try:
        doc = json.loads(line)
    except ValueError:
        raise StartFailed(f"the ready line is not JSON: {line[:200]!r}") from None
    if not isinstance(doc, dict):
        raise StartFailed("the ready line is not a JSON object")
    url, token, data_dir = doc.get("url"), doc.get("token"), doc.get("data_dir")
    if not isinstance(url, str) or not isinstance(data_dir, str):
        raise StartFailed("the ready line lacks url or data_dir")
    if token is not None and not isinstance(token, str):
        raise StartFailed("the ready line's token is not a string")
    return Ready(url, token, Path(data_dir))


def read_ready_line(stream: IO[bytes], deadline: float, process: subprocess.Popen[Any]) -> bytes:
    """The first line of ``stream`` (the server's stdout), waiting until ``deadline``
    (time.monotonic) at most."""
    received = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while b"\n" not in received:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StartFailed("no ready line in time")
            if not selector.select(min(left, 0.5)):
                continue
            block = os.read(stream.fileno(), 4096)
            if not block:
                process.wait(5)
                status = process.returncode
                raise StartFailed(f"the server exited with {status} before it was ready")
            received += block
            if len(received) > MAX_READY_LINE:
                raise StartFailed("the ready line is too long")
    return received.split(b"\n", 1)[0]


@dataclass
class EphemeralServer:
    """A server started with a ready line; ``stop()`` (or leaving the ``with`` block)
    ends it, and an ephemeral one's data directory goes with it."""

    process: subprocess.Popen[bytes]
    url: str
    token: str | None
    data_dir: Path
    headers: dict[str, str] = field(default_factory=dict)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, and wait for the clean-up (SIGKILL after ``timeout``); the exit
        status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return int(self.process.returncode)

    def __enter__(self) -> EphemeralServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_ephemeral(
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    stderr: IO[Any] | int | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
    executable: str | None = None,
) -> EphemeralServer:
    """Starts ``assetvault serve --ephemeral --port 0 [args]`` and returns once its ready
    line says it answers, with its admin token. ``stderr``: where the server's log goes
    (default: this process's stderr)."""
    return start_serve(
        ["--ephemeral", *args], env=env, stderr=stderr, timeout=timeout, executable=executable
    )


def start_serve(
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    stderr: IO[Any] | int | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
    executable: str | None = None,
) -> EphemeralServer:
    """Starts ``assetvault serve --ready-line --port 0 [args]`` (``args`` may name a
    ``--data-dir``, ``--port``, ``--seed``...) and returns once its ready line says it
    answers; the token is None unless ``--ephemeral`` made one."""
    command = [
        executable or sys.executable,
        "-m",
        "assetvault.cli",
        "serve",
        "--ready-line",
        "--port",
        "0",
        *args,
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=dict(env) if env is not None else None,
    )
    assert process.stdout is not None
    try:
        line = read_ready_line(process.stdout, time.monotonic() + timeout, process)
        ready = parse_ready_line(line)
    except BaseException:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.stdout.close()
        raise
    headers = {"Authorization": f"Bearer {ready.token}"} if ready.token else {}
    return EphemeralServer(process, ready.url, ready.token, ready.data_dir, headers)
