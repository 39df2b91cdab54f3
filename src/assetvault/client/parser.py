"""The client commands' arguments, registered on the ``assetvault`` parser. The commands
themselves (httpx, rich) are imported only when one of them runs, so ``serve`` and
``token`` start no slower."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from assetvault.client import commands

        return int(getattr(commands, name)(args))

    return run


def _connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the server (default: $ASSETVAULT_URL or http://127.0.0.1:4502)")
    p.add_argument("--token", help="an API token (default: $ASSETVAULT_TOKEN)")


def _deadline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--file-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="each file must be done within this many seconds plus its size at --min-rate "
        "(default 120; 0: no deadline): a server that trickles bytes fails that file",
    )
    p.add_argument(
        "--min-rate",
        type=float,
        default=16.0,
        metavar="KIB_PER_S",
        help="the slowest average speed a file is given time for, in KiB/s (default 16)",
    )


def add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers the client commands on the ``assetvault`` parser's subcommands."""
    up = sub.add_parser("upload", help="upload files and folders (resumable, skips same SHA-1)")
    up.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    up.add_argument("--folder", required=True, help="the target folder, /content/dam/...")
    up.add_argument("--jobs", type=int, default=4, help="files in flight (default 4)")
    up.add_argument("--parts", type=int, default=3, help="parts in flight per file (default 3)")
    up.add_argument("--journal", help="where interrupted uploads are remembered")
    up.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="in a directory, upload what symlinks that lead out of it point to "
        "(default: refused and reported)",
    )
    up.add_argument(
        "--on-conflict",
        choices=("version", "keep-both", "skip", "fail"),
        default="version",
        help="a different file whose name exists: upload it as a new version, keeping the "
        "current original as a version (default); keep both, under a free name (name1.jpg); "
        "skip it; or count it as failed. Never a silent overwrite",
    )
    up.add_argument("-v", "--verbose", action="store_true", help="name every file")
    _deadline_args(up)
    _connection_args(up)
    up.set_defaults(func=_lazy("cmd_upload"))

    down = sub.add_parser("download", help="download an asset or a folder tree (resumable)")
    down.add_argument("source", metavar="PATH", help="/content/dam/... asset or folder")
    down.add_argument("dest", metavar="DEST", help="local directory (or file, for one asset)")
    down.add_argument("--jobs", type=int, default=4, help="files in flight (default 4)")
    down.add_argument("-v", "--verbose", action="store_true", help="name every file")
    _deadline_args(down)
    _connection_args(down)
    down.set_defaults(func=_lazy("cmd_download"))

    find = sub.add_parser("search", help="full-text search of the assets")
    find.add_argument("text", help='words to find ("*" for everything)')
    find.add_argument("--format", action="append", help="only this MIME type (repeatable)")
    find.add_argument("--folder", help="only below this /content/dam folder")
    find.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    find.add_argument("--json", action="store_true", help="print the hits as JSON")
    _connection_args(find)
    find.set_defaults(func=_lazy("cmd_search"))
