"""Direct binary upload: initiate, parts, complete (the protocol @adobe/aem-upload drives).

Nothing of an upload is in the tree until complete succeeds; parts gather in the blob
store's staging area, and a complete whose parts do not add up to the announced size
is refused without creating anything.

On a store elsewhere (S3) the parts do not pass through the API: initiate begins one
multipart upload per file in the store and hands out its presigned part URLs, and
complete completes it, refusing there what the store could not refuse as the parts
arrived (a part too large, parts over the announced size). The bytes are not read on
the way in: the asset's SHA-1 is recorded by processing, which reads the object anyway.
"""

from __future__ import annotations

import asyncio
import math
import mimetypes
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property

import anyio.to_thread
from sqlalchemy.exc import IntegrityError

from assetvault import mediatypes
from assetvault.adapters.blobs.base import (
    BlobInfo,
    DirectUploads,
    PartConflict,
    PartsIncomplete,
    PartTooLarge,
    UploadStaging,
)
from assetvault.errors import Conflict, InvalidInput, PayloadTooLarge
from assetvault.maintenance.guard import BlobGuard
from assetvault.settings import Settings
from assetvault.tree.paths import check_name
from assetvault.tree.service import StoredOriginal, TreeService
from assetvault.tree.writes import Original, VersionNote
from assetvault.uploads import repository as uploads_repo
from assetvault.uploads.tokens import UploadTicket, UploadTokens

DEFAULT_MIME = "application/octet-stream"
MAX_FILES_PER_INITIATE = 1000
# Signing more part URIs than this moves to a worker thread (each takes some 15 µs).
SIGN_INLINE_UP_TO = 64
# S3 refuses to complete a multipart upload with a part under 5 MiB but the last.
STORE_MIN_PART_SIZE = 5 * 1024 * 1024


@dataclass(frozen=True)
class PlannedFile:
    ticket: UploadTicket
    upload_token: str
    part_tokens: list[str]
    min_part_size: int
    max_part_size: int
    # Presigned URLs of the parts in the object store, when the parts go there directly;
    # else the API's part URIs (made of ``part_tokens``) are handed out.
    part_urls: list[str] | None = None


@dataclass(frozen=True)
class CompleteRequest:
    upload_token: str
    file_name: str
    file_size: int
    mime_type: str | None
    create_version: bool
    version_label: str | None
    version_comment: str | None
    replace: bool


def guess_mime(file_name: str) -> str:
    return mimetypes.guess_type(file_name, strict=False)[0] or DEFAULT_MIME


