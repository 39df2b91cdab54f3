"""What only the local store does: its files, locks, digests and crash leftovers. The
port's contract, which it holds with every store, is test_port.py."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from assetvault.adapters.blobs.base import (
    BlobMissing,
    PartConflict,
    PartsIncomplete,
    PartTooLarge,
)
from assetvault.adapters.blobs.local import LocalBlobStore


async def stream(data: bytes, chunk: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


UPLOAD = "0123456789abcdef0123456789abcdef"


async def test_put_is_content_addressed_and_deduplicated(store: LocalBlobStore) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)
    first = await store.put(stream(data))
    assert first.key == hashlib.sha256(data).hexdigest()
    assert first.sha1 == hashlib.sha1(data).hexdigest()
    assert first.size == len(data)
    second = await store.put(stream(data))
    assert second == first
    blobs = [p for p in store.root.rglob("*") if p.is_file() and ".tmp" not in p.parts]
    assert len(blobs) == 1
    assert not list(store.tmp_dir.iterdir())


async def test_a_put_whose_stream_fails_leaves_no_temporary_file(store: LocalBlobStore) -> None:
    async def cut() -> AsyncIterator[bytes]:
        yield os.urandom(3 * 1024 * 1024)
        raise ConnectionError("the source went away")

    with pytest.raises(ConnectionError):
        await store.put(cut())
    assert not list(store.tmp_dir.iterdir())


async def test_parts_in_order_assemble_without_rehashing(store: LocalBlobStore) -> None:
    parts = [os.urandom(1024 * 1024) for _ in range(3)] + [b"tail"]
    for n, part in enumerate(parts, start=1):
        assert await store.write_part(UPLOAD, n, stream(part), 10 * 1024 * 1024) == len(part)
    data = b"".join(parts)
    assert store._uploads[UPLOAD].hashes is not None  # hashed while appending
    info = await store.assemble(UPLOAD, len(data))
    assert info.key == hashlib.sha256(data).hexdigest()
    assert store.local_path(info.key).read_bytes() == data  # type: ignore[union-attr]


async def test_an_upload_discarded_by_a_racing_complete_is_refused_not_crashed(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between a complete's look at the staging area and its lock, a racing complete
    may commit and discard the upload: the late one is told the parts are gone (the
    service then answers that the token was used), not a FileNotFoundError."""
    await store.write_part(UPLOAD, 1, stream(b"race"), 100)
    exclusive = store._exclusive

    def discarded_first(d: Path, up: object) -> object:
        shutil.rmtree(d)  # what the winner's discard does, just then
        return exclusive(d, up)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_exclusive", discarded_first)
    with pytest.raises(PartsIncomplete, match="gone"):
        await store.assemble(UPLOAD, 4)


