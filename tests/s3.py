"""A real S3 server for the tests: Ceph RGW started once per test process by
scripts/ceph-rgw.sh (about 12 s) and stopped at its end, or the one whose endpoint
ASSETVAULT_TEST_S3_URL names (its credentials in AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, else the script's "testkey" / "testsecret").

Each test gets a prefix of its own in the session's bucket (``fresh_url``), so nothing a
test leaves behind is seen by another (a new bucket takes RGW seconds).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from assetvault.adapters.blobs.s3 import S3Location

# Runs a test of ``services`` on the local store and on S3 (Ceph RGW) too.
ON_S3_TOO = pytest.mark.parametrize(
    "blobs_backend", ["local", pytest.param("s3", marks=pytest.mark.s3)]
)

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "ceph-rgw.sh"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str = field(default_factory=lambda: f"assetvault-test-{uuid.uuid4().hex[:12]}")

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def blobs_url(self, bucket: str, prefix: str = "") -> str:
        path = f"/{prefix}" if prefix else ""
        return f"s3://{bucket}{path}?endpoint={self.endpoint}&region=us-east-1"

    def fresh_url(self) -> str:
        """The URL of a blob store under a new prefix of the session's bucket."""
        return self.blobs_url(self.bucket, f"t/{uuid.uuid4().hex}")

    def create_bucket(self) -> None:
        with credentials(self):
            S3Location.parse(self.blobs_url(self.bucket)).client().create_bucket(Bucket=self.bucket)


@contextlib.contextmanager
def credentials(server: S3Server) -> Iterator[None]:
    """The server's credentials in the AWS variables, where boto3 looks for them."""
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def rgw_server() -> Iterator[S3Server]:
    given = os.environ.get("ASSETVAULT_TEST_S3_URL")
    if given:
        server = S3Server(
            given,
            os.environ.get("AWS_ACCESS_KEY_ID", "testkey"),
            os.environ.get("AWS_SECRET_ACCESS_KEY", "testsecret"),
        )
        server.create_bucket()
        yield server
        return
    scratch = tempfile.mkdtemp(prefix="assetvault-rgw-")
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", scratch], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        raise RuntimeError(
            f"could not start Ceph RGW (scripts/bootstrap.sh installs it):\n{started.stderr}"
        )
    try:
        server = S3Server(started.stdout.strip().splitlines()[-1], "testkey", "testsecret")
        server.create_bucket()
        yield server
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", scratch], check=False)


class FollowToStore(httpx.AsyncBaseTransport):
    """The app's transport, with a 302 to the object store followed over the network as
    a client does: the request's headers (Range, conditions) are resent, not its
    credentials. Other redirects are answered as they are. A request for the store
    itself (a presigned part URL of a direct upload) goes there over the network."""

    def __init__(self, app: httpx.AsyncBaseTransport, store_endpoint: str) -> None:
        self.app = app
        self.store = httpx.AsyncHTTPTransport()
        self.origin = httpx.URL(store_endpoint)

    def _to_store(self, url: httpx.URL) -> bool:
        return (url.scheme, url.host, url.port) == (
            self.origin.scheme,
            self.origin.host,
            self.origin.port,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._to_store(request.url):
            return await self.store.handle_async_request(request)
        response = await self.app.handle_async_request(request)
        if response.status_code != 302:
            return response
        location = httpx.URL(response.headers["location"])
        if not self._to_store(location):
            return response
        await response.aclose()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        headers["host"] = location.netloc.decode()
        return await self.store.handle_async_request(
            httpx.Request(request.method, location, headers=headers)
        )

    async def aclose(self) -> None:
        await self.store.aclose()
        await self.app.aclose()
