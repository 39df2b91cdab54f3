"""The two RSA-2048 key pairs that sign event deliveries, kept under the data directory
(``event-keys/``) on the embedded default and in the shared database on PostgreSQL
(``DatabaseKeyRing``, at the end), as Adobe I/O Events signs with two pairs so one can
be rotated while the other still verifies.

``keys.json`` names the pair of each slot and which slot the next rotation replaces;
each pair is ``private-<id>.pem`` (mode 0600) beside ``pub-key-<id>.pem`` (SPKI, LF line
endings), the file receivers fetch. A rotation makes a new pair under a new name, so a
receiver's cache of an old key path never serves a wrong key; the public files of
retired pairs stay, so a receiver still verifying an older delivery can fetch them.
Every process rereads ``keys.json`` when it changes (the CLI rotates while the server
runs).

A delivery's two signatures (~1 ms of CPU each) are made by ``signatures`` on threads,
one per pair: OpenSSL's RSA signing runs with the GIL released (cryptography 47 and
later), so they take the other core while the dispatcher's loop goes on sending,
instead of holding the loop for both in turn.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import string
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncpg
    from cryptography.hazmat.primitives.asymmetric import rsa

# cryptography (some 40 ms of import, a few MiB) is imported where a key is made, read
# or used: an API process imports it only if it serves a public key or signs.

T = TypeVar("T")

KEY_PATH_PREFIX = "/prod/keys/"  # as Adobe's key paths look
PUBLIC_NAME = re.compile(r"^pub-key-[A-Za-z0-9_-]{10}\.pem$")
ALPHABET = string.ascii_letters + string.digits + "_-"
# The signing threads of a process: one per pair of a body (CPU-bound, GIL released).
_SIGNERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="event-sign")


def _new_signers_after_fork() -> None:
    """A forked process inherits the pool's bookkeeping but none of its threads (see
    adapters/blobs/hashing.py): it gets a pool of its own."""
    global _SIGNERS
    _SIGNERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="event-sign")


os.register_at_fork(after_in_child=_new_signers_after_fork)


@dataclass(frozen=True)
class _Pair:
    key_id: str
    private: rsa.RSAPrivateKey

    @property
    def path(self) -> str:
        return f"{KEY_PATH_PREFIX}pub-key-{self.key_id}.pem"


def _signature(pair: _Pair, body: bytes) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signed = pair.private.sign(body, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signed).decode("ascii")


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RsaKeyRing:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._stamp: tuple[int, int] | None = None

    @property
    def _index(self) -> Path:
        return self.directory / "keys.json"

    def _new_pair(self) -> str:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key_id = "".join(secrets.choice(ALPHABET) for _ in range(10))
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(
            self.directory / f"private-{key_id}.pem",
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write(self.directory / f"pub-key-{key_id}.pem", public.replace(b"\r\n", b"\n"))
        return key_id

    def _ensure(self) -> None:
        """Make the two pairs on first use; processes racing here agree on one index."""
        if self._index.exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        import fcntl

        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self._index.exists():
                index = {"slots": [self._new_pair(), self._new_pair()], "next": 0}
                _write(self._index, json.dumps(index).encode())

    def _load(self) -> list[_Pair]:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        with self._lock:
            # One stat a delivery (it runs for every body signed); the pairs are made on
            # first use only.
            try:
                stat = self._index.stat()
            except FileNotFoundError:
                self._ensure()
                stat = self._index.stat()
            stamp = (stat.st_mtime_ns, stat.st_ino)
            if stamp != self._stamp:
                index = json.loads(self._index.read_text())
                pairs = []
                for key_id in index["slots"]:
                    pem = (self.directory / f"private-{key_id}.pem").read_bytes()
                    private = serialization.load_pem_private_key(pem, password=None)
                    assert isinstance(private, rsa.RSAPrivateKey)
                    pairs.append(_Pair(key_id, private))
                self._pairs, self._stamp = pairs, stamp
            return self._pairs

    def sign(self, body: bytes) -> list[tuple[str, str]]:
        return [(_signature(pair, body), pair.path) for pair in self._load()]

    async def signatures(self, body: bytes) -> list[tuple[str, str]]:
        """``sign`` off the event loop: each pair's signature on a thread of its own."""
        loop = asyncio.get_running_loop()
        pairs = self._load()  # a stat of keys.json, the keys read again when it changed
        signed = await asyncio.gather(
            *(loop.run_in_executor(_SIGNERS, _signature, pair, body) for pair in pairs)
        )
        return [(signature, pair.path) for signature, pair in zip(signed, pairs, strict=True)]

    def public_key(self, name: str) -> bytes | None:
        if not PUBLIC_NAME.match(name):
            return None
        self._load()
        path = self.directory / name
        return path.read_bytes() if path.is_file() else None

    def paths(self) -> list[str]:
        return [pair.path for pair in self._load()]

    def rotate(self) -> str:
        import fcntl

        self._load()
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            index = json.loads(self._index.read_text())
            slot = int(index["next"])
            retired = index["slots"][slot]
            key_id = self._new_pair()
            index["slots"][slot] = key_id
            index["next"] = 1 - slot
            _write(self._index, json.dumps(index).encode())
            # The retired private key signs nothing any more.
            (self.directory / f"private-{retired}.pem").unlink(missing_ok=True)
        return f"{KEY_PATH_PREFIX}pub-key-{key_id}.pem"


