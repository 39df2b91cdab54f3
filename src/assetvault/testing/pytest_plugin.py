"""The pytest plugin of Assetvault (docs/ci.md, "The pytest plugin"): installed with the
package, as the ``pytest11`` entry point ``assetvault.testing.pytest_plugin``.

Nothing happens in a test run until a test asks for one of its fixtures: the options
are all ``--assetvault-*`` (ini ``assetvault_*``), and the server starts at the first
test that needs it, once per session (per worker under pytest-xdist).

- ``assetvault_server`` (session): a ``TestServer``, ephemeral by default, seeded from a
  folder or started from a snapshot, or one that runs already (``--assetvault-url``);
  its state when the fixture made it is saved as the session's baseline;
- ``assetvault`` (function): the same server, restored to the baseline before the test,
  with no fault rule and an empty journal;
- ``assetvault_client``: ``assetvault.client``, an ``httpx.Client`` with the token;
- the marker ``assetvault_fresh``: the restore for a test that uses ``assetvault_server``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from assetvault.testing.server import DEFAULT_API_KEY, SETTLE_TIMEOUT_SECONDS, TestServer

MARKER = "assetvault_fresh"


@dataclass(frozen=True)
class Options:
    """How the session's server is made; a conftest may override the
    ``assetvault_options`` fixture to change them (``dataclasses.replace``)."""

    seed: Path | None = None
    snapshot: Path | None = None
    url: str | None = None
    faults: bool = False
    journal: int | None = None
    api_key: str = DEFAULT_API_KEY
    serve_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    settle_timeout: float = SETTLE_TIMEOUT_SECONDS


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("assetvault", "Assetvault test server (assetvault_server fixture)")
    group.addoption(
        "--assetvault-seed",
        metavar="DIR",
        help="seed the ephemeral server from this folder (ini: assetvault_seed)",
    )
    group.addoption(
        "--assetvault-snapshot",
        metavar="FILE",
        help="start the ephemeral server from this snapshot file (ini: assetvault_snapshot)",
    )
    group.addoption(
        "--assetvault-url",
        metavar="URL",
        help="use this running server instead of starting one; its admin token is "
        "ASSETVAULT_TOKEN (ini: assetvault_url)",
    )
    group.addoption(
        "--assetvault-faults",
        action="store_true",
        default=None,
        help="start the server with fault injection (serve --faults; ini: assetvault_faults)",
    )
    group.addoption(
        "--assetvault-journal",
        metavar="N",
        type=int,
        help="start the server with a journal of the last N requests (serve --journal N; "
        "ini: assetvault_journal)",
    )
    group.addoption(
        "--assetvault-serve-arg",
        metavar="ARG",
        action="append",
        default=[],
        help="one more argument of `assetvault serve`, e.g. --assetvault-serve-arg=--strict "
        "(repeatable; ini: assetvault_serve_args)",
    )
    parser.addini("assetvault_seed", "folder the ephemeral server is seeded from", "string")
    parser.addini("assetvault_snapshot", "snapshot file the ephemeral server starts from", "string")
    parser.addini("assetvault_url", "a running server to use instead of starting one", "string")
    parser.addini("assetvault_faults", "start the server with fault injection", "bool", False)
    parser.addini("assetvault_journal", "start the server with a journal of N requests", "string")
    parser.addini("assetvault_serve_args", "more arguments of `assetvault serve`", "args", [])
    parser.addini("assetvault_api_key", "the X-Api-Key the client sends", "string", DEFAULT_API_KEY)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: restore the Assetvault baseline before this test (as the `assetvault` "
        "fixture does)",
    )


def _path(config: pytest.Config, option: str, ini: str) -> Path | None:
    """A command-line path is relative to where pytest was started, an ini path to the
    ini file's directory."""
    given: str | None = config.getoption(option)
    if given:
        return (config.invocation_params.dir / given).resolve()
    from_ini = str(config.getini(ini) or "")
    if from_ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return (base / from_ini).resolve()
    return None


