"""The embedded search index under real processes: kill -9 the indexer while changes
flow, restart it, and the index holds every asset exactly once, as it is now; and
`serve` runs an indexer of its own, so a search over HTTP sees an upload at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from assetvault.search.indexer import outbox_head, read_state
from assetvault.search.query import parse_request
from assetvault.services import Services, build_services
from tests.factories import make_assets, make_settings
from tests.live import ASSETVAULT, LiveServer, create_token

pytestmark = pytest.mark.e2e


def start_indexer(data_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [ASSETVAULT, "search", "indexer", "--data-dir", str(data_dir)],
        env={**os.environ, "ASSETVAULT_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def position(svc: Services) -> tuple[int, int]:
    async with svc.db.reader() as r:
        state = await read_state(r)
        return (state.position if state else -1), await outbox_head(r)


async def wait_caught_up(svc: Services, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        applied, head = await position(svc)
        if applied == head:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the indexer did not catch up: {await position(svc)}")


async def hits(svc: Services, word: str) -> list[str]:
    body = {"query": [{"match": {"text": word}}], "limit": 50}
    result = await svc.search.search(parse_request(body))
    return [h["repositoryMetadata"]["repo:name"] for h in result["hits"]["results"]]


async def test_kill_9_the_indexer_mid_stream(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # This process only reads the index, as an API process under serve does.
    svc = build_services(make_settings(data_dir, search_index_here=False))
    await svc.db.migrate()
    indexer = start_indexer(data_dir)
    expected: dict[str, str] = {}  # asset name -> the one word it must be found by
    gone: set[str] = set()
    try:
        for round_ in range(40):
            names = [f"a{round_}x{i}.jpg" for i in range(25)]
            nodes = await make_assets(
                svc, [(n, {"dc:title": f"w{round_}x{i}"}) for i, n in enumerate(names)]
            )
            expected.update({n: f"w{round_}x{i}" for i, n in enumerate(names)})
            changed = nodes[0]
            await svc.changes.set_properties(changed.path, {"dc:title": f"z{round_}"}, user="u")
            gone.add(expected[changed.name])
            expected[changed.name] = f"z{round_}"
            await svc.changes.delete(nodes[1].path, user="u")
            gone.add(expected.pop(nodes[1].name))
            if round_ in (12, 27):  # while changes flow: no chance to finish cleanly
                indexer.send_signal(signal.SIGKILL)
                indexer.wait()
                indexer = start_indexer(data_dir)
        await wait_caught_up(svc)
        index = svc.embedded_search
        assert index is not None
        await index.wait_for((await position(svc))[1])
        assert index.index is not None and index.index.count() == len(expected)
        for name, word in expected.items():
            assert await hits(svc, word) == [name], word
        for word in sorted(gone)[:40]:
            assert await hits(svc, word) == [], word
    finally:
        indexer.send_signal(signal.SIGKILL)
        indexer.wait()
        await svc.close()


def test_serve_runs_the_indexer(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data", extra_args=["--workers", "0"]).start()
    try:
        token = create_token(server.data_dir, "search")
        http = httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {token}", "X-Api-Key": "e2e"},
            timeout=30,
        )
        for i in range(5):
            name = f"granite{i}.jpg"
            data = f"binary {i}".encode()
            init = http.post(
                "/content/dam.initiateUpload.json",
                data={"fileName": name, "fileSize": str(len(data))},
            ).json()["files"][0]
            assert httpx.put(init["uploadURIs"][0], content=data).status_code == 201
            done = http.post(
                "/content/dam.completeUpload.json",
                data={
                    "fileName": name,
                    "fileSize": str(len(data)),
                    "uploadToken": init["uploadToken"],
                },
            )
            assert done.status_code == 200, done.text
            # Any API process, right after the commit: the search waits for the index.
            found = http.post(
                "/adobe/assets/search?allowUnsafeSearch=true",
                json={"query": [{"match": {"text": f"granite{i}"}}]},
            )
            assert found.status_code == 200, found.text
            names = [h["repositoryMetadata"]["repo:name"] for h in found.json()["hits"]["results"]]
            assert names == [name]
        assert any(p.name.startswith("index-") for p in (server.data_dir / "search").iterdir())
    finally:
        server.stop()


def test_reindex_while_serving(tmp_path: Path) -> None:
    """`assetvault search reindex` beside a running server: every search meanwhile
    answers 200 with every asset; then the server searches the new index, and the
    indexer goes on into it."""
    import threading

    server = LiveServer(data_dir=tmp_path / "data", extra_args=["--workers", "0"]).start()
    try:
        svc = build_services(make_settings(server.data_dir, search_index_here=False))

        async def load() -> None:
            try:
                await make_assets(svc, [(f"r{i}.jpg", {"dc:title": "marble"}) for i in range(300)])
            finally:
                await svc.close()

        asyncio.run(load())
        token = create_token(server.data_dir, "reindex", "read")
        http = httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {token}", "X-Api-Key": "e2e"},
            timeout=30,
        )
        body = {"query": [{"match": {"text": "marble"}}], "limit": 1}
        before = {p.name for p in (server.data_dir / "search").iterdir()}
        totals: list[int] = []
        done = threading.Event()

        def search_meanwhile() -> None:
            while not done.is_set():
                r = http.post("/adobe/assets/search?allowUnsafeSearch=true", json=body)
                assert r.status_code == 200, r.text
                totals.append(r.json()["search_metadata"]["totalCount"]["total"])

        searcher = threading.Thread(target=search_meanwhile)
        searcher.start()
        try:
            out = subprocess.run(
                [ASSETVAULT, "search", "reindex", "--data-dir", str(server.data_dir)],
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            done.set()
            searcher.join()
        assert out.returncode == 0, out.stderr
        assert "search index rebuilt" in out.stdout
        assert totals and set(totals) == {300}
        after = {p.name for p in (server.data_dir / "search").iterdir()}
        assert after != before and len(after) == 1
        # The indexer took the new index over: a new asset is found in it.
        svc = build_services(make_settings(server.data_dir, search_index_here=False))

        async def one_more() -> None:
            try:
                await make_assets(svc, [("late.jpg", {"dc:title": "marble late"})])
            finally:
                await svc.close()

        asyncio.run(one_more())
        r = http.post("/adobe/assets/search?allowUnsafeSearch=true", json=body)
        assert r.json()["search_metadata"]["totalCount"]["total"] == 301
    finally:
        server.stop()
