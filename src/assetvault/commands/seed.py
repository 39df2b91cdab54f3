"""``assetvault seed DIR --data-dir D``: a stopped server's DAM seeded from a local folder
(``serve --seed DIR`` does the same before it answers; docs/ci.md, "Seeding from a
folder"). Directories become folders, files assets, ``<name>.metadata.json`` sidecars
their metadata and relations (``seeding/plan.py``); a second run changes nothing.

Exit codes: 0 when everything was seeded, 1 when some files or sidecars failed (each
named on stderr), 2 when nothing ran (no such folder, a server holds the data dir).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from assetvault.settings import Settings, load_settings

if TYPE_CHECKING:
    # Imported when a seed runs: the parser of every command is built with this module.
    from rich.progress import Progress

    from assetvault.seeding.service import SeedOutcome


def _bar() -> Progress:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    err = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        disable=not err.is_terminal,
    )


async def seed_with_services(
    settings: Settings, source: Path, folder: str = "/content/dam"
) -> SeedOutcome:
    """Seeds ``source`` into ``folder`` of the data directory ``settings`` names, with a
    progress bar on stderr (when it is a terminal) and a summary line after it."""
    from assetvault.client.http import ClientError
    from assetvault.client.localfs import shown
    from assetvault.seeding.plan import plan_seed
    from assetvault.seeding.service import SeedService
    from assetvault.services import build_services

    try:
        plan = plan_seed(source, folder)
    except ClientError as exc:
        sys.exit(f"assetvault: {exc}")
    svc = build_services(settings)
    try:
        await svc.db.migrate()
        service = SeedService(svc.tree, svc.writes, svc.metadata, svc.relations)
        with _bar() as bar:
            task = bar.add_task(f"seeding {shown(str(source))}", total=len(plan.files))

            def step(what: str, path: str) -> None:
                bar.advance(task)

            outcome = await service.seed(plan, step)
    finally:
        await svc.close()
    print(
        f"seeded {source}: {outcome.folders_created} folder(s) and {outcome.assets_created} "
        f"asset(s) created, {outcome.assets_updated} asset(s) given a new version, "
        f"{outcome.metadata_updated} metadata and {outcome.relations_added} relation(s) "
        f"written, {outcome.unchanged} file(s) unchanged, {len(outcome.failed)} failed",
        file=sys.stderr,
    )
    for problem in outcome.problems:
        print(
            f"{problem.status}: {shown(str(problem.local))}: {shown(problem.detail)}",
            file=sys.stderr,
        )
    return outcome


def cmd_seed(args: argparse.Namespace) -> int:
    from assetvault.client.http import ClientError, dam_path

    try:
        folder = dam_path(args.folder)
    except ClientError as exc:
        print(f"assetvault: {exc}", file=sys.stderr)
        return 2
    if not args.source.is_dir():
        print(f"assetvault: {args.source}: not a directory", file=sys.stderr)
        return 2
    settings = load_settings(data_dir=args.data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # A stopped server only: a running one holds this lock (seed it with serve --seed).
    with open(settings.data_dir / "serve.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"assetvault: a server is using {settings.data_dir}; stop it first",
                file=sys.stderr,
            )
            return 2
        outcome = asyncio.run(seed_with_services(settings, args.source, folder))
    return 1 if outcome.failed else 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    seed = sub.add_parser(
        "seed",
        help="seed a stopped server's DAM from a local folder (idempotent)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    seed.add_argument("source", type=Path, metavar="DIR", help="the local folder")
    seed.add_argument(
        "--folder", default="/content/dam", help="where DIR's contents go (default /content/dam)"
    )
    seed.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the stopped server's data directory (default: $ASSETVAULT_DATA_DIR "
        "or ./assetvault-data)",
    )
    seed.set_defaults(func=cmd_seed)
