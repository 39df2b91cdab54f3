"""The interfaces' shared dependencies: the base URL answers are built from."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import HTTPConnection, Request

from assetvault.api import deps


def _request(host: str | None, scheme: str = "http", root_path: str = "") -> Request:
    settings = SimpleNamespace(public_url=None)
    app = SimpleNamespace(state=SimpleNamespace(services=SimpleNamespace(settings=settings)))
    headers = [(b"host", host.encode())] if host is not None else []
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": scheme,
        "server": ("127.0.0.1", 8000),
        "path": "/api/assets.json",
        "root_path": root_path,
        "query_string": b"",
        "headers": headers,
        "app": app,
    }
    return Request(scope)


def test_the_base_url_follows_the_host_the_scheme_and_the_root_path() -> None:
    assert deps.base_url(_request("dam.example:8080")) == "http://dam.example:8080"
    assert deps.base_url(_request("dam.example:8080", "https")) == "https://dam.example:8080"
    assert deps.base_url(_request("other")) == "http://other"
    assert deps.base_url(_request("other", root_path="/av")) == "http://other/av"
    assert deps.base_url(_request(None)) == "http://127.0.0.1:8000"


def test_the_base_url_of_a_known_host_is_not_built_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Starlette builds a URL object for each request's base URL; the same few hosts
    come again and again."""
    built: list[str] = []
    plain = HTTPConnection.base_url

    def counted(self: HTTPConnection) -> Any:
        built.append(self.headers.get("host", ""))
        return plain.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(HTTPConnection, "base_url", property(counted))
    for _ in range(3):
        assert deps.base_url(_request("again.example")) == "http://again.example"
    assert built.count("again.example") <= 1
    for i in range(deps._BASE_URLS_MAX + 10):  # hostile Host headers: the memory is bounded
        assert deps.base_url(_request(f"h{i}.example")) == f"http://h{i}.example"
    assert len(deps._BASE_URLS) <= deps._BASE_URLS_MAX
