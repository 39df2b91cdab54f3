"""The API's hot routes under load (wrk on loopback, 32 connections), each as a ratio to
a constant-JSON route of the same server (``/health/live``) measured in alternating
rounds of the same run: GET metadata (the target: ratio >= 0.5, p99 <= 10 ms), and,
reported beside it, /health (one database round trip), a Siren folder listing of 20
children and PATCH metadata. Then the same mix against a server in asyncio's debug mode,
counting the callbacks that held the event loop longer than 10 ms (its slow-callback log;
debug mode slows every callback, so the count errs high). Then GET metadata against two
API processes (``serve``'s default on two cores).

Then PATCH metadata while the server is busy with what a real one does beside it (issue
23: p99 <= 100 ms at 32 connections), each PATCH writing a new value (so each announces
a metadata_updated event): three webhook registrations of it delivering to a local
receiver (its own process), alone, and with an ingest of
BENCH_BUSY_ASSETS (200) small JPEGs uploaded four at a time and processed by the worker
running beside the PATCHes; each round measures the constant route first, so every
figure has the same round's reference.

BENCH_WRK_DURATION (default 8s), BENCH_WRK_ROUNDS (3) and BENCH_WRK_CONNECTIONS (32) make
a quicker run; BENCH_METADATA_PARTS (default "mix,debug,two,busy") picks the parts.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from tests import media
from tests.live import LiveServer, create_token

from bench.common import write_result

DURATION = os.environ.get("BENCH_WRK_DURATION", "8s")
CONNECTIONS = os.environ.get("BENCH_WRK_CONNECTIONS", "32")
ROUNDS = int(os.environ.get("BENCH_WRK_ROUNDS", "3"))
PARTS = set(os.environ.get("BENCH_METADATA_PARTS", "mix,debug,two,busy").split(","))
BUSY_ASSETS = int(os.environ.get("BENCH_BUSY_ASSETS", "200"))
HOOKS = 3
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
        # Each PATCH a new value, so that each is a change with its event (a PATCH that
        # writes the value already there changes nothing and announces nothing).
        self.changing_script = work / "patch-changing.lua"
        self.changing_script.write_text(
            'wrk.method = "PATCH"\n'
            'wrk.headers["Content-Type"] = "application/json-patch+json"\n'
            'wrk.headers["If-Match"] = "*"\n'
            "counter = 0\n"
            "request = function()\n"
            "  counter = counter + 1\n"
            '  return wrk.format(nil, nil, nil, \'[{"op":"add","path":"/bench:counter","value":\' '
            "..  counter .. '}]')\n"
            "end\n"
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


class Ingest:
    """``BUSY_ASSETS`` small JPEGs uploaded four at a time into a new folder, in a
    thread, while the block runs; the worker processes them as they come."""

    def __init__(self, target: Target, photo: bytes, folder: str) -> None:
        self.target = target
        self.photo = photo
        self.folder = folder
        self.uploaded = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            server = self.target.server
            with httpx.Client(base_url=server.url, headers=self.target.write, timeout=120) as http:
                http.post(f"/api/assets/{self.folder}", json={"class": "assetFolder"})

                def one(i: int) -> None:
                    _upload(http, f"/content/dam/{self.folder}", f"i{i:03}.jpg", self.photo)
                    self.uploaded += 1

                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(one, range(BUSY_ASSETS)))
        except BaseException as exc:  # reported by wait()
            self.error = exc

    def __enter__(self) -> Ingest:
        self._thread.start()
        time.sleep(0.5)  # the uploads under way before the measuring starts
        return self

    def __exit__(self, *exc: object) -> None:
        self.during = {"uploaded": self.uploaded, "processed": self.processed()}

    def processed(self) -> int:
        db = self.target.server.data_dir / "assetvault.db"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            row = conn.execute(
                "SELECT count(*) FROM nodes WHERE path LIKE ? AND kind = 'asset' "
                "AND asset_state != 'processing'",
                (f"/content/dam/{self.folder}/%",),
            ).fetchone()
        return int(row[0])

    def wait(self, timeout: float = 600.0) -> None:
        """Until every upload is in and processed."""
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        deadline = time.monotonic() + timeout
        while self.processed() < BUSY_ASSETS:
            if time.monotonic() > deadline:
                raise RuntimeError("the ingest was not processed in time")
            time.sleep(0.2)


def busy(work: Path) -> dict[str, Any]:
    """PATCH at 32 connections with three webhooks receiving, then with an ingest too."""
    from bench.events import ENV, Receiver, register, settle

    rounds: list[dict[str, Any]] = []
    with (
        Receiver() as hook,
        Target(work / "busy", "--processes", "1", "--workers", "1", env=ENV) as target,
    ):
        admin = create_token(target.server.data_dir, "bench-admin", "admin")
        for _ in range(HOOKS):
            register(target.server, admin, hook.url)
        photo = media.jpeg_with_metadata(work / "busy.jpg", 320, 240).read_bytes()
        for n in range(ROUNDS):
            live = wrk(target.live, {})
            hooks = wrk(target.metadata, target.write, target.changing_script)
            with Ingest(target, photo, f"busy{n}") as ingest:
                both = wrk(target.metadata, target.write, target.changing_script)
            ingest.wait()
            settle(hook)  # the next round starts with nothing left to deliver
            received = hook.count()
            rounds.append(
                {
                    "live": live,
                    "hooks": hooks,
                    "hooks_ingest": both,
                    **ingest.during,
                    "events_received_so_far": received,
                }
            )
            print(
                f"  busy round {n + 1}/{ROUNDS}: constant {live['rps']:.0f} req/s; PATCH with "
                f"{HOOKS} webhooks {hooks['rps']:.0f} req/s p99 {hooks['p99_ms']:.1f} ms; "
                f"with an ingest too {both['rps']:.0f} req/s p99 {both['p99_ms']:.1f} ms "
                f"({ingest.during['uploaded']} uploaded, {ingest.during['processed']} "
                f"processed meanwhile; {received} events received so far)",
                flush=True,
            )
        delivered = hook.count()
    out: dict[str, Any] = {"rounds": rounds, "webhooks": HOOKS, "ingest_assets": BUSY_ASSETS}
    out["events_received"] = delivered
    for part in ("hooks", "hooks_ingest"):
        out[part] = {
            "rps": _median([r[part]["rps"] for r in rounds]),
            "p99_ms": _median([r[part]["p99_ms"] for r in rounds]),
            "p99_ms_spread": [
                min(r[part]["p99_ms"] for r in rounds),
                max(r[part]["p99_ms"] for r in rounds),
            ],
            "ratio_to_constant_route": _median([r[part]["rps"] / r["live"]["rps"] for r in rounds]),
        }
    return out


def spread(rounds: list[dict[str, dict[str, float]]], route: str, key: str) -> list[float]:
    values = [m[route][key] for m in rounds]
    return [min(values), max(values)]


def main() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="assetvault-bench-metadata-"))
    result: dict[str, Any] = {"connections": int(CONNECTIONS), "duration": DURATION}
    routes = ["metadata", "health", "listing", "patch"]
    if "mix" in PARTS:
        rounds = []
        with Target(work / "one", "--processes", "1", "--workers", "1") as one:
            for _ in range(ROUNDS):  # alternate, so every route sees the same machine
                rounds.append(one.mix())
        ratios = {r: _median([m[r]["rps"] / m["live"]["rps"] for m in rounds]) for r in routes}
        p99 = {r: _median([m[r]["p99_ms"] for m in rounds]) for r in [*routes, "live"]}
        rps = {r: _median([m[r]["rps"] for m in rounds]) for r in [*routes, "live"]}
        result.update(
            {
                "rounds": rounds,
                "ratio_to_constant_route": ratios,
                "rps": rps,
                "p99_ms": p99,
                "p99_ms_spread": {r: spread(rounds, r, "p99_ms") for r in [*routes, "live"]},
                "rps_spread": {r: spread(rounds, r, "rps") for r in [*routes, "live"]},
            }
        )
        print(f"one API process, wrk -c {CONNECTIONS}, median of {ROUNDS} alternating rounds:")
        print(f"  constant route: {rps['live']:.0f} req/s, p99 {p99['live']:.1f} ms")
        for r in routes:
            low, high = result["rps_spread"][r]
            print(
                f"  {r:9} {rps[r]:6.0f} req/s ({low:.0f}-{high:.0f})  ratio {ratios[r]:.2f}  "
                f"p99 {p99[r]:.1f} ms ({result['p99_ms_spread'][r][0]:.1f}-"
                f"{result['p99_ms_spread'][r][1]:.1f})"
                + ("   (target: ratio >= 0.5, p99 <= 10 ms)" if r == "metadata" else "")
                + ("   (target: ratio >= 0.5, p99 <= 15 ms)" if r == "listing" else "")
                + ("   (target: >= 1,000 req/s, p99 <= 50 ms)" if r == "patch" else ""),
                flush=True,
            )

    if "debug" in PARTS:
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
        result.update(
            {
                "slow_callbacks_over_10ms": len(slow),
                "slowest_callback_ms": max((float(s) * 1000 for s in slow), default=0.0),
                "slow_callbacks_by_route": {
                    r: sorted(ms, reverse=True) for r, ms in by_route.items()
                },
            }
        )
        print(
            f"asyncio debug mode, same mix: {len(slow)} callback(s) held the loop > {SLOW_MS} ms"
            f" (slowest {result['slowest_callback_ms']:.1f} ms)"
        )
        for route, ms in sorted(by_route.items(), key=lambda kv: -max(kv[1])):
            print(f"    {route}: {len(ms)} (slowest {max(ms):.1f} ms)")

    if "two" in PARTS:
        with Target(work / "two", "--processes", "2", "--workers", "1") as two:
            pair = [(wrk(two.live, {}), wrk(two.metadata, two.read)) for _ in range(ROUNDS)]
        two_rps = _median([m["rps"] for _, m in pair])
        two_p99 = _median([m["p99_ms"] for _, m in pair])
        result["two_processes"] = {"metadata_rps": two_rps, "metadata_p99_ms": two_p99}
        print(f"two API processes: GET metadata {two_rps:.0f} req/s, p99 {two_p99:.1f} ms")

    if "busy" in PARTS:
        result["busy"] = found = busy(work)
        for part, what in (
            ("hooks", f"{HOOKS} webhooks"),
            ("hooks_ingest", f"{HOOKS} webhooks and an ingest"),
        ):
            f = found[part]
            print(
                f"PATCH with {what}, median of {ROUNDS}: {f['rps']:.0f} req/s (ratio "
                f"{f['ratio_to_constant_route']:.2f}), p99 {f['p99_ms']:.1f} ms "
                f"({f['p99_ms_spread'][0]:.1f}-{f['p99_ms_spread'][1]:.1f})"
                "   (target: p99 <= 100 ms)"
            )
    write_result("metadata", result)
    return result


if __name__ == "__main__":
    main()
