"""``assetvault migrate-storage``: move a stopped installation to PostgreSQL and an object
store (relocation/service.py; docs/deploy.md, "Moving an embedded installation").

    assetvault migrate-storage --data-dir DIR --to-database postgresql://... \\
        --to-blobs s3://bucket/prefix?endpoint=...   [--verify-only] [--verify-content]

Resumable: run it again after an interruption and it converges on the source.
Exit codes: 0 copied and verified, 1 copied with differences (listed), 2 refused.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from assetvault.errors import AssetvaultError

if TYPE_CHECKING:
    from assetvault.settings import Settings


def _database_url(url: str) -> str:
    """The async driver's form of a PostgreSQL URL as users write it."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    if url.startswith("postgresql+asyncpg://"):
        return url
    raise AssetvaultError(
        f"--to-database must be a PostgreSQL URL (postgresql://user@host/db), not {url!r}"
    )


def _hold_stopped(data_dir: Path) -> IO[str]:
    """The source's serve lock, held for the whole move: no server may run on it or start
    meanwhile (its rows and blobs are copied as they are)."""
    if not (data_dir / "assetvault.db").exists():
        raise AssetvaultError(f"{data_dir} holds no embedded installation (no assetvault.db)")
    fh = open(data_dir / "serve.lock", "a")  # noqa: SIM115 - held until the move ends
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise AssetvaultError(f"a server is running on {data_dir}: stop it first") from None
    return fh


def file_secrets(settings: Settings) -> dict[str, str]:
    """What the embedded default keeps as files and a PostgreSQL installation in its
    database: the upload-token secret (unless the installation takes it from its
    settings, as the new machines then will) and the event signing pairs."""
    from assetvault.adapters.signing.keys import shared_entries

    found = shared_entries(settings.data_dir / "event-keys")
    secret = settings.data_dir / "secret.key"
    if not settings.installation_secret and secret.is_file():
        found["upload-token-secret"] = secret.read_text().strip()
    return found


def cmd_migrate_storage(args: argparse.Namespace) -> int:
    from assetvault.settings import load_settings

    try:
        settings = load_settings(data_dir=args.data_dir)
        target_url = _database_url(args.to_database)
        lock = _hold_stopped(settings.data_dir)
    except AssetvaultError as exc:
        print(f"assetvault: {exc.detail}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_move(settings, target_url, args))
    except AssetvaultError as exc:
        print(f"assetvault: {exc.detail}", file=sys.stderr)
        return 2
    finally:
        lock.close()


async def _move(settings: Settings, target_url: str, args: argparse.Namespace) -> int:
    from assetvault.adapters.database.engine import Database
    from assetvault.relocation.service import Relocation
    from assetvault.services import blob_store_from_url

    source_url = settings.resolved_database_url
    if not settings.resolved_blobs_url.startswith("file://"):
        raise AssetvaultError(
            "the installation's blobs are not in its blob directory: migrate-storage moves "
            "an embedded installation (SQLite and local blobs)"
        )
    source = Database(source_url)
    target = Database(target_url)
    source_blobs = blob_store_from_url(settings.resolved_blobs_url, settings.data_dir / "blob-temp")
    target_blobs = blob_store_from_url(args.to_blobs, settings.data_dir / "blob-temp")
    try:
        await source.migrate()
        move = Relocation(
            secrets=file_secrets(settings),
            source=source,
            source_blobs=source_blobs,
            target=target,
            target_blobs=target_blobs,
            progress=lambda line: print(line, flush=True),
        )
        if args.verify_only:
            await target.migrate()
            report = await move.verify(verify_content=args.verify_content)
        else:
            report = await move.run(verify_content=args.verify_content)
    finally:
        for db in (source, target):
            await db.dispose()
        for store in (source_blobs, target_blobs):
            close = getattr(store, "close", None)
            if close is not None and asyncio.iscoroutine(done := close()):
                await done
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    for table in report.tables:
        if not table.same:
            print(
                f"differs: {table.name}: {table.source_rows} row(s) in the source, "
                f"{table.target_rows} in the target; {table.difference}",
                file=sys.stderr,
            )
    for problem in report.blobs.problems:
        print(f"differs: {problem}", file=sys.stderr)
    rows = sum(t.source_rows for t in report.tables)
    verdict = "verified" if report.verified else "NOT verified"
    print(
        f"{verdict}: {len(report.tables)} tables, {rows} row(s), {report.blobs.named} blob(s) "
        f"compared in {report.seconds:.1f} s"
    )
    return 0 if report.verified else 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "migrate-storage",
        help="move a stopped installation to PostgreSQL and an object store",
        description="Copies every row of the installation's database and every blob its rows "
        "name into the target database and blob store, then compares both sides. Run it "
        "again after an interruption: it goes on where it stopped. The installation must "
        "be stopped, and the target database empty or holding an earlier run's copy.",
    )
    p.add_argument("--data-dir", type=Path, default=None, help="the installation to move")
    p.add_argument("--to-database", required=True, metavar="URL", help="postgresql://...")
    p.add_argument(
        "--to-blobs", required=True, metavar="URL", help="s3://bucket[/prefix]?endpoint=... "
    )
    p.add_argument("--verify-only", action="store_true", help="compare the two sides, copy nothing")
    p.add_argument(
        "--verify-content",
        action="store_true",
        help="also read every blob back from the target and check its SHA-256",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON too")
    p.set_defaults(func=cmd_migrate_storage)
