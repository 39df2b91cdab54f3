"""The ``assetvault`` command.

A stable contract that users' scripts and outside checks rely on:

    assetvault serve --host H --port P --data-dir DIR
    assetvault token create --data-dir DIR --name N --scope read|write|admin
        (prints the token alone on the last line of stdout)
    assetvault upload PATH... --folder /content/dam/x | download PATH DEST | search TEXT
        (clients of a running server: --url/--token or ASSETVAULT_URL/ASSETVAULT_TOKEN;
        exit 0 when everything succeeded, 1 when some files failed, 2 when nothing ran)
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import fcntl
import gc
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from assetvault.client.parser import add_client_commands
from assetvault.errors import AssetvaultError
from assetvault.settings import Settings, load_settings

if TYPE_CHECKING:
    # The service container is imported by the commands that use it: serve's own
    # process only migrates and supervises, and starts sooner without it.
    from assetvault.maintenance.service import SweepReport
    from assetvault.services import Services

_T = TypeVar("_T")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(data_dir=getattr(args, "data_dir", None))


def _data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the embedded database and blobs live (default: $ASSETVAULT_DATA_DIR "
        "or ./assetvault-data)",
    )


def _lock_data_dir(settings: Settings) -> IO[str]:
    """One server per data directory: the start-up sweep relies on it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fh = open(settings.data_dir / "serve.lock", "w")  # noqa: SIM115 - held for the process
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"assetvault: another server is using {settings.data_dir}")
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


async def _migrate(settings: Settings, *, admin_token: bool = False) -> str | None:
    """All ``serve`` does before serving: the schema at the newest revision (one read of
    the revision when it is there already). The rest waits until after ready.
    ``admin_token``: also make an admin token (``--ephemeral``) and return it."""
    from assetvault.adapters.database.engine import Database

    db = Database(settings.resolved_database_url)
    try:
        await db.migrate()
        if not admin_token:
            return None
        from assetvault.auth.service import AuthService

        return await AuthService(db).create_token("ephemeral-admin", "admin")
    finally:
        await db.dispose()


def _migrate_beside(settings: Settings) -> Callable[[], None]:
    """Start bringing the schema to the newest revision, beside whatever ``serve`` does
    next; returns what waits for it (and ends ``serve`` if it failed).

    A database already there costs one read with sqlite3 and nothing runs. Otherwise
    the embedded database is migrated in a forked process while this one imports the
    app for its API processes (both cores busy), and Alembic, which only a migration
    needs, stays out of this process and so out of the API processes forked from it.
    PostgreSQL is migrated here, before returning."""
    if settings.database_url:
        asyncio.run(_migrate(settings))
        return lambda: None
    from assetvault.adapters.database.engine import sqlite_schema_current

    if sqlite_schema_current(settings.data_dir / "assetvault.db"):
        return lambda: None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the migration
        gc.enable()  # off in serve until its imports are frozen (main)
        status = 1
        try:
            asyncio.run(_migrate(settings))
            status = 0
        except BaseException:
            logging.getLogger("assetvault").exception("the migration failed")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def wait() -> None:
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("assetvault: the database could not be migrated (see the log above)")

    return wait


def _load_snapshot(settings: Settings, snapshot: str) -> None:
    """``serve --snapshot NAME|FILE``: the snapshot restored before anything serves."""

    async def restore(svc: Services) -> None:
        done = await svc.snapshots.restore(snapshot)
        print(f"restored snapshot {done.name} ({done.assets} asset(s)) in {done.seconds:.2f} s")

    try:
        _run(restore, settings)
    except AssetvaultError as exc:
        sys.exit(f"assetvault: snapshot {snapshot} not loaded: {exc.detail}")


