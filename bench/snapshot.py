"""Snapshots and reset of a running ``assetvault serve`` (issue 24): save and restore of
ASSETVAULT_BENCH_SNAPSHOT_ASSETS assets (1,000 by default) holding
ASSETVAULT_BENCH_SNAPSHOT_BYTES of binaries in all (1 GiB by default), over the admin
API, and a reset to an empty DAM; targets: restore within 3 s, reset within 1 s.

References measured in the same run, on the same data directory: ``cp -al`` (a copy of
the whole directory by hard links, what a restore that shares blobs cannot beat by
much) and ``cp -r`` (a plain copy: what a restore that copied the binaries would cost).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests.live import LiveServer, create_token

from bench.common import summary, write_result

ASSETS = int(os.environ.get("ASSETVAULT_BENCH_SNAPSHOT_ASSETS", "1000"))
BYTES = int(os.environ.get("ASSETVAULT_BENCH_SNAPSHOT_BYTES", str(1024**3)))
RUNS = int(os.environ.get("ASSETVAULT_BENCH_SNAPSHOT_RUNS", "3"))


async def fill(data_dir: Path, assets: int, total: int) -> None:
    """``assets`` assets of random bytes (``total`` in all) in one folder, through the
    write path."""
    from assetvault.services import build_services
    from assetvault.settings import Settings
    from assetvault.tree.service import NewAsset

    svc = build_services(Settings(data_dir=data_dir))
    try:
        await svc.db.migrate()
        await svc.tree.create_folder("/content/dam", "bench", user="bench")
        size = max(1, total // assets)
        batch: list[NewAsset] = []
        for i in range(assets):
            scratch = data_dir / f"scratch-{i}"
            scratch.write_bytes(os.urandom(size))
            blob = await svc.blobs.put_file(scratch)
            scratch.unlink(missing_ok=True)
            batch.append(NewAsset(f"asset-{i:05d}.bin", blob, "application/octet-stream", {}))
            if len(batch) == 200:
                await svc.tree.import_originals("/content/dam/bench", batch, user="bench")
                batch = []
        if batch:
            await svc.tree.import_originals("/content/dam/bench", batch, user="bench")
    finally:
        await svc.close()


def timed(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(command, check=True)
    return time.monotonic() - started


def post(http: httpx.Client, path: str, body: Any = None) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    r = http.post(path, json=body)
    took = time.monotonic() - started
    if r.status_code >= 300:
        raise RuntimeError(f"{path}: {r.status_code} {r.text}")
    return took, r.json()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-snapshot-") as tmp:
        root = Path(tmp)
        data = root / "data"
        data.mkdir()
        started = time.monotonic()
        asyncio.run(fill(data, ASSETS, BYTES))
        print(
            f"filled {ASSETS} assets, {BYTES / 2**20:.0f} MiB in {time.monotonic() - started:.1f} s"
        )
        token = create_token(data, "bench", "admin")
        hardlinks = timed(["cp", "-al", str(data), str(root / "ref-links")])
        plain = timed(["cp", "-r", str(data), str(root / "ref-copy")])
        shutil.rmtree(root / "ref-links")
        shutil.rmtree(root / "ref-copy")

        server = LiveServer(data_dir=data, extra_args=["--workers", "0"]).start()
        try:
            http = httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=600,
            )
            saves, restores, resets = [], [], []
            for _ in range(RUNS):
                took, outcome = post(http, "/_assetvault/snapshots", {"name": "bench"})
                saves.append(took)
            assert outcome["assets"] == ASSETS, outcome
            for _ in range(RUNS):
                post(http, "/_assetvault/reset")  # something else in place first
                took, outcome = post(http, "/_assetvault/snapshots/bench/restore")
                restores.append(took)
                listed = http.get("/api/assets/bench.json?limit=1").json()
                assert listed["properties"]["srn:paging"]["total"] == ASSETS, listed
            for _ in range(RUNS):
                took, _ = post(http, "/_assetvault/reset")
                resets.append(took)
        finally:
            server.stop()

    result = {
        "assets": ASSETS,
        "bytes": BYTES,
        "save_seconds": summary(saves),
        "restore_seconds": summary(restores),
        "reset_seconds": summary(resets),
        "reference_cp_al_seconds": hardlinks,
        "reference_cp_r_seconds": plain,
        "restore_over_cp_al": min(restores) / hardlinks,
        "restore_over_cp_r": min(restores) / plain,
        "save_over_cp_r": min(saves) / plain,
        "reset_over_cp_al": min(resets) / hardlinks,
        "targets": {"restore_seconds": 3.0, "reset_seconds": 1.0},
        "load_average": os.getloadavg()[0],
    }
    print(
        f"save {summary(saves)['median']:.2f} s, restore {summary(restores)['median']:.2f} s "
        f"(min {min(restores):.2f}), reset {summary(resets)['median']:.2f} s; "
        f"cp -al {hardlinks:.2f} s, cp -r {plain:.2f} s; "
        f"restore/cp -al {result['restore_over_cp_al']:.2f}, "
        f"restore/cp -r {result['restore_over_cp_r']:.2f}, "
        f"save/cp -r {result['save_over_cp_r']:.2f}, "
        f"reset/cp -al {result['reset_over_cp_al']:.2f}; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    write_result("snapshot", result)


if __name__ == "__main__":
    main()
