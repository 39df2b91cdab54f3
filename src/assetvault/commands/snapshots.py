"""``assetvault snapshot save|restore|list|delete`` and ``assetvault reset``: on a
stopped server (``--data-dir``) or a running one (``--url``/``--token``, or
ASSETVAULT_URL/ASSETVAULT_TOKEN, through the admin API under /_assetvault/).

    assetvault snapshot save NAME|FILE      (FILE: a path, or a name ending in .tar/.avsnap)
    assetvault snapshot restore NAME|FILE
    assetvault snapshot list
    assetvault snapshot delete NAME
    assetvault reset [--yes] [--drop-tokens] [--keep-registrations]

Exit codes: 0 done, 2 refused or failed (the reason on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from assetvault.services import Services

_T = TypeVar("_T")


class CommandError(Exception):
    pass


def _target(args: argparse.Namespace) -> tuple[str, str | None]:
    """The snapshot as the server should see it: a name, or an absolute file path."""
    from assetvault.snapshots.service import is_file_target

    value: str = args.snapshot
    if is_file_target(value):
        path = str(Path(value).expanduser().resolve())
        return path, path
    return value, None


def _local(args: argparse.Namespace) -> bool:
    if args.data_dir is not None:
        if args.url is not None:
            raise CommandError("give --data-dir (a stopped server) or --url (a running one)")
        return True
    if args.url or os.environ.get("ASSETVAULT_URL"):
        return False
    raise CommandError(
        "which server? --data-dir DIR for a stopped one, --url/--token (or "
        "ASSETVAULT_URL/ASSETVAULT_TOKEN) for a running one"
    )


def _run_local(args: argparse.Namespace, fn: Callable[[Services], Awaitable[_T]]) -> _T:
    from assetvault.settings import load_settings

    settings = load_settings(data_dir=args.data_dir)
    lock_path = settings.data_dir / "serve.lock"
    if lock_path.exists():
        with open(lock_path) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CommandError(
                    f"a server is running on {settings.data_dir}: reach it with --url/--token"
                ) from None

    async def main() -> _T:
        from assetvault.services import build_services

        svc = build_services(settings)
        try:
            await svc.db.migrate()
            return await fn(svc)
        finally:
            await svc.close()

    return asyncio.run(main())


def _remote(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    import httpx

    from assetvault.client.http import Connection

    conn = Connection.from_options(args.url, args.token)
    try:
        response = httpx.request(
            method,
            conn.url + path,
            json=body,
            headers={"Authorization": f"Bearer {conn.token}"},
            timeout=httpx.Timeout(600.0, connect=10.0),
        )
    except httpx.HTTPError as exc:
        raise CommandError(f"{conn.url} cannot be reached: {exc}") from exc
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail") or response.text
        except ValueError:
            detail = response.text
        raise CommandError(f"{response.status_code}: {detail}")
    return response.json() if response.content else None


def _print(outcome: dict[str, Any], verb: str) -> None:
    print(
        f"{verb} {outcome['name']}: {outcome['assets']} asset(s), {outcome['blobs']} blob(s) "
        f"in {outcome['seconds']:.2f} s" + (" (schema migrated)" if outcome.get("migrated") else "")
    )


def cmd_save(args: argparse.Namespace) -> int:
    target, _ = _target(args)
    if _local(args):
        outcome = _run_local(args, lambda svc: svc.snapshots.save(target)).as_json()
    else:
        outcome = _remote(args, "POST", "/_assetvault/snapshots", {"name": target})
    _print(outcome, "saved")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    target, file = _target(args)
    if _local(args):
        outcome = _run_local(args, lambda svc: svc.snapshots.restore(target)).as_json()
    else:
        from urllib.parse import quote

        name = Path(file).name if file else target
        outcome = _remote(
            args,
            "POST",
            f"/_assetvault/snapshots/{quote(name, safe='')}/restore",
            {"file": file} if file else None,
        )
    _print(outcome, "restored")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    if _local(args):

        async def listed(svc: Services) -> list[dict[str, Any]]:
            return [info.as_json() for info in svc.snapshots.list()]

        found = _run_local(args, listed)
    else:
        found = _remote(args, "GET", "/_assetvault/snapshots")["snapshots"]
    if args.json:
        print(json.dumps(found, indent=2))
    for s in [] if args.json else found:
        print(f"{s['name']}\t{s['createdAt']}\t{s['assets']} asset(s)\t{s['bytes']} bytes")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from urllib.parse import quote

    name: str = args.snapshot
    if _local(args):

        async def deleted(svc: Services) -> None:
            svc.snapshots.delete(name)

        _run_local(args, deleted)
    else:
        _remote(args, "DELETE", f"/_assetvault/snapshots/{quote(name, safe='')}")
    print(f"deleted {name}")
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    local = _local(args)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError("not asked on a terminal: pass --yes to reset")
        where = args.data_dir or args.url or os.environ.get("ASSETVAULT_URL")
        answer = input(f"Remove every asset, folder, job and event of {where}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing changed")
            return 1
    keep_tokens = not args.drop_tokens
    if local:

        async def reset(svc: Services) -> dict[str, Any]:
            done = await svc.snapshots.reset(
                keep_tokens=keep_tokens, keep_registrations=args.keep_registrations
            )
            return done.as_json()

        outcome = _run_local(args, reset)
    else:
        outcome = _remote(
            args,
            "POST",
            "/_assetvault/reset",
            {"keepTokens": keep_tokens, "keepRegistrations": args.keep_registrations},
        )
    print(f"reset in {outcome['seconds']:.2f} s")
    return 0


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from assetvault.client.http import ClientError
        from assetvault.errors import AssetvaultError

        try:
            return fn(args)
        except (CommandError, ClientError) as exc:
            print(f"assetvault: {exc}", file=sys.stderr)
        except AssetvaultError as exc:
            print(f"assetvault: {exc.detail}", file=sys.stderr)
        return 2

    return run


def _where(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=None, help="a stopped server's data")
    p.add_argument("--url", default=None, help="a running server (default: $ASSETVAULT_URL)")
    p.add_argument("--token", default=None, help="an admin token (default: $ASSETVAULT_TOKEN)")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    snap = sub.add_parser(
        "snapshot",
        help="save, restore, list and delete snapshots of the whole state",
        description="A NAME is kept in the data directory (snapshots/NAME); a FILE (a path, "
        "or a name ending in .tar or .avsnap) is one portable tar file.",
    )
    ssub = snap.add_subparsers(dest="snapshot_command", required=True)
    for verb, fn, text in (
        ("save", cmd_save, "save the state as NAME or into FILE"),
        ("restore", cmd_restore, "bring the state back to NAME or FILE"),
        ("delete", cmd_delete, "delete the snapshot NAME"),
    ):
        p = ssub.add_parser(verb, help=text)
        p.add_argument("snapshot", metavar="NAME|FILE" if verb != "delete" else "NAME")
        _where(p)
        p.set_defaults(func=_guarded(fn))
    lst = ssub.add_parser("list", help="list the snapshots kept in the data directory")
    lst.add_argument("--json", action="store_true", help="print them as JSON")
    _where(lst)
    lst.set_defaults(func=_guarded(cmd_list))

    reset = sub.add_parser(
        "reset",
        help="back to an empty DAM (asks first on a terminal unless --yes)",
        description="Removes every folder, asset, job, outbox row and journal entry; the "
        "root folder stays as on a fresh start. Tokens are kept unless --drop-tokens; event "
        "registrations are dropped unless --keep-registrations.",
    )
    reset.add_argument("--yes", action="store_true", help="do not ask")
    reset.add_argument("--drop-tokens", action="store_true", help="remove the API tokens too")
    reset.add_argument(
        "--keep-registrations", action="store_true", help="keep the event registrations"
    )
    _where(reset)
    reset.set_defaults(func=_guarded(cmd_reset))