def _tune_malloc() -> None:
    """Keep freed request-body buffers in the heap instead of returning them to the
    kernel: uvicorn grows and copies a buffer per body chunk, and with glibc's defaults
    every large one is a fresh mmap, page-faulted in again (about 140,000 faults per GiB
    uploaded, measured). The thresholds cap what is kept, so memory stays bounded."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    libc.mallopt(m_trim_threshold, 256 * 1024 * 1024)


# uvicorn's httptools protocol with a larger request-body buffer and sendfile for binaries
# (runtime/http.py); named, not imported, so a command that serves nothing loads no uvicorn.
HTTP_PROTOCOL = "assetvault.runtime.http:Protocol"


def default_api_processes() -> int:
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def cmd_serve(args: argparse.Namespace) -> int:
    import time

    from assetvault.runtime import serving

    started = time.time()  # blobs older than this, unreferenced, are a past run's garbage
    if args.ephemeral and args.data_dir is not None:
        sys.exit("assetvault: --ephemeral makes its own data directory; leave out --data-dir")
    # With a ready line, stdout carries that line alone: everything else goes to stderr.
    ready_out = serving.take_stdout() if args.ready_line or args.ephemeral else None
    serving.exit_on_signals()
    data_dir = serving.temporary_data_dir() if args.ephemeral else args.data_dir
    try:
        return _serve(args, started, data_dir, ready_out)
    finally:
        serving.ignore_signals()
        if ready_out is not None and not ready_out.closed:
            ready_out.close()
        if args.ephemeral:
            serving.remove_data_dir(data_dir)


def _serve(
    args: argparse.Namespace, started: float, data_dir: Path | None, ready_out: IO[str] | None
) -> int:
    from assetvault.processing.service import default_workers
    from assetvault.runtime import api, serving
    from assetvault.runtime.supervisor import Roles, answers

    settings = load_settings(data_dir=data_dir, strict=True if args.strict else None)
    if args.ephemeral and (settings.database_url or settings.blobs_url):
        sys.exit(
            "assetvault: --ephemeral keeps everything in a temporary data directory; "
            "unset ASSETVAULT_DATABASE_URL and ASSETVAULT_BLOBS_URL"
        )
    api_only = args.role == "api"
    if api_only:
        _require_shared_engines(settings, args)
    lock = _lock_data_dir(settings)
    # Listening before the start's work: a client that connects meanwhile is answered
    # once an API process can serve it, not refused (serving.bind).
    sock = serving.bind(args.host, args.port)
    port = int(sock.getsockname()[1])
    _tune_malloc()
    migrated = _migrate_beside(settings)
    # The app's imports, once, here, while the schema is brought up to date: the API
    # processes are forks of this process (runtime/api.py).
    api.preload()
    migrated()
    token = None
    if args.ephemeral and not args.snapshot:
        token = asyncio.run(_migrate(settings, admin_token=True))
    if args.snapshot:
        _load_snapshot(settings, args.snapshot)
        if args.ephemeral:  # made after the restore, which brings the snapshot's tokens
            token = asyncio.run(_migrate(settings, admin_token=True))
    count = args.workers if args.workers is not None else settings.workers
    # The API processes only read the embedded index; the background role writes it.
    os.environ["ASSETVAULT_SEARCH_INDEX_HERE"] = "false"
    settings.search_index_here = False
    if args.no_direct_binary_upload:  # the API processes read it from the environment
        os.environ["ASSETVAULT_DIRECT_BINARY_UPLOAD"] = "false"
        settings.direct_binary_upload = False
    _harness(args, settings)
    if args.strict:
        os.environ["ASSETVAULT_STRICT"] = "true"  # the API processes read the environment
    if args.seed is not None:
        _seed_before_serving(settings, args.seed)
    url = serving.client_url(args.host, port)
    # --role api: no worker and no background process here; other machines run them.
    roles = (
        None
        if api_only
        else Roles(
            settings.data_dir,
            jobs=default_workers() if count is None else count,
            nice=settings.roles_nice,
        )
    )
    if ready_out is None:
        print(
            f"Assetvault on {url} (data in {settings.data_dir})\n"
            f"Get a first token with:\n"
            f"  assetvault token create --data-dir {settings.data_dir} --name me --scope admin\n"
            f"then call e.g.: curl -H 'Authorization: Bearer <token>' {url}/content/dam/<path>",
            flush=True,
        )
    else:
        print(f"Assetvault on {url} (data in {settings.data_dir})", file=sys.stderr, flush=True)
    ready = answers(args.host, port)
    ready_line = (
        serving.ReadyLine(ready_out, ready, serving.ready_document(url, token, settings.data_dir))
        if ready_out is not None
        else None
    )
    processes = args.processes or settings.api_processes or default_api_processes()
    # Each API process builds its own services from the environment; nothing they
    # share lives in a process (tokens, cursors, upload tokens are in the data dir).
    os.environ["ASSETVAULT_DATA_DIR"] = str(settings.data_dir)
    forked: api.ApiProcesses | None = None
    if processes > 1:
        config = serving.uvicorn_config(
            "assetvault.app:app_from_environment",
            factory=True,
            log_level=args.log_level,
            access_log=False,
            http=HTTP_PROTOCOL,
        )
        close = [lock.fileno()] + ([ready_out.fileno()] if ready_out is not None else [])
        forked = api.ApiProcesses(
            processes,
            [sock],
            config,
            close_in_children=close,
            hang_seconds=settings.api_hang_seconds,
        )
        forked.start()  # before any thread of this process starts: a fork copies one
    if ready_line is not None:
        ready_line.start()
    if roles is not None:
        roles.start(started, ready=ready)
    try:
        if forked is not None:
            status = forked.watch()
            if status:
                return status
        else:
            from assetvault.app import create_app

            serving.run_uvicorn(
                sock,
                1,
                create_app(settings, migrate=False),
                log_level=args.log_level,
                access_log=False,
                http=HTTP_PROTOCOL,
            )
    finally:
        serving.ignore_signals()
        if ready_line is not None:
            ready_line.stop()
        if roles is not None:
            roles.stop()  # returns once the worker and background processes are gone
        sock.close()
        lock.close()
    return 0


def _require_shared_engines(settings: Settings, args: argparse.Namespace) -> None:
    """``serve --role api`` is one of several machines: everything they share must be on
    shared engines, never in this machine's data directory."""
    missing = []
    if not settings.resolved_database_url.startswith("postgresql"):
        missing.append("ASSETVAULT_DATABASE_URL=postgresql://... (the embedded SQLite file)")
    if not settings.resolved_blobs_url.startswith("s3://"):
        missing.append("ASSETVAULT_BLOBS_URL=s3://... (the local blob directory)")
    if settings.search_backend == "tantivy":
        missing.append("ASSETVAULT_SEARCH_BACKEND=auto or database (the embedded index)")
    if missing:
        sys.exit(
            "assetvault: serve --role api runs the API alone, beside workers and a "
            "background role on other machines, so it needs the shared engines; this "
            "machine would keep its data to itself:\n  "
            + "\n  ".join(missing)
            + "\nOn one machine, run `assetvault serve` (all roles over one data directory)."
        )
    if args.ephemeral or args.seed is not None or args.snapshot or args.workers is not None:
        sys.exit(
            "assetvault: serve --role api takes no --ephemeral, --seed, --snapshot or "
            "--workers (run `assetvault worker` for processing)"
        )


