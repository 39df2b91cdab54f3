"""The client commands on real files against a real server: recursive upload that skips
what is already there, an interrupted upload resumed, downloads verified byte for byte
and resumed with Range, search, and exit codes a script can rely on."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.live import ASSETVAULT, LiveServer, create_token

pytestmark = pytest.mark.e2e
MiB = 2**20


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    # 1 MiB parts, so that a file of a few MiB takes several.
    live = LiveServer(
        data_dir=tmp_path / "data", env={"ASSETVAULT_UPLOAD_PREFERRED_PART_SIZE": str(MiB)}
    ).start(timeout=120)  # two cores shared: a loaded machine starts slowly
    yield live
    live.stop()


@pytest.fixture
def env(server: LiveServer, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ASSETVAULT_URL": server.url,
        "ASSETVAULT_TOKEN": create_token(server.data_dir, "cli", "write"),
        "ASSETVAULT_UPLOAD_JOURNAL": str(tmp_path / "journal"),
    }


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ASSETVAULT, *args], env=env, capture_output=True, text=True, timeout=120)


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def make_tree(root: Path) -> None:
    (root / "photos" / "2024 trip").mkdir(parents=True)
    (root / "photos" / "a.bin").write_bytes(os.urandom(5 * MiB + 123))  # six parts
    (root / "photos" / "2024 trip" / "b.txt").write_text("bonjour\n")
    (root / "photos" / "2024 trip" / "empty.dat").write_bytes(b"")
    (root / "photos" / "été.txt").write_text("accents\n")
    (root / "loose.txt").write_text("a file given by name\n")


def test_upload_is_recursive_and_skips_what_is_there_and_download_is_exact(
    env: dict[str, str], tmp_path: Path
) -> None:
    src = tmp_path / "src"
    make_tree(src)
    first = run(
        env, "upload", str(src / "photos"), str(src / "loose.txt"), "--folder", "/content/dam/x"
    )
    assert first.returncode == 0, first.stderr
    assert "uploaded 5, skipped 0, failed 0" in first.stderr

    again = run(
        env, "upload", str(src / "photos"), str(src / "loose.txt"), "--folder", "/content/dam/x"
    )
    assert again.returncode == 0, again.stderr
    assert "uploaded 0, skipped 5, failed 0" in again.stderr

    (src / "photos" / "2024 trip" / "b.txt").write_text("changed\n")
    changed = run(env, "upload", str(src / "photos"), "--folder", "/content/dam/x")
    assert "uploaded 1, skipped 3, failed 0" in changed.stderr, changed.stderr

    dest = tmp_path / "dest"
    down = run(env, "download", "/content/dam/x", str(dest))
    assert down.returncode == 0, down.stderr
    assert "downloaded 5, skipped 0, failed 0" in down.stderr
    expected = {"loose.txt": (src / "loose.txt").read_bytes()}
    expected |= {f"photos/{k}": v for k, v in tree(src / "photos").items()}
    assert tree(dest) == expected

    again = run(env, "download", "/content/dam/x", str(dest))
    assert "downloaded 0, skipped 5, failed 0" in again.stderr, again.stderr

    one = run(env, "download", "/content/dam/x/photos/a.bin", str(tmp_path / "single.bin"))
    assert one.returncode == 0, one.stderr
    assert (tmp_path / "single.bin").read_bytes() == (src / "photos" / "a.bin").read_bytes()


def test_an_interrupted_upload_resumes_where_it_stopped(
    env: dict[str, str], server: LiveServer, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(48 * MiB))
    journal = Path(env["ASSETVAULT_UPLOAD_JOURNAL"])
    argv = [ASSETVAULT, "upload", str(big), "--folder", "/content/dam/r", "--parts", "1"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(done) < 4:
        for entry in journal.glob("*.json"):
            with contextlib.suppress(ValueError, KeyError, OSError):
                done = json.loads(entry.read_text())["done"]
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 4 <= len(done) < 48, f"killed with {len(done)} of 48 parts sent"
    auth = {"Authorization": f"Bearer {env['ASSETVAULT_TOKEN']}"}
    assert httpx.get(f"{server.url}/content/dam/r/big.bin", headers=auth).status_code == 404

    resumed = run(env, "upload", str(big), "--folder", "/content/dam/r")
    assert resumed.returncode == 0, resumed.stderr
    assert "uploaded 1, skipped 0, failed 0 (1 resumed, " in resumed.stderr
    not_sent = int(resumed.stderr.split("resumed, ")[1].split(" bytes")[0])
    assert not_sent >= len(done) * MiB
    got = httpx.get(f"{server.url}/content/dam/r/big.bin", headers=auth, timeout=60)
    assert hashlib.sha1(got.content).hexdigest() == hashlib.sha1(big.read_bytes()).hexdigest()
    assert list(journal.glob("*.json")) == []


def test_a_download_resumes_with_range_and_refuses_bytes_that_differ(
    env: dict[str, str], tmp_path: Path
) -> None:
    data = os.urandom(3 * MiB + 7)
    (tmp_path / "d.bin").write_bytes(data)
    assert run(env, "upload", str(tmp_path / "d.bin"), "--folder", "/content/dam/d").returncode == 0
    dest = tmp_path / "out"
    dest.mkdir()
    # What an interrupted run leaves: the first MiB in a .part file.
    (dest / "d.bin.part").write_bytes(data[:MiB])
    resumed = run(env, "download", "/content/dam/d/d.bin", str(dest))
    assert resumed.returncode == 0, resumed.stderr
    assert f"(1 resumed, {MiB} bytes not sent again)" in resumed.stderr
    assert (dest / "d.bin").read_bytes() == data and not (dest / "d.bin.part").exists()

    # A .part whose bytes are not the asset's: the verified SHA-1 catches it, exit 1.
    (dest / "d.bin").unlink()
    (dest / "d.bin.part").write_bytes(b"x" * MiB)
    bad = run(env, "download", "/content/dam/d/d.bin", str(dest))
    assert bad.returncode == 1
    assert "failed: " in bad.stderr and "SHA-1" in bad.stderr
    assert not (dest / "d.bin").exists() and not (dest / "d.bin.part").exists()
    assert run(env, "download", "/content/dam/d/d.bin", str(dest)).returncode == 0
    assert (dest / "d.bin").read_bytes() == data


def test_search_prints_hits_as_json_with_filters(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "harbour notes.txt").write_text("the harbour at dawn\n")
    (tmp_path / "s" / "harbour.bin").write_bytes(b"\0" * 10)
    (tmp_path / "s" / "other.txt").write_text("nothing\n")
    assert run(env, "upload", str(tmp_path / "s"), "--folder", "/content/dam/q").returncode == 0
    found = run(env, "search", "harbour", "--json")
    assert found.returncode == 0, found.stderr
    paths = sorted(h["repositoryMetadata"]["repo:path"] for h in json.loads(found.stdout))
    assert paths == ["/content/dam/q/s/harbour notes.txt", "/content/dam/q/s/harbour.bin"]
    only = run(env, "search", "harbour", "--format", "text/plain", "--json")
    hits = json.loads(only.stdout)
    assert [h["repositoryMetadata"]["repo:name"] for h in hits] == ["harbour notes.txt"]
    table = run(env, "search", "*", "--folder", "/content/dam/q")
    assert table.returncode == 0 and "other.txt" in table.stdout
    assert "3 asset(s)" in table.stderr


def test_exit_codes_and_messages_a_script_can_rely_on(
    env: dict[str, str], server: LiveServer, tmp_path: Path
) -> None:
    good = tmp_path / "good.txt"
    good.write_text("fine\n")
    bad = tmp_path / "bad|name.txt"  # a character AEM refuses in names
    bad.write_text("refused\n")
    mixed = run(env, "upload", str(good), str(bad), "--folder", "/content/dam/e")
    assert mixed.returncode == 1
    assert "uploaded 1, skipped 0, failed 1" in mixed.stderr
    assert f"failed: {bad} -> /content/dam/e/bad|name.txt: " in mixed.stderr

    no_token = {k: v for k, v in env.items() if k != "ASSETVAULT_TOKEN"}
    r = run(no_token, "search", "x")
    assert r.returncode == 2 and "token" in r.stderr
    r = run(env, "search", "x", "--token", "not-a-token")
    assert r.returncode == 2 and "401" in r.stderr
    r = run(env, "search", "x", "--url", "http://127.0.0.1:9")
    assert r.returncode == 2 and "cannot reach" in r.stderr
    r = run(env, "upload", str(tmp_path / "missing"), "--folder", "/content/dam/e")
    assert r.returncode == 2 and "no such file" in r.stderr
    r = run(env, "upload", str(good), "--folder", "/etc/passwd")
    assert r.returncode == 2 and "not under /content/dam" in r.stderr
    r = run(env, "download", "/content/dam/nothing-here", str(tmp_path / "n"))
    assert r.returncode == 2 and "no asset" in r.stderr


def test_a_folder_name_aem_refuses_goes_in_under_a_valid_name_with_the_rest(
    env: dict[str, str], server: LiveServer, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    for directory in ("Sales & Marketing", "plain", "c+d;e (1)"):
        (src / directory).mkdir(parents=True)
        (src / directory / "f.txt").write_text(directory)
    r = run(env, "upload", *sorted(str(p) for p in src.iterdir()), "--folder", "/content/dam/m")
    assert r.returncode == 0, r.stderr
    assert "uploaded 3, skipped 0, failed 0" in r.stderr
    auth = {"Authorization": f"Bearer {env['ASSETVAULT_TOKEN']}"}
    for folder, title in [
        ("Sales - Marketing", "Sales & Marketing"),
        ("plain", "plain"),
        ("c+d;e (1)", "c+d;e (1)"),
    ]:
        got = httpx.get(f"{server.url}/content/dam/m/{quote(folder)}/f.txt", headers=auth)
        assert got.text == title
        listing = httpx.get(f"{server.url}/api/assets/m/{quote(folder)}.json", headers=auth)
        assert listing.json()["properties"]["dc:title"] == title


def test_a_name_that_exists_is_never_overwritten_silently(
    env: dict[str, str], server: LiveServer, tmp_path: Path
) -> None:
    auth = {"Authorization": f"Bearer {env['ASSETVAULT_TOKEN']}", "X-Api-Key": "cli-test"}
    local = tmp_path / "a.txt"
    local.write_text("first\n")
    assert run(env, "upload", str(local), "--folder", "/content/dam/c").returncode == 0

    def original(name: str) -> str | None:
        got = httpx.get(f"{server.url}/content/dam/c/{name}", headers=auth)
        return None if got.status_code == 404 else got.text

    def versions() -> list[dict[str, object]]:
        query = {"query": [{"term": {"repositoryMetadata.repo:path": ["/content/dam/c/a.txt"]}}]}
        deadline = time.monotonic() + 60
        while True:  # the search index follows the change a moment later
            found = httpx.post(
                f"{server.url}/adobe/assets/search",
                params={"allowUnsafeSearch": "true"},
                json=query,
                headers=auth,
            ).json()["hits"]["results"]
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        got = httpx.get(f"{server.url}/adobe/assets/{found[0]['assetId']}/versions", headers=auth)
        return list(got.json()["items"])

    # The default: a new version, the first original kept.
    local.write_text("second\n")
    r = run(env, "upload", str(local), "--folder", "/content/dam/c")
    assert r.returncode == 0 and "uploaded 1, skipped 0" in r.stderr, r.stderr
    assert original("a.txt") == "second\n"
    kept = [v for v in versions() if not v["current"]]
    assert [(v["name"], v["sha1"]) for v in kept] == [("1.0", hashlib.sha1(b"first\n").hexdigest())]

    local.write_text("third\n")
    r = run(env, "upload", str(local), "--folder", "/content/dam/c", "--on-conflict", "skip")
    assert r.returncode == 0 and "uploaded 0, skipped 1, failed 0" in r.stderr, r.stderr
    r = run(env, "upload", str(local), "--folder", "/content/dam/c", "--on-conflict", "fail")
    assert r.returncode == 1 and "failed 1" in r.stderr
    assert "a different file of this name is there" in r.stderr
    assert original("a.txt") == "second\n" and len(versions()) == 2

    r = run(env, "upload", str(local), "--folder", "/content/dam/c", "--on-conflict", "keep-both")
    assert r.returncode == 0 and "uploaded 1, skipped 0" in r.stderr, r.stderr
    assert original("a.txt") == "second\n" and original("a1.txt") == "third\n"
    # Again: the same bytes are already there as a1.txt, so no a2.txt.
    r = run(env, "upload", str(local), "--folder", "/content/dam/c", "--on-conflict", "keep-both")
    assert r.returncode == 0 and "uploaded 0, skipped 1" in r.stderr, r.stderr
    local.write_text("fourth\n")
    r = run(env, "upload", str(local), "--folder", "/content/dam/c", "--on-conflict", "keep-both")
    assert original("a2.txt") == "fourth\n" and original("a.txt") == "second\n"
    # An unchanged file is still skipped whatever the choice.
    (tmp_path / "same").mkdir()
    (tmp_path / "same" / "a.txt").write_text("second\n")
    for choice in ("version", "fail"):
        r = run(env, "upload", str(tmp_path / "same" / "a.txt"), "--folder", "/content/dam/c",
                "--on-conflict", choice)  # fmt: skip
        assert r.returncode == 0 and "uploaded 0, skipped 1" in r.stderr, r.stderr
    assert len(versions()) == 2