def options_from(config: pytest.Config) -> Options:
    """The options given on the command line, else in the ini file."""
    faults = config.getoption("assetvault_faults")
    journal: int | None = config.getoption("assetvault_journal")
    if journal is None and str(config.getini("assetvault_journal") or ""):
        text = str(config.getini("assetvault_journal"))
        if not text.isdigit():
            raise pytest.UsageError(f"ini assetvault_journal must be a number, not {text!r}")
        journal = int(text)
    return Options(
        seed=_path(config, "assetvault_seed", "assetvault_seed"),
        snapshot=_path(config, "assetvault_snapshot", "assetvault_snapshot"),
        url=config.getoption("assetvault_url")
        or str(config.getini("assetvault_url") or "")
        or None,
        faults=bool(faults if faults is not None else config.getini("assetvault_faults")),
        journal=journal,
        api_key=str(config.getini("assetvault_api_key")),
        serve_args=tuple(
            [*config.getini("assetvault_serve_args"), *config.getoption("assetvault_serve_arg")]
        ),
    )


@pytest.fixture(scope="session")
def assetvault_options(pytestconfig: pytest.Config) -> Options:
    """The options of the session's server (override this fixture to set them in code)."""
    return options_from(pytestconfig)


def _attach(options: Options) -> TestServer:
    assert options.url is not None
    started_here = (options.seed, options.snapshot, options.journal, options.serve_args)
    if options.faults or any(started_here):
        raise pytest.UsageError(
            "--assetvault-url uses a server that runs already: seed, snapshot, faults, "
            "journal and serve arguments are its own (start it with them)"
        )
    token = os.environ.get("ASSETVAULT_TOKEN")
    if not token:
        raise pytest.UsageError("--assetvault-url needs the server's admin token: ASSETVAULT_TOKEN")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        raise pytest.UsageError(
            f"--assetvault-url with {workers} xdist workers: they would restore one server "
            "under each other's tests; run with -n 0, or let each worker start its own"
        )
    return TestServer.attach(options.url, token, api_key=options.api_key)


@pytest.fixture(scope="session")
def assetvault_server(
    assetvault_options: Options, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestServer]:
    """The session's server (one per xdist worker), its state after seeding saved as the
    baseline; not restored between tests (ask for ``assetvault`` for that)."""
    options = assetvault_options
    if options.url:
        server = _attach(options)
    else:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        server = TestServer.start(
            seed=options.seed,
            snapshot=options.snapshot,
            faults=options.faults,
            journal=options.journal,
            serve_args=options.serve_args,
            env=options.env,
            log_path=tmp_path_factory.getbasetemp() / f"assetvault-{worker}.log",
            api_key=options.api_key,
        )
    try:
        server.settle(options.settle_timeout)
        server.save_baseline()
        server.clear_harness()
        yield server
    finally:
        try:
            if options.url and server.baseline is not None:
                server.delete_snapshot(server.baseline)  # leave no trace on a shared server
        finally:
            server.stop()


@pytest.fixture
def assetvault(assetvault_server: TestServer) -> TestServer:
    """The session's server, restored to the baseline before this test: what an earlier
    test changed is gone, as are its fault rules and its journal entries."""
    assetvault_server.restore_baseline()
    return assetvault_server


@pytest.fixture
def assetvault_client(assetvault: TestServer) -> httpx.Client:
    """An ``httpx.Client`` on the restored server: ``base_url`` its URL, the admin token
    as ``Authorization: Bearer`` and an ``X-Api-Key``."""
    return assetvault.client


@pytest.fixture(autouse=True)
def _assetvault_fresh(request: pytest.FixtureRequest) -> None:
    """The ``assetvault_fresh`` marker; nothing at all for a test without it."""
    if request.node.get_closest_marker(MARKER) is not None:
        request.getfixturevalue("assetvault")
