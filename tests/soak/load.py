"""A steady mixed load on a live server (uploads, metadata writes, moves, deletes, URL
imports, webhook deliveries) that keeps a ledger of what the server acknowledged, and
the checks that every acknowledged change is there afterwards.

The tree is split into lanes: each lane owns two folders and works on them one request
at a time, so its ledger is exact. A request that fails without an answer (the server
was killed under it) has an unknown outcome: the lane remembers both possible states of
what it touched and, once the server answers again, reads which one holds."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.factories import complete, initiate, put_parts
from tests.receivers import Received, Reply

ROOT = "/content/dam/soak"
# The server's settings for a load: URL imports from loopback, quick event retries, and a
# job whose worker was killed taken up again soon rather than after the default lease.
ENV = {
    "ASSETVAULT_FETCH_ALLOW": "127.0.0.1",
    "ASSETVAULT_EVENTS_RETRY_UNIT_SECONDS": "0.2",
    "ASSETVAULT_JOB_LEASE_SECONDS": "3",
}
EVENT_TYPES = [
    "aem.assets.asset.deleted",
    "aem.assets.asset.metadata_updated",
    "aem.assets.asset.processing_completed",
]


@dataclass
class Asset:
    name: str
    folder: str  # the lane's folder it is in now
    sha1: str
    title: str | None = None
    # The Author API's id (kept across moves); not part of what is compared.
    id: str | None = field(default=None, compare=False)

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.name}"


@dataclass
class Doubt:
    """A request whose answer never came: each of these states may hold (None: gone)."""

    name: str
    states: list[Asset | None]


@dataclass
class Stats:
    latencies: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # answers that were wrong
    unanswered: int = 0  # requests cut off by a kill (expected only when killing)
    operations: int = 0

    def took(self, op: str, seconds: float) -> None:
        self.latencies.setdefault(op, []).append((time.monotonic(), seconds))
        self.operations += 1

    def p99(self, since: float = 0.0, until: float = float("inf")) -> float:
        values = sorted(s for v in self.latencies.values() for t, s in v if since <= t < until)
        if not values:
            return 0.0
        return values[min(len(values) - 1, int(len(values) * 0.99))]


class Unanswered(Exception):
    """The server gave no answer (connection refused, reset, timed out)."""


def make_images(count: int) -> list[bytes]:
    """Small real JPEGs (processing runs on them as on any upload), each distinct."""
    import pyvips

    out = []
    for i in range(count):
        colour = [i * 7 % 255, 90, 200 - i % 200]
        image = pyvips.Image.black(64 + i, 48, bands=3).linear([1, 1, 1], colour)
        out.append(image.cast("uchar").write_to_buffer(".jpg[Q=80]"))
    return out


class Lane:
    def __init__(
        self,
        number: int,
        http: httpx.AsyncClient,
        token: str,
        images: list[bytes],
        rng: random.Random,
        files_url: str,
        stats: Stats,
    ) -> None:
        self.number = number
        self.http = http
        self.auth = {"Authorization": f"Bearer {token}", "X-Api-Key": "soak"}
        self.token = token
        self.images = images
        self.rng = rng
        self.files_url = files_url
        self.stats = stats
        self.folders = [f"{ROOT}/l{number}a", f"{ROOT}/l{number}b"]
        self.assets: dict[str, Asset] = {}
        self.gone: set[str] = set()
        self.doubts: list[Doubt] = []
        self.imports: list[tuple[str, list[tuple[str, str]]]] = []  # status url, files
        self.counter = 0
        # Steady state: once set, the lane keeps about this many files (its uploads and its
        # imported files), each step over it deleting one instead of its usual operation.
        self.cap: int | None = None
        self.trimmed = 0  # imports whose files this lane has deleted (oldest first)

    @property
    def population(self) -> int:
        """The files this lane has in the tree: its live uploads and imported files."""
        return len(self.assets) + sum(len(f) for _, f in self.imports[self.trimmed :])

    # -- the requests ----------------------------------------------------------------

    async def _call(self, op: str, send: Callable[[], Any]) -> httpx.Response:
        started = time.monotonic()
        try:
            r: httpx.Response = await send()
        except httpx.TransportError as exc:
            self.stats.unanswered += 1
            raise Unanswered(f"{op}: {exc!r}") from exc
        self.stats.took(op, time.monotonic() - started)
        if r.status_code >= 500:
            # A 5xx from a server being killed (its processes going) counts as unanswered
            # only when the caller says it was killing; the checks look at errors.
            self.stats.errors.append(f"{op} {r.request.url.path}: {r.status_code} {r.text[:300]}")
        return r

    async def setup(self) -> None:
        for folder in [ROOT, *self.folders]:
            r = await self._call(
                "folder",
                lambda f=folder: self.http.post(
                    "/api/assets" + f.removeprefix("/content/dam"),
                    json={"class": "assetFolder", "properties": {"jcr:title": f}},
                    headers=self.auth,
                ),
            )
            assert r.status_code in (201, 409), r.text

    async def step(self) -> None:
        """One operation, chosen by weight among those that make sense now."""
        if self.doubts:
            await self.resolve()
            return
        if self.cap is not None and self.population > self.cap:
            await self.trim()
            return
        alive = list(self.assets.values())
        choices: list[tuple[int, Callable[[], Any]]] = [(4, self.upload)]
        if alive:
            a = self.rng.choice(alive)
            choices += [
                (5, lambda: self.write_title(a)),
                (2, lambda: self.move(a)),
                (1, lambda: self.delete(a)),
                (3, lambda: self.read(a)),
            ]
        if self.rng.random() < 0.05:
            choices.append((100, self.import_urls))
        total = sum(w for w, _ in choices)
        pick = self.rng.uniform(0, total)
        for weight, action in choices:
            pick -= weight
            if pick <= 0:
                await action()
                return

    async def upload(self) -> None:
        self.counter += 1
        name = f"u{self.counter}.jpg"
        folder = self.rng.choice(self.folders)
        data = self.rng.choice(self.images) + self.counter.to_bytes(4, "big")
        asset = Asset(name, folder, hashlib.sha1(data).hexdigest())
        try:
            r = await self._call(
                "initiate", lambda: initiate(self.http, self.token, folder, [(name, len(data))])
            )
            if r.status_code != 201:
                self.stats.errors.append(f"initiate: {r.status_code} {r.text[:300]}")
                return
            file = r.json()["files"][0]
            file["mimeType"] = "image/jpeg"
            started = time.monotonic()
            try:
                parts = await put_parts(self.http, file, data)
            except httpx.TransportError as exc:
                self.stats.unanswered += 1
                raise Unanswered(repr(exc)) from exc
            self.stats.took("part", time.monotonic() - started)
            if any(p.status_code != 201 for p in parts):
                self.stats.errors.append(f"part: {[p.status_code for p in parts]}")
                return
        except Unanswered:
            return  # nothing was completed: nothing can exist
        try:
            done = await self._call(
                "complete", lambda: complete(self.http, self.token, folder, file, len(data))
            )
        except Unanswered:
            self.doubts.append(Doubt(name, [asset, None]))
            return
        if done.status_code == 200:
            asset.id = done.json().get("assetId")
            self.assets[name] = asset
        else:
            self.stats.errors.append(f"complete: {done.status_code} {done.text[:300]}")

    async def write_title(self, a: Asset) -> None:
        """The title, through the classic API's PUT or the Author API's JSON Patch."""
        title = f"t{self.rng.randrange(10**9)}"
        after = Asset(a.name, a.folder, a.sha1, title, a.id)
        patch = a.id is not None and self.rng.random() < 0.5
        try:
            if patch:
                r = await self._call(
                    "patch-metadata",
                    lambda: self.http.patch(
                        f"/adobe/assets/{a.id}/metadata",
                        json=[{"op": "add", "path": "/assetMetadata/dc:title", "value": title}],
                        headers={
                            **self.auth,
                            "Content-Type": "application/json-patch+json",
                            "If-Match": "*",
                        },
                    ),
                )
            else:
                r = await self._call(
                    "put-metadata",
                    lambda: self.http.put(
                        "/api/assets" + a.path.removeprefix("/content/dam"),
                        json={"class": "asset", "properties": {"dc:title": title}},
                        headers=self.auth,
                    ),
                )
        except Unanswered:
            self.doubts.append(Doubt(a.name, [a, after]))
            return
        if r.status_code == 200:
            self.assets[a.name] = after
        else:
            self.stats.errors.append(f"put-metadata {a.path}: {r.status_code} {r.text[:300]}")

    async def move(self, a: Asset) -> None:
        other = self.folders[1 - self.folders.index(a.folder)]
        after = Asset(a.name, other, a.sha1, a.title, a.id)
        try:
            r = await self._call(
                "move",
                lambda: self.http.request(
                    "MOVE",
                    "/api/assets" + a.path.removeprefix("/content/dam"),
                    headers={
                        **self.auth,
                        "X-Destination": "/api/assets" + after.path.removeprefix("/content/dam"),
                    },
                ),
            )
        except Unanswered:
            self.doubts.append(Doubt(a.name, [a, after]))
            return
        if r.status_code == 201:
            self.assets[a.name] = after
        else:
            self.stats.errors.append(f"move {a.path}: {r.status_code} {r.text[:300]}")

    async def delete(self, a: Asset) -> None:
        try:
            r = await self._call(
                "delete",
                lambda: self.http.delete(
                    "/api/assets" + a.path.removeprefix("/content/dam"), headers=self.auth
                ),
            )
        except Unanswered:
            self.doubts.append(Doubt(a.name, [a, None]))
            return
        if r.status_code == 200:
            del self.assets[a.name]
            self.gone.add(a.name)
        else:
            self.stats.errors.append(f"delete {a.path}: {r.status_code} {r.text[:300]}")

    async def trim(self) -> None:
        """Delete one file to hold the lane at its cap: the oldest import's files once that
        import has ended, or else an uploaded asset."""
        if self.trimmed < len(self.imports):
            url, files = self.imports[self.trimmed]
            try:
                r = await self._call("import-status", lambda: self.http.get(url, headers=self.auth))
            except Unanswered:
                return
            if r.status_code == 200 and r.json().get("state") == "COMPLETED":
                for name, _ in files:
                    path = f"{self.folders[0]}/{name}"
                    try:
                        gone = await self._call(
                            "delete",
                            lambda p=path: self.http.delete(
                                "/api/assets" + p.removeprefix("/content/dam"), headers=self.auth
                            ),
                        )
                    except Unanswered:
                        return
                    if gone.status_code != 200:
                        self.stats.errors.append(f"delete {path}: {gone.status_code}")
                        return
                self.trimmed += 1
                return
            if r.status_code != 200:
                self.stats.errors.append(f"import-status {url}: {r.status_code} {r.text[:300]}")
        if self.assets:
            await self.delete(self.rng.choice(list(self.assets.values())))

    async def read(self, a: Asset) -> None:
        try:
            r = await self._call("read", lambda: self.http.get(a.path, headers=self.auth))
        except Unanswered:
            return
        if r.status_code != 200 or hashlib.sha1(r.content).hexdigest() != a.sha1:
            self.stats.errors.append(f"read {a.path}: {r.status_code}, bytes differ or missing")

    async def import_urls(self) -> None:
        self.counter += 1
        files = [
            (f"i{self.counter}-{k}.txt", f"{self.files_url}/l{self.number}/{self.counter}/{k}")
            for k in range(2)
        ]
        folder = self.folders[0]
        try:
            r = await self._call(
                "import",
                lambda: self.http.post(
                    "/adobe/assets/import/fromUrl",
                    json={"folder": folder, "files": [{"fileName": n, "url": u} for n, u in files]},
                    headers=self.auth,
                ),
            )
        except Unanswered:
            return  # an import whose acceptance was never seen is not in the ledger
        if r.status_code == 202:
            self.imports.append((r.headers["location"], files))
        else:
            self.stats.errors.append(f"import: {r.status_code} {r.text[:300]}")

    # -- after a kill ------------------------------------------------------------------

    async def state_of(self, name: str) -> Asset | None:
        """The asset called ``name`` as the server has it now, in either folder."""
        found = None
        for folder in self.folders:
            api = "/api/assets" + f"{folder}/{name}".removeprefix("/content/dam") + ".json"
            r = await self.http.get(api, headers=self.auth)
            if r.status_code == 404:
                continue
            assert r.status_code == 200, r.text
            assert found is None, f"{name} is in both folders"
            props = r.json()["properties"]
            original = await self.http.get(f"{folder}/{name}", headers=self.auth)
            assert original.status_code == 200, (folder, name, original.status_code)
            found = Asset(
                name, folder, hashlib.sha1(original.content).hexdigest(), props.get("dc:title")
            )
        return found

    async def resolve(self) -> None:
        """Read which of the possible states of each doubt holds (the server answers
        again by now, or this raises Unanswered and is tried on the next step)."""
        while self.doubts:
            doubt = self.doubts[0]
            try:
                now = await self.state_of(doubt.name)
            except httpx.TransportError as exc:
                raise Unanswered(repr(exc)) from exc
            if now not in doubt.states:
                self.stats.errors.append(f"{doubt.name}: {now} is none of {doubt.states}")
            if now is None:
                self.assets.pop(doubt.name, None)
                self.gone.add(doubt.name)
            else:
                self.assets[doubt.name] = now
            self.doubts.pop(0)

    # -- the checks --------------------------------------------------------------------

    async def check(self) -> list[str]:
        """Every acknowledged change is there: each asset with its bytes, title and
        folder, each deleted one gone."""
        await self.resolve()
        wrong = []
        for name, expected in sorted(self.assets.items()):
            now = await self.state_of(name)
            if now != expected:
                wrong.append(f"{name}: expected {expected}, found {now}")
        for name in sorted(self.gone - set(self.assets)):
            now = await self.state_of(name)
            if now is not None:
                wrong.append(f"{name}: deleted, found {now}")
        return wrong


def files_handler(received: Received) -> Reply:
    """The import source: each URL answers its own bytes, the same every time."""
    return Reply(200, f"soak file {received.path}\n".encode() * 20)


def watch(server_url: str, token: str, hook_url: str) -> None:
    """Register the load's webhook (named "soak") for the event types it checks."""
    made = httpx.post(
        server_url + "/adobe/events/registrations",
        json={
            "name": "soak",
            "client_id": "soak",
            "delivery_type": "webhook",
            "webhook_url": hook_url + "/hook",
            "events_of_interest": EVENT_TYPES,
        },
        headers={"Authorization": f"Bearer {token}", "X-Api-Key": "soak"},
        timeout=60,
    )
    assert made.status_code == 201, made.text


