"""A handle on an Assetvault a test suite runs against: its URL and admin token, an HTTP
client that carries them, and the harness of docs/ci.md over the admin API (snapshots
and reset, fault rules, the request journal). The pytest plugin hands one out; any other
harness can use it as it is:

    from assetvault.testing.server import TestServer

    with TestServer.start(seed="tests/dam", faults=True, journal=1000) as dam:
        dam.save_baseline()
        dam.client.get("/api/assets.json")
        dam.restore_baseline()
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from assetvault.runtime.ephemeral import EphemeralServer, StartFailed, start_ephemeral

ADMIN = "/_assetvault"
DEFAULT_API_KEY = "assetvault-tests"
# A restore or a save of a big state takes seconds, a loaded CI runner more.
ADMIN_TIMEOUT_SECONDS = 300.0
SETTLE_TIMEOUT_SECONDS = 300.0


class HarnessError(RuntimeError):
    """The server refused a harness request; the message says what it answered."""


def _checked(response: httpx.Response, *expected: int) -> httpx.Response:
    if response.status_code not in expected:
        raise HarnessError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:2000]}"
        )
    return response


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class Faults:
    """The fault rules of a server started with ``--faults`` (``/_assetvault/faults``)."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def add(
        self,
        *,
        path: str | None = None,
        regex: str | None = None,
        method: str | None = None,
        count: int | None = None,
        probability: float | None = None,
        seed: int | None = None,
        delay: float | None = None,
        status: int | None = None,
        message: str | None = None,
        format: str | None = None,  # the rule field of that name
        headers: Mapping[str, str] | None = None,
        drop: bool | None = None,
    ) -> dict[str, Any]:
        """Adds a rule (docs/ci.md, "Fault injection": every argument is the rule field of
        that name) and returns it as the server lists it (``id``, ``seed``...)."""
        rule = _drop_none(
            {
                "path": path,
                "regex": regex,
                "method": method,
                "count": count,
                "probability": probability,
                "seed": seed,
                "delay": delay,
                "status": status,
                "message": message,
                "format": format,
                "headers": dict(headers) if headers is not None else None,
                "drop": drop,
            }
        )
        added = _checked(self._client.post(f"{ADMIN}/faults", json=rule), 201)
        rule_added: dict[str, Any] = added.json()
        return rule_added

    def list(self) -> list[dict[str, Any]]:
        """The rules, each with ``id``, ``seed``, ``remaining``, ``matched`` and ``fired``."""
        rules: list[dict[str, Any]] = _checked(self._client.get(f"{ADMIN}/faults"), 200).json()[
            "faults"
        ]
        return rules

    def remove(self, rule_id: int) -> None:
        _checked(self._client.delete(f"{ADMIN}/faults/{rule_id}"), 204)

    def clear(self) -> int:
        """Removes every rule; how many there were."""
        return int(_checked(self._client.delete(f"{ADMIN}/faults"), 200).json()["removed"])


class Journal:
    """The request journal of a server started with ``--journal N``
    (``/_assetvault/journal``)."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def list(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | str | None = None,
        since: float | str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The entries that match, oldest first: ``path`` a glob (``*`` crosses ``/``),
        ``status`` one (``503``) or a class (``"5xx"``), ``since`` Unix seconds or an ISO
        8601 time, ``after`` an entry id."""
        params = _drop_none(
            {
                "method": method,
                "path": path,
                "status": status,
                "since": since,
                "after": after,
                "limit": limit,
            }
        )
        found = _checked(self._client.get(f"{ADMIN}/journal", params=params), 200)
        entries: list[dict[str, Any]] = found.json()["entries"]
        return entries

    def clear(self) -> int:
        """Empties the journal; how many entries it held."""
        return int(_checked(self._client.delete(f"{ADMIN}/journal"), 200).json()["removed"])