async def test_an_upload_discarded_while_a_complete_holds_its_lock_is_refused(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The winner's discard does not take the lock: files may vanish while the late
    complete looks at them, e.g. the record of the assembled blob."""
    await store.write_part(UPLOAD, 1, stream(b"race"), 100)
    await store.assemble(UPLOAD, 4)  # the winner assembled; its asset commits next
    read_text = Path.read_text

    def discarded_meanwhile(path: Path, *args: Any, **kwargs: Any) -> str:
        if path.name == "assembled.json":
            shutil.rmtree(path.parent)  # the winner's discard, just then
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", discarded_meanwhile)
    with pytest.raises(PartsIncomplete, match="gone"):
        await store.assemble(UPLOAD, 4)


async def test_too_large_part_leaves_nothing(store: LocalBlobStore) -> None:
    with pytest.raises(PartTooLarge):
        await store.write_part(UPLOAD, 1, stream(b"x" * 1000, 100), 999)
    with pytest.raises(PartTooLarge):
        await store.write_part(UPLOAD, 2, stream(b"x" * 1000, 100), 999)
    assert await store.received(UPLOAD) == {}
    assert not (store.uploads_dir / UPLOAD).exists()


async def test_crash_leftovers_are_cut_back_to_whole_parts(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.write_part(UPLOAD, 1, stream(b"a" * 10), 100)
    # A crash mid-append: bytes on disk that state.json never recorded.
    with open(store.uploads_dir / UPLOAD / "data", "ab") as fh:
        fh.write(b"garbage")
    restarted = LocalBlobStore(tmp_path / "blobs")
    await restarted.write_part(UPLOAD, 2, stream(b"b" * 5), 100)
    info = await restarted.assemble(UPLOAD, 15)
    assert info.key == hashlib.sha256(b"a" * 10 + b"b" * 5).hexdigest()


async def test_assemble_again_after_a_crash_before_commit_finds_the_blob(
    tmp_path: Path,
) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.write_part(UPLOAD, 1, stream(b"z" * 50), 100)
    info = await store.assemble(UPLOAD, 50)
    assert (
        json.loads((store.uploads_dir / UPLOAD / "assembled.json").read_text())["key"] == info.key
    )
    again = await LocalBlobStore(tmp_path / "blobs").assemble(UPLOAD, 50)
    assert again == info
    with pytest.raises(PartConflict):
        await store.write_part(UPLOAD, 1, stream(b"z" * 50), 100)


def test_keys_and_upload_ids_are_validated(store: LocalBlobStore) -> None:
    with pytest.raises(ValueError):
        store.local_path("../../etc/passwd")
    with pytest.raises(ValueError):
        store._upload_dir("../x")


async def test_local_copy_lends_the_blob_file_itself(store: LocalBlobStore) -> None:
    info = await store.put(stream(b"original bytes"))
    async with store.local_copy(info.key) as path:
        assert path.read_bytes() == b"original bytes"
        assert path == store.local_path(info.key)  # no copy on local disk
    assert await store.size(info.key) == len(b"original bytes")  # still there after
    with pytest.raises(BlobMissing):
        async with store.local_copy("0" * 64):
            pass


async def test_scratch_files_are_adopted_by_rename_and_the_rest_removed(
    store: LocalBlobStore,
) -> None:
    async with store.scratch() as d:
        assert d.is_dir() and not list(d.iterdir())
        (d / "made.png").write_bytes(b"rendition")
        (d / "left.tmp").write_bytes(b"not stored")
        info = await store.put_file(d / "made.png")
        assert not (d / "made.png").exists()
    assert not d.exists()
    assert store.local_path(info.key).read_bytes() == b"rendition"  # type: ignore[union-attr]


async def test_sweep_removes_scratch_left_by_a_dead_process(store: LocalBlobStore) -> None:
    async with store.scratch() as live:
        left = store.tmp_dir / "scratch-dead"
        left.mkdir()
        (left / "r.png").write_bytes(b"x")
        os.utime(left, (1, 1))
        assert [k async for k in store.keys_older_than(3600)] == []
        assert not left.exists()
        assert live.exists()  # younger than the grace period


def no_rehash(store: LocalBlobStore) -> None:
    def refuse(path: Path) -> object:
        raise AssertionError("the complete read the whole file again")

    store._hash_file = refuse  # type: ignore[method-assign]


async def test_a_complete_in_another_process_uses_the_appenders_digests(tmp_path: Path) -> None:
    """Parts through one API process, the complete through another (two stores over one
    directory stand for the two processes)."""
    parts_side, complete_side = LocalBlobStore(tmp_path / "b"), LocalBlobStore(tmp_path / "b")
    data = os.urandom(300_000)
    upload_id = "ab" * 16
    for n, start in enumerate(range(0, len(data), 100_000), 1):
        await parts_side.write_part(upload_id, n, stream(data[start : start + 100_000]), 10**6)
    no_rehash(complete_side)
    info = await complete_side.assemble(upload_id, len(data))
    assert info.key == hashlib.sha256(data).hexdigest()
    assert info.sha1 == hashlib.sha1(data).hexdigest()


async def test_a_part_rewritten_in_place_voids_the_saved_digests(tmp_path: Path) -> None:
    first, second = LocalBlobStore(tmp_path / "b"), LocalBlobStore(tmp_path / "b")
    upload_id = "cd" * 16
    await first.write_part(upload_id, 1, stream(b"a" * 1000), 10**6)
    await first.write_part(upload_id, 2, stream(b"b" * 1000), 10**6)
    # A retry of part 1 with other bytes of the same length, through the other process.
    await second.write_part(upload_id, 1, stream(b"c" * 1000), 10**6)
    info = await second.assemble(upload_id, 2000)
    assert info.key == hashlib.sha256(b"c" * 1000 + b"b" * 1000).hexdigest()


async def test_a_complete_that_died_before_adopting_is_finished_by_its_retry(
    tmp_path: Path,
) -> None:
    data = os.urandom(200_000)
    upload_id = "ef" * 16
    dying = LocalBlobStore(tmp_path / "b")
    await dying.write_part(upload_id, 1, stream(data), 10**6)

    def crash(file: Path, digests: object) -> object:
        raise KeyboardInterrupt  # the process dies between the record and the rename

    dying._adopt = crash  # type: ignore[method-assign,assignment]
    with pytest.raises(KeyboardInterrupt):
        await dying.assemble(upload_id, len(data))
    retry = LocalBlobStore(tmp_path / "b")
    info = await retry.assemble(upload_id, len(data))
    assert info.key == hashlib.sha256(data).hexdigest()
    chunks = [c async for c in retry.read(info.key)]
    assert b"".join(chunks) == data
    again = await LocalBlobStore(tmp_path / "b").assemble(upload_id, len(data))
    assert again == info


async def test_staged_data_that_vanished_is_never_recreated_as_zeros(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    upload_id = "0a" * 16
    await store.write_part(upload_id, 1, stream(b"x" * 5000), 10**6)
    (tmp_path / "b" / ".uploads" / upload_id / "data").unlink()
    with pytest.raises(PartsIncomplete):
        await store.assemble(upload_id, 5000)