def webhook_handler(events: dict[str, int]) -> Callable[[Received], Reply]:
    """A webhook that answers its challenge and counts each event id it was sent."""

    def handle(r: Received) -> Reply:
        if r.method == "GET":
            return Reply(200, parse_qs(urlsplit(r.path).query)["challenge"][0].encode())
        body = json.loads(r.body)
        for event in body if isinstance(body, list) else [body]:
            events[event["id"]] = events.get(event["id"], 0) + 1
        return Reply(200)

    return handle


async def run_lanes(lanes: list[Lane], seconds: float, rate: float, stop: asyncio.Event) -> None:
    """Each lane steps at ``rate`` operations a second (all lanes together), spread
    evenly, until ``seconds`` pass or ``stop`` is set."""
    interval = len(lanes) / rate
    deadline = time.monotonic() + seconds

    async def drive(lane: Lane) -> None:
        await asyncio.sleep(lane.rng.uniform(0, interval))
        while time.monotonic() < deadline and not stop.is_set():
            started = time.monotonic()
            with contextlib.suppress(Unanswered):
                await lane.step()
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    await asyncio.gather(*(drive(lane) for lane in lanes))


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (0 for fewer than two)."""
    if len(points) < 2:
        return 0.0
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    return statistics.linear_regression(xs, ys).slope
