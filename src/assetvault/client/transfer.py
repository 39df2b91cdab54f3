"""Upload (direct binary upload, resumable) and download (Range, verified) of many files."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import mimetypes
import os
import re
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import httpx
from pydantic import Field, StrictStr

from assetvault.client.http import (
    ClientError,
    RemoteAsset,
    Wire,
    assets_below,
    body_json,
    check,
    ensure_folder,
    parsed,
)
from assetvault.client.localfs import PART, LocalFile, SafeDest, UnsafeName, open_regular, shown

CHUNK = 1024 * 1024
PART_TRIES = 4
# What to do with a file whose name exists (and whose bytes differ): keep the current
# original as a version and upload over it, upload beside it under a free name (AEM's
# "keep both"), leave it out, or count it as failed. Never a silent overwrite.
ON_CONFLICT = ("version", "keep-both", "skip", "fail")
# Characters AEM refuses in folder names; a local directory's name has them replaced
# with "-" (as AEM's own file-system upload does), and keeps its name as the title.
REFUSED_IN_FOLDER_NAMES = re.compile(r'[/\\:\[\]{}&?#|*%"<>\x00-\x1f\x7f]')
Progress = Callable[[int], None]  # bytes moved since the last call (may be negative)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Deadline:
    """How long one file may take, whatever the server does: ``base`` seconds plus its
    size at ``min_rate`` bytes a second. A server that trickles a byte now and then
    never trips a read timeout; this ends the file instead (``base`` 0: no deadline)."""

    base: float = 120.0
    min_rate: float = 16 * 1024

    def seconds(self, size: int) -> float | None:
        if self.base <= 0:
            return None
        return self.base + (size / self.min_rate if self.min_rate > 0 else 0.0)

    async def within(self, size: int, what: str, work: Awaitable[_T]) -> _T:
        """``work``, or ClientError once this file's time is up."""
        seconds = self.seconds(size)
        if seconds is None:
            return await work
        limit = asyncio.timeout(seconds)
        try:
            async with limit:
                return await work
        except TimeoutError:
            if not limit.expired():
                raise
            raise ClientError(
                f"{shown(what)}: not done within {seconds:.0f} s (--file-timeout "
                f"{self.base:g} s plus its size at --min-rate {self.min_rate / 1024:g} KiB/s)"
            ) from None


@dataclass
class Outcome:
    """What became of one file: uploaded/downloaded, skipped (already there), or failed."""

    local: Path
    remote: str
    status: str
    detail: str = ""
    resumed_bytes: int = 0


@dataclass
class Totals:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


async def sha1_of(path: Path) -> str:
    """The SHA-1 of a regular file (refused when it is anything else)."""

    def digest() -> str:
        h = hashlib.sha1()
        with open_regular(path).fh as fh:
            while block := fh.read(CHUNK):
                h.update(block)
        return h.hexdigest()

    return await asyncio.to_thread(digest)


# -- upload ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    local: Path  # as found below what was given (its name is the asset's)
    folder: str  # the /content/dam folder it goes into
    size: int
    source: Path | None = None  # what is opened, when not ``local`` (a followed symlink)
    # The folders this file's directories become, with the directories' own names as
    # their titles: ((remote folder, title), ...), outermost first.
    folder_titles: tuple[tuple[str, str], ...] = ()
    name: str = ""  # the asset's name when it is not the local file's (keep both)

    @property
    def remote(self) -> str:
        return f"{self.folder}/{self.name or self.local.name}"

    @property
    def opened(self) -> Path:
        return self.source or self.local


def folder_name(directory: str) -> str:
    """The folder name a local directory becomes: the characters AEM refuses in folder
    names replaced with "-"."""
    name = REFUSED_IN_FOLDER_NAMES.sub("-", directory)
    return "-" if name in (".", "..") else name


@dataclass
class UploadPlan:
    items: list[Planned] = field(default_factory=list)
    refused: list[Outcome] = field(default_factory=list)  # failed or skipped while planned
    # Every directory walked, as (remote folder, title), outermost first: empty ones too.
    folders: list[tuple[str, str]] = field(default_factory=list)


