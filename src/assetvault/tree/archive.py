"""Many assets as one ZIP, streamed: the originals of a list of assets and folders
(folders with every asset below them), read from the blob store chunk by chunk and
deflated on the way out, so the server's memory does not grow with the archive.

The names inside come from the tree, but are made safe for any unzip tool anyway: no
absolute path, no ``.``/``..`` or empty component, no backslash, colon or control
character, and no two members whose names differ only in case (the later one gets a
number before its extension, as "Keep both" names an upload: ``a.jpg``, ``a1.jpg``).
ZIP64 records are written for a member or an offset past 4 GiB (stream-zip's ZIP_AUTO).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assetvault.adapters.blobs.base import BlobStore
from assetvault.errors import InvalidInput, NotFound, PayloadTooLarge
from assetvault.tree.models import Node
from assetvault.tree.paths import FORBIDDEN_NAME_CHARS, ROOT, check_name
from assetvault.tree.service import TreeService

if TYPE_CHECKING:  # imported by the first archive a process streams
    from stream_zip import AsyncMemberFile

MAX_PATHS = 1000  # entries of one request
MAX_MEMBERS = 10_000  # files in one archive
FILE_MODE = 0o100644  # a regular file, rw-r--r--
# Types that deflate well; any other (photos, video, audio, PDFs, archives, unknown
# binaries) is mostly compressed already and goes in stored (deflate level 0): no CPU.
_COMPRESSIBLE = re.compile(
    r"^(text/|image/(svg|bmp|tiff|x-portable)|application/(json|xml|javascript|"
    r"x-ndjson|postscript|rtf|x-sh|sql|x-tex|[\w.+-]+\+(json|xml)))"
)


@dataclass(frozen=True)
class Member:
    name: str  # the safe name inside the archive
    node: Node


def safe_component(part: str) -> str:
    """One component of a member name: never empty, ``.``, ``..``, nor holding a
    separator, a drive colon or a control character."""
    cleaned = "".join("_" if c in FORBIDDEN_NAME_CHARS or c == "\x7f" else c for c in part)
    cleaned = cleaned.strip()
    return "_" if cleaned in ("", ".", "..") else cleaned


def numbered(name: str, n: int) -> str:
    """``a.jpg`` -> ``a<n>.jpg``; ``README`` -> ``README<n>`` (the UI's "Keep both")."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return f"{name}{n}"
    return f"{stem}{n}.{ext}"


class Names:
    """Member names handed out so far, compared without case (Windows and macOS file
    systems would merge names that differ only in case). A name that is taken, by a file
    or a directory, gets the next free number."""

    def __init__(self) -> None:
        self.taken: set[str] = set()  # casefolded full names of files and directories
        self.dirs: dict[tuple[str, str], str] = {}  # (parent, component) -> directory

    def _pick(self, parent: str, part: str) -> str:
        candidate, n = part, 0
        while True:
            full = f"{parent}/{candidate}" if parent else candidate
            if full.casefold() not in self.taken:
                self.taken.add(full.casefold())
                return full
            n += 1
            candidate = numbered(part, n)

    def new_dir(self, name: str) -> str:
        """A directory at the top of the archive, of its own (never merged with another)."""
        return self._pick("", safe_component(name))

    def file(self, parent: str, parts: Sequence[str]) -> str:
        """A file at ``parts`` below the directory ``parent`` (``""``: the top)."""
        for part in parts[:-1]:
            key = (parent.casefold(), safe_component(part).casefold())
            if key not in self.dirs:
                self.dirs[key] = self._pick(parent, safe_component(part))
            parent = self.dirs[key]
        return self._pick(parent, safe_component(parts[-1]))


def parse_paths(value: object) -> list[str]:
    """The request's ``paths``: 1 to MAX_PATHS paths of /content/dam."""
    if not isinstance(value, list) or not value:
        raise InvalidInput("paths: a non-empty array of /content/dam paths is required")
    if len(value) > MAX_PATHS:
        raise PayloadTooLarge(f"paths: at most {MAX_PATHS} paths in one archive")
    paths: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise InvalidInput("paths: every item must be a string")
        path = item.rstrip("/") if item != "/" else item
        if path != ROOT and not path.startswith(ROOT + "/"):
            raise InvalidInput(f"paths: {item!r} is not a path below {ROOT}")
        for name in path[len(ROOT) + 1 :].split("/") if path != ROOT else []:
            try:
                check_name(name)
            except InvalidInput as exc:
                raise InvalidInput(f"paths: {item!r}: {exc.detail}") from exc
        paths.append(path)
    return paths


async def plan(tree: TreeService, paths: Sequence[str]) -> list[Member]:
    """What the archive holds, checked before its first byte: a missing path is a 404,
    too many files a 413. An asset named twice (or inside a folder also named) goes in
    once; an asset without an original (it was removed) is left out."""
    names = Names()
    members: list[Member] = []
    seen: set[str] = set()

    def add(node: Node, top: str, parts: list[str]) -> None:
        if node.id in seen or node.blob_key is None:
            return
        seen.add(node.id)
        if len(members) >= MAX_MEMBERS:
            raise PayloadTooLarge(f"an archive holds at most {MAX_MEMBERS} files")
        members.append(Member(names.file(top, parts), node))

    for path in paths:
        node = await tree.find(path)
        if node is None or not node.is_live():
            raise NotFound(f"{path} does not exist")
        if node.kind == "asset":
            add(node, "", [node.name])
            continue
        below = await tree.assets_below(node, MAX_MEMBERS + 1)
        if len(below) > MAX_MEMBERS:
            raise PayloadTooLarge(f"an archive holds at most {MAX_MEMBERS} files")
        # A folder goes in under its own name (the root's assets at the top).
        below.sort(key=lambda n: n.path)  # code-point order on either database
        top = "" if path == ROOT else names.new_dir(node.name)
        for asset in below:
            if asset.is_live():
                add(asset, top, asset.path[len(path) + 1 :].split("/"))
    return members


def stream(blobs: BlobStore, members: Sequence[Member]) -> AsyncIterator[bytes]:
    """The ZIP's bytes, member after member, each read from the store as it goes."""
    from stream_zip import ZIP_AUTO, async_stream_zip

    async def files() -> AsyncIterator[AsyncMemberFile]:
        for m in members:
            assert m.node.blob_key is not None  # plan() leaves out assets without one
            level = 6 if _COMPRESSIBLE.match(m.node.mime_type or "") else 0
            method = ZIP_AUTO(m.node.size or 0, level=level)
            yield m.name, m.node.modified_at, FILE_MODE, method, blobs.read(m.node.blob_key)

    return aiter(async_stream_zip(files()))
