"""``assetvault seed DIR``: a progress bar on a terminal (its stderr), and none in a pipe,
where the summary line alone says what was done."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[3]


def tree(where: Path, files: int) -> Path:
    for i in range(files):
        folder = where / f"f{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note-{i}.txt").write_text(f"note {i}\n")
    return where


def seed_command(source: Path, data_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "assetvault.cli",
        "seed",
        str(source),
        "--data-dir",
        str(data_dir),
    ]


def env() -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith("ASSETVAULT_")}
    return {**kept, "PYTHONPATH": str(ROOT / "src"), "TERM": "xterm", "COLUMNS": "100"}


def test_a_terminal_sees_a_progress_bar(tmp_path: Path) -> None:
    source = tree(tmp_path / "dam", 7)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        seed_command(source, tmp_path / "data"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env=env(),
    )
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the other side closed
                    break
                if not chunk:
                    break
                shown += chunk
            elif proc.poll() is not None:
                break
    finally:
        os.close(leader)
        status = proc.wait(timeout=60)
    text = shown.decode(errors="replace")
    assert status == 0, text
    assert "seeding" in text and "7/7" in text, text  # rich's bar: description, done/total
    assert "━" in text, text  # the bar itself
    assert "7 asset(s) created" in text


def test_a_pipe_gets_the_summary_alone(tmp_path: Path) -> None:
    source = tree(tmp_path / "dam", 2)
    done = subprocess.run(
        seed_command(source, tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=120,
        env=env(),
    )
    assert done.returncode == 0, done.stderr
    assert "2/2" not in done.stderr and "━" not in done.stderr
    assert "2 asset(s) created" in done.stderr
