"""``assetvault journal list|clear``: the request journal of a running server started
with ``serve --journal N`` (docs/ci.md, "Request journal").

    assetvault journal list [--method POST] [--path '*.completeUpload.json'] [--status 5xx]
                            [--since 2026-01-31T12:00:00Z] [--after ID] [--limit N] [--json]
    assetvault journal clear

The server is --url/--token (default $ASSETVAULT_URL, $ASSETVAULT_TOKEN; an admin token).
Exit status: 0 done, 2 refused or unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

import httpx

from assetvault.client.http import ClientError
from assetvault.commands.faults import call

PATH = "/_assetvault/journal"


def _line(e: dict[str, Any]) -> str:
    at = datetime.fromtimestamp(e["at"], UTC).strftime("%H:%M:%S.%f")[:-3]
    query = f"?{e['query']}" if e["query"] else ""
    notes = (" fault " + str(e["fault"]) if e["fault"] else "") + (
        " dropped" if e["dropped"] else ""
    )
    return (
        f"{e['id']}\t{at}\t{e['method']} {e['path']}{query}\t{e['status']}\t"
        f"{e['ms']:.1f} ms\tin {e['requestBytes']} out {e['responseBytes']}{notes}"
    )


def cmd_list(args: argparse.Namespace) -> int:
    params = {
        k: str(v)
        for k in ("method", "path", "status", "since", "after", "limit")
        if (v := getattr(args, k)) is not None
    }
    found = call(args, "GET", PATH, params=params)
    if args.json:
        print(json.dumps(found["entries"]))
    else:
        for entry in found["entries"]:
            print(_line(entry))
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    print(f"removed {call(args, 'DELETE', PATH)['removed']} entries")
    return 0


def _safe(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args))
        except (ClientError, httpx.HTTPError) as exc:
            print(f"assetvault journal: {exc}", file=sys.stderr)
            return 2

    return run


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "journal",
        help="the request journal of a running server started with --journal N",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    jsub = p.add_subparsers(dest="journal_command", required=True)
    lst = jsub.add_parser("list", help="the journal's entries, oldest first")
    lst.add_argument("--method", help="only this method")
    lst.add_argument("--path", help="only paths matching this glob (* crosses /)")
    lst.add_argument("--status", help="only this status (503) or class (5xx)")
    lst.add_argument("--since", help="only from this time on (ISO 8601 or Unix seconds)")
    lst.add_argument("--after", type=int, help="only entries after this id")
    lst.add_argument("--limit", type=int, help="at most the newest N (default 1000)")
    clear = jsub.add_parser("clear", help="empty the journal")
    for q in (lst, clear):
        q.add_argument(
            "--url", help="the server (default: $ASSETVAULT_URL or http://127.0.0.1:4502)"
        )
        q.add_argument("--token", help="an admin token (default: $ASSETVAULT_TOKEN)")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=_safe(cmd_list))
    clear.set_defaults(func=_safe(cmd_clear))