# -- the ring in the shared database -----------------------------------------------------

INDEX_NAME = "event-keys"  # {"slots": [id, id], "next": 0 or 1}
# How long a process signs with the pairs it read before it reads the index again (a
# rotation on another machine is seen within this time; a public key it does not know
# is looked up at once).
REFRESH_SECONDS = 10.0


def _private_name(key_id: str) -> str:
    return f"event-key-private/{key_id}"


def _public_name(key_id: str) -> str:
    return f"event-key-public/{key_id}"


def shared_entries(directory: Path) -> dict[str, str]:
    """A file ring (``RsaKeyRing``'s directory) as the shared database keeps a ring: the
    index and every pair's private and public PEM under ``DatabaseKeyRing``'s names, so
    an installation moved to PostgreSQL signs with the keys its receivers know
    (``assetvault migrate-storage``). Public keys of retired pairs still on disk go too:
    receivers may still verify earlier deliveries with them. Empty for no ring."""
    index_file = directory / "keys.json"
    if not index_file.is_file():
        return {}
    index = json.loads(index_file.read_text())
    entries = {INDEX_NAME: json.dumps({"slots": index["slots"], "next": index["next"]})}
    for key_id in index["slots"]:
        entries[_private_name(key_id)] = (directory / f"private-{key_id}.pem").read_text()
    for public in sorted(directory.glob("pub-key-*.pem")):
        if PUBLIC_NAME.match(public.name):
            key_id = public.name.removeprefix("pub-key-").removesuffix(".pem")
            entries[_public_name(key_id)] = public.read_text()
    return entries