def plan_upload(paths: list[Path], folder: str, follow_symlinks: bool = False) -> UploadPlan:
    """Files go into ``folder``; a directory goes in as a folder of its name, recursively
    (as ``cp -r`` would put it). Inside a directory only regular files are taken: a
    FIFO, socket or device is skipped, and a symlink is followed only when it resolves
    inside that directory (or with ``follow_symlinks``); either is reported."""
    plan = UploadPlan()
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            raise ClientError(f"{path}: no such file or directory") from None
        if stat.S_ISREG(st.st_mode):
            plan.items.append(Planned(path, folder, st.st_size, Path(os.path.realpath(path))))
        elif stat.S_ISDIR(st.st_mode):
            _plan_tree(path, folder, follow_symlinks, plan)
        else:
            raise ClientError(f"{path}: not a regular file or a directory")
    return plan


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def plan_contents(top: Path, folder: str) -> UploadPlan:
    """What is inside the directory ``top`` goes into ``folder`` itself (not into a folder
    of its own name), by the same rules as :func:`plan_upload`: ``assetvault seed``."""
    if not top.is_dir():
        raise ClientError(f"{top}: not a directory")
    plan = UploadPlan()
    _plan_tree(top, folder, False, plan, contents=True)
    return plan


def _plan_tree(
    top: Path, folder: str, follow: bool, plan: UploadPlan, *, contents: bool = False
) -> None:
    root = os.path.realpath(top)

    def walk(
        shown_dir: Path,
        real_dir: str,
        remote: str,
        titles: tuple[tuple[str, str], ...],
        above: frozenset[tuple[int, int]],
    ) -> None:
        try:
            st = os.stat(real_dir)
            with os.scandir(real_dir) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            plan.refused.append(Outcome(shown_dir, remote, "failed", str(exc)))
            return
        entered = above | {(st.st_dev, st.st_ino)}  # a symlink to one of these: a loop
        for entry in entries:
            local, target = shown_dir / entry.name, remote + "/" + entry.name
            folder_below = remote + "/" + folder_name(entry.name)  # when it is a directory
            real = entry.path
            try:
                if entry.is_symlink():
                    real = os.path.realpath(entry.path)
                    if not follow and not _inside(real, root):
                        plan.refused.append(
                            Outcome(
                                local,
                                target,
                                "failed",
                                f"a symlink that leads out of {top}; not uploaded "
                                "(--follow-symlinks uploads what it leads to)",
                            )
                        )
                        continue
                    st = os.stat(real)
                else:
                    st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                plan.refused.append(Outcome(local, target, "failed", str(exc)))
                continue
            if stat.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) in entered:
                    plan.refused.append(
                        Outcome(local, target, "failed", "a symlink loop; not followed")
                    )
                else:
                    below = (*titles, (folder_below, entry.name))
                    plan.folders.append((folder_below, entry.name))
                    walk(local, real, folder_below, below, entered)
            elif stat.S_ISREG(st.st_mode):
                plan.items.append(Planned(local, remote, st.st_size, Path(real), titles))
            else:
                plan.refused.append(
                    Outcome(local, target, "skipped", "not a regular file (FIFO, socket, device)")
                )

    if contents:
        walk(top, root, folder, (), frozenset())
        return
    top_folder = f"{folder}/{folder_name(Path(root).name)}"
    plan.folders.append((top_folder, Path(root).name))
    walk(top, root, top_folder, ((top_folder, Path(root).name),), frozenset())


def free_name(name: str, taken: set[str]) -> str:
    """AEM's "keep both": the name with the first number that makes it free, before the
    extension (photo.jpg -> photo1.jpg, photo2.jpg, ...)."""
    dot = name.rfind(".")
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    n = 1
    while f"{stem}{n}{ext}" in taken:
        n += 1
    return f"{stem}{n}{ext}"