def _seed_before_serving(settings: Settings, source: Path) -> None:
    """``serve --seed DIR``: the tree seeded through the write path before the server
    answers (its processing jobs wait for the worker, which starts after ready)."""
    from assetvault.commands.seed import seed_with_services

    outcome = asyncio.run(seed_with_services(settings, source))
    if outcome.failed:
        sys.exit(f"assetvault: seeding {source} failed for {len(outcome.failed)} item(s)")


def _harness(args: argparse.Namespace, settings: Settings) -> None:
    """Fault injection and the journal, as asked at start (the API processes read the
    environment); each run starts without the last run's rules and entries."""
    from assetvault.harness import faults, files, journal

    for name in (faults.FILE_NAME, journal.FILE_NAME):
        files.remove(settings.data_dir / name)
    if args.faults:
        settings.faults = True
        os.environ["ASSETVAULT_FAULTS"] = "true"
    if args.journal is not None:
        if args.journal < 0:
            sys.exit("assetvault: --journal takes how many requests to keep (0: none)")
        settings.journal_size = args.journal
        os.environ["ASSETVAULT_JOURNAL_SIZE"] = str(args.journal)


def cmd_background(args: argparse.Namespace) -> int:
    """The background role until SIGTERM (started by serve)."""
    from assetvault.runtime.roles import run_background

    settings = _settings(args)
    settings.search_index_here = False  # the role's indexer task is the index's writer
    run_background(
        settings,
        sweep_at_start=not args.no_startup_sweep,
        alone_before=args.alone_before,
    )
    return 0


def _embedded_search(settings: Settings) -> bool:
    backend = settings.search_backend
    return backend == "tantivy" or (
        backend == "auto" and settings.resolved_database_url.startswith("sqlite")
    )


