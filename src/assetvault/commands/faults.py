"""``assetvault faults add|list|clear``: the fault injection rules of a running server
started with ``serve --faults`` (docs/ci.md, "Fault injection").

    assetvault faults add --method PUT --path '/binary-upload/*' --count 2 --status 503
    assetvault faults add --method POST --path /adobe/assets/search --delay 2
    assetvault faults list [--json]
    assetvault faults clear [ID]

The server is --url/--token (default $ASSETVAULT_URL, $ASSETVAULT_TOKEN; an admin token).
Exit status: 0 done, 2 refused or unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import httpx

from assetvault.client.http import ClientError, Connection, check

PATH = "/_assetvault/faults"


def call(
    args: argparse.Namespace,
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> Any:
    """One request to the admin API; the JSON answer (None for an empty one)."""

    async def run() -> Any:
        async with Connection.from_options(args.url, args.token).client() as http:
            r = check(await http.request(method, path, json=body, params=params))
            return r.json() if r.content else None

    return asyncio.run(run())


def _rule(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for name in ("path", "regex", "method", "count", "seed", "status", "message", "delay"):
        value = getattr(args, name)
        if value is not None:
            spec[name] = value
    if args.probability is not None:
        spec["probability"] = args.probability
    if args.plain:
        spec["format"] = "plain"
    if args.drop:
        spec["drop"] = True
    headers: dict[str, str] = {}
    for header in args.header or []:
        name, sep, value = header.partition(":")
        if not sep:
            raise ClientError(f"--header {header!r}: give it as Name: value")
        headers[name.strip()] = value.strip()
    if headers:
        spec["headers"] = headers
    return spec


def describe(rule: dict[str, Any]) -> str:
    target = (rule.get("regex") and f"regex {rule['regex']}") or rule.get("path") or "*"
    effects = []
    if rule.get("delay"):
        effects.append(f"+{rule['delay']} s")
    if rule.get("status"):
        effects.append(f"answer {rule['status']}")
    if rule.get("drop"):
        effects.append("cut off")
    count = "every" if rule.get("count") is None else f"next {rule['count']}"
    chance = "" if rule.get("probability", 1.0) >= 1 else f" p={rule['probability']}"
    return (
        f"{rule['id']}\t{rule.get('method') or '*'} {target}\t{count}{chance}"
        f" (seed {rule['seed']})\t{', '.join(effects)}\t"
        f"matched {rule['matched']}, hit {rule['fired']}, left {rule['remaining']}"
    )


def cmd_add(args: argparse.Namespace) -> int:
    rule = call(args, "POST", PATH, _rule(args))
    print(json.dumps(rule) if args.json else describe(rule))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rules = call(args, "GET", PATH)["faults"]
    if args.json:
        print(json.dumps(rules))
    else:
        for rule in rules:
            print(describe(rule))
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    if args.id is not None:
        call(args, "DELETE", f"{PATH}/{args.id}")
        print(f"removed rule {args.id}")
    else:
        removed = call(args, "DELETE", PATH)["removed"]
        print(f"removed {removed} rule(s)")
    return 0


def _safe(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args))
        except ClientError as exc:
            print(f"assetvault faults: {exc}", file=sys.stderr)
            return 2
        except httpx.HTTPError as exc:
            print(f"assetvault faults: {exc}", file=sys.stderr)
            return 2

    return run


def _connection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the server (default: $ASSETVAULT_URL or http://127.0.0.1:4502)")
    p.add_argument("--token", help="an admin token (default: $ASSETVAULT_TOKEN)")
    p.add_argument("--json", action="store_true", help="print JSON")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "faults",
        help="fault injection rules of a running server started with --faults",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    fsub = p.add_subparsers(dest="faults_command", required=True)
    add = fsub.add_parser("add", help="add a rule (it applies from the next request)")
    where = add.add_mutually_exclusive_group()
    where.add_argument("--path", help="a glob over the request path (* crosses /)")
    where.add_argument("--regex", help="a regular expression the whole path must match")
    add.add_argument("--method", help="only this method (default: any)")
    add.add_argument("--count", type=int, help="only the next N matching requests")
    add.add_argument("--probability", type=float, help="hit each one with this chance")
    add.add_argument("--seed", type=int, help="the seed of the chances (default: random)")
    add.add_argument("--status", type=int, help="answer this status (400-599) instead")
    add.add_argument("--message", help="the error message of the status")
    add.add_argument(
        "--plain", action="store_true", help="a text/plain body, not the interface's format"
    )
    add.add_argument("--header", action="append", help="a header of the answer, Name: value")
    add.add_argument("--delay", type=float, help="seconds added before the request is handled")
    add.add_argument("--drop", action="store_true", help="cut the response off mid-body and close")
    _connection(add)
    add.set_defaults(func=_safe(cmd_add))
    lst = fsub.add_parser("list", help="list the rules and their counts")
    _connection(lst)
    lst.set_defaults(func=_safe(cmd_list))
    clear = fsub.add_parser("clear", help="remove every rule, or the one given")
    clear.add_argument("id", nargs="?", type=int, help="the rule to remove (default: all)")
    _connection(clear)
    clear.set_defaults(func=_safe(cmd_clear))
