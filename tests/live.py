"""A real ``assetvault serve`` process on a free loopback port, driven through the CLI
contract only (serve, token create, /health), as users' scripts and outside checks do."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ASSETVAULT = str(Path(sys.executable).with_name("assetvault"))


# What serve's API processes call themselves (runtime/api.py; a unit test holds the two
# equal): spelled out, so the benchmarks can drive an older server with these helpers.
API_PROCESS_NAME = "assetvault-api"


def is_api_process(process: psutil.Process) -> bool:
    """Whether a child of ``serve`` is one of its API processes (forks of serve that name
    themselves; runtime/api.py)."""
    try:
        return process.name() == API_PROCESS_NAME
    except psutil.Error:
        return False  # gone meanwhile


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_token(
    data_dir: Path, name: str, scope: str = "admin", env: dict[str, str] | None = None
) -> str:
    """``env``: the settings of a server on other engines (ASSETVAULT_DATABASE_URL...)."""
    out = subprocess.run(
        [
            ASSETVAULT,
            "token",
            "create",
            "--data-dir",
            str(data_dir),
            "--name",
            name,
            "--scope",
            scope,
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    return out.stdout.strip().splitlines()[-1]


@dataclass
class LiveServer:
    data_dir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # False: leave --data-dir out, so the server finds it in ASSETVAULT_DATA_DIR.
    pass_data_dir: bool = True
    extra_args: list[str] = field(default_factory=list)
    # Where the server's log goes (default: beside the data directory).
    log_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> LiveServer:
        self.log_path = (self.log_dir or self.data_dir.parent) / f"serve-{self.port}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        data_args = ["--data-dir", str(self.data_dir)] if self.pass_data_dir else []
        # Two API processes unless a test asks otherwise: whichever process answers the
        # next request must do as well as the one that answered the last.
        processes = [] if "--processes" in self.extra_args else ["--processes", "2"]
        self.process = subprocess.Popen(
            [
                ASSETVAULT,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *data_args,
                "--log-level",
                "warning",
                *processes,
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        # Not left running: a server that missed its start would outlive the test run.
        with contextlib.suppress(RuntimeError):  # the port's release is not the news here
            self.kill()
        raise RuntimeError(f"server not ready in {timeout}s: {self.log_path.read_text()}")

    def kill(self) -> None:
        """kill -9: no clean-up of any kind runs."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self._wait_port_released()

    def _wait_port_released(self, timeout: float = 10.0) -> None:
        """The API processes follow the server (SIGKILL on its death) a moment later;
        until the last is gone the port is still theirs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", self.port))
                    return
                except OSError:
                    time.sleep(0.05)
        raise RuntimeError(f"port {self.port} still taken {timeout}s after the kill")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