def part_ranges(size: int, uris: int, min_part: int, max_part: int) -> list[tuple[int, int]]:
    """Equal parts of at least ``min_part`` over as many URIs as that takes, as the AEM
    upload clients split a file."""
    if size == 0:
        return [(0, 0)]
    part = min(max(min_part, math.ceil(size / uris)), max_part)
    ranges = [(start, min(size, start + part)) for start in range(0, size, part)]
    if len(ranges) > uris:
        raise ClientError(f"the server gave {uris} upload URIs for {len(ranges)} parts")
    return ranges


class _UploadFile(Wire):
    fileName: StrictStr
    uploadToken: StrictStr
    uploadURIs: list[StrictStr] = Field(min_length=1)
    minPartSize: int = Field(ge=0)
    maxPartSize: int = Field(ge=1)
    mimeType: StrictStr | None = None


class _Initiated(Wire):
    completeURI: StrictStr
    files: list[_UploadFile] = Field(min_length=1)


def _on_this_server(client: httpx.AsyncClient, uri: str) -> httpx.URL | str:
    """Where to send the completion: the token goes with it, so never to another server
    than the client's. An absolute URI of another origin (a server that announces a
    public URL the client does not use, or a hostile one) is taken for its path here."""
    try:
        target = httpx.URL(uri)
    except (httpx.InvalidURL, TypeError):
        raise ClientError("the server's initiate answer has a junk completeURI") from None
    base = client.base_url
    if target.is_relative_url or (target.scheme, target.host, target.port) == (
        base.scheme,
        base.host,
        base.port,
    ):
        return target
    return target.raw_path.decode("ascii")


class Journal:
    """What an upload has done so far, on disk, so an interrupted run resumes: the
    initiate's answer and the parts the server acknowledged. Keyed by server, target and
    the local file's identity (path, size, modification time)."""

    def __init__(self, directory: Path, url: str, item: Planned) -> None:
        st = item.opened.stat()
        key = f"{url}\n{item.remote}\n{item.opened.resolve()}\n{st.st_size}\n{st.st_mtime_ns}"
        self.path = directory / (hashlib.sha1(key.encode()).hexdigest() + ".json")

    def load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and "entry" in data else None

    def save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)


async def _file_chunks(
    path: Path, start: int, end: int, progress: Progress
) -> AsyncIterator[bytes]:
    opened = await asyncio.to_thread(open_regular, path)
    async with anyio.wrap_file(opened.fh) as fh:
        await fh.seek(start)
        left = end - start
        while left > 0:
            block = await fh.read(min(CHUNK, left))
            if not block:
                raise ClientError(f"{path} became shorter while it was uploaded")
            left -= len(block)
            progress(len(block))
            yield block


async def _put_part(
    parts: httpx.AsyncClient, uri: str, item: Planned, span: tuple[int, int], progress: Progress
) -> None:
    start, end = span
    for attempt in range(1, PART_TRIES + 1):
        sent = 0

        def counted(n: int) -> None:
            nonlocal sent
            sent += n
            progress(n)

        try:
            r = await parts.put(
                uri,
                content=_file_chunks(item.opened, start, end, counted),
                headers={"Content-Length": str(end - start)},
            )
            if r.status_code < 500:
                check(r)
                return
            error: Exception = ClientError(f"part refused: {r.status_code}", r.status_code)
        except httpx.TransportError as exc:
            error = exc
        progress(-sent)
        if attempt == PART_TRIES:
            raise ClientError(f"a part failed {PART_TRIES} times: {error}")
        await asyncio.sleep(0.25 * 2**attempt)


