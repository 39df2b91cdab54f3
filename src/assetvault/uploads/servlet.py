"""The create-asset servlet upload: ``POST <folder>.createasset.html``, the form upload
AEM 6.5 serves and the AEM upload clients fall back to where direct binary upload is off.

A file comes in one request, or in chunks (``file@Offset``, ``chunk@Length``,
``file@Length``), one request each, strictly in order; there is no complete call: the
chunk that reaches ``file@Length`` makes the asset. Chunks gather in the blob store's
upload staging, as direct upload parts do, under an id derived from the user, folder,
name and size, so the next chunk finds them without any row; the sweep removes a
staging area left untouched for as long as an upload token lives. A single request is
staged too (under an id of its own), so both end in the same write: ``assemble`` and one
change of the write path, as a completed direct upload does.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from assetvault import mediatypes
from assetvault.adapters.blobs.base import PartConflict, PartsIncomplete, PartTooLarge
from assetvault.errors import Conflict, InvalidInput, PayloadTooLarge
from assetvault.tree.paths import check_name, join
from assetvault.tree.service import StoredOriginal
from assetvault.tree.writes import Original, VersionNote
from assetvault.uploads.service import DEFAULT_MIME, UploadService, guess_mime


@dataclass(frozen=True)
class Chunk:
    """What a chunked request says of its chunk: where it starts, how long it is, and
    how long the whole file is."""

    offset: int
    length: int
    total: int

    @property
    def last(self) -> bool:
        return self.offset + self.length == self.total


@dataclass(frozen=True)
class Slot:
    """Where one request's file bytes go: a part of a staging area, at most ``limit``
    bytes (exactly ``chunk.length`` for a chunk)."""

    folder_path: str
    name: str
    upload_id: str
    number: int
    limit: int
    chunk: Chunk | None

    @property
    def path(self) -> str:
        return join(self.folder_path, self.name)

    @property
    def completes(self) -> bool:
        return self.chunk is None or self.chunk.last


def chunk_id(user: str, folder_path: str, name: str, total: int) -> str:
    """The staging area of a chunked upload: the same for every chunk of it, another for
    another user, file or size (so two uploads never mix their chunks)."""
    key = "\0".join(["createasset", user, folder_path, name, str(total)])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class CreateAssetUploads:
    def __init__(self, uploads: UploadService) -> None:
        self.settings = uploads.settings
        self.tree = uploads.tree
        self.staging = uploads.staging
        self.guard = uploads.guard

    def check_chunk(self, chunk: Chunk) -> None:
        s = self.settings
        if chunk.offset < 0 or chunk.length < 1 or chunk.total < 1:
            raise InvalidInput(
                "file@Offset must be 0 or more, chunk@Length and file@Length 1 or more"
            )
        if chunk.offset + chunk.length > chunk.total:
            raise InvalidInput(
                f"the chunk ends at byte {chunk.offset + chunk.length}, past file@Length "
                f"{chunk.total}"
            )
        if chunk.total > s.upload_max_file_size:
            raise PayloadTooLarge(
                f"file@Length is larger than the limit of {s.upload_max_file_size} bytes"
            )
        if chunk.length > s.upload_max_part_size:
            raise PayloadTooLarge(
                f"chunk@Length is larger than the limit of {s.upload_max_part_size} bytes"
            )

    async def begin(self, folder_path: str, name: str, chunk: Chunk | None, *, user: str) -> Slot:
        """Checks a request before its file is read, and says where the file goes."""
        check_name(name)
        if chunk is not None:
            self.check_chunk(chunk)
        await self.tree.get_folder(folder_path)
        s = self.settings
        if chunk is None:
            limit = min(s.upload_max_part_size, s.upload_max_file_size)
            return Slot(folder_path, name, uuid.uuid4().hex, 1, limit, None)
        upload_id = chunk_id(user, folder_path, name, chunk.total)
        received = await self.staging.received(upload_id)
        sizes = [received[n] for n in range(1, len(received) + 1) if n in received]
        have = sum(sizes)
        path = join(folder_path, name)
        if chunk.offset == 0:
            if received:  # the client starts over: what an earlier attempt left goes
                await self.staging.discard(upload_id)
            number = 1
        elif not received:
            raise Conflict(
                f"no chunked upload of {path} with file@Length {chunk.total} is in "
                f"progress; its first chunk starts at file@Offset 0"
            )
        elif len(sizes) != len(received):
            raise Conflict(f"the chunks of {path} received so far are not contiguous")
        elif chunk.offset == have:
            number = len(sizes) + 1
        elif chunk.offset == have - sizes[-1] and chunk.length == sizes[-1]:
            number = len(sizes)  # the last chunk sent again (its answer was lost)
        else:
            raise Conflict(
                f"chunks of {path} must come in order without gaps or overlaps: "
                f"{have} bytes are received, so the next chunk starts at file@Offset {have}, "
                f"not {chunk.offset}"
            )
        return Slot(folder_path, name, upload_id, number, chunk.length, chunk)

    async def receive(self, slot: Slot, data: AsyncIterable[bytes]) -> int:
        """Streams the request's file into its staging part; a part that is refused
        (too long, too short, a fault in the body ``data`` raises) is not kept."""

        async def checked() -> AsyncIterator[bytes]:
            size = 0
            async for piece in data:
                size += len(piece)
                yield piece
            if slot.chunk is not None and size != slot.chunk.length:
                raise InvalidInput(
                    f"the file part holds {size} bytes; chunk@Length says {slot.chunk.length}"
                )
            if slot.chunk is None and size == 0:
                raise InvalidInput("the file is empty; Assetvault stores no empty assets")

        try:
            try:
                return await self.staging.write_part(
                    slot.upload_id, slot.number, checked(), slot.limit
                )
            except PartTooLarge as exc:
                if slot.chunk is not None:
                    raise InvalidInput(
                        f"the file part holds more than chunk@Length ({slot.chunk.length}) bytes"
                    ) from exc
                raise PayloadTooLarge(
                    f"a file sent in one request may hold at most {slot.limit} bytes; send "
                    f"larger files in chunks (file@Offset, chunk@Length, file@Length)"
                ) from exc
            except (PartConflict, PartsIncomplete) as exc:
                raise Conflict(f"{slot.path}: {exc}") from exc
        except BaseException:
            await self.abandon(slot)
            raise

    async def finish(
        self, slot: Slot, size: int, *, mime_type: str | None, replace: bool, user: str
    ) -> StoredOriginal:
        """Makes the asset of a file whose last bytes have landed: a new asset, or a new
        original of the existing one with the current original kept as a version (as
        AEM's servlet does); ``replace`` deletes the existing asset and makes it anew.
        The staging area goes either way: a refused last chunk ends the upload."""
        total = slot.chunk.total if slot.chunk is not None else size
        # What the client says of its file is taken only when it is a media type at all.
        mime = mediatypes.or_none(mime_type)
        if mime == DEFAULT_MIME:
            mime = None
        try:
            async with self.guard.using():
                try:
                    blob = await self.staging.assemble(slot.upload_id, total)
                except PartsIncomplete as exc:
                    raise Conflict(f"the chunks of {slot.path} do not add up: {exc}") from exc
                try:
                    async with self.tree.writes.change(user) as ch:
                        return await self.tree.store_original_in(
                            ch,
                            slot.folder_path,
                            slot.name,
                            Original(blob, mime or guess_mime(slot.name)),
                            version=None if replace else VersionNote(),
                            replace=replace,
                        )
                except IntegrityError as exc:
                    raise Conflict(f"{slot.path} was changed concurrently; try again") from exc
        finally:
            await self.staging.discard(slot.upload_id)

    async def abandon(self, slot: Slot) -> None:
        """A single request refused after its file landed: its staging goes."""
        if slot.chunk is None:
            await self.staging.discard(slot.upload_id)