def _generate() -> tuple[str, str, str]:
    """A new pair: its id, its private PEM (PKCS#8) and its public PEM (SPKI, LF)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key_id = "".join(secrets.choice(ALPHABET) for _ in range(10))
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .replace(b"\r\n", b"\n")
        .decode("ascii")
    )
    return key_id, private_pem, public_pem


class DatabaseKeyRing:
    """The two signing pairs kept in the shared database (``shared_secrets``: the index,
    each pair's private and public PEM), so every machine's dispatcher signs with the
    same keys and every API server serves their public halves. The first process that
    needs them makes them (the index inserted if absent, in the same transaction as its
    pairs); a rotation locks the index row. Retired pairs' public keys stay."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._loaded_at: float | None = None
        self._publics: dict[str, bytes] = {}

    def _run(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        from assetvault.adapters.database.secrets import run_in_transaction

        return run_in_transaction(self.database_url, work)

    async def _read_or_make(self, conn: asyncpg.Connection) -> dict[str, Any]:
        from assetvault.adapters.database import secrets as shared

        text = await shared.read(conn, INDEX_NAME)
        if text is None:
            pairs = [_generate(), _generate()]
            index = {"slots": [pairs[0][0], pairs[1][0]], "next": 0}
            if await shared.insert_if_absent(conn, INDEX_NAME, json.dumps(index)):
                for key_id, private_pem, public_pem in pairs:
                    await shared.insert_if_absent(conn, _private_name(key_id), private_pem)
                    await shared.insert_if_absent(conn, _public_name(key_id), public_pem)
                return index
            text = await shared.read(conn, INDEX_NAME)  # another process's, committed
            assert text is not None
        return dict(json.loads(text))

    async def _read_ring(self, conn: asyncpg.Connection) -> list[tuple[str, str]]:
        from assetvault.adapters.database import secrets as shared

        index = await self._read_or_make(conn)
        ring = []
        for key_id in index["slots"]:
            pem = await shared.read(conn, _private_name(key_id))
            assert pem is not None, f"the private key of signing pair {key_id} is missing"
            ring.append((key_id, pem))
        return ring

    def _load(self, *, force: bool = False) -> list[_Pair]:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        with self._lock:
            fresh = (
                self._loaded_at is not None and time.monotonic() - self._loaded_at < REFRESH_SECONDS
            )
            if force or not fresh:
                pairs = []
                for key_id, pem in self._run(self._read_ring):
                    private = serialization.load_pem_private_key(pem.encode(), password=None)
                    assert isinstance(private, rsa.RSAPrivateKey)
                    pairs.append(_Pair(key_id, private))
                self._pairs, self._loaded_at = pairs, time.monotonic()
            return self._pairs

    def sign(self, body: bytes) -> list[tuple[str, str]]:
        return [(_signature(pair, body), pair.path) for pair in self._load()]

    async def signatures(self, body: bytes) -> list[tuple[str, str]]:
        """``sign`` off the event loop: the ring read (a database round trip every
        REFRESH_SECONDS) and each pair's signature on threads."""
        loop = asyncio.get_running_loop()
        pairs = await loop.run_in_executor(_SIGNERS, self._load)
        signed = await asyncio.gather(
            *(loop.run_in_executor(_SIGNERS, _signature, pair, body) for pair in pairs)
        )
        return [(signature, pair.path) for signature, pair in zip(signed, pairs, strict=True)]

    def public_key(self, name: str) -> bytes | None:
        if not PUBLIC_NAME.match(name):
            return None
        key_id = name.removeprefix("pub-key-").removesuffix(".pem")
        known = self._publics.get(key_id)
        if known is not None:
            return known
        from assetvault.adapters.database import secrets as shared

        async def look_up(conn: asyncpg.Connection) -> str | None:
            await self._read_or_make(conn)  # the first request may come before any delivery
            return await shared.read(conn, _public_name(key_id))

        pem = self._run(look_up)
        if pem is None:
            return None
        self._publics[key_id] = pem.encode("ascii")
        return self._publics[key_id]

    def paths(self) -> list[str]:
        return [pair.path for pair in self._load()]

    def rotate(self) -> str:
        from assetvault.adapters.database import secrets as shared

        new_id, private_pem, public_pem = _generate()

        async def work(conn: asyncpg.Connection) -> None:
            await self._read_or_make(conn)
            text = await conn.fetchval(
                f"SELECT value FROM {shared.TABLE} WHERE name = $1 FOR UPDATE", INDEX_NAME
            )
            index = json.loads(text)
            slot = int(index["next"])
            retired = index["slots"][slot]
            await shared.insert_if_absent(conn, _private_name(new_id), private_pem)
            await shared.insert_if_absent(conn, _public_name(new_id), public_pem)
            index["slots"][slot] = new_id
            index["next"] = 1 - slot
            await conn.execute(
                f"UPDATE {shared.TABLE} SET value = $2 WHERE name = $1",
                INDEX_NAME,
                json.dumps(index),
            )
            # The retired private key signs nothing any more.
            await conn.execute(
                f"DELETE FROM {shared.TABLE} WHERE name = $1", _private_name(retired)
            )

        self._run(work)
        self._load(force=True)
        return f"{KEY_PATH_PREFIX}pub-key-{new_id}.pem"