async def upload_one(
    client: httpx.AsyncClient,
    parts: httpx.AsyncClient,
    item: Planned,
    journal: Journal,
    parts_in_flight: int,
    progress: Progress,
) -> int:
    """Uploads one file, resuming from its journal; returns the bytes it did not resend."""
    state = journal.load()
    if state is None:
        r = await client.post(
            quote(item.folder) + ".initiateUpload.json",
            data={"fileName": item.remote.rsplit("/", 1)[1], "fileSize": str(item.size)},
        )
        initiated = parsed(_Initiated, body_json(check(r), "initiate answer"), "initiate answer")
        state = {
            "completeURI": initiated.completeURI,
            "entry": initiated.files[0].model_dump(exclude_none=True),
        }
        state["done"] = []
        state["started"] = time.time()
        journal.save(state)
    entry = parsed(_UploadFile, state["entry"], "initiate answer")
    spans = part_ranges(item.size, len(entry.uploadURIs), entry.minPartSize, entry.maxPartSize)
    done: set[int] = {
        i for i in state.get("done", []) if isinstance(i, int) and 0 <= i < len(spans)
    }
    resumed = sum(spans[i][1] - spans[i][0] for i in done)
    progress(resumed)
    gate = asyncio.Semaphore(parts_in_flight)
    lock = asyncio.Lock()

    async def send(i: int) -> None:
        async with gate:
            await _put_part(parts, entry.uploadURIs[i], item, spans[i], progress)
        async with lock:
            done.add(i)
            state["done"] = sorted(done)
            journal.save(state)

    await asyncio.gather(*(send(i) for i in range(len(spans)) if i not in done))
    mime = entry.mimeType or mimetypes.guess_type(item.local.name)[0]
    # Always createVersion: on a name that is free it changes nothing, and on a name that
    # someone took since the listing, their original is kept as a version, not lost.
    form = {
        "fileName": entry.fileName,
        "fileSize": str(item.size),
        "uploadToken": entry.uploadToken,
        "createVersion": "true",
        **({"mimeType": mime} if mime else {}),
    }
    check(await client.post(_on_this_server(client, state["completeURI"]), data=form))
    journal.forget()
    return resumed


async def _make_folders(client: httpx.AsyncClient, items: list[Planned]) -> dict[str, str]:
    """Creates the target folders, each with its directory's name as title; returns the
    folders that could not be made (and those below them), with the reason. Refused
    credentials stop the whole upload."""
    titles = {f: t for i in items for f, t in i.folder_titles}
    broken: dict[str, str] = {}
    for folder in sorted({i.folder for i in items} | set(titles)):
        parent = next((b for b in broken if folder.startswith(b + "/")), None)
        if parent is not None:
            broken[folder] = broken[parent]
            continue
        try:
            await ensure_folder(client, folder, titles.get(folder))
        except ClientError as exc:
            if exc.status in (401, 403):
                raise
            broken[folder] = f"the folder could not be made: {exc}"
    return broken


