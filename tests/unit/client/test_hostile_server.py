"""`assetvault download | upload | search` against a hostile server (a real HTTP server on
loopback that answers what each test scripts): nothing is written outside DEST, a
listing that never ends or makes no sense ends with a clear error, no body larger than
announced is kept, no file outside an upload's directory is read, and the exit codes
keep their contract (0 all good, 1 some files failed, 2 nothing ran)."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from assetvault.client.parser import add_client_commands
from tests.receivers import Received, Receiver, Reply, receiver

SOURCE = "/content/dam/x"
HOSTILE_NAMES = [
    "../x",
    "a/../../x",
    "a/..",
    "./x",
    "/abs/x",
    "//abs/x",
    "a//b",
    "a/",
    "",
    "x\x00y",
    "x\ny",
    "x\x1b[31my",
    "x\x7fy",
    "evil\u202etxt.exe",
    "a\\..\\..\\x",
    "..\\x",
    "C:/x",
    "c:x",
    "sub/D:x",
    "n" * 251,
    "/".join(["d" * 200] * 21),
]


def cli(server: Receiver, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_client_commands(parser.add_subparsers())
    args = parser.parse_args([*argv, "--url", server.url, "--token", "t"])
    return int(args.func(args))


def listing(assets: dict[str, bytes], **sizes: int) -> dict[str, Any]:
    """One search page of ``assets`` (name below SOURCE -> body); ``sizes`` overrides the
    size a name is announced with."""
    return {
        "hits": {
            "results": [
                {
                    "repositoryMetadata": {
                        "repo:path": f"{SOURCE}/{name}",
                        "repo:size": sizes.get(name, len(body)),
                        "dam:sha1": hashlib.sha1(body).hexdigest(),
                    }
                }
                for name, body in assets.items()
            ]
        }
    }


def serving(
    pages: Callable[[Received], object], bodies: dict[str, Reply] | None = None
) -> Callable[[Received], Reply]:
    def answer(r: Received) -> Reply:
        if r.path.startswith("/adobe/assets/search"):
            page = pages(r)
            return Reply(200, page if isinstance(page, bytes) else json.dumps(page).encode())
        name = unquote(urlsplit(r.path).path)[len(SOURCE) + 1 :]
        return (bodies or {}).get(name) or Reply(404)

    return answer


def _everything(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_hostile_names_fail_those_files_only_and_nothing_leaves_dest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "dest"
    assets = {**{name: b"evil" for name in HOSTILE_NAMES}, "good.txt": b"good"}
    bodies = {n: Reply(200, b) for n, b in assets.items()}
    with receiver(serving(lambda _r: listing(assets), bodies)) as server:
        assert cli(server, "download", SOURCE, str(dest)) == 1
        requested = [r.path for r in server.received if r.method == "GET"]
    assert _everything(tmp_path) == {"dest", "dest/good.txt"}
    assert (dest / "good.txt").read_bytes() == b"good"
    assert requested == [f"{SOURCE}/good.txt"]  # a refused name is never even asked for
    err = capsys.readouterr().err
    assert f"downloaded 1, skipped 0, failed {len(HOSTILE_NAMES)}" in err
    assert "\x00" not in err and "\x1b" not in err and "\u202e" not in err


def test_a_listed_path_outside_the_source_or_through_a_planted_symlink_is_refused(
    tmp_path: Path,
) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "sibling").symlink_to(outside)
    odd = ["/content/dam/x-other/a", "/content/dam/a", "//evil.example/a", "/etc/passwd"]
    page = listing({"sibling/a": b"a", "ok": b"ok"})
    for path in odd:
        page["hits"]["results"].append({"repositoryMetadata": {"repo:path": path, "repo:size": 1}})
    bodies = {"sibling/a": Reply(200, b"a"), "ok": Reply(200, b"ok")}
    with receiver(serving(lambda _r: page, bodies)) as server:
        assert cli(server, "download", SOURCE, str(dest)) == 1
        requested = [r.path for r in server.received if r.method == "GET"]
    assert list(outside.iterdir()) == []
    assert _everything(dest) == {"sibling", "ok"}
    assert requested == [f"{SOURCE}/ok"]


def _cursor_pages(cursors: Callable[[int], str | None], results: bool) -> Callable[..., object]:
    count = itertools.count()

    def page(_r: Received) -> object:
        n = next(count)
        body = listing({f"f{n}": b"x"}) if results else {"hits": {"results": []}}
        return {**body, "cursor": cursors(n)}

    return page


@pytest.mark.parametrize(
    ("cursors", "results", "says"),
    [
        (lambda n: "same", True, "repeats a cursor"),
        (lambda n: f"c{n % 3}", True, "repeats a cursor"),
        (lambda n: f"fresh-{n}", False, "empty pages"),
    ],
    ids=["same-cursor", "cursor-cycle", "endless-empty-pages"],
)
def test_a_listing_that_never_ends_stops_with_a_clear_error(
    tmp_path: Path,
    cursors: Callable[[int], str | None],
    results: bool,
    says: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from assetvault.client.http import MAX_EMPTY_PAGES

    with receiver(serving(_cursor_pages(cursors, results))) as server:
        assert cli(server, "download", SOURCE, str(tmp_path / "d")) == 2
        assert len(server.received) <= MAX_EMPTY_PAGES + 1
        assert cli(server, "search", "*", "--limit", "1000000") == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


async def test_a_listing_with_ever_new_cursors_stops_at_the_page_bound() -> None:
    from assetvault.client.http import Connection, search_all

    with receiver(serving(_cursor_pages(lambda n: f"c{n}", True))) as server:
        async with Connection(server.url, "t").client() as client:
            hits = search_all(client, {"query": []}, max_pages=7)
            with pytest.raises(Exception, match="past 7 pages"):
                async for _ in hits:
                    pass
        assert len(server.received) == 7


JUNK = [
    b"<html>not json</html>",
    b"[]",
    b"null",
    b'{"hits": []}',
    b'{"hits": {"results": {}}}',
    b'{"hits": {"results": [1]}}',
    b'{"hits": {"results": [{"repositoryMetadata": []}]}}',
    b'{"hits": {"results": [{"repositoryMetadata": {"repo:path": 7}}]}}',
    b'{"hits": {"results": [{"repositoryMetadata": {"repo:path": "/content/dam/x/a",'
    b' "repo:size": "10"}}]}}',
    b'{"hits": {"results": [{"repositoryMetadata": {"repo:path": "/content/dam/x/a",'
    b' "repo:size": -1}}]}}',
    b'{"hits": {"results": [{"repositoryMetadata": {"repo:path": "/content/dam/x/a",'
    b' "dam:sha1": ["x"]}}]}}',
    b'{"hits": {"results": []}, "cursor": 5}',
    b"[" * 100_000 + b"]" * 100_000,
]


@pytest.mark.parametrize("junk", JUNK, ids=lambda j: j[:40].decode())
def test_a_junk_listing_is_a_clear_error_never_a_traceback(
    tmp_path: Path, junk: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    with receiver(serving(lambda _r: junk)) as server:
        assert cli(server, "download", SOURCE, str(tmp_path / "d")) == 2
        # A page that is not a page stops the search too; a hit's odd fields show blank.
        assert cli(server, "search", "*") == (0 if b"repositoryMetadata" in junk else 2)
    err = capsys.readouterr().err
    assert "the server's search" in err and "Traceback" not in err


def _chunked(body: bytes) -> Reply:
    """A body with no length announced: chunked, to be read until the server stops."""
    framed = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 65536]), body[i : i + 65536])
        for i in range(0, len(body), 65536)
    )
    return Reply(200, framed + b"0\r\n\r\n", {"transfer-encoding": "chunked"})


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b"y" * (5 * 2**20)),
        _chunked(b"y" * (5 * 2**20)),
        Reply(200, b"y" * 11),
    ],
    ids=["announced-5MiB", "unannounced-5MiB", "one-byte-more"],
)
def test_a_body_longer_than_announced_fails_and_nothing_larger_is_left(
    tmp_path: Path, reply: Reply
) -> None:
    dest = tmp_path / "d"
    assets = {"a.bin": b"0123456789"}
    with receiver(serving(lambda _r: listing(assets), {"a.bin": reply})) as server:
        assert cli(server, "download", SOURCE, str(dest)) == 1
    assert all(p.stat().st_size <= 10 for p in dest.rglob("*") if p.is_file())
    assert not (dest / "a.bin").exists()


@pytest.mark.parametrize(
    "reply",
    [Reply(200, b"01234"), _chunked(b"01234")],
    ids=["announced-short", "unannounced-short"],
)
def test_a_body_shorter_than_announced_fails(tmp_path: Path, reply: Reply) -> None:
    dest = tmp_path / "d"
    assets = {"a.bin": b"0123456789"}
    with receiver(serving(lambda _r: listing(assets), {"a.bin": reply})) as server:
        assert cli(server, "download", SOURCE, str(dest)) == 1
    assert not (dest / "a.bin").exists()


def test_a_good_download_still_exits_0_and_skips_what_is_there(tmp_path: Path) -> None:
    dest = tmp_path / "d"
    assets = {"a.bin": b"0123456789", "sub/b.txt": b"b"}
    bodies = {n: Reply(200, b) for n, b in assets.items()}
    with receiver(serving(lambda _r: listing(assets), bodies)) as server:
        assert cli(server, "download", SOURCE, str(dest)) == 0
        assert cli(server, "download", SOURCE, str(dest)) == 0  # skipped: same SHA-1
        assert sum(r.method == "GET" for r in server.received) == 2
    assert (dest / "a.bin").read_bytes() == b"0123456789"
    assert (dest / "sub" / "b.txt").read_bytes() == b"b"


def test_a_range_answer_for_other_bytes_than_asked_is_not_appended(tmp_path: Path) -> None:
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "a.bin.part").write_bytes(b"01234")
    assets = {"a.bin": b"0123456789"}
    whole = Reply(206, b"0123456789", {"content-range": "bytes 0-9/10"})
    with receiver(serving(lambda _r: listing(assets), {"a.bin": whole})) as server:
        assert cli(server, "download", SOURCE, str(dest)) == 1
        assert [r.headers.get("range") for r in server.received if r.method == "GET"] == [
            "bytes=5-"
        ]
    assert (dest / "a.bin.part").read_bytes() == b"01234" and not (dest / "a.bin").exists()


def test_a_dest_that_is_a_file_stops_a_folder_download_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "f").write_bytes(b"mine")
    assets = {"a": b"a", "b": b"b"}
    with receiver(serving(lambda _r: listing(assets))) as server:
        assert cli(server, "download", SOURCE, str(tmp_path / "f")) == 2
    assert "not a directory the download can write to" in capsys.readouterr().err
    assert (tmp_path / "f").read_bytes() == b"mine"


# -- upload ----------------------------------------------------------------------------


def _upload_server(server_url: list[str]) -> Callable[[Received], Reply]:
    def answer(r: Received) -> Reply:
        path = urlsplit(r.path).path
        if r.method == "GET" and path.startswith("/api/assets"):
            return Reply(200, b"{}")
        if path.startswith("/adobe/assets/search"):
            return Reply(200, b'{"hits": {"results": []}}')
        if path.endswith(".initiateUpload.json"):
            entry = {
                "fileName": "f",
                "uploadToken": "t",
                "uploadURIs": [server_url[0] + "/part"],
                "minPartSize": 1,
                "maxPartSize": 2**20,
            }
            return Reply(200, json.dumps({"completeURI": "/c.json", "files": [entry]}).encode())
        return Reply(200, b"{}")

    return answer


def test_upload_of_a_directory_sends_nothing_from_outside_it_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"SECRET")
    top = tmp_path / "top"
    (top / "real").mkdir(parents=True)
    (top / "real" / "a.txt").write_bytes(b"inside")
    (top / "inside").symlink_to("real/a.txt")
    (top / "out").symlink_to(outside / "secret")
    (top / "out-dir").symlink_to(outside)
    os.mkfifo(top / "fifo")
    url: list[str] = []
    journal = str(tmp_path / "journal")
    with receiver() as server:
        url.append(server.url)
        server.answer(_upload_server(url))
        code = cli(server, "upload", str(top), "--folder", SOURCE, "--journal", journal)
        sent = [r.body for r in server.received if r.method == "PUT"]
    assert code == 1
    assert sorted(sent) == [b"inside", b"inside"]
    err = capsys.readouterr().err
    assert "uploaded 2, skipped 1, failed 2" in err
    assert "--follow-symlinks" in err

    with receiver() as server:
        url[0] = server.url
        server.answer(_upload_server(url))
        args = ("upload", str(top), "--folder", SOURCE, "--journal", journal)
        assert cli(server, *args, "--follow-symlinks") == 0  # the FIFO is only skipped
        assert b"SECRET" in [r.body for r in server.received if r.method == "PUT"]


@pytest.mark.parametrize(
    "initiated",
    [
        b"not json",
        b'{"files": []}',
        b'{"completeURI": "/c", "files": [{"fileName": "f", "uploadToken": "t",'
        b' "uploadURIs": [], "minPartSize": 1, "maxPartSize": 10}]}',
        b'{"completeURI": "/c", "files": [{"fileName": "f", "uploadToken": "t",'
        b' "uploadURIs": ["http://127.0.0.1:1/p"], "minPartSize": 1, "maxPartSize": 0}]}',
    ],
    ids=["junk", "no-files", "no-uris", "zero-parts"],
)
def test_a_junk_initiate_answer_fails_that_file_never_a_traceback(
    tmp_path: Path, initiated: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "f").write_bytes(b"data")

    def answer(r: Received) -> Reply:
        if r.path.startswith("/adobe/assets/search"):
            return Reply(200, b'{"hits": {"results": []}}')
        if ".initiateUpload.json" in r.path:
            return Reply(200, initiated)
        return Reply(200, b"{}")

    with receiver(answer) as server:
        args = ("upload", str(tmp_path / "f"), "--folder", SOURCE)
        assert cli(server, *args, "--journal", str(tmp_path / "j")) == 1
        assert [r for r in server.received if r.method == "PUT"] == []
    assert "the server's initiate answer" in capsys.readouterr().err


@pytest.mark.parametrize("other", ["{evil}/c.json", "//{evil_host}/c.json"])
def test_the_completion_and_its_token_never_go_to_another_server(
    tmp_path: Path, other: str
) -> None:
    (tmp_path / "f").write_bytes(b"data")
    with receiver() as evil, receiver() as server:
        complete = other.format(evil=evil.url, evil_host=f"{evil.host}:{evil.port}")

        def answer(r: Received) -> Reply:
            if r.path.startswith("/adobe/assets/search"):
                return Reply(200, b'{"hits": {"results": []}}')
            if ".initiateUpload.json" in r.path:
                entry = {
                    "fileName": "f",
                    "uploadToken": "t",
                    "uploadURIs": [server.url + "/part"],
                    "minPartSize": 1,
                    "maxPartSize": 100,
                }
                body = {"completeURI": complete, "files": [entry]}
                return Reply(200, json.dumps(body).encode())
            return Reply(200, b"{}")

        server.answer(answer)
        args = ("upload", str(tmp_path / "f"), "--folder", SOURCE)
        assert cli(server, *args, "--journal", str(tmp_path / "j")) == 0
        assert evil.received == []
        done = [r for r in server.received if r.path == "/c.json"]
        assert len(done) == 1 and done[0].headers["authorization"] == "Bearer t"


def test_a_server_trickling_a_download_fails_that_file_at_its_deadline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A byte every half second never trips a read timeout (the real attack: a byte every
    59 s, under the client's 60 s); the file's own deadline (--file-timeout plus its
    size at --min-rate) ends it, and the others are downloaded."""
    dest = tmp_path / "dest"
    slow, fast = b"0123456789" * 2, b"fast"
    bodies = {"slow.bin": Reply(200, slow, trickle=0.5), "fast.txt": Reply(200, fast)}
    with receiver(serving(lambda _r: listing({"slow.bin": slow, "fast.txt": fast}), bodies)) as s:
        started = time.monotonic()
        code = cli(s, "download", SOURCE, str(dest), "--file-timeout", "1", "--min-rate", "1")
        took = time.monotonic() - started
    assert code == 1
    assert took < 6, took  # the trickle would take 10 s
    assert (dest / "fast.txt").read_bytes() == fast and not (dest / "slow.bin").exists()
    err = capsys.readouterr().err
    assert "slow.bin: not done within 1 s" in err and "downloaded 1, skipped 0, failed 1" in err


