"""``assetvault events ...``: register, list and remove registrations, rotate the
signing keys, and run the dispatcher (``serve`` starts one itself)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from assetvault.events import models
from assetvault.events.service import RegistrationSpec

if TYPE_CHECKING:
    from assetvault.services import Services
    from assetvault.settings import Settings

_T = TypeVar("_T")


class Runner(Protocol):
    """Runs one coroutine on a fresh service container over the settings' data."""

    def __call__(
        self, coro_fn: Callable[[Services], Awaitable[_T]], settings: Settings, /
    ) -> _T: ...


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    data_dir_arg: Callable[[argparse.ArgumentParser], None],
    run: Runner,
    settings_of: Callable[[argparse.Namespace], Settings],
) -> None:
    events = sub.add_parser("events", help="asset events: registrations, keys, dispatcher")
    esub = events.add_subparsers(dest="events_command", required=True)

    def register(args: argparse.Namespace) -> int:
        types = (
            [t.strip() for t in args.types.split(",")] if args.types else list(models.EVENT_TYPES)
        )
        delivery = "journal" if not args.url else ("webhook_batch" if args.batch else "webhook")
        spec = RegistrationSpec(
            name=args.name or (args.url or "journal"),
            delivery_type=delivery,
            event_types=types,
            webhook_url=args.url,
            client_id=args.client_id,
        )
        settings = settings_of(args)
        base = (settings.public_url or "http://localhost:4502").rstrip("/")
        found = run(lambda svc: svc.events.create(spec, user="cli", base_url=base), settings)
        print(
            f"{found.id}\t{found.delivery_type}\t{found.webhook_status}\t"
            f"{'enabled' if found.enabled else 'disabled'}"
        )
        print(
            f"journal: {base}/events/organizations/{settings.ims_org_id}/integrations/"
            f"{found.client_id}/{found.id}"
        )
        return 0 if found.enabled else 1

    reg = esub.add_parser("register", help="register a webhook (or, without --url, a journal)")
    reg.add_argument("--url", default=None, help="the webhook's URL")
    reg.add_argument("--types", default=None, help="comma-separated event types (default: all)")
    reg.add_argument("--client-id", default="assetvault", help="the receiver's client id")
    reg.add_argument("--batch", action="store_true", help="deliver in batches of up to 20")
    reg.add_argument("--name", default=None)
    data_dir_arg(reg)
    reg.set_defaults(func=register)

    def list_(args: argparse.Namespace) -> int:
        for r in run(lambda svc: svc.events.all(), settings_of(args)):
            print(
                f"{r.id}\t{r.delivery_type}\t{r.state}\t{r.webhook_status}\t"
                f"{'enabled' if r.enabled else 'disabled'}\t{r.webhook_url or '-'}\t"
                + ",".join(r.event_types)
            )
        return 0

    lst = esub.add_parser("list", help="list registrations")
    data_dir_arg(lst)
    lst.set_defaults(func=list_)

    def remove(args: argparse.Namespace) -> int:
        run(lambda svc: svc.events.delete(args.id), settings_of(args))
        print(f"removed {args.id}")
        return 0

    rm = esub.add_parser("remove", help="remove a registration")
    rm.add_argument("id")
    data_dir_arg(rm)
    rm.set_defaults(func=remove)

    def rotate(args: argparse.Namespace) -> int:
        path = run(lambda svc: _rotate(svc), settings_of(args))
        print(f"new signing key: {path}")
        return 0

    rot = esub.add_parser("rotate-keys", help="replace the older of the two signing key pairs")
    data_dir_arg(rot)
    rot.set_defaults(func=rotate)

    def dispatch(args: argparse.Namespace) -> int:
        run(lambda svc: _dispatch(svc), settings_of(args))
        return 0

    dis = esub.add_parser("dispatch", help="run the event dispatcher (serve starts one)")
    data_dir_arg(dis)
    dis.set_defaults(func=dispatch)


async def _rotate(svc: Services) -> str:
    return str(svc.signer.rotate())


async def _dispatch(svc: Services) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await svc.dispatcher().run_forever(stop)