async def upload(
    client: httpx.AsyncClient,
    parts: httpx.AsyncClient,
    url: str,
    items: list[Planned],
    journal_dir: Path,
    files_in_flight: int,
    parts_in_flight: int,
    progress: Progress,
    on_done: Callable[[Outcome], None],
    on_conflict: str = "version",
    deadline: Deadline = Deadline(),
) -> Totals:
    if on_conflict not in ON_CONFLICT:
        raise ClientError(f"--on-conflict is one of {', '.join(ON_CONFLICT)}")
    totals = Totals()
    broken = await _make_folders(client, items)
    folders = sorted({i.folder for i in items} - set(broken))
    remote: dict[str, RemoteAsset] = {}
    for top in sorted({f for f in folders if not any(f.startswith(o + "/") for o in folders)}):
        remote.update(await assets_below(client, top))
    taken: dict[str, set[str]] = {}  # folder -> the names in it, known or planned
    for path in [*remote, *(i.remote for i in items), *folders]:
        parent, _, name = path.rpartition("/")
        taken.setdefault(parent, set()).add(name)
    gate = asyncio.Semaphore(files_in_flight)

    async def same_there(item: Planned, candidates: list[str]) -> str | None:
        """The first of these remote paths that already holds this file's bytes."""
        sized = [c for c in candidates if c in remote and remote[c].size == item.size]
        if not sized:
            return None
        digest = await sha1_of(item.opened)
        return next((c for c in sized if remote[c].sha1 == digest), None)

    def numbered(item: Planned) -> list[str]:
        """The names "keep both" may have given this file in earlier runs."""
        stem, dot, ext = item.local.name.rpartition(".")
        if not dot or not stem:
            stem, ext = item.local.name, ""
        else:
            ext = "." + ext
        pattern = re.compile(re.escape(f"{item.folder}/{stem}") + r"[1-9][0-9]*" + re.escape(ext))
        return sorted(p for p in remote if pattern.fullmatch(p))

    async def one(item: Planned) -> None:
        moved = 0

        def mine(n: int) -> None:
            nonlocal moved
            moved += n
            progress(n)

        async with gate:
            outcome = Outcome(item.local, item.remote, "uploaded")
            try:
                if item.folder in broken:
                    raise ClientError(broken[item.folder])
                target = item
                journal = Journal(journal_dir, url, item)
                if item.remote in remote and journal.load() is None:
                    again = [item.remote] + (numbered(item) if on_conflict == "keep-both" else [])
                    found = await same_there(item, again)
                    if found is not None:
                        outcome.status, outcome.detail = "skipped", "same SHA-1 already there"
                        if found != item.remote:
                            outcome.remote = found
                    elif on_conflict == "skip":
                        outcome.status = "skipped"
                        outcome.detail = (
                            "a different file of this name is there (--on-conflict skip)"
                        )
                    elif on_conflict == "fail":
                        outcome.status = "failed"
                        outcome.detail = (
                            "a different file of this name is there (--on-conflict fail)"
                        )
                    elif on_conflict == "keep-both":
                        names = taken.setdefault(item.folder, set())
                        target = replace(item, name=free_name(item.local.name, names))
                        names.add(target.name)
                        outcome.remote = target.remote
                        journal = Journal(journal_dir, url, target)
                    else:
                        outcome.detail = "the earlier original kept as a version"
                if outcome.status != "uploaded":
                    mine(item.size)
                else:
                    try:
                        outcome.resumed_bytes = await deadline.within(
                            item.size,
                            str(item.local),
                            upload_one(client, parts, target, journal, parts_in_flight, mine),
                        )
                    except ClientError as exc:
                        if exc.status not in (400, 403) or journal.load() is None:
                            raise
                        # The journal's upload expired or was swept: start it afresh.
                        journal.forget()
                        mine(-moved)
                        outcome.resumed_bytes = await deadline.within(
                            item.size,
                            str(item.local),
                            upload_one(client, parts, target, journal, parts_in_flight, mine),
                        )
            except (ClientError, httpx.HTTPError, OSError) as exc:
                outcome.status, outcome.detail = "failed", str(exc)
            totals.outcomes.append(outcome)
            on_done(outcome)

    await asyncio.gather(*(one(i) for i in items))
    return totals


# -- download --------------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadPlan:
    """Where a download writes: below ``root``, each asset at its relative name (a name
    from the server, checked only when its file is written)."""

    root: Path
    entries: list[tuple[RemoteAsset, str | None]]  # None: listed but not below the source


def plan_download(source: str, found: dict[str, RemoteAsset], dest: Path) -> DownloadPlan:
    if source in found:  # one asset: into DEST when it is a directory, else as DEST
        if dest.is_dir():
            return DownloadPlan(dest, [(found[source], source.rsplit("/", 1)[1])])
        return DownloadPlan(dest.parent, [(found[source], dest.name)])
    prefix = source + "/"
    return DownloadPlan(
        dest,
        [
            # A path not below the source keeps a name that the writer refuses.
            (a, a.path[len(prefix) :] if a.path.startswith(prefix) else None)
            for a in found.values()
        ],
    )


def _content_range_start(r: httpx.Response) -> int | None:
    value = r.headers.get("content-range", "")
    unit, _, rest = value.partition(" ")
    start = rest.partition("-")[0]
    return int(start) if unit == "bytes" and start.isdigit() else None


