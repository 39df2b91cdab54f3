"""``assetvault snapshot save|restore|list|delete`` and ``assetvault reset``: on a
stopped server (``--data-dir``) or a running one (``--url``/``--token``, or
ASSETVAULT_URL/ASSETVAULT_TOKEN, through the admin API under /_assetvault/).

A FILE is always where the command runs: with a running server it is sent over HTTP
(``GET``/``PUT /_assetvault/snapshots/{name}/archive``), so the server may be on another
machine or in a container.

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
import contextlib
import fcntl
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import httpx

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
    response = _send(args, method, path, json=body)
    return response.json() if response.content else None


def _send(
    args: argparse.Namespace,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """The admin API's answer; CommandError with the server's reason if it refused."""
    import httpx

    from assetvault.client.http import Connection

    conn = Connection.from_options(args.url, args.token)
    try:
        response = httpx.request(
            method,
            conn.url + path,
            headers={"Authorization": f"Bearer {conn.token}", **(headers or {})},
            timeout=_timeout(),
            **kwargs,
        )
    except httpx.HTTPError as exc:
        raise CommandError(f"{conn.url} cannot be reached: {exc}") from exc
    _check(response)
    return response


def _check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail") or response.text
        except ValueError:
            detail = response.text
        raise CommandError(f"{response.status_code}: {detail}")


def _timeout() -> httpx.Timeout:
    import httpx

    return httpx.Timeout(600.0, connect=10.0)


def _temporary_name() -> str:
    """The name a snapshot file goes by on the server while the CLI sends or fetches it."""
    return f"cli-transfer-{uuid.uuid4().hex[:16]}"


def _drop(args: argparse.Namespace, name: str) -> None:
    with contextlib.suppress(CommandError):
        _remote(args, "DELETE", f"/_assetvault/snapshots/{name}")


def _save_remote_file(args: argparse.Namespace, dest: Path) -> dict[str, Any]:
    """A running server's state into the local file ``dest``: saved on the server under a
    temporary name, sent here as one tar file, then deleted there. The file is written
    beside ``dest`` and renamed once whole, so ``dest`` is never half a snapshot."""
    import httpx

    from assetvault.client.http import Connection

    if not dest.parent.is_dir():
        raise CommandError(f"{dest.parent} is no directory")
    name = _temporary_name()
    outcome: dict[str, Any] = _remote(args, "POST", "/_assetvault/snapshots", {"name": name})
    staged = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
    try:
        conn = Connection.from_options(args.url, args.token)
        try:
            with httpx.stream(
                "GET",
                f"{conn.url}/_assetvault/snapshots/{name}/archive",
                headers={"Authorization": f"Bearer {conn.token}"},
                timeout=_timeout(),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    _check(response)
                with staged.open("wb") as fh:
                    for chunk in response.iter_raw(1024 * 1024):
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            raise CommandError(f"the snapshot file was not received whole: {exc}") from exc
        os.replace(staged, dest)
    finally:
        staged.unlink(missing_ok=True)
        _drop(args, name)
    outcome["name"] = dest.name
    return outcome


def _restore_remote_file(args: argparse.Namespace, source: Path) -> dict[str, Any]:
    """The local snapshot file ``source`` restored on a running server: sent to it under a
    temporary name (refused there if it is no snapshot this server can restore), restored,
    then deleted there."""
    if not source.is_file():
        raise CommandError(f"no snapshot file {source}")
    name = _temporary_name()
    try:
        with source.open("rb") as fh:
            _send(
                args,
                "PUT",
                f"/_assetvault/snapshots/{name}/archive",
                headers={"Content-Type": "application/x-tar"},
                content=fh,
            )
        outcome: dict[str, Any] = _remote(args, "POST", f"/_assetvault/snapshots/{name}/restore")
    finally:
        _drop(args, name)
    outcome["name"] = source.name
    return outcome


def _print(outcome: dict[str, Any], verb: str) -> None:
    print(
        f"{verb} {outcome['name']}: {outcome['assets']} asset(s), {outcome['blobs']} blob(s) "
        f"in {outcome['seconds']:.2f} s" + (" (schema migrated)" if outcome.get("migrated") else "")
    )


def cmd_save(args: argparse.Namespace) -> int:
    target, file = _target(args)
    if _local(args):
        outcome = _run_local(args, lambda svc: svc.snapshots.save(target)).as_json()
    elif file is not None:
        outcome = _save_remote_file(args, Path(file))
    else:
        outcome = _remote(args, "POST", "/_assetvault/snapshots", {"name": target})
    _print(outcome, "saved")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    target, file = _target(args)
    if _local(args):
        outcome = _run_local(args, lambda svc: svc.snapshots.restore(target)).as_json()
    elif file is not None:
        outcome = _restore_remote_file(args, Path(file))
    else:
        from urllib.parse import quote

        outcome = _remote(args, "POST", f"/_assetvault/snapshots/{quote(target, safe='')}/restore")
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
