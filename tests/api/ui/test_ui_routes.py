"""The web UI's and /docs' pages: static, served without a token, nothing from outside,
and a Content-Security-Policy that lets only the project's own files run."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx
import pytest

from assetvault.api.ui import routes
from assetvault.api.ui.routes import STATIC, VENDOR
from assetvault.services import Services
from tests.s3 import ON_S3_TOO


def _inline_scripts(html: str) -> list[str]:
    return re.findall(r"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", html, flags=re.S)


def _references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', html)


async def test_the_ui_page_needs_no_token_and_allows_only_its_own_scripts(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    # The one inline script (the import map) is allowed by its hash, and nothing else.
    (inline,) = _inline_scripts(r.text)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    script_src = re.search(r"script-src ([^;]*)", csp)
    assert script_src is not None
    assert script_src.group(1).split() == ["'self'", f"'sha256-{digest}'"]
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_docs_renders_the_servers_own_openapi_document(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200
    assert "/ui/vendor/swagger-ui-bundle.js" in r.text
    assert _inline_scripts(r.text) == []
    spec = await client.get("/openapi.json")
    assert spec.status_code == 200
    assert "/adobe/assets/search" in spec.json()["paths"]


async def test_every_file_the_pages_load_is_served_from_here(client: httpx.AsyncClient) -> None:
    for page in ("/", "/docs"):
        html = (await client.get(page)).text
        refs = _references(html) + re.findall(r'"(/ui/[^"]+)"', html)
        assert refs
        for ref in refs:
            assert ref.startswith("/") and not ref.startswith("//"), ref
            got = await client.get(ref)
            assert got.status_code == 200, ref
            assert got.headers["content-security-policy"].startswith("default-src 'self'")
    # The app's own modules import only each other and the vendored libraries.
    for module in STATIC.glob("*.js"):
        for target in re.findall(r'^import [^;]* from "([^"]+)";', module.read_text(), re.M):
            assert target in ("preact", "preact/hooks", "htm") or target.startswith("./"), target
    assert {p.name for p in VENDOR.iterdir()} >= {"preact.mjs", "hooks.mjs", "htm.mjs"}


async def test_the_static_mount_stays_inside_its_directory(client: httpx.AsyncClient) -> None:
    for path in ("/ui/../pyproject.toml", "/ui/%2e%2e/routes.py", "/ui/..%2froutes.py"):
        r = await client.get(path)
        assert r.status_code == 404, path
    assert (await client.get("/ui/missing.js")).status_code == 404


async def test_data_still_needs_a_token(client: httpx.AsyncClient) -> None:
    # The pages are open; what they show comes from the APIs, whose rules are unchanged.
    assert (await client.get("/api/assets.json")).status_code == 401
    r = await client.post("/adobe/assets/search?allowUnsafeSearch=true", json={})
    assert r.status_code == 401


async def test_without_its_libraries_the_ui_says_what_to_do(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(routes, "VENDOR", tmp_path / "not-installed")
    r = await client.get("/")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert "make install" in r.json()["detail"]


@ON_S3_TOO
async def test_the_pages_allow_the_object_store_the_browser_is_sent_to(
    client: httpx.AsyncClient, services: Services, blobs_backend: str
) -> None:
    """With blobs on S3, previews, videos and downloads are redirected to the bucket and
    upload parts go straight to it: the pages' policy lets the browser reach that origin
    (and no other); on the local store, only the server itself."""
    settings = services.settings
    endpoint = settings.resolved_blobs_url.split("endpoint=", 1)[-1].split("&", 1)[0]
    for path in ("/", "/docs"):
        csp = (await client.get(path)).headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
        for name in ("img-src", "media-src", "connect-src"):
            sources = directives[name].split()
            if blobs_backend == "s3":
                assert endpoint.rstrip("/") in sources, (name, csp)
            assert [s for s in sources if "://" in s] == (
                [endpoint.rstrip("/")] if blobs_backend == "s3" else []
            ), (name, csp)
        assert directives["script-src"].split()[0] == "'self'"
        assert all("://" not in s for s in directives["script-src"].split())
