"""The API's hot routes under load (wrk on loopback, 32 connections), each as a ratio to
a constant-JSON route of the same server (``/health/live``) measured in alternating
rounds of the same run: GET metadata (the target: ratio >= 0.5, p99 <= 10 ms), and,
reported beside it, /health (one database round trip), a Siren folder listing of 20
children and PATCH metadata. Then the same mix against a server in asyncio's debug mode,
counting the callbacks that held the event loop longer than 10 ms (its slow-callback log;
debug mode slows every callback, so the count errs high). Then GET metadata against two
API processes (``serve``'s default on two cores).

BENCH_WRK_DURATION (default 8s), BENCH_WRK_ROUNDS (3) and BENCH_WRK_CONNECTIONS (32) make
a quicker run.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests import media
from tests.live import LiveServer, create_token

from bench.common import write_result

DURATION = os.environ.get("BENCH_WRK_DURATION", "8s")
CONNECTIONS = os.environ.get("BENCH_WRK_CONNECTIONS", "32")
ROUNDS = int(os.environ.get("BENCH_WRK_ROUNDS", "3"))
SLOW_MS = 10
CHILDREN = 20


def _ms(value: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if found is None:
        raise RuntimeError(f"unexpected wrk latency {value!r}")
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(
    url: str, headers: dict[str, str], script: Path | None = None, connections: str | None = None
) -> dict[str, float]:
    args = ["wrk", "-t", "1", "-c", connections or CONNECTIONS, "-d", DURATION, "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    found = [
        re.search(p, out, re.MULTILINE)
        for p in (r"Requests/sec:\s+([\d.]+)", r"^\s+50%\s+(\S+)", r"^\s+99%\s+(\S+)")
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


def _upload(http: httpx.Client, folder: str, name: str, data: bytes) -> str:
    init = http.post(
        f"{folder}.initiateUpload.json", data={"fileName": name, "fileSize": str(len(data))}
    ).json()["files"][0]
    httpx.put(init["uploadURIs"][0], content=data).raise_for_status()
    done = http.post(
        f"{folder}.completeUpload.json",
        data={"fileName": name, "fileSize": str(len(data)), "uploadToken": init["uploadToken"]},
    )
    done.raise_for_status()
    return str(done.json()["assetId"])


class Target:
    """A served data directory with one photo and a folder of 20 children."""

    def __init__(self, work: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.server = LiveServer(data_dir=work / "data", extra_args=list(args), env=env or {})

    def __enter__(self) -> Target:
        work = self.server.data_dir.parent
        self.server.start()
        reader = create_token(self.server.data_dir, "bench", "read")
        writer = create_token(self.server.data_dir, "bench-writer", "write")
        http = httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {writer}"})
        photo = media.jpeg_with_metadata(work / "p.jpg").read_bytes()
        asset = _upload(http, "/content/dam", "p.jpg", photo)
        http.post("/api/assets/bench", json={"class": "assetFolder"}).raise_for_status()
        made = [asset]
        for i in range(CHILDREN):
            made.append(_upload(http, "/content/dam/bench", f"c{i:02}.txt", f"child {i}".encode()))
        url = self.server.url
        self.read = {"Authorization": f"Bearer {reader}", "X-Api-Key": "bench"}
        self.write = {"Authorization": f"Bearer {writer}", "X-Api-Key": "bench"}
        self.live = f"{url}/health/live"
        self.health = f"{url}/health"
        self.metadata = f"{url}/adobe/assets/{asset}/metadata"
        self.listing = f"{url}/api/assets/bench.json"
        self.patch_script = work / "patch.lua"
        self.patch_script.write_text(
            'wrk.method = "PATCH"\n'
            'wrk.body = \'[{"op":"add","path":"/bench:counter","value":1}]\'\n'
            'wrk.headers["Content-Type"] = "application/json-patch+json"\n'
            'wrk.headers["If-Match"] = "*"\n'
        )
        for check in (self.metadata, self.listing):
            assert httpx.get(check, headers=self.read).status_code == 200
        self._settle(made)
        return self

    def _settle(self, assets: list[str], timeout: float = 120.0) -> None:
        """Until the set-up's uploads are processed, so that no rendition job of theirs
        runs beside the rounds (the rounds measure routes, not the set-up's jobs)."""
        deadline = time.monotonic() + timeout
        pending = list(assets)
        while pending:
            url = f"{self.server.url}/adobe/assets/{pending[0]}/metadata"
            state = httpx.get(url, headers=self.read).json()["repositoryMetadata"]
            if state.get("aem:assetState") == "processing":
                if time.monotonic() > deadline:
                    raise RuntimeError("the set-up's uploads were not processed in time")
                time.sleep(0.2)
                continue
            pending.pop(0)
        time.sleep(1.0)  # the indexer and the dispatcher catch up with the last of them

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def mix(self) -> dict[str, dict[str, float]]:
        """One round: the reference, then each route."""
        return {
            "live": wrk(self.live, {}),
            "metadata": wrk(self.metadata, self.read),
            "health": wrk(self.health, {}),
            "listing": wrk(self.listing, self.read),
            "patch": wrk(self.metadata, self.write, self.patch_script),
        }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="assetvault-bench-metadata-"))
    rounds = []
    with Target(work / "one", "--processes", "1", "--workers", "1") as one:
        for _ in range(ROUNDS):  # alternate, so every route sees the same machine
            rounds.append(one.mix())
    routes = ["metadata", "health", "listing", "patch"]
    ratios = {r: _median([m[r]["rps"] / m["live"]["rps"] for m in rounds]) for r in routes}
    p99 = {r: _median([m[r]["p99_ms"] for m in rounds]) for r in [*routes, "live"]}
    rps = {r: _median([m[r]["rps"] for m in rounds]) for r in [*routes, "live"]}

    env = {"ASSETVAULT_SLOW_CALLBACK_MS": str(SLOW_MS)}
    with Target(work / "debug", "--processes", "1", "--workers", "1", env=env) as debug:
        assert debug.server.log_path is not None
        start_up = len(debug.server.log_path.read_text())  # start-up and set-up not counted
        debug.mix()
        log = debug.server.log_path.read_text()[start_up:]
    slow = re.findall(r"Executing .* took ([\d.]+) seconds", log)
    # Each request's task is named after it (app.py, NamedRequests): which held the loop.
    by_route: dict[str, list[float]] = {}
    for line in re.findall(r"Executing .* took [\d.]+ seconds", log):
        name = re.search(r"name='([^']*)'", line)
        route = name.group(1) if name else line.split(" took ")[0][10:90]
        route = re.sub(r"(urn:aaid:aem:)?[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", route)
        seconds = float(re.findall(r"took ([\d.]+) seconds", line)[0])
        by_route.setdefault(route, []).append(seconds * 1000)

    with Target(work / "two", "--processes", "2", "--workers", "1") as two:
        pair = [(wrk(two.live, {}), wrk(two.metadata, two.read)) for _ in range(ROUNDS)]
    two_rps = _median([m["rps"] for _, m in pair])
    two_p99 = _median([m["p99_ms"] for _, m in pair])

    result = {
        "rounds": rounds,
        "ratio_to_constant_route": ratios,
        "rps": rps,
        "p99_ms": p99,
        "slow_callbacks_over_10ms": len(slow),
        "slowest_callback_ms": max((float(s) * 1000 for s in slow), default=0.0),
        "slow_callbacks_by_route": {r: sorted(ms, reverse=True) for r, ms in by_route.items()},
        "two_processes": {"metadata_rps": two_rps, "metadata_p99_ms": two_p99},
        "connections": int(CONNECTIONS),
        "duration": DURATION,
    }
    write_result("metadata", result)
    print(f"one API process, wrk -c {CONNECTIONS}, median of {ROUNDS} alternating rounds:")
    print(f"  constant route: {rps['live']:.0f} req/s, p99 {p99['live']:.1f} ms")
    for r in routes:
        print(
            f"  {r:9} {rps[r]:6.0f} req/s  ratio {ratios[r]:.2f}  p99 {p99[r]:.1f} ms"
            + ("   (target: ratio >= 0.5, p99 <= 10 ms)" if r == "metadata" else "")
        )
    print(
        f"asyncio debug mode, same mix: {len(slow)} callback(s) held the loop > {SLOW_MS} ms"
        f" (slowest {result['slowest_callback_ms']:.1f} ms)"
    )
    for route, ms in sorted(by_route.items(), key=lambda kv: -max(kv[1])):
        print(f"    {route}: {len(ms)} (slowest {max(ms):.1f} ms)")
    print(f"two API processes: GET metadata {two_rps:.0f} req/s, p99 {two_p99:.1f} ms")
    return result


if __name__ == "__main__":
    main()