def test_a_server_trickling_its_answers_to_an_upload_fails_that_file_at_its_deadline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same deadline holds each file of an upload: an initiate answer trickled a byte
    at a time fails that file."""
    (tmp_path / "a.txt").write_bytes(b"a" * 100)
    initiate = json.dumps(
        {
            "completeURI": "/content/dam/x.completeUpload.json",
            "folderPath": SOURCE,
            "files": [
                {
                    "fileName": "a.txt",
                    "mimeType": "text/plain",
                    "uploadToken": "t",
                    "uploadURIs": ["/part"],
                    "minPartSize": 1,
                    "maxPartSize": 1000,
                }
            ],
        }
    ).encode()

    def answer(r: Received) -> Reply:
        if r.path.startswith("/adobe/assets/search"):
            return Reply(200, json.dumps({"hits": {"results": []}}).encode())
        if r.path.startswith("/api/assets") and r.method == "GET":
            return Reply(200, b'{"properties": {}}')
        if r.path.endswith(".initiateUpload.json"):
            return Reply(200, initiate, {"content-type": "application/json"}, trickle=0.05)
        return Reply(404)

    with receiver(answer) as s:
        started = time.monotonic()
        code = cli(
            s,
            "upload",
            str(tmp_path / "a.txt"),
            "--folder",
            SOURCE,
            "--file-timeout",
            "1",
            "--min-rate",
            "1",
            "--journal",
            str(tmp_path / "journal"),
        )
        took = time.monotonic() - started
    assert code == 1 and took < 8, took  # the trickle would take about 20 s
    assert "not done within 1 s" in capsys.readouterr().err