class TestServer:
    """An Assetvault to test against: one this process started (``start``), or one that
    runs already (``attach``). ``client`` carries the admin token (``Authorization``)
    and an ``X-Api-Key``, with ``base_url`` the server's URL."""

    __test__ = False  # not a test class, whatever pytest's naming rules say

    def __init__(
        self,
        url: str,
        token: str,
        *,
        data_dir: Path | None = None,
        api_key: str = DEFAULT_API_KEY,
        process: EphemeralServer | None = None,
        log: IO[bytes] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.data_dir = data_dir
        self.headers = {"Authorization": f"Bearer {token}", "X-Api-Key": api_key}
        self.client = httpx.Client(base_url=self.url, headers=self.headers, timeout=60.0)
        self.faults = Faults(self.client)
        self.journal = Journal(self.client)
        self.baseline: str | None = None
        self._process = process
        self._log = log

    @classmethod
    def start(
        cls,
        *,
        seed: str | os.PathLike[str] | None = None,
        snapshot: str | os.PathLike[str] | None = None,
        faults: bool = False,
        journal: int | None = None,
        serve_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        api_key: str = DEFAULT_API_KEY,
    ) -> TestServer:
        """``assetvault serve --ephemeral --port 0`` with these options, returned once it
        answers (seeded, or restored from ``snapshot``). The server's log goes to
        ``log_path`` (default: this process's stderr); a start that fails names it."""
        args: list[str] = []
        if snapshot is not None:
            args += ["--snapshot", str(Path(snapshot).resolve())]
        if seed is not None:
            args += ["--seed", str(Path(seed).resolve())]
        if faults:
            args.append("--faults")
        if journal is not None:
            args += ["--journal", str(journal)]
        args += serve_args
        log = log_path.open("ab") if log_path is not None else None
        try:
            process = start_ephemeral(args, env={**os.environ, **env} if env else None, stderr=log)
        except StartFailed as exc:
            if log is not None:
                log.close()
                raise StartFailed(f"{exc}; its log: {log_path}\n{_tail(log_path)}") from None
            raise
        except BaseException:
            if log is not None:
                log.close()
            raise
        if process.token is None:  # --ephemeral always makes one
            process.stop()
            raise StartFailed("the ephemeral server's ready line has no token")
        return cls(
            process.url,
            process.token,
            data_dir=process.data_dir,
            api_key=api_key,
            process=process,
            log=log,
        )

    @classmethod
    def attach(cls, url: str, token: str, *, api_key: str = DEFAULT_API_KEY) -> TestServer:
        """A server that runs already; ``token`` must be an admin token."""
        server = cls(url, token, api_key=api_key)
        _checked(server.client.get(f"{ADMIN}/snapshots"), 200)  # reachable, and admin
        return server

    # Snapshots and reset.

    def save_snapshot(self, name: str) -> dict[str, Any]:
        """Saves the server's whole state as ``name`` (a ``.tar``/``.avsnap`` name is a
        file path on the server)."""
        saved: dict[str, Any] = _checked(
            self.client.post(
                f"{ADMIN}/snapshots", json={"name": name}, timeout=ADMIN_TIMEOUT_SECONDS
            ),
            201,
        ).json()
        return saved

    def restore_snapshot(self, name: str) -> dict[str, Any]:
        restored: dict[str, Any] = _checked(
            self.client.post(
                f"{ADMIN}/snapshots/{name}/restore", json={}, timeout=ADMIN_TIMEOUT_SECONDS
            ),
            200,
        ).json()
        return restored

    def delete_snapshot(self, name: str) -> None:
        _checked(self.client.delete(f"{ADMIN}/snapshots/{name}"), 204)

    def download_snapshot(self, name: str, file: str | os.PathLike[str]) -> Path:
        """The snapshot ``name`` as one portable tar file at ``file`` (here, wherever the
        server runs); returns its path."""
        dest = Path(file)
        staged = dest.with_name(f".{dest.name}.partial")
        try:
            with self.client.stream(
                "GET", f"{ADMIN}/snapshots/{name}/archive", timeout=ADMIN_TIMEOUT_SECONDS
            ) as r:
                if r.status_code != 200:
                    r.read()
                    _checked(r, 200)
                with staged.open("wb") as fh:
                    for chunk in r.iter_raw(1024 * 1024):
                        fh.write(chunk)
            staged.replace(dest)
        finally:
            staged.unlink(missing_ok=True)
        return dest

    def upload_snapshot(self, file: str | os.PathLike[str], name: str) -> dict[str, Any]:
        """The snapshot file ``file`` (from here) kept on the server as ``name``, ready for
        ``restore_snapshot(name)``; returns its description."""
        with Path(file).open("rb") as fh:
            kept: dict[str, Any] = _checked(
                self.client.put(
                    f"{ADMIN}/snapshots/{name}/archive",
                    content=fh,
                    headers={"Content-Type": "application/x-tar"},
                    timeout=ADMIN_TIMEOUT_SECONDS,
                ),
                201,
            ).json()
        return kept

    def reset(self, *, keep_tokens: bool = True, keep_registrations: bool = False) -> None:
        """Back to an empty DAM (the ``/content/dam`` root alone)."""
        _checked(
            self.client.post(
                f"{ADMIN}/reset",
                json={"keepTokens": keep_tokens, "keepRegistrations": keep_registrations},
                timeout=ADMIN_TIMEOUT_SECONDS,
            ),
            200,
        )

    def save_baseline(self, name: str | None = None) -> str:
        """Saves the state tests start from; ``restore_baseline`` brings it back."""
        chosen = name or f"pytest-baseline-{os.getpid()}-{time.time_ns()}"
        self.save_snapshot(chosen)
        self.baseline = chosen
        return chosen

    def restore_baseline(self) -> None:
        """The baseline's state again, with no fault rule and an empty journal (on a
        server that has them)."""
        if self.baseline is None:
            raise HarnessError("no baseline was saved (save_baseline)")
        self.restore_snapshot(self.baseline)
        self.clear_harness()

    def clear_harness(self) -> None:
        """No fault rules and an empty journal; a server without them (409) is left so."""
        for path in ("/faults", "/journal"):
            _checked(self.client.delete(ADMIN + path), 200, 409)

    def settle(self, timeout: float = SETTLE_TIMEOUT_SECONDS) -> None:
        """Waits until the search index has been built and no asset is being processed
        (so a baseline saved now holds no queued processing, which every restore would
        run again)."""
        deadline = time.monotonic() + timeout
        query = {
            "query": [{"term": {"repositoryMetadata.aem:assetState": ["processing"]}}],
            "limit": 1,
        }
        while True:
            r = self.client.post(
                "/adobe/assets/search", params={"allowUnsafeSearch": "true"}, json=query
            )
            if r.status_code == 200 and not r.json()["hits"]["results"]:
                return
            if r.status_code not in (200, 503):  # 503: the index is being built
                _checked(r, 200)
            if time.monotonic() > deadline:
                raise HarnessError(f"assets still being processed after {timeout:.0f} s")
            time.sleep(0.2)

    # The process.

    def stop(self) -> int | None:
        """Ends a server ``start`` started (its data directory goes with it); the exit
        status, or None for one this process attached to."""
        self.client.close()
        status = self._process.stop() if self._process is not None else None
        if self._log is not None:
            self._log.close()
        return status

    def __enter__(self) -> TestServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _tail(path: Path | None, size: int = 4000) -> str:
    if path is None or not path.exists():
        return ""
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - size))
        return fh.read().decode(errors="replace")