def cmd_search_indexer(args: argparse.Namespace) -> int:
    """The embedded search index's one writer, until SIGTERM (started by serve)."""
    import signal

    settings = _settings(args)
    if not _embedded_search(settings):
        sys.exit("assetvault: the search backend is the database; there is nothing to index")

    async def main() -> None:
        from assetvault.services import build_services

        svc = build_services(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await svc.db.migrate()
            assert svc.embedded_search is not None
            indexer = svc.embedded_search.new_indexer()
            await indexer.run(stop)
        finally:
            await svc.close()

    asyncio.run(main())
    return 0


def cmd_search_reindex(args: argparse.Namespace) -> int:
    """Rebuild the embedded index from the database while the current one serves, then
    swap it in (the running indexer reopens it and goes on from its position)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    settings = _settings(args)
    if not _embedded_search(settings):
        sys.exit("assetvault: the search backend is the database; it needs no rebuild")

    async def reindex(svc: Services) -> None:
        assert svc.embedded_search is not None
        indexer = svc.embedded_search.new_indexer()
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        ) as bar:
            task = bar.add_task("indexing assets", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            position = await indexer.rebuild(progress)
        print(f"search index rebuilt at outbox position {position}")

    _run(reindex, settings)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from assetvault.runtime.roles import run_worker

    settings = _settings(args)
    jobs = args.jobs if args.jobs is not None else 1
    if jobs < 1:
        sys.exit("assetvault: --jobs must be at least 1")
    run_worker(settings, jobs=jobs, burst=args.burst)
    return 0


def cmd_reprocess(args: argparse.Namespace) -> int:
    async def reprocess_all(svc: Services) -> None:
        for path in args.paths:
            await svc.processing.reprocess(path, user="cli")
            print(f"queued {path}")

    _run(reprocess_all, _settings(args))
    return 0


def _run(coro_fn: Callable[[Services], Awaitable[_T]], settings: Settings) -> _T:
    async def main() -> _T:
        from assetvault.services import build_services

        svc = build_services(settings)
        try:
            await svc.db.migrate()
            return await coro_fn(svc)
        finally:
            await svc.close()

    return asyncio.run(main())


def cmd_token_create(args: argparse.Namespace) -> int:
    token = _run(lambda svc: svc.auth.create_token(args.name, args.scope), _settings(args))
    print(f"Created token {args.name!r} with the {args.scope} scope. It is shown once:")
    print(token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    rows = _run(lambda svc: svc.auth.list_tokens(), _settings(args))
    for name, scope, created, revoked in rows:
        print(f"{name}\t{scope}\t{created:%Y-%m-%d %H:%M}\t{'revoked' if revoked else 'active'}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    _run(lambda svc: svc.auth.revoke(args.name), _settings(args))
    print(f"Revoked {args.name!r}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    _run(lambda svc: svc.db.migrate(), _settings(args))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    settings = _settings(args)
    grace = settings.sweep_grace_seconds if args.grace is None else args.grace
    ttl = settings.upload_token_ttl_seconds

    async def sweep(svc: Services) -> tuple[SweepReport, int, int]:
        report = await svc.maintenance.sweep(grace, ttl)
        pruned = await svc.maintenance.prune_outbox(settings.outbox_retention_seconds)
        jobs = await svc.maintenance.forget_finished_jobs(settings.finished_jobs_retention_seconds)
        return report, pruned, jobs

    report, pruned, jobs = _run(sweep, settings)
    print(
        f"removed {report.blobs_removed} blob(s), {report.uploads_removed} upload(s), "
        f"{jobs} finished job(s), {pruned} outbox row(s)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assetvault", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server on the embedded default")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--port", type=int, default=4502, help="default 4502 (AEM author's); 0: a free port"
    )
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--processes",
        type=int,
        default=None,
        help="API processes over the data directory (default: two on two cores or more)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processing jobs run at once, in one worker process (default: one per core; "
        "0: no worker)",
    )
    serve.add_argument(
        "--ephemeral",
        action="store_true",
        help="a temporary data directory, removed at exit, and a fresh admin token; "
        "implies --ready-line",
    )
    serve.add_argument(
        "--ready-line",
        action="store_true",
        help="once /health answers, print one JSON line {url, token, data_dir} on stdout "
        "(everything else goes to stderr)",
    )
    serve.add_argument(
        "--seed", type=Path, default=None, metavar="DIR", help="seed this folder before serving"
    )
    serve.add_argument(
        "--strict",
        action="store_true",
        help="answer 400 to unknown query parameters and API-version markers "
        "(default: lenient, as AEM clients vary)",
    )
    serve.add_argument(
        "--no-direct-binary-upload",
        action="store_true",
        help="answer initiateUpload.json as an AEM 6.5 without direct binary access, so "
        "AEM upload clients use the create-asset servlet (ASSETVAULT_DIRECT_BINARY_UPLOAD)",
    )
    serve.add_argument(
        "--faults",
        action="store_true",
        help="allow fault injection rules (admin API /_assetvault/faults, assetvault faults); "
        "for test runs only",
    )
    serve.add_argument(
        "--journal",
        type=int,
        default=None,
        metavar="N",
        help="keep a journal of the last N requests (admin API /_assetvault/journal, "
        "assetvault journal; default: none)",
    )
    serve.add_argument(
        "--snapshot",
        default=None,
        metavar="NAME|FILE",
        help="restore this snapshot before serving (a name in the data directory, or a file)",
    )
    serve.add_argument(
        "--role",
        choices=["all", "api"],
        default="all",
        help="all: the API with a worker and the background role on this machine (the "
        "embedded default); api: the API alone, for one of several machines on PostgreSQL "
        "and S3 that run `assetvault worker` and `assetvault background` elsewhere "
        "(docs/deploy.md)",
    )
    _data_dir_arg(serve)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a worker: processing jobs")
    worker.add_argument(
        "--burst",
        action="store_true",
        help="run every due job, imports included, and exit instead of waiting",
    )
    worker.add_argument(
        "--jobs", type=int, default=None, help="processing jobs run at once (default: 1)"
    )
    _data_dir_arg(worker)
    worker.set_defaults(func=cmd_worker)

    background = sub.add_parser(
        "background",
        help="run the background role: search indexer, event dispatcher, import runners, "
        "sweeps (serve starts one)",
    )
    background.add_argument(
        "--no-startup-sweep", action="store_true", help="skip the sweep at start"
    )
    background.add_argument("--alone-before", type=float, default=None, help=argparse.SUPPRESS)
    _data_dir_arg(background)
    background.set_defaults(func=cmd_background)

    reprocess = sub.add_parser("reprocess", help="process assets' originals again")
    reprocess.add_argument("paths", nargs="+", metavar="PATH", help="/content/dam/... paths")
    _data_dir_arg(reprocess)
    reprocess.set_defaults(func=cmd_reprocess)

    token = sub.add_parser("token", help="manage API tokens")
    tsub = token.add_subparsers(dest="token_command", required=True)
    create = tsub.add_parser("create", help="create a token and print it")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", choices=["read", "write", "admin"], default="write")
    _data_dir_arg(create)
    create.set_defaults(func=cmd_token_create)
    lst = tsub.add_parser("list", help="list tokens")
    _data_dir_arg(lst)
    lst.set_defaults(func=cmd_token_list)
    revoke = tsub.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("--name", required=True)
    _data_dir_arg(revoke)
    revoke.set_defaults(func=cmd_token_revoke)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    _data_dir_arg(migrate)
    migrate.set_defaults(func=cmd_migrate)

    sweep = sub.add_parser(
        "sweep", help="remove unreferenced blobs, abandoned uploads and consumed outbox rows"
    )
    sweep.add_argument("--grace", type=float, default=None, help="minimum age in seconds")
    _data_dir_arg(sweep)
    sweep.set_defaults(func=cmd_sweep)

    from assetvault.commands.events import add_commands as add_event_commands

    add_event_commands(sub, _data_dir_arg, _run, _settings)
    from assetvault.commands.fragments import add_commands as add_fragment_commands

    add_fragment_commands(sub, _data_dir_arg, _run, _settings)
    from assetvault.commands.imports import add_parser as add_import_url

    add_import_url(sub)
    from assetvault.commands.seed import add_parser as add_seed

    add_seed(sub)
    from assetvault.commands.faults import add_parser as add_faults

    add_faults(sub)
    from assetvault.commands.journal import add_parser as add_journal

    add_journal(sub)
    from assetvault.commands.snapshots import add_parser as add_snapshot_commands

    add_snapshot_commands(sub)
    from assetvault.commands.migrate_storage import add_parser as add_migrate_storage

    add_migrate_storage(sub)
    add_client_commands(sub)
    _add_index_commands(sub)
    return parser


INDEX_COMMANDS = {
    "reindex": cmd_search_reindex,  # rebuild the index while the old one serves, then swap
    "indexer": cmd_search_indexer,  # the index's one writer (serve starts it)
}


def _add_index_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``assetvault search reindex|indexer --data-dir DIR`` share ``search`` with the
    client's ``assetvault search TEXT``: either word alone names the index's command."""
    find = sub.choices["search"]
    _data_dir_arg(find)
    find.epilog = (
        "assetvault search reindex --data-dir DIR rebuilds the embedded index (while the "
        "old one serves); assetvault search indexer --data-dir DIR runs its writer."
    )
    client_search = find.get_default("func")

    def search(args: argparse.Namespace) -> int:
        command = INDEX_COMMANDS.get(args.text)
        return int(command(args) if command else client_search(args))

    find.set_defaults(func=search)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # serve imports the app once and forks its API processes from it: the collector
    # stays off until it has frozen what the imports built (runtime/api.py, preload).
    gc.disable()
    try:
        args = build_parser().parse_args(argv)
    except BaseException:
        gc.enable()
        raise
    if args.func is not cmd_serve:
        gc.enable()
    try:
        return int(args.func(args))
    except AssetvaultError as exc:
        print(f"assetvault: {exc.detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
