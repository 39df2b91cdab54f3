"""``assetvault cf-model load FILE --conf CONFIG`` and ``assetvault cf-model list``:
Content Fragment models, loaded from JSON files into a data directory's database (the
server may be running or stopped; the model is read on every create)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from assetvault import jsontext
from assetvault.errors import InvalidInput

if TYPE_CHECKING:
    from assetvault.services import Services
    from assetvault.settings import Settings

_T = TypeVar("_T")
MAX_MODEL_FILE_BYTES = 1024 * 1024


class Runner(Protocol):
    def __call__(
        self, coro_fn: Callable[[Services], Awaitable[_T]], settings: Settings, /
    ) -> _T: ...


def read_model_file(path: Path) -> object:
    """A model file's JSON; InvalidInput when it cannot be read or parsed."""
    try:
        with path.open("rb") as fh:
            text = fh.read(MAX_MODEL_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    if len(text) > MAX_MODEL_FILE_BYTES:
        raise InvalidInput(f"{path} is larger than {MAX_MODEL_FILE_BYTES} bytes")
    try:
        return jsontext.loads(text, max_depth=32)
    except jsontext.JSONTextError as exc:
        raise InvalidInput(f"{path} is not JSON: {exc}") from exc


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    data_dir_arg: Callable[[argparse.ArgumentParser], None],
    run: Runner,
    settings_of: Callable[[argparse.Namespace], Settings],
) -> None:
    models = sub.add_parser("cf-model", help="Content Fragment models")
    msub = models.add_subparsers(dest="cf_model_command", required=True)

    def load(args: argparse.Namespace) -> int:
        document = read_model_file(Path(args.file))
        model = run(
            lambda svc: svc.fragments.load_model(args.conf, document, user="cli"),
            settings_of(args),
        )
        print(f"loaded {model.path} ({len(model.fields)} fields, {model.status})")
        return 0

    def list_models(args: argparse.Namespace) -> int:
        for model in run(lambda svc: svc.fragments.models(), settings_of(args)):
            names = ", ".join(f"{f.name}:{f.type}" for f in model.fields)
            print(f"{model.path}\t{model.status}\t{names}")
        return 0

    load_p = msub.add_parser(
        "load", help="load (or replace) a model from a JSON file (docs/classic-api.md)"
    )
    load_p.add_argument("file", help="the model file (JSON)")
    load_p.add_argument(
        "--conf",
        required=True,
        help="the configuration: the model goes to /conf/<conf>/settings/dam/cfm/models/<name>",
    )
    data_dir_arg(load_p)
    load_p.set_defaults(func=load)
    list_p = msub.add_parser("list", help="list the loaded models")
    data_dir_arg(list_p)
    list_p.set_defaults(func=list_models)