class UploadService:
    def __init__(
        self,
        settings: Settings,
        tree: TreeService,
        staging: UploadStaging,
        guard: BlobGuard,
        direct: DirectUploads | None = None,
    ) -> None:
        self.settings = settings
        self.tree = tree
        self.staging = staging
        self.guard = guard
        # The store the clients send parts to directly (S3); None: parts come to the API.
        self.direct = direct

    @cached_property
    def tokens(self) -> UploadTokens:
        # Made on first use: on PostgreSQL the secret is read from the database (made
        # there by the first process that needs it), which building the services must
        # not wait for.
        return UploadTokens(self.settings.secret_key, self.settings.upload_token_ttl_seconds)

    def _plan_parts(self, size: int, floor: int) -> int:
        """How many part URIs to hand out for a file, for parts of at least ``floor``."""
        part_size = max(floor, math.ceil(size / self.settings.upload_max_parts))
        return max(1, math.ceil(size / part_size))

    def _plan(self, sizes: list[int]) -> list[int]:
        """Part URIs per file, within upload_max_initiate_uris in all: parts of about the
        preferred size, or larger (up to the maximum part size) when those are too many."""
        s = self.settings
        budget = s.upload_max_initiate_uris
        counts = [self._plan_parts(size, s.upload_preferred_part_size) for size in sizes]
        if sum(counts) > budget:
            # ceil(size / p) < size / p + 1: parts of total / (budget - files) bytes fit,
            # unless that is over the maximum part size.
            spare = max(1, budget - len(sizes))
            wanted = max(s.upload_preferred_part_size, math.ceil(sum(sizes) / spare))
            floor = min(s.upload_max_part_size, wanted)
            counts = [self._plan_parts(size, floor) for size in sizes]
        if sum(counts) > budget:
            raise PayloadTooLarge(
                f"these files need {sum(counts)} upload URIs even with parts of "
                f"{s.upload_max_part_size} bytes; one initiate hands out at most {budget}"
            )
        return counts

    def _check_files(self, files: list[tuple[str, int]]) -> None:
        s = self.settings
        if not files:
            raise InvalidInput("name at least one file with fileName and fileSize")
        if len(files) > MAX_FILES_PER_INITIATE:
            raise InvalidInput(f"at most {MAX_FILES_PER_INITIATE} files per initiate")
        for name, size in files:
            check_name(name)
            if size < 0:
                raise InvalidInput(f"fileSize of {name!r} is negative")
            if size > s.upload_max_file_size:
                raise PayloadTooLarge(
                    f"fileSize of {name!r} is larger than the limit of "
                    f"{s.upload_max_file_size} bytes"
                )

    async def check_initiate(self, folder_path: str, files: list[tuple[str, int]]) -> None:
        """An initiate's checks alone, for a server with direct binary upload off: the
        answer names the files but hands out no upload URIs (the create-asset servlet
        takes the files instead)."""
        self._check_files(files)
        await self.tree.get_folder(folder_path)

    async def initiate(
        self, folder_path: str, files: list[tuple[str, int]], *, user: str
    ) -> list[PlannedFile]:
        s = self.settings
        self._check_files(files)
        total = sum(size for _, size in files)
        if total > s.upload_max_initiate_bytes:
            raise PayloadTooLarge(
                f"the files add up to {total} bytes; one initiate may announce at most "
                f"{s.upload_max_initiate_bytes}"
            )
        counts = self._plan([size for _, size in files])
        await self.tree.get_folder(folder_path)
        if sum(counts) <= SIGN_INLINE_UP_TO:
            planned = self._sign(folder_path, files, counts, user)
        else:
            planned = await anyio.to_thread.run_sync(self._sign, folder_path, files, counts, user)
        if self.direct is None:
            return planned
        return await self._begin_direct(self.direct, planned)

    async def _begin_direct(
        self, direct: DirectUploads, planned: list[PlannedFile]
    ) -> list[PlannedFile]:
        """One multipart upload in the store per file, its part URLs in the answer and its
        id in the upload token (so initiate still writes no row)."""
        ttl = self.settings.upload_token_ttl_seconds
        limit = asyncio.Semaphore(16)

        async def begin(p: PlannedFile) -> PlannedFile:
            async with limit:
                started = await direct.begin_direct(p.ticket.upload_id, p.ticket.part_count, ttl)
            ticket = replace(p.ticket, store_upload=started.store_upload_id)
            return replace(
                p,
                ticket=ticket,
                upload_token=self.tokens.upload_token(ticket),
                part_tokens=[],
                part_urls=started.part_urls,
                min_part_size=min(max(p.min_part_size, STORE_MIN_PART_SIZE), p.max_part_size),
            )

        return list(await asyncio.gather(*(begin(p) for p in planned)))

    def _sign(
        self, folder_path: str, files: list[tuple[str, int]], counts: list[int], user: str
    ) -> list[PlannedFile]:
        s = self.settings
        planned = []
        for (name, size), parts in zip(files, counts, strict=True):
            ticket = UploadTicket(
                upload_id=uuid.uuid4().hex,
                folder_path=folder_path,
                file_name=name,
                file_size=size,
                mime_type=guess_mime(name),
                part_count=parts,
                max_part_size=s.upload_max_part_size,
                user=user,
            )
            planned.append(
                PlannedFile(
                    ticket=ticket,
                    upload_token=self.tokens.upload_token(ticket),
                    part_tokens=[
                        self.tokens.part_token(ticket.upload_id, n, s.upload_max_part_size, size)
                        for n in range(1, parts + 1)
                    ]
                    if self.direct is None
                    else [],
                    min_part_size=min(s.upload_min_part_size, s.upload_max_part_size),
                    max_part_size=s.upload_max_part_size,
                )
            )
        return planned

    async def receive_part(
        self,
        upload_id: str,
        number: int,
        token: str,
        chunks: AsyncIterable[bytes],
        content_length: int | None,
    ) -> int:
        grant = self.tokens.read_part_token(token, upload_id, number)
        limit = grant.max_part_size
        why = f"a part may hold at most {limit} bytes"
        if grant.file_size is not None:
            # No part takes more than the file's declared bytes that other parts left.
            received = await self.staging.received(upload_id)
            others = sum(size for n, size in received.items() if n != number)
            remaining = max(0, grant.file_size - others)
            if remaining < limit:
                limit = remaining
                why = (
                    f"this part may hold at most {limit} bytes: the file was announced with "
                    f"{grant.file_size} bytes and other parts hold {others}"
                )
        if content_length is not None and content_length > limit:
            raise PayloadTooLarge(why)
        try:
            return await self.staging.write_part(upload_id, number, chunks, limit)
        except PartTooLarge as exc:
            raise PayloadTooLarge(why) from exc
        except (PartConflict, PartsIncomplete) as exc:
            raise Conflict(str(exc)) from exc

    async def complete(
        self, folder_path: str, request: CompleteRequest, *, user: str
    ) -> StoredOriginal:
        ticket = self.tokens.read_upload_token(request.upload_token)
        if ticket.folder_path != folder_path:
            raise InvalidInput(f"the upload token was issued for {ticket.folder_path}")
        if request.file_name != ticket.file_name:
            raise InvalidInput(f"the upload token was issued for the file {ticket.file_name!r}")
        if request.file_size != ticket.file_size:
            raise InvalidInput(f"the upload token was issued for {ticket.file_size} bytes")
        if request.create_version and request.replace:
            raise InvalidInput("createVersion and replace cannot both be true")
        mime = request.mime_type if request.mime_type not in (None, "", DEFAULT_MIME) else None
        if mime is not None:
            mediatypes.check(mime, "mimeType")
        await self.tree.get_folder(folder_path)
        used = f"this upload token was already used: {ticket.file_name!r} was completed"
        if await self._completed(ticket.upload_id):
            raise Conflict(used)
        async with self.guard.using():
            try:
                blob = await self._assemble(ticket)
            except PartsIncomplete as exc:
                if await self._completed(ticket.upload_id):  # a racing complete won
                    raise Conflict(used) from exc
                raise InvalidInput(f"the uploaded parts do not add up to fileSize: {exc}") from exc
            except PartTooLarge as exc:
                raise PayloadTooLarge(str(exc)) from exc
            try:
                async with self.tree.writes.change(user) as ch:
                    stored = await self.tree.store_original_in(
                        ch,
                        folder_path,
                        ticket.file_name,
                        Original(blob, mime or ticket.mime_type),
                        version=VersionNote(request.version_label, request.version_comment)
                        if request.create_version
                        else None,
                        replace=request.replace,
                    )
                    await uploads_repo.mark_completed(
                        ch.conn, ticket.upload_id, stored.node.id, ch.now
                    )
            except IntegrityError as exc:
                if await self._completed(ticket.upload_id):
                    raise Conflict(used) from exc
                raise Conflict(
                    f"{folder_path}/{ticket.file_name} was changed concurrently; try again"
                ) from exc
        if ticket.store_upload is not None and self.direct is not None:
            await self.direct.finish_direct(ticket.upload_id)
        else:
            await self.staging.discard(ticket.upload_id)
        return stored

    async def _assemble(self, ticket: UploadTicket) -> BlobInfo:
        """The upload's blob: its parts joined in the staging area, or its multipart
        upload completed in the store the parts went to."""
        if ticket.store_upload is None:
            return await self.staging.assemble(ticket.upload_id, ticket.file_size)
        if self.direct is None:
            raise InvalidInput(
                "the upload token was issued for parts sent to an object store this server "
                "does not use; initiate the upload again"
            )
        return await self.direct.complete_direct(
            ticket.upload_id, ticket.store_upload, ticket.file_size, ticket.max_part_size
        )

    async def _completed(self, upload_id: str) -> bool:
        async with self.tree.db.read() as conn:
            return await uploads_repo.is_completed(conn, upload_id)

    async def forget_completed(self, older_than_seconds: float) -> int:
        """Forget completions whose tokens have expired (they can no longer be replayed)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        async with self.tree.db.write() as conn:
            return await uploads_repo.forget_completed_before(conn, cutoff)
