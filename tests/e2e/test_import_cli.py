"""``assetvault import-url`` against a real server: a CSV in, a job submitted, its
progress followed; exit code 0 only when every file was imported."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.live import ASSETVAULT, LiveServer, create_token
from tests.receivers import Received, Reply, receiver

pytestmark = pytest.mark.e2e


def handle(r: Received) -> Reply:
    if r.path == "/missing.jpg":
        return Reply(404, b"no")
    return Reply(200, f"bytes of {r.path}".encode())


def import_url(server: LiveServer, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            ASSETVAULT,
            "import-url",
            "--server",
            server.url,
            "--token",
            token,
            "--poll",
            "0.3",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_url_follows_the_job_and_reports_by_its_exit_code(tmp_path: Path) -> None:
    with receiver(handle) as files:
        server = LiveServer(
            data_dir=tmp_path / "data",
            env={"ASSETVAULT_FETCH_ALLOW": "127.0.0.1"},
            extra_args=["--workers", "1"],
        ).start()
        try:
            token = create_token(server.data_dir, "cli")
            good = tmp_path / "good.csv"
            good.write_text(
                "url,fileName,dc:title\n"
                f"{files.url}/a.txt,first.txt,The first\n"
                f"{files.url}/b.txt,,\n"
            )
            done = import_url(server, token, "--folder", "/content/dam/cli", str(good))
            assert done.returncode == 0, done.stdout + done.stderr
            assert "2 of 2 file(s) imported" in done.stdout
            http = httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {token}", "X-Api-Key": "k"}
            )
            first = http.get("/api/assets/cli/first.txt.json")
            assert first.status_code == 200
            assert first.json()["properties"]["metadata"]["dc:title"] == "The first"
            assert http.get("/api/assets/cli/b.txt.json").status_code == 200

            urls = tmp_path / "urls.txt"
            urls.write_text(f"{files.url}/c.txt\n# a comment\n{files.url}/missing.jpg\n")
            partly = import_url(server, token, "--folder", "/content/dam/cli", str(urls))
            assert partly.returncode == 1, partly.stdout + partly.stderr
            assert "missing.jpg" in partly.stdout and "404" in partly.stdout
            assert "1 of 2 file(s) imported" in partly.stdout

            refused = import_url(server, token, "--folder", "/elsewhere", f"{files.url}/d.txt")
            assert refused.returncode == 2 and "folder" in refused.stdout
            nothing = import_url(
                server, token, "--folder", "/content/dam", str(tmp_path / "no.csv")
            )
            assert nothing.returncode == 2 and "neither a URL nor a file" in nothing.stderr
        finally:
            server.stop()
