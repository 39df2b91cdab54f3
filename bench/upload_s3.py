"""Direct binary upload with the blobs on S3 (Ceph RGW): the whole protocol (initiate,
the part PUTs to the presigned part URLs the server hands out, complete) against one
plain PUT of the same file to the same RGW (a presigned PutObject), in the same run.

Both sides send with curl from files in the page cache: the reference as one PUT of the
whole file, Assetvault as initiate, the part PUTs in order on one connection (one curl,
``-T part-file URL`` per part, as @adobe/aem-upload sends a file's parts one after
another) and complete. Measurements alternate (reference first in even pairs). After
each, both sides remove what they stored (the reference its object; Assetvault its
asset, and its object with ``assetvault sweep --grace 0``): RGW's test setup keeps
objects in 2 GB of memory.

Also counted: the request body bytes the API received for each upload, from the server's
own request journal (``serve --journal``): the parts go to RGW, so only the two forms
reach the API.

RGW is started by scripts/ceph-rgw.sh (tests/s3.py) unless ASSETVAULT_TEST_S3_URL names
one. Environment: BENCH_UPLOAD_S3_MIB (the file's size, a multiple of 16, default 256),
BENCH_UPLOAD_S3_PAIRS (default 5).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # also runnable as ``python bench/upload_s3.py``
    sys.path.insert(0, str(ROOT))

from tests.live import ASSETVAULT  # noqa: E402
from tests.s3 import S3Server, credentials, rgw_server  # noqa: E402

from assetvault.adapters.blobs.s3 import S3Location  # noqa: E402
from bench.common import (  # noqa: E402
    UploadServer,
    cpu_seconds,
    summary,
    write_result,
)

CHUNK = 16 * 1024 * 1024
SIZE = int(os.environ.get("BENCH_UPLOAD_S3_MIB", "256")) * 1024 * 1024
if SIZE <= 0 or SIZE % CHUNK:
    raise SystemExit("BENCH_UPLOAD_S3_MIB must be a positive multiple of 16")
PAIRS = int(os.environ.get("BENCH_UPLOAD_S3_PAIRS", "5"))
MB = 1e6
MiB = 2**20
FOLDER = "/content/dam/bench"
TARGET = 0.9


def make_file(path: Path) -> None:
    with open(path, "wb") as fh:
        for _ in range(SIZE // CHUNK):
            fh.write(os.urandom(CHUNK))


def split(file: Path, part_size: int, out: Path) -> list[Path]:
    out.mkdir()
    parts = []
    with open(file, "rb") as src:
        n = 0
        while data := src.read(part_size):
            n += 1
            part = out / f"part-{n:05d}"
            part.write_bytes(data)
            parts.append(part)
    return parts


def curl_put(pairs: list[tuple[Path, str]]) -> None:
    """PUT each file to its URL, in order, on one kept-alive connection."""
    args = ["curl", "-sS", "--fail", "-o", "/dev/null"]
    for path, url in pairs:
        args += ["-T", str(path), url]
    subprocess.run(args, check=True)


class Reference:
    """One plain PUT of the whole file to RGW, by a presigned PutObject URL."""

    def __init__(self, s3: S3Server) -> None:
        self.location = S3Location.parse(s3.blobs_url(s3.bucket))
        self.client = self.location.client((s3.access_key, s3.secret_key))
        self.bucket = s3.bucket

    def put(self, file: Path, name: str) -> float:
        key = f"bench-reference/{name}"
        url = self.client.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=3600
        )
        start = time.perf_counter()
        curl_put([(file, url)])
        elapsed = time.perf_counter() - start
        size = self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        if size != SIZE:
            raise RuntimeError(f"RGW stored {size} bytes, not {SIZE}")
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return elapsed


class Assetvault(UploadServer):
    def __init__(self, work: Path, s3: S3Server) -> None:
        super().__init__(
            work,
            SIZE,
            env={"ASSETVAULT_BLOBS_URL": s3.fresh_url(), **s3.env()},
            extra_args=("--journal", "100000"),
        )

    def received(self) -> int:
        """Request body bytes the API processes have received so far (the journal)."""
        db = sqlite3.connect(f"file:{self.server.data_dir / 'journal.db'}?mode=ro", uri=True)
        try:
            return int(
                db.execute("SELECT coalesce(sum(request_bytes), 0) FROM entries").fetchone()[0]
            )
        finally:
            db.close()

    def upload(self, parts: list[Path], name: str) -> dict[str, float]:
        before = self.received()
        cpu = cpu_seconds(self.pids)
        t0 = time.perf_counter()
        init = self.initiate(name)
        f = init["files"][0]
        if len(f["uploadURIs"]) != len(parts):
            raise RuntimeError(f"{len(f['uploadURIs'])} upload URIs for {len(parts)} parts")
        t1 = time.perf_counter()
        curl_put(list(zip(parts, f["uploadURIs"], strict=True)))
        t2 = time.perf_counter()
        done = self.http.post(
            init["completeURI"],
            data={
                "fileName": name,
                "fileSize": str(SIZE),
                "uploadToken": f["uploadToken"],
                "mimeType": "application/octet-stream",
                "createVersion": "false",
                "replace": "false",
            },
        )
        t3 = time.perf_counter()
        done.raise_for_status()
        if done.json()["fileSize"] != SIZE:
            raise RuntimeError(f"the stored asset differs from the file: {done.text}")
        phases = {
            "initiate": t1 - t0,
            "parts": t2 - t1,
            "complete": t3 - t2,
            "total": t3 - t0,
            "cpu": cpu_seconds(self.pids) - cpu,
            "api_request_bytes": float(self.received() - before),
        }
        self.remove(name)
        return phases

    def remove(self, name: str) -> None:
        self.http.delete(f"/api/assets/bench/{name}").raise_for_status()
        out = subprocess.run(
            [ASSETVAULT, "sweep", "--grace", "0", "--data-dir", str(self.server.data_dir)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
        ).stdout
        if "removed 1 blob" not in out:
            raise RuntimeError(f"the object of {name} was not swept: {out}")

    def stop(self) -> None:
        self.http.close()
        self.server.stop()


def measure(work: Path, s3: S3Server) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    file = work / "payload.bin"
    make_file(file)
    reference = Reference(s3)
    av = Assetvault(work, s3)
    try:
        count, part_size = av.part_size()
        parts = split(file, part_size, work / "parts")
        ref: list[float] = []
        ours: list[dict[str, float]] = []
        for n in range(PAIRS):
            if n % 2 == 0:
                ref.append(reference.put(file, f"f{n}.bin"))
                ours.append(av.upload(parts, f"f{n}.bin"))
            else:
                ours.append(av.upload(parts, f"f{n}.bin"))
                ref.append(reference.put(file, f"f{n}.bin"))
            print(
                f"  pair {n + 1}/{PAIRS}: plain PUT {SIZE / ref[-1] / MB:.0f} MB/s, "
                f"Assetvault {SIZE / ours[-1]['total'] / MB:.0f} MB/s "
                f"(ratio {ref[-1] / ours[-1]['total']:.2f}); API received "
                f"{ours[-1]['api_request_bytes']:.0f} request body bytes",
                flush=True,
            )
    finally:
        av.stop()
    totals = [o["total"] for o in ours]
    ratios = [r / o for r, o in zip(ref, totals, strict=True)]
    return {
        "file_bytes": SIZE,
        "parts": count,
        "part_bytes": part_size,
        "pairs": PAIRS,
        "reference": {
            "what": "curl -T file, one PUT to Ceph RGW (presigned PutObject)",
            "seconds": summary(ref),
            "MBps": {"best": SIZE / min(ref) / MB, "median": SIZE / statistics.median(ref) / MB},
        },
        "assetvault": {
            "what": "initiate + curl PUTs of the parts to RGW's presigned UploadPart URLs "
            "in order on one connection + complete",
            "seconds": summary(totals),
            "MBps": {
                "best": SIZE / min(totals) / MB,
                "median": SIZE / statistics.median(totals) / MB,
            },
            "server_cpu_seconds": summary([o["cpu"] for o in ours]),
            "phase_seconds_median": {
                k: statistics.median(o[k] for o in ours) for k in ("initiate", "parts", "complete")
            },
            "api_request_body_bytes_max": max(o["api_request_bytes"] for o in ours),
        },
        "ratio_per_pair": ratios,
        "ratio_median_of_pairs": statistics.median(ratios),
        "ratio_of_medians": statistics.median(ref) / statistics.median(totals),
        "loadavg_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "cpus": os.cpu_count(),
        "targets": {"ratio": f">= {TARGET}", "api_request_body_bytes": "< 1 MB"},
        "units": "MB = 10^6 bytes",
    }


def report(r: dict[str, Any]) -> None:
    ref, av = r["reference"], r["assetvault"]
    print(
        f"upload to Ceph RGW of {r['file_bytes'] / MiB:.0f} MiB ({r['parts']} parts of "
        f"{r['part_bytes'] // MiB} MiB), {r['pairs']} pairs, MB/s = 10^6 bytes/s"
    )
    print(f"  {'':28}{'min s':>8}{'median s':>10}{'max s':>8}{'best MB/s':>11}{'median MB/s':>13}")
    for label, side in (("plain PUT to RGW (reference)", ref), ("Assetvault protocol", av)):
        s, t = side["seconds"], side["MBps"]
        print(
            f"  {label:28}{s['min']:8.2f}{s['median']:10.2f}{s['max']:8.2f}"
            f"{t['best']:11.0f}{t['median']:13.0f}"
        )
    p = av["phase_seconds_median"]
    print(
        f"  Assetvault phases (median s): initiate {p['initiate']:.3f}, parts {p['parts']:.2f}, "
        f"complete {p['complete']:.3f}; API server CPU s (median) "
        f"{av['server_cpu_seconds']['median']:.2f}; request body bytes the API received per "
        f"upload (most) {av['api_request_body_bytes_max']:.0f}"
    )
    ok = "meets" if r["ratio_median_of_pairs"] >= TARGET else "BELOW"
    print(
        f"  ratio Assetvault/reference: pairs {', '.join(f'{x:.2f}' for x in r['ratio_per_pair'])}"
        f"; median of pairs {r['ratio_median_of_pairs']:.2f}, ratio of medians "
        f"{r['ratio_of_medians']:.2f} ({ok} target >= {TARGET})"
    )
    la = r["loadavg_1min"]
    print(
        f"  context: {r['cpus']} CPUs, 1-minute load average {la['before']:.1f} before, "
        f"{la['after']:.1f} after (others' work on this machine skews the figures)"
    )


def main() -> dict[str, Any]:
    work = Path(
        tempfile.mkdtemp(prefix="assetvault-bench-upload-s3-", dir=os.environ.get("TMPDIR"))
    )
    try:
        with rgw_server() as s3, credentials(s3):
            result = measure(work, s3)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    path = write_result("upload_s3", result)
    report(result)
    print(f"  written to {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
