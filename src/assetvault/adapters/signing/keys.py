"""The two RSA-2048 key pairs that sign event deliveries, kept under the data directory
(``event-keys/``), as Adobe I/O Events signs with two pairs so one can be rotated while
the other still verifies.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_PATH_PREFIX = "/prod/keys/"  # as Adobe's key paths look
PUBLIC_NAME = re.compile(r"^pub-key-[A-Za-z0-9_-]{10}\.pem$")
ALPHABET = string.ascii_letters + string.digits + "_-"
# The signing threads of a process: one per pair of a body (CPU-bound, GIL released).
_SIGNERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="event-sign")


@dataclass(frozen=True)
class _Pair:
    key_id: str
    private: rsa.RSAPrivateKey

    @property
    def path(self) -> str:
        return f"{KEY_PATH_PREFIX}pub-key-{self.key_id}.pem"


def _signature(pair: _Pair, body: bytes) -> str:
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
        with self._lock:
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
