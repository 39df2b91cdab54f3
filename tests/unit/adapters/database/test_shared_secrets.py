"""Secrets every machine of an installation on PostgreSQL shares (issue 21): the upload
token secret and the event signing keys come from the database, made once by whichever
process asks first, never from a file only one machine has."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.secrets import plain_dsn, shared_secret
from assetvault.adapters.signing import keys
from assetvault.adapters.signing.keys import DatabaseKeyRing
from assetvault.events.dispatcher import Dispatcher
from assetvault.runtime.wake import SocketWakeups
from assetvault.services import build_services
from assetvault.uploads.tokens import UploadTicket
from tests.factories import make_settings
from tests.pg import create_test_database, drop_database


@pytest.fixture
async def pg_url(postgres_admin_url: str) -> AsyncIterator[str]:
    url = await create_test_database(postgres_admin_url)
    yield url
    await drop_database(postgres_admin_url, url)


async def rows(url: str, like: str) -> list[str]:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        found = await conn.fetch("SELECT name FROM shared_secrets WHERE name LIKE $1", like)
        return sorted(r["name"] for r in found)
    finally:
        await conn.close()


async def test_processes_racing_on_a_fresh_database_agree_on_one_secret(pg_url: str) -> None:
    made: list[str] = []

    def make() -> str:
        value = f"secret-{len(made)}"
        made.append(value)
        return value

    with ThreadPoolExecutor(8) as pool:
        got = await asyncio.gather(
            *(asyncio.wrap_future(pool.submit(shared_secret, pg_url, "s", make)) for _ in range(8))
        )
    assert len(set(got)) == 1 and got[0] in made
    assert await rows(pg_url, "s") == ["s"]


async def test_machines_with_separate_data_directories_sign_upload_tokens_alike(
    pg_url: str, tmp_path: Path
) -> None:
    one = make_settings(tmp_path / "one", database_url=pg_url)
    two = make_settings(tmp_path / "two", database_url=pg_url)
    assert one.secret_key == two.secret_key
    assert not (tmp_path / "one" / "secret.key").exists()
    assert not (tmp_path / "two" / "secret.key").exists()
    # The setting overrides the database's.
    mine = make_settings(tmp_path / "three", database_url=pg_url, installation_secret="x" * 40)
    assert mine.secret_key == b"x" * 40
    # Through the services: a token minted by one machine is read by the other.
    a = build_services(one)
    b = build_services(two)
    try:
        ticket = a.uploads.tokens.upload_token(
            UploadTicket("u1", "/content/dam", "f.jpg", 3, "image/jpeg", 1, 10, "someone")
        )
        assert b.uploads.tokens.read_upload_token(ticket).upload_id == "u1"
        assert a.sources.fernet.decrypt(b.sources.fernet.encrypt(b"t")) == b"t"
    finally:
        await a.close()
        await b.close()


def verifies(ring: DatabaseKeyRing, body: bytes, signature: str, path: str) -> bool:
    pem = ring.public_key(path.rsplit("/", 1)[-1])
    assert pem is not None
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    try:
        key.verify(base64.b64decode(signature), body, padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


async def test_signing_keys_live_in_the_database_shared_by_every_machine(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    machines = [DatabaseKeyRing(pg_url) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:  # first use on four machines at once
        seen = await asyncio.gather(
            *(asyncio.wrap_future(pool.submit(ring.paths)) for ring in machines)
        )
    assert all(paths == seen[0] for paths in seen) and len(set(seen[0])) == 2
    assert len(await rows(pg_url, "event-key-private/%")) == 2  # the losers left nothing
    one, other = machines[0], machines[1]
    signed = await asyncio.to_thread(one.sign, b'{"a":1}')
    assert all(
        [await asyncio.to_thread(verifies, other, b'{"a":1}', sig, path) for sig, path in signed]
    )
    assert not await asyncio.to_thread(verifies, other, b'{"a":2}', *signed[0])

    new = await asyncio.to_thread(one.rotate)
    monkeypatch.setattr(keys, "REFRESH_SECONDS", 0.0)  # the other machine's next look
    second = await asyncio.to_thread(other.paths)
    assert new in second and len(set(seen[0]) & set(second)) == 1
    # The retired public key is still served, on a machine that never saw it; its
    # private key is gone.
    retired = (set(seen[0]) - set(second)).pop().rsplit("/", 1)[-1]
    assert await asyncio.to_thread(DatabaseKeyRing(pg_url).public_key, retired) is not None
    assert len(await rows(pg_url, "event-key-private/%")) == 2
    assert await asyncio.to_thread(other.public_key, "pub-key-x.pem") is None


async def test_one_dispatcher_takes_the_lease_when_many_try_at_once(
    pg_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, database_url=pg_url)
    dbs = [Database(pg_url) for _ in range(8)]
    dispatchers = [
        Dispatcher(settings, db, None, None, None, SocketWakeups(tmp_path / "w"))  # type: ignore[arg-type]
        for db in dbs
    ]
    try:
        for _ in range(5):  # rounds: each ends with the lease released
            got = await asyncio.gather(*(d.acquire_lease() for d in dispatchers))
            assert sum(got) == 1, got
            winner = dispatchers[got.index(True)]
            assert await winner.acquire_lease()  # renewing its own
            await winner.release_lease()
    finally:
        for db in dbs:
            await db.dispose()