async def download_one(
    client: httpx.AsyncClient, asset: RemoteAsset, place: LocalFile, progress: Progress
) -> Outcome:
    """One asset into ``place``: never more bytes than the listing announced, resumed
    from a ``.part`` with Range, verified by size and SHA-1 before it is renamed."""
    outcome = Outcome(place.path, asset.path, "downloaded")
    size = asset.size
    if size is None:
        raise ClientError(f"{shown(asset.path)}: the server announced no size")
    if asset.sha1 and await asyncio.to_thread(place.sha1_if_size, size) == asset.sha1:
        progress(size)
        outcome.status, outcome.detail = "skipped", "same SHA-1 already here"
        return outcome
    have = place.part_size()
    if have > size:
        have = 0
    # Identity, so that Content-Length counts the bytes that are written.
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={have}-"} if have else {})}
    async with client.stream("GET", quote(asset.path), headers=headers) as r:
        if r.status_code == 416 and have == size:
            outcome.resumed_bytes = have  # everything is here already; verified below
            progress(have)
        else:
            if r.is_error:
                await r.aread()
                check(r)
            if r.status_code != 206:
                have = 0  # the server sent it whole
            elif _content_range_start(r) != have:
                raise ClientError(f"{shown(asset.path)}: the server sent another range")
            declared = r.headers.get("content-length")
            encoded = r.headers.get("content-encoding", "identity").strip().lower() != "identity"
            if declared is not None and not encoded and declared.strip() != str(size - have):
                place.discard()
                raise ClientError(
                    f"{shown(asset.path)}: the server announced {declared.strip()[:20]} "
                    f"bytes for {size - have}"
                )
            outcome.resumed_bytes = have
            progress(have)
            got = have
            async with anyio.wrap_file(place.open_part(append=bool(have))) as fh:
                async for block in r.aiter_bytes(CHUNK):
                    if got + len(block) > size:
                        await fh.aclose()
                        place.discard()
                        raise ClientError(
                            f"{shown(asset.path)}: the server sent more than the "
                            f"{size} bytes it announced; removed"
                        )
                    await fh.write(block)
                    got += len(block)
                    progress(len(block))
            if got != size:
                raise ClientError(f"{shown(asset.path)}: got {got} bytes, the server holds {size}")
    if asset.sha1 and await asyncio.to_thread(place.part_sha1) != asset.sha1:
        place.discard()
        raise ClientError(
            f"{shown(asset.path)}: the SHA-1 of what arrived differs; removed, try again"
        )
    place.commit()
    return outcome


async def download(
    client: httpx.AsyncClient,
    source: str,
    dest: Path,
    files_in_flight: int,
    progress: Progress,
    on_start: Callable[[int], None],
    on_done: Callable[[Outcome], None],
    deadline: Deadline = Deadline(),
) -> Totals:
    found = await assets_below(client, source)
    if not found:
        raise ClientError(f"no asset at or below {source}", 404)
    plan = plan_download(source, found, dest)
    on_start(sum(a.size or 0 for a, _ in plan.entries))
    totals = Totals()
    gate = asyncio.Semaphore(files_in_flight)
    # A name whose ".part" is another listed name would share that file: refused.
    names = {name for _, name in plan.entries}
    with SafeDest(plan.root) as root:

        async def one(asset: RemoteAsset, listed: str | None) -> None:
            name = listed or ""
            async with gate:
                try:
                    if listed is None:
                        raise UnsafeName(f"the server listed it, but it is not below {source}")
                    if name + PART in names:
                        raise UnsafeName(
                            f"{shown(name)}: its partial file would be the listed "
                            f"{shown(name + PART)}"
                        )
                    with root.file(name) as place:
                        outcome = await deadline.within(
                            asset.size or 0,
                            asset.path,
                            download_one(client, asset, place, progress),
                        )
                except (ClientError, httpx.HTTPError, OSError) as exc:
                    outcome = Outcome(root.display(name), asset.path, "failed", str(exc))
                totals.outcomes.append(outcome)
                on_done(outcome)

        await asyncio.gather(*(one(a, n) for a, n in plan.entries))
    return totals
