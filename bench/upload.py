"""Upload of a 1 GiB file through the direct binary upload protocol, against curl PUTting
the same file to nginx (WebDAV PUT) on loopback in the same run; and the server's RSS.

Both sides send the bytes with curl over one connection: the reference as one PUT, we
as the protocol's part PUTs (curl with one -T per part URI), plus initiate and complete.
Each pair uploads a fresh variant of the file (its first bytes changed), so the
content-addressed store cannot skip work.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
from tests.live import LiveServer, create_token, free_port

from bench.common import RssSampler, rss_bytes, summary, write_result

SIZE = 1024 * 1024 * 1024
PAIRS = int(os.environ.get("BENCH_UPLOAD_PAIRS", "3"))


def make_file(path: Path) -> None:
    block = os.urandom(16 * 1024 * 1024)
    with open(path, "wb") as fh:
        for i in range(SIZE // len(block)):
            fh.write(i.to_bytes(8, "little") + block[8:])


def vary(path: Path, n: int) -> str:
    """Give the file a new first block; returns its sha1."""
    with open(path, "r+b") as fh:
        fh.write(f"pair {n} {time.time_ns()}".encode().ljust(64, b"."))
    h = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(8 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


class Nginx:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        (work / "root").mkdir(parents=True)
        (work / "body").mkdir()
        self.conf = work / "nginx.conf"
        # As root, nginx's workers would drop to www-data and could not write here.
        user = "user root root;" if os.geteuid() == 0 else ""
        self.conf.write_text(
            textwrap.dedent(
                f"""
                daemon off;
                {user}
                worker_processes 1;
                pid {work}/nginx.pid;
                error_log {work}/error.log;
                events {{ worker_connections 64; }}
                http {{
                    access_log off;
                    client_body_temp_path {work}/body;
                    proxy_temp_path {work}/body;
                    fastcgi_temp_path {work}/body;
                    uwsgi_temp_path {work}/body;
                    scgi_temp_path {work}/body;
                    server {{
                        listen 127.0.0.1:{self.port};
                        client_max_body_size 0;
                        location / {{
                            root {work}/root;
                            dav_methods PUT;
                            create_full_put_path on;
                        }}
                    }}
                }}
                """
            )
        )
        self.process = subprocess.Popen(["nginx", "-c", str(self.conf), "-p", str(work)])
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=0.5)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def put(self, file: Path) -> None:
        subprocess.run(
            [
                "curl",
                "-sS",
                "--fail",
                "-o",
                "/dev/null",
                "-T",
                str(file),
                f"http://127.0.0.1:{self.port}/upload.bin",
            ],
            check=True,
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def split_parts(file: Path, part_size: int, out: Path) -> list[Path]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    subprocess.run(
        ["split", "-b", str(part_size), "-d", "-a", "4", str(file), str(out / "p")], check=True
    )
    return sorted(out.iterdir())


def protocol_upload(
    server: LiveServer, token: str, file: Path, name: str, parts_dir: Path
) -> tuple[float, dict[str, Any]]:
    """Times initiate + part PUTs + complete; splitting the file into part files happens
    after initiate (the part size is the server's answer) and is not timed."""
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=600) as http:
        t0 = time.perf_counter()
        init = http.post(
            "/content/dam/bench.initiateUpload.json",
            data={"fileName": name, "fileSize": str(SIZE)},
        ).json()["files"][0]
        t_init = time.perf_counter() - t0
        uris = init["uploadURIs"]
        part_size = max(-(-SIZE // len(uris)), init["minPartSize"])
        parts = split_parts(file, part_size, parts_dir)
        t1 = time.perf_counter()
        args = ["curl", "-sS", "--fail", "-o", "/dev/null"]
        for part, uri in zip(parts, uris, strict=False):
            args += ["-T", str(part), uri]
        subprocess.run(args, check=True)
        done = http.post(
            "/content/dam/bench.completeUpload.json",
            data={
                "fileName": name,
                "fileSize": str(SIZE),
                "uploadToken": init["uploadToken"],
                "mimeType": "application/octet-stream",
                "createVersion": "false",
                "replace": "false",
            },
        )
        elapsed = t_init + time.perf_counter() - t1
    done.raise_for_status()
    return elapsed, {"parts": len(parts), **done.json()}


def main() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="assetvault-bench-upload-", dir=os.environ.get("TMPDIR")))
    try:
        file = work / "payload.bin"
        make_file(file)
        nginx = Nginx(work / "nginx")
        # Workers off: this measures the upload path alone, not processing afterwards.
        server = LiveServer(data_dir=work / "data", extra_args=["--workers", "0"]).start()
        try:
            token = create_token(server.data_dir, "bench")
            httpx.post(
                server.url + "/api/assets/bench",
                json={"class": "assetFolder"},
                headers={"Authorization": f"Bearer {token}"},
            ).raise_for_status()
            assert server.process is not None
            pid = server.process.pid
            idle = rss_bytes(pid)
            ref_times: list[float] = []
            our_times: list[float] = []
            peaks: list[int] = []
            for n in range(PAIRS):
                sha1 = vary(file, n)
                start = time.perf_counter()
                nginx.put(file)
                ref_times.append(time.perf_counter() - start)
                with RssSampler(pid) as sampler:
                    elapsed, body = protocol_upload(
                        server, token, file, f"f{n}.bin", work / "parts"
                    )
                our_times.append(elapsed)
                peaks.append(sampler.peak)
                assert body["sha1"] == sha1, "the stored asset differs from the file"
                (work / "nginx" / "root" / "upload.bin").unlink(missing_ok=True)
            ratios = [r / o for r, o in zip(ref_times, our_times, strict=True)]
            mb = SIZE / 1e6
            result = {
                "file_bytes": SIZE,
                "parts": body["parts"],
                "pairs": PAIRS,
                "reference_nginx_put_s": summary(ref_times),
                "assetvault_protocol_s": summary(our_times),
                "reference_MBps_median": mb / summary(ref_times)["median"],
                "assetvault_MBps_median": mb / summary(our_times)["median"],
                "ratio_per_pair": ratios,
                "ratio_median": summary(ratios)["median"],
                "server_idle_rss_MB": idle / 2**20,
                "server_peak_rss_MB": max(peaks) / 2**20,
                "server_rss_growth_MB": (max(peaks) - idle) / 2**20,
                "targets": {"ratio": ">= 0.7", "rss_growth_MB": "< 100"},
            }
        finally:
            server.stop()
            nginx.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result("upload", result)
    print(
        f"upload 1 GiB: nginx PUT {result['reference_MBps_median']:.0f} MB/s, "
        f"Assetvault protocol {result['assetvault_MBps_median']:.0f} MB/s "
        f"({result['parts']} parts), ratio {result['ratio_median']:.2f} (target >= 0.7; "
        f"pairs {', '.join(f'{r:.2f}' for r in ratios)}); server RSS "
        f"{result['server_idle_rss_MB']:.0f} -> {result['server_peak_rss_MB']:.0f} MB "
        f"(growth {result['server_rss_growth_MB']:.0f} MB, target < 100)"
    )
    return result


if __name__ == "__main__":
    main()
