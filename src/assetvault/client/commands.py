"""``assetvault upload | download | search``: the client commands, with rich progress.

Exit codes a script can rely on: 0 when everything succeeded; 1 when some files failed
(each named, with a summary, on stderr); 2 when the command could not run at all (bad
options, server unreachable, credentials refused).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from assetvault.client import transfer
from assetvault.client.http import ClientError, Connection, below, dam_path, search_all
from assetvault.client.localfs import shown

err = Console(stderr=True)


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    )


def _summary(verb: str, totals: transfer.Totals) -> int:
    done = totals.count(verb)
    resumed = [o.resumed_bytes for o in totals.outcomes if o.resumed_bytes]
    line = f"{verb} {done}, skipped {totals.count('skipped')}, failed {len(totals.failed)}"
    if resumed:
        line += f" ({len(resumed)} resumed, {sum(resumed)} bytes not sent again)"
    print(line, file=sys.stderr)
    for o in totals.failed:
        print(f"failed: {_line(o.local, o.remote)}: {shown(o.detail)}", file=sys.stderr)
    return 1 if totals.failed else 0


def _line(local: Path, remote: str) -> str:
    """A file and its asset as they may be printed: the server's names may hold anything."""
    return f"{shown(str(local))} -> {shown(remote)}"


def _run(args: argparse.Namespace, main: Callable[[Connection], Coroutine[Any, Any, int]]) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request is noise here
    try:
        connection = Connection.from_options(args.url, args.token)
        return asyncio.run(main(connection))
    except ClientError as exc:
        print(f"assetvault: {exc}", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"assetvault: cannot reach the server: {exc}", file=sys.stderr)
        return 2


def _deadline(args: argparse.Namespace) -> transfer.Deadline:
    if args.min_rate <= 0 and args.file_timeout > 0:
        raise ClientError("--min-rate must be above 0 (or --file-timeout 0: no deadline)")
    return transfer.Deadline(base=args.file_timeout, min_rate=args.min_rate * 1024)


def _journal_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(
        os.environ.get("ASSETVAULT_UPLOAD_JOURNAL") or Path(base) / "assetvault" / "uploads"
    )


def cmd_upload(args: argparse.Namespace) -> int:
    async def main(conn: Connection) -> int:
        folder = dam_path(args.folder)
        plan = transfer.plan_upload([Path(p) for p in args.paths], folder, args.follow_symlinks)
        items = plan.items
        async with conn.client() as client, httpx.AsyncClient(timeout=client.timeout) as parts:
            with _bar() as bar:
                task = bar.add_task("upload", total=sum(i.size for i in items))

                def done(o: transfer.Outcome) -> None:
                    if o.status == "failed" or args.verbose:
                        bar.console.print(
                            f"{o.status}: {_line(o.local, o.remote)} {shown(o.detail)}",
                            markup=False,
                            highlight=False,
                        )

                for refused in plan.refused:  # always named: not what was asked for
                    bar.console.print(
                        f"{refused.status}: {_line(refused.local, refused.remote)} "
                        f"{shown(refused.detail)}",
                        markup=False,
                        highlight=False,
                    )

                totals = await transfer.upload(
                    client,
                    parts,
                    conn.url,
                    items,
                    Path(args.journal) if args.journal else _journal_dir(),
                    args.jobs,
                    args.parts,
                    lambda n: bar.advance(task, n),
                    done,
                    args.on_conflict,
                    _deadline(args),
                )
        totals.outcomes[:0] = plan.refused
        return _summary("uploaded", totals)

    return _run(args, main)


def cmd_download(args: argparse.Namespace) -> int:
    async def main(conn: Connection) -> int:
        source = dam_path(args.source)
        async with conn.client() as client:
            with _bar() as bar:
                task = bar.add_task("download", total=None)

                def done(o: transfer.Outcome) -> None:
                    if o.status == "failed" or args.verbose:
                        bar.console.print(
                            f"{o.status}: {shown(o.remote)} -> {shown(str(o.local))} "
                            f"{shown(o.detail)}",
                            markup=False,
                            highlight=False,
                        )

                totals = await transfer.download(
                    client,
                    source,
                    Path(args.dest),
                    args.jobs,
                    lambda n: bar.advance(task, n),
                    lambda total: bar.update(task, total=total),
                    done,
                    _deadline(args),
                )
        return _summary("downloaded", totals)

    return _run(args, main)


def cmd_search(args: argparse.Namespace) -> int:
    async def main(conn: Connection) -> int:
        query: list[dict[str, Any]] = [{"match": {"text": args.text}}]
        if args.format:
            query.append({"term": {"repositoryMetadata.dc:format": args.format}})
        if args.folder:
            query.append(below(dam_path(args.folder)))
        body: dict[str, Any] = {"query": query, "limit": min(50, args.limit)}
        async with conn.client() as client:
            hits = [h async for h in search_all(client, body, limit=args.limit)]
        if args.json:
            print(json.dumps(hits, indent=2))
            return 0
        table = Table(box=None)
        table.add_column("path", overflow="fold")
        for name in ("format", "size", "state", "title"):
            table.add_column(name, overflow="fold")

        def cell(group: object, name: str) -> Text:
            value = group.get(name, "") if isinstance(group, dict) else ""
            return Text(shown(value if isinstance(value, str) else json.dumps(value)))

        for h in hits:
            repo, meta = h.get("repositoryMetadata"), h.get("assetMetadata")
            table.add_row(
                cell(repo, "repo:path"),
                cell(repo, "dc:format"),
                cell(repo, "repo:size"),
                cell(repo, "aem:assetState"),
                cell(meta, "dc:title"),
            )
        Console().print(table)
        print(f"{len(hits)} asset(s)", file=sys.stderr)
        return 0

    return _run(args, main)
