"""Blob store on any S3-compatible object store (AWS S3, Ceph RGW, MinIO, R2...).

Chosen by ``ASSETVAULT_BLOBS_URL=s3://bucket[/prefix]?endpoint=http://host:port&region=...``
with the usual AWS credential variables (``AWS_ACCESS_KEY_ID``...). Objects, under the
prefix:

- ``blobs/<sha256>``: the blobs, content-addressed as on the local store. A stream is
  hashed (SHA-256 and SHA-1 in one pass) while it goes up as a multipart upload of
  PART_BYTES parts, to ``tmp/<random>``, then copied server-side to its content address;
  a stream that fits in one part is hashed first and put at its address directly.
- ``uploads/<upload id>/part-<n>.<random>``: the parts of a direct binary upload that
  came through the API, one object each. A replayed part is a new object; the older one
  of the same number goes once the new one is whole, and a replay of another size is
  refused. ``assemble`` streams the parts in order into a blob and records it in
  ``uploads/<upload id>/assembled.json`` until the upload is discarded.
- Direct binary upload: ``initiateUpload.json`` begins one multipart upload per file at
  ``blobs/<k>``, where ``k`` is derived from the upload id (not a digest: the server
  never reads these bytes on the way in), and hands out a presigned ``UploadPart`` URL
  per part; the client PUTs its parts there. ``complete_direct`` learns the parts'
  sizes and ETags from ListParts, refuses what does not add up (aborting the upload
  when a part is too large), records ``assembled.json`` and completes the multipart
  upload. Processing reads the object and records its SHA-1.

Memory stays constant: a few parts of a stream are in memory at once. Every call of
boto3 (which blocks) runs on this store's own threads, never on the event loop. Nothing
here hands out a path of the store: ``local_copy`` downloads to a temporary file,
``scratch`` is a temporary local directory whose files ``put_file`` uploads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlparse

import boto3
import botocore.loaders
import botocore.session
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from assetvault.adapters.blobs.base import (
    BlobInfo,
    BlobMissing,
    DirectUpload,
    PartConflict,
    PartsIncomplete,
    PartTooLarge,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

T = TypeVar("T")

PART_BYTES = 16 * 1024 * 1024  # parts of the multipart uploads this store makes
PARTS_IN_FLIGHT = 3  # of one stream, uploading while the next part is received
MAX_PARTS = 10_000  # S3's limit on the parts of one multipart upload
# A multipart upload begun longer ago than this (and than the staging limit) is taken for
# abandoned by a process that died: a long stream (an import of a huge file) may take
# more than the staging limit, an hour, but not a day.
ABANDONED_MULTIPART_SECONDS = 24 * 3600.0
READ_BYTES = 1024 * 1024
SINGLE_COPY_LIMIT = 5 * 1024**3  # CopyObject's limit; larger objects copy in parts
_HEX = frozenset("0123456789abcdef")
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


class _Hashes:
    def __init__(self) -> None:
        self.sha1 = hashlib.sha1(usedforsecurity=False)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> None:
        self.sha1.update(data)
        self.sha256.update(data)
        self.size += len(data)


@dataclass(frozen=True)
class _Part:
    number: int
    size: int
    key: str
    modified: datetime


@dataclass(frozen=True)
class _Listed:
    """A part of a direct upload as ListParts tells it."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class S3Location:
    """Where the store lives, parsed from an ``s3://`` URL."""

    bucket: str
    prefix: str
    endpoint: str | None
    region: str | None
    path_style: bool

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an S3 blob store URL: {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        unknown = set(query) - {"endpoint", "region", "addressing"}
        if unknown:
            raise ValueError(f"unknown parameter(s) of the S3 blob store URL: {sorted(unknown)}")
        addressing = query.get("addressing", "path" if "endpoint" in query else "virtual")
        if addressing not in ("path", "virtual"):
            raise ValueError("addressing must be 'path' or 'virtual'")
        prefix = parsed.path.strip("/")
        return cls(
            bucket=parsed.netloc,
            prefix=f"{prefix}/" if prefix else "",
            endpoint=query.get("endpoint"),
            region=query.get("region"),
            path_style=addressing == "path",
        )

    def client(self, credentials: tuple[str, str] | None = None) -> S3Client:
        """A boto3 client; credentials (access key, secret) from the usual AWS variables
        and files unless given."""
        config = Config(
            s3={"addressing_style": "path" if self.path_style else "virtual"},
            signature_version="s3v4",
            max_pool_connections=32,
            retries={"mode": "standard", "max_attempts": 5},
            # Checksums only where S3 demands them: S3-compatible servers (Ceph RGW 16)
            # refuse the newer default trailing checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        key, secret = credentials if credentials is not None else (None, None)
        # A session of its own (credentials are looked up afresh), reading the service's
        # description through the process's one loader: a new loader reads and parses
        # botocore's JSON files again, 0.5-1 s on a loaded machine, 0.05 s without.
        session = botocore.session.Session()
        session.register_component("data_loader", _shared_loader())
        client: S3Client = boto3.session.Session(botocore_session=session).client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            config=config,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )
        return client


_loader: botocore.loaders.Loader | None = None
_loader_lock = threading.Lock()


def _shared_loader() -> botocore.loaders.Loader:
    """botocore's data loader, one per process: it caches what it has read (the S3
    service model, endpoint rules), which every client needs; reads only, so shared."""
    global _loader
    with _loader_lock:
        if _loader is None:
            _loader = botocore.loaders.create_loader()
        return _loader


def direct_blob_key(upload_id: str) -> str:
    """The blob key of a direct upload's object: 64 hex digits as a content key is, made
    from the upload id, so a retried complete finds the object again."""
    return hashlib.sha256(f"assetvault-direct-upload:{upload_id}".encode()).hexdigest()


def _stored_by(modified: datetime) -> float:
    """The latest instant an object whose LastModified is ``modified`` may have been
    stored at. S3 tells it to the second (AWS lists whole seconds): a whole second may
    stand for any instant up to a second later, so a blob stored just after an instant,
    in the same second, is never taken for older than it (the start-up sweep removes
    what is older than the server's start)."""
    at = modified.timestamp()
    return at + 1.0 if modified.microsecond == 0 else at


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _missing(exc: ClientError) -> bool:
    return _code(exc) in _MISSING


def _upload_gone(exc: ClientError) -> bool:
    """A multipart upload completed or aborted (Ceph RGW says NoSuchKey, S3 NoSuchUpload)."""
    return _code(exc) == "NoSuchUpload" or _missing(exc)


class S3BlobStore:
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str = "",
        *,
        temp_dir: Path | None = None,
        part_bytes: int = PART_BYTES,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.temp_dir = temp_dir
        self.part_bytes = part_bytes
        if temp_dir is not None:
            temp_dir.mkdir(parents=True, exist_ok=True)
        self._threads = ThreadPoolExecutor(max_workers=16, thread_name_prefix="s3-blobs")
        self._transfer = TransferConfig(
            multipart_threshold=part_bytes, multipart_chunksize=part_bytes, max_concurrency=4
        )
        self.abandoned_multipart_seconds = ABANDONED_MULTIPART_SECONDS
        # Uploads this process is writing or assembling now: the sweep leaves them alone.
        self._busy: dict[str, int] = {}

    @classmethod
    def from_url(cls, url: str, temp_dir: Path | None = None) -> S3BlobStore:
        where = S3Location.parse(url)
        return cls(where.client(), where.bucket, where.prefix, temp_dir=temp_dir)

    def close(self) -> None:
        self._threads.shutdown(wait=False)

    async def _call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, functools.partial(fn, *args, **kwargs))

    # -- keys ----------------------------------------------------------------------------

    def _blob_key(self, key: str) -> str:
        if len(key) != 64 or not set(key) <= _HEX:
            raise ValueError(f"not a blob key: {key!r}")
        return f"{self.prefix}blobs/{key}"

    def _upload_prefix(self, upload_id: str) -> str:
        if not upload_id or not set(upload_id) <= _HEX:
            raise ValueError(f"not an upload id: {upload_id!r}")
        return f"{self.prefix}uploads/{upload_id}/"

    # -- small helpers over the client ---------------------------------------------------

    async def _head_size(self, object_key: str) -> int | None:
        try:
            head = await self._call(self.client.head_object, Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    async def _list(self, prefix: str) -> AsyncIterator[dict[str, Any]]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = await self._call(self.client.list_objects_v2, **kwargs)
            for obj in page.get("Contents", []):
                yield dict(obj)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def objects(self) -> list[tuple[str, int]]:
        """Every object of this store (name under the prefix, size), sorted: what the tests
        compare before and after a refused request (not part of the port)."""
        found = [
            (obj["Key"][len(self.prefix) :], int(obj["Size"]))
            async for obj in self._list(self.prefix)
        ]
        return sorted(found)

    async def _delete_many(self, object_keys: list[str]) -> None:
        for i in range(0, len(object_keys), 1000):
            batch = [{"Key": k} for k in object_keys[i : i + 1000]]
            await self._call(
                self.client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": batch, "Quiet": True},
            )

    async def _send(
        self,
        chunks: AsyncIterable[bytes],
        multipart_key: str,
        hashes: _Hashes | None = None,
        max_size: int | None = None,
        size_hint: int = 0,
    ) -> bytes | None:
        """Hash a stream and send it in parts: the whole stream when it fits in one part
        (not uploaded: the caller puts it where it likes), else None once it is stored at
        ``multipart_key`` by a multipart upload. Parts go up while the next is received
        (PARTS_IN_FLIGHT at most). Raises PartTooLarge past ``max_size``, leaving nothing stored.

        Parts are ``part_bytes`` large, or larger when ``size_hint`` (the stream's
        expected length) needs them to stay within S3's 10,000 parts; a stream of unknown
        length longer than that doubles its part size every 1,000 parts."""
        buffered: list[bytes] = []
        have = 0
        total = 0
        upload_id: str | None = None
        done: list[dict[str, Any]] = []
        started = 0
        pending: list[asyncio.Future[None]] = []
        base = max(self.part_bytes, -(-size_hint // (MAX_PARTS - 1000)))

        def send_part(number: int, data: bytes) -> None:
            assert upload_id is not None
            got = self.client.upload_part(
                Bucket=self.bucket,
                Key=multipart_key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
            )
            done.append({"PartNumber": number, "ETag": got["ETag"]})

        try:
            async for chunk in chunks:
                total += len(chunk)
                if max_size is not None and total > max_size:
                    raise PartTooLarge(f"more than {max_size} bytes")
                buffered.append(chunk)
                have += len(chunk)
                if have < base << (started // 1000):
                    continue
                if upload_id is None:
                    created = await self._call(
                        self.client.create_multipart_upload, Bucket=self.bucket, Key=multipart_key
                    )
                    upload_id = created["UploadId"]
                while len(pending) >= PARTS_IN_FLIGHT:
                    await pending.pop(0)
                data, buffered, have = b"".join(buffered), [], 0
                if hashes is not None:  # in order, while the parts before go up
                    await self._call(hashes.update, data)
                started += 1
                pending.append(asyncio.ensure_future(self._call(send_part, started, data)))
            if upload_id is None:
                whole = b"".join(buffered)
                if hashes is not None:
                    await self._call(hashes.update, whole)
                return whole
            if buffered:
                data = b"".join(buffered)
                if hashes is not None:
                    await self._call(hashes.update, data)
                pending.append(asyncio.ensure_future(self._call(send_part, started + 1, data)))
            while pending:
                await pending.pop(0)
            parts = sorted(done, key=lambda p: int(p["PartNumber"]))
            await self._call(
                self.client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=multipart_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
            return None
        except BaseException:
            for part in pending:
                with contextlib.suppress(BaseException):
                    await part
            if upload_id is not None:
                with contextlib.suppress(Exception):
                    await self._call(
                        self.client.abort_multipart_upload,
                        Bucket=self.bucket,
                        Key=multipart_key,
                        UploadId=upload_id,
                    )
            raise

    async def _copy(self, source: str, target: str, size: int) -> None:
        """Server-side copy (in parts past CopyObject's limit)."""
        if size <= SINGLE_COPY_LIMIT:
            await self._call(
                self.client.copy_object,
                Bucket=self.bucket,
                Key=target,
                CopySource={"Bucket": self.bucket, "Key": source},
                MetadataDirective="REPLACE",
                Metadata={"stored": str(time.time())},
            )
        else:
            config = TransferConfig(
                multipart_threshold=SINGLE_COPY_LIMIT, multipart_chunksize=1024**3
            )
            await self._call(
                self.client.copy,
                {"Bucket": self.bucket, "Key": source},
                self.bucket,
                target,
                Config=config,
            )

    async def _adopt(self, tmp_key: str | None, data: bytes | None, hashes: _Hashes) -> BlobInfo:
        """Place what ``_send`` sent at its content address (or find it already there)."""
        info = BlobInfo(hashes.sha256.hexdigest(), hashes.size, hashes.sha1.hexdigest())
        target = self._blob_key(info.key)
        try:
            if await self._head_size(target) == info.size:
                await self.touch(info.key)
            elif data is not None:
                await self._call(self.client.put_object, Bucket=self.bucket, Key=target, Body=data)
            else:
                assert tmp_key is not None
                await self._copy(tmp_key, target, info.size)
        finally:
            if tmp_key is not None and data is None:
                with contextlib.suppress(Exception):
                    await self._call(self.client.delete_object, Bucket=self.bucket, Key=tmp_key)
        return info

    # -- blobs ---------------------------------------------------------------------------

    async def put(self, chunks: AsyncIterable[bytes]) -> BlobInfo:
        return await self._put(chunks)

    async def _put(self, chunks: AsyncIterable[bytes], size_hint: int = 0) -> BlobInfo:
        hashes = _Hashes()
        tmp_key = f"{self.prefix}tmp/{uuid.uuid4().hex}"
        data = await self._send(chunks, tmp_key, hashes, size_hint=size_hint)
        return await self._adopt(tmp_key, data, hashes)

    async def put_file(self, path: Path) -> BlobInfo:
        def hash_file() -> _Hashes:
            hashes = _Hashes()
            with open(path, "rb") as fh:
                while data := fh.read(READ_BYTES):
                    hashes.update(data)
            return hashes

        hashes = await self._call(hash_file)
        info = BlobInfo(hashes.sha256.hexdigest(), hashes.size, hashes.sha1.hexdigest())
        target = self._blob_key(info.key)
        if await self._head_size(target) == info.size:
            await self.touch(info.key)
        else:
            await self._call(
                self.client.upload_file, str(path), self.bucket, target, Config=self._transfer
            )
        await self._call(path.unlink, True)
        return info

    def _temp_root(self) -> str | None:
        return str(self.temp_dir) if self.temp_dir is not None else None

    @contextlib.asynccontextmanager
    async def scratch(self) -> AsyncIterator[Path]:
        d = Path(await self._call(tempfile.mkdtemp, prefix="scratch-", dir=self._temp_root()))
        try:
            yield d
        finally:
            await self._call(shutil.rmtree, d, True)

    @contextlib.asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        """A temporary download of the blob, removed when the block ends."""
        object_key = self._blob_key(key)
        d = Path(await self._call(tempfile.mkdtemp, prefix="copy-", dir=self._temp_root()))
        try:
            path = d / key
            try:
                await self._call(
                    self.client.download_file,
                    self.bucket,
                    object_key,
                    str(path),
                    Config=self._transfer,
                )
            except ClientError as exc:
                if _missing(exc):
                    raise BlobMissing(f"no blob {key}") from exc
                raise
            yield path
        finally:
            await self._call(shutil.rmtree, d, True)

    async def size(self, key: str) -> int | None:
        return await self._head_size(self._blob_key(key))

    async def served_file(self, key: str) -> Path | None:
        """None: the blobs are in the object store, not on this machine's disk."""
        return None

    async def download_url(
        self,
        key: str,
        *,
        expires_seconds: int,
        content_type: str,
        content_disposition: str | None,
        cache_control: str,
    ) -> str | None:
        """A presigned GetObject whose ``response-*`` parameters make the store answer
        with our headers (S3 lets a signed request set these, never others such as CSP
        or nosniff). Signing is local work, but credentials from an instance role may be
        refreshed over the network: on the store's threads."""
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._blob_key(key),
            "ResponseContentType": content_type,
            "ResponseCacheControl": cache_control,
        }
        if content_disposition is not None:
            params["ResponseContentDisposition"] = content_disposition
        url: str = await self._call(
            self.client.generate_presigned_url,
            "get_object",
            Params=params,
            ExpiresIn=expires_seconds,
        )
        return url

    def cached_bytes(self, key: str, start: int, length: int) -> bytes | None:
        """None: the blobs are in the object store, not on this machine's disk."""
        return None

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._blob_key(key)}
        if start > 0 or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            got = await self._call(self.client.get_object, **kwargs)
        except ClientError as exc:
            if _missing(exc):
                raise BlobMissing(f"no blob {key}") from exc
            raise
        async for data in self._body(got):
            yield data

    async def _body(self, got: Any) -> AsyncIterator[bytes]:
        """The bytes of a GetObject answer, read on a thread in large pieces."""
        body = got["Body"]
        try:
            while data := await self._call(body.read, READ_BYTES):
                yield data
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await self._call(self.client.delete_object, Bucket=self.bucket, Key=self._blob_key(key))

    async def touch(self, key: str) -> None:
        """Copied onto itself: S3 keeps no access time, so a fresh LastModified is how a
        blob is marked as referenced again."""
        object_key = self._blob_key(key)
        size = await self._head_size(object_key)
        if size is None:
            return
        with contextlib.suppress(ClientError):
            await self._copy(object_key, object_key, size)

    async def clear(self) -> int:
        """Every object under the prefix deleted, listed a page at a time and deleted in
        batches of 1,000 (one DeleteObjects each); the multipart uploads begun under it
        aborted."""
        removed = 0
        batch: list[str] = []
        async for obj in self._list(self.prefix):
            key = str(obj["Key"])
            if key.startswith(f"{self.prefix}blobs/"):
                removed += 1
            batch.append(key)
            if len(batch) == 1000:
                await self._delete_many(batch)
                batch = []
        if batch:
            await self._delete_many(batch)
        await self._abort_multipart_older_than(float("inf"), float("inf"))
        self._busy.clear()
        return removed

    async def keys_older_than(self, seconds: float) -> AsyncIterator[str]:
        cutoff = time.time() - seconds

        def old(obj: dict[str, Any]) -> bool:
            # Nothing stored is younger than 0 s; otherwise an object counts from the
            # latest instant it may have been stored at (_stored_by).
            return seconds <= 0 or _stored_by(obj["LastModified"]) <= cutoff

        blobs = f"{self.prefix}blobs/"
        async for obj in self._list(blobs):
            if old(obj):
                yield obj["Key"][len(blobs) :]
        # Leftovers of puts that died between their upload and its copy.
        stale = [obj["Key"] async for obj in self._list(f"{self.prefix}tmp/") if old(obj)]
        await self._delete_many(stale)

    # -- upload staging ------------------------------------------------------------------

    @contextlib.contextmanager
    def _working_on(self, upload_id: str) -> Any:
        self._busy[upload_id] = self._busy.get(upload_id, 0) + 1
        try:
            yield
        finally:
            self._busy[upload_id] -= 1
            if not self._busy[upload_id]:
                del self._busy[upload_id]

    async def _parts(self, upload_id: str) -> dict[int, list[_Part]]:
        """Every part object of an upload by number, the one that counts (the newest)
        first."""
        prefix = self._upload_prefix(upload_id)
        found: dict[int, list[_Part]] = {}
        async for obj in self._list(f"{prefix}part-"):
            name = obj["Key"][len(prefix) :]
            number, _, _ = name[len("part-") :].partition(".")
            with contextlib.suppress(ValueError):
                part = _Part(int(number), int(obj["Size"]), obj["Key"], obj["LastModified"])
                found.setdefault(part.number, []).append(part)
        for parts in found.values():
            parts.sort(key=lambda p: (p.modified, p.key), reverse=True)
        return found

    async def _assembled(self, upload_id: str) -> BlobInfo | None:
        try:
            got = await self._call(
                self.client.get_object,
                Bucket=self.bucket,
                Key=f"{self._upload_prefix(upload_id)}assembled.json",
            )
            record = json.loads(await self._call(got["Body"].read))
            return BlobInfo(key=record["key"], size=int(record["size"]), sha1=record["sha1"])
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        except (ValueError, KeyError, TypeError):
            return None

    async def write_part(
        self, upload_id: str, number: int, chunks: AsyncIterable[bytes], max_size: int
    ) -> int:
        prefix = self._upload_prefix(upload_id)
        if number < 1:
            raise ValueError(f"not a part number: {number}")
        with self._working_on(upload_id):
            if await self._assembled(upload_id) is not None:
                raise PartConflict("this upload has already been completed")
            key = f"{prefix}part-{number}.{uuid.uuid4().hex}"
            hashes = _Hashes()
            try:
                data = await self._send(chunks, key, hashes, max_size, size_hint=max_size)
            except ClientError as exc:
                if _code(exc) == "NoSuchUpload":
                    raise PartsIncomplete("the staged upload is gone: it was completed") from exc
                raise
            if data is not None:
                await self._call(self.client.put_object, Bucket=self.bucket, Key=key, Body=data)
            size = hashes.size
            others = [p for p in (await self._parts(upload_id)).get(number, []) if p.key != key]
            if any(p.size != size for p in others):
                await self._call(self.client.delete_object, Bucket=self.bucket, Key=key)
                earlier = next(p.size for p in others if p.size != size)
                raise PartConflict(f"part {number} was already received with {earlier} bytes")
            # A replay of the same length replaces the earlier copy.
            await self._delete_many([p.key for p in others])
            return size

    async def received(self, upload_id: str) -> dict[int, int]:
        return {n: parts[0].size for n, parts in (await self._parts(upload_id)).items()}

    async def assemble(self, upload_id: str, expected_size: int) -> BlobInfo:
        with self._working_on(upload_id):
            done = await self._assembled(upload_id)
            if done is not None and await self.size(done.key) == done.size:
                # A complete that got this far before and whose row was not committed.
                await self.touch(done.key)
                return done
            found = await self._parts(upload_id)
            contiguous: list[_Part] = []
            while len(contiguous) + 1 in found:
                contiguous.append(found[len(contiguous) + 1][0])
            have = sum(p.size for p in contiguous)
            waiting = len(found) - len(contiguous)
            if have != expected_size or waiting:
                gap = f"; {waiting} part(s) wait after a missing one" if waiting else ""
                raise PartsIncomplete(
                    f"received {len(contiguous)} contiguous part(s) with {have} bytes "
                    f"of {expected_size}{gap}"
                )
            info = await self._put(self._read_parts(contiguous), expected_size)
            if info.size != expected_size:
                raise PartsIncomplete("the staged parts changed while completing; try again")
            record = json.dumps({"key": info.key, "size": info.size, "sha1": info.sha1})
            await self._call(
                self.client.put_object,
                Bucket=self.bucket,
                Key=f"{self._upload_prefix(upload_id)}assembled.json",
                Body=record.encode(),
            )
            return info

    async def _read_parts(self, parts: list[_Part]) -> AsyncIterator[bytes]:
        for part in parts:
            try:
                got = await self._call(self.client.get_object, Bucket=self.bucket, Key=part.key)
            except ClientError as exc:
                if _missing(exc):
                    # Discarded by a racing complete, or replaced by a replayed part.
                    raise PartsIncomplete(
                        "the staged upload is gone or changed: it was completed or a part "
                        "was sent again"
                    ) from exc
                raise
            async for data in self._body(got):
                yield data

    # -- direct binary upload: parts go straight to the store -----------------------------

    async def begin_direct(self, upload_id: str, parts: int, expires_seconds: int) -> DirectUpload:
        if not 1 <= parts <= MAX_PARTS:
            raise ValueError(f"a multipart upload has 1 to {MAX_PARTS} parts, not {parts}")
        self._upload_prefix(upload_id)  # checks the id
        object_key = self._blob_key(direct_blob_key(upload_id))
        created = await self._call(
            self.client.create_multipart_upload, Bucket=self.bucket, Key=object_key
        )
        store_upload_id = str(created["UploadId"])

        def sign() -> list[str]:
            return [
                self.client.generate_presigned_url(
                    "upload_part",
                    Params={
                        "Bucket": self.bucket,
                        "Key": object_key,
                        "UploadId": store_upload_id,
                        "PartNumber": n,
                    },
                    ExpiresIn=expires_seconds,
                )
                for n in range(1, parts + 1)
            ]

        return DirectUpload(store_upload_id, await self._call(sign))

    async def _list_direct_parts(self, object_key: str, store_upload_id: str) -> list[_Listed]:
        found: list[_Listed] = []
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": object_key,
            "UploadId": store_upload_id,
        }
        while True:
            page = await self._call(self.client.list_parts, **kwargs)
            for p in page.get("Parts", []):
                found.append(_Listed(int(p["PartNumber"]), int(p["Size"]), str(p["ETag"])))
            if not page.get("IsTruncated"):
                return sorted(found, key=lambda p: p.number)
            kwargs["PartNumberMarker"] = page["NextPartNumberMarker"]

    async def abort_direct(self, upload_id: str, store_upload_id: str) -> None:
        with contextlib.suppress(ClientError):
            await self._call(
                self.client.abort_multipart_upload,
                Bucket=self.bucket,
                Key=self._blob_key(direct_blob_key(upload_id)),
                UploadId=store_upload_id,
            )

    async def complete_direct(
        self, upload_id: str, store_upload_id: str, expected_size: int, max_part_size: int
    ) -> BlobInfo:
        key = direct_blob_key(upload_id)
        object_key = self._blob_key(key)
        info = BlobInfo(key, expected_size, "", verified=False)
        record_key = self._record_key(upload_id)
        record = json.dumps({"key": key, "size": expected_size, "sha1": ""}).encode()
        with self._working_on(upload_id):
            # The record goes first (the sweep keeps the object while it lasts, and it says
            # the object is this upload's), while the parts are listed.
            listed, _ = await asyncio.gather(
                self._list_direct_parts(object_key, store_upload_id),
                self._call(self.client.put_object, Bucket=self.bucket, Key=record_key, Body=record),
                return_exceptions=True,
            )
            if isinstance(listed, BaseException):
                if not isinstance(listed, ClientError) or not _upload_gone(listed):
                    await self.finish_direct(upload_id)
                    raise listed
                # The key is this upload's alone: an object there is its completion by a
                # complete whose row did not commit (or a racing one).
                if await self._head_size(object_key) == expected_size:
                    return info
                await self.finish_direct(upload_id)
                raise PartsIncomplete(
                    "the upload is gone from the object store (completed, aborted or "
                    "expired); initiate it again"
                ) from listed
            parts = listed
            try:
                self._check_direct_parts(parts, expected_size, max_part_size)
            except PartTooLarge:
                await asyncio.gather(
                    self.abort_direct(upload_id, store_upload_id), self.finish_direct(upload_id)
                )
                raise
            except PartsIncomplete:
                await self.finish_direct(upload_id)
                raise
            try:
                if parts:
                    # The ETags pin the parts listed: one sent again since is refused.
                    await self._call(
                        self.client.complete_multipart_upload,
                        Bucket=self.bucket,
                        Key=object_key,
                        UploadId=store_upload_id,
                        MultipartUpload={
                            "Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]
                        },
                    )
                else:  # an empty file: S3 completes no upload without parts
                    await self.abort_direct(upload_id, store_upload_id)
                    await self._call(
                        self.client.put_object, Bucket=self.bucket, Key=object_key, Body=b""
                    )
            except ClientError as exc:
                if _upload_gone(exc):  # a racing complete completed it
                    if await self._head_size(object_key) == expected_size:
                        return info
                    raise PartsIncomplete("the upload is gone from the object store") from exc
                await self.finish_direct(upload_id)
                if _code(exc) == "EntityTooSmall":
                    raise PartsIncomplete(
                        "the object store refused the parts (EntityTooSmall): every part but "
                        "the last must hold at least 5 MiB"
                    ) from exc
                if _code(exc) in ("InvalidPart", "InvalidPartOrder"):
                    raise PartsIncomplete(
                        f"the object store refused the parts ({_code(exc)}): a part was sent "
                        f"again while completing; complete again"
                    ) from exc
                raise
            return info

    @staticmethod
    def _check_direct_parts(parts: list[_Listed], expected_size: int, max_part_size: int) -> None:
        over = [p for p in parts if p.size > max_part_size]
        total = sum(p.size for p in parts)
        if over:
            raise PartTooLarge(
                f"part {over[0].number} holds {over[0].size} bytes; a part may hold at most "
                f"{max_part_size}; the upload is aborted, initiate it again"
            )
        if total > expected_size:
            raise PartTooLarge(
                f"the parts hold {total} bytes, more than the {expected_size} announced; "
                f"the upload is aborted, initiate it again"
            )
        numbers = [p.number for p in parts]
        if total != expected_size or numbers != list(range(1, len(parts) + 1)):
            raise PartsIncomplete(
                f"received {len(parts)} part(s) ({numbers[:10]}) with {total} bytes of "
                f"{expected_size}"
            )

    def _record_key(self, upload_id: str) -> str:
        return f"{self._upload_prefix(upload_id)}assembled.json"

    async def finish_direct(self, upload_id: str) -> None:
        with contextlib.suppress(ClientError):
            await self._call(
                self.client.delete_object, Bucket=self.bucket, Key=self._record_key(upload_id)
            )

    async def discard(self, upload_id: str) -> None:
        keys = [obj["Key"] async for obj in self._list(self._upload_prefix(upload_id))]
        await self._delete_many(keys)

    async def staged_blob_keys(self) -> set[str]:
        keys: set[str] = set()
        uploads = f"{self.prefix}uploads/"
        async for obj in self._list(uploads):
            upload_id, _, name = obj["Key"][len(uploads) :].partition("/")
            if name == "assembled.json":
                with contextlib.suppress(ValueError):
                    info = await self._assembled(upload_id)
                    if info is not None:
                        keys.add(info.key)
        return keys

    async def sweep(self, older_than_seconds: float) -> int:
        """Remove the staged uploads untouched for that long (with the record of a direct
        upload completed in the store whose row never came: its object is then an
        unreferenced blob), abort the multipart uploads of direct binary uploads begun
        that long ago (abandoned by their clients; their part URLs have expired), and the
        other multipart uploads of this store begun that long ago and at least
        ABANDONED_MULTIPART_SECONDS ago (of part writes and puts whose process died)."""
        cutoff = time.time() - older_than_seconds
        uploads = f"{self.prefix}uploads/"
        newest: dict[str, float] = {}
        async for obj in self._list(uploads):
            upload_id = obj["Key"][len(uploads) :].partition("/")[0]
            stamp = obj["LastModified"].timestamp()
            newest[upload_id] = max(stamp, newest.get(upload_id, stamp))
        removed = 0
        for upload_id, stamp in newest.items():
            if stamp <= cutoff and upload_id not in self._busy:
                with contextlib.suppress(ValueError):
                    await self.discard(upload_id)
                    removed += 1
        removed += await self._abort_multipart_older_than(
            min(cutoff, time.time() - self.abandoned_multipart_seconds), direct_cutoff=cutoff
        )
        return removed

    async def _abort_multipart_older_than(self, cutoff: float, direct_cutoff: float) -> int:
        """Abort the multipart uploads begun before ``cutoff``; those of direct binary
        uploads (whose tokens, and so part URLs, last as long as a staged upload is kept)
        before ``direct_cutoff``."""
        blobs = f"{self.prefix}blobs/"
        aborted = 0
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        while True:
            page = await self._call(self.client.list_multipart_uploads, **kwargs)
            for up in page.get("Uploads", []):
                limit = direct_cutoff if str(up["Key"]).startswith(blobs) else cutoff
                if up["Initiated"].timestamp() <= limit:
                    with contextlib.suppress(ClientError):
                        await self._call(
                            self.client.abort_multipart_upload,
                            Bucket=self.bucket,
                            Key=up["Key"],
                            UploadId=up["UploadId"],
                        )
                        aborted += 1
            if not page.get("IsTruncated"):
                return aborted
            kwargs["KeyMarker"] = page.get("NextKeyMarker", "")
            kwargs["UploadIdMarker"] = page.get("NextUploadIdMarker", "")
