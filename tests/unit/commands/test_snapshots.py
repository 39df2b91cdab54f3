"""``assetvault snapshot`` and ``assetvault reset`` on a stopped server (``--data-dir``):
save and restore by name and by file (into the same data directory and another one),
reset asking first unless ``--yes``, tokens kept or dropped by flag, and a data
directory a server holds refused with the way to reach that server instead."""

from __future__ import annotations

import asyncio
import fcntl
import io
import sqlite3
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from assetvault.cli import main
from assetvault.services import build_services
from tests.factories import make_assets, make_settings


def paths(data_dir: Path) -> list[str]:
    """The tree of a stopped server, read from its database file."""
    conn = sqlite3.connect(data_dir / "assetvault.db")
    try:
        return [row[0] for row in conn.execute("SELECT path FROM nodes ORDER BY path")]
    finally:
        conn.close()


def token_names(data_dir: Path) -> list[str]:
    conn = sqlite3.connect(data_dir / "assetvault.db")
    try:
        return sorted(row[0] for row in conn.execute("SELECT name FROM api_tokens"))
    finally:
        conn.close()


def add(data_dir: Path, *names: str) -> None:
    async def run() -> None:
        svc = build_services(make_settings(data_dir))
        try:
            await svc.db.migrate()
            await make_assets(svc, [(name, {"dc:title": name}) for name in names])
            if not token_names(data_dir):
                await svc.auth.create_token("harness", "admin")
        finally:
            await svc.close()

    asyncio.run(run())


def av(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The commands must find a stopped server by --data-dir alone, whatever the shell has.
    for name in ("ASSETVAULT_URL", "ASSETVAULT_TOKEN", "ASSETVAULT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    where = tmp_path / "data"
    add(where, "granite.jpg", "basalt.jpg")
    return where


BEFORE = ["/content/dam", "/content/dam/basalt.jpg", "/content/dam/granite.jpg"]


def test_save_and_restore_by_name_and_by_file(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = str(data_dir)
    assert av("snapshot", "save", "start", "--data-dir", d) == 0
    assert "saved start: 2 asset(s)" in capsys.readouterr().out
    file = tmp_path / "exports" / "start.avsnap"
    file.parent.mkdir()
    assert av("snapshot", "save", str(file), "--data-dir", d) == 0
    with tarfile.open(file) as tar:  # one portable file
        assert {"manifest.json", "assetvault.db"} <= set(tar.getnames())

    add(data_dir, "marble.jpg")
    assert "/content/dam/marble.jpg" in paths(data_dir)
    assert av("snapshot", "restore", "start", "--data-dir", d) == 0
    assert paths(data_dir) == BEFORE

    add(data_dir, "slate.jpg")
    assert av("snapshot", "restore", str(file), "--data-dir", d) == 0
    assert paths(data_dir) == BEFORE

    # The file starts another, new data directory with the same state and tokens.
    other = tmp_path / "other"
    assert av("snapshot", "restore", str(file), "--data-dir", str(other)) == 0
    assert paths(other) == BEFORE
    assert token_names(other) == ["harness"]

    capsys.readouterr()
    assert av("snapshot", "list", "--json", "--data-dir", d) == 0
    assert '"name": "start"' in capsys.readouterr().out
    assert av("snapshot", "delete", "start", "--data-dir", d) == 0
    assert av("snapshot", "restore", "start", "--data-dir", d) == 2
    assert "no snapshot named 'start'" in capsys.readouterr().err


def test_reset_keeps_the_tokens_unless_told(data_dir: Path) -> None:
    d = str(data_dir)
    assert av("reset", "--yes", "--data-dir", d) == 0
    assert paths(data_dir) == ["/content/dam"]
    assert token_names(data_dir) == ["harness"]
    add(data_dir, "marble.jpg")
    assert av("reset", "--yes", "--drop-tokens", "--data-dir", d) == 0
    assert paths(data_dir) == ["/content/dam"]
    assert token_names(data_dir) == []


class Terminal(io.StringIO):
    """A stdin that is a terminal, with the user's answer typed in."""

    def isatty(self) -> bool:
        return True


def test_reset_asks_first_unless_yes(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    d = str(data_dir)
    # Not on a terminal: nobody to ask, so no reset without --yes.
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert av("reset", "--data-dir", d) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert paths(data_dir) == BEFORE

    for answer in ("\n", "n\n", "no thanks\n"):
        monkeypatch.setattr("sys.stdin", Terminal(answer))
        assert av("reset", "--data-dir", d) == 1
        out = capsys.readouterr().out
        assert f"Remove every asset, folder, job and event of {d}? [y/N]" in out
        assert "nothing changed" in out
        assert paths(data_dir) == BEFORE

    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert av("reset", "--data-dir", d) == 0
    assert paths(data_dir) == ["/content/dam"]


@pytest.fixture
def held(data_dir: Path) -> Iterator[None]:
    """The data directory as a running server holds it (serve's lock)."""
    with open(data_dir / "serve.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield


@pytest.mark.parametrize(
    "command",
    [
        ["snapshot", "save", "s"],
        ["snapshot", "restore", "s"],
        ["reset", "--yes"],
    ],
)
def test_a_running_server_s_data_directory_is_refused(
    data_dir: Path, held: None, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert av(*command, "--data-dir", str(data_dir)) == 2
    assert "reach it with --url/--token" in capsys.readouterr().err
    assert paths(data_dir) == BEFORE
    assert not (data_dir / "snapshots" / "s").exists()


def test_which_server_must_be_said(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert av("snapshot", "save", "s") == 2
    assert "--data-dir DIR for a stopped one" in capsys.readouterr().err
    assert av("reset", "--yes", "--data-dir", str(data_dir), "--url", "http://x") == 2
    assert "give --data-dir (a stopped server) or --url" in capsys.readouterr().err
    assert paths(data_dir) == BEFORE
