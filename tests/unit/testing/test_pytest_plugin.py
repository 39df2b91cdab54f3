"""The pytest plugin as a user's test run sees it: declared as the package's pytest11
entry point, options from the command line and the ini file, no server for a test that
does not ask for one, and clear usage errors. Each case runs pytest in a process of its
own on a small generated suite (the example suite, tests/plugin_example, runs a server)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]
PLUGIN = "assetvault.testing.pytest_plugin"


def run_pytest(suite: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """pytest on ``suite`` with the plugin loaded by name, as an installed package's entry
    point loads it; its output (it must pass)."""
    proc = run(suite, *args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def run(
    suite: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            PLUGIN,
            "--basetemp",
            str(suite / "tmp"),
            *args,
        ],
        cwd=suite,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "PYTEST_ADDOPTS": "",
            # Only this plugin: the others of the environment would slow every run.
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "ASSETVAULT_TOKEN": "",
            **(env or {}),
        },
    )


def test_the_entry_point_is_the_plugin_module() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # Named as the module: a conftest's pytest_plugins naming the module finds it loaded
    # by the entry point, rather than registering it a second time (an error).
    assert project["entry-points"]["pytest11"] == {PLUGIN: PLUGIN}
    plugin = importlib.import_module(PLUGIN)
    assert callable(plugin.pytest_addoption)
    for fixture in ("assetvault_server", "assetvault", "assetvault_client", "assetvault_options"):
        assert hasattr(plugin, fixture), fixture


def test_options_from_the_command_line_and_the_ini_file(tmp_path: Path) -> None:
    (tmp_path / "dam").mkdir()
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nassetvault_seed = dam\nassetvault_journal = 50\n"
        "assetvault_serve_args = --strict\nassetvault_api_key = k1\n"
    )
    (tmp_path / "test_options.py").write_text(
        f"""
from pathlib import Path


def test_options(assetvault_options):
    o = assetvault_options
    assert o.seed == Path({str(tmp_path / "dam")!r})
    assert (o.journal, o.faults, o.url, o.snapshot) == (9, True, None, None)
    assert o.serve_args == ("--strict", "--processes=1")
    assert o.api_key == "k1"
"""
    )
    out = run_pytest(
        tmp_path,
        "--assetvault-faults",
        "--assetvault-journal",
        "9",
        "--assetvault-serve-arg=--processes=1",
    )
    assert "1 passed" in out


def test_nothing_starts_for_tests_that_do_not_ask(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        """
import pytest


def test_plain(request):
    assert request.config.pluginmanager.has_plugin("assetvault.testing.pytest_plugin")
    assert "assetvault_server" not in request.fixturenames


@pytest.mark.assetvault_fresh
@pytest.mark.skip(reason="a marked test that does not run starts nothing either")
def test_marked():
    pass
"""
    )
    out = run_pytest(tmp_path, "--strict-markers")
    assert "1 passed, 1 skipped" in out
    assert not list((tmp_path / "tmp").glob("assetvault-*.log"))


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--assetvault-url", "http://127.0.0.1:9", "--assetvault-seed", "."],
            {"ASSETVAULT_TOKEN": "t"},
            "seed, snapshot, faults, journal and serve arguments are its own",
        ),
        (["--assetvault-url", "http://127.0.0.1:9"], {}, "ASSETVAULT_TOKEN"),
        (
            ["--assetvault-url", "http://127.0.0.1:9"],
            {"ASSETVAULT_TOKEN": "t", "PYTEST_XDIST_WORKER_COUNT": "2"},
            "run with -n 0",
        ),
    ],
)
def test_a_running_server_is_used_as_it_is(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    (tmp_path / "test_server.py").write_text("def test_it(assetvault_server):\n    pass\n")
    proc = run(tmp_path, *args, env=env)
    assert proc.returncode != 0
    assert message in proc.stdout, proc.stdout


def test_an_ini_journal_that_is_no_number(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nassetvault_journal = many\n")
    (tmp_path / "test_j.py").write_text("def test_it(assetvault_options):\n    pass\n")
    proc = run(tmp_path)
    assert proc.returncode != 0
    assert "assetvault_journal must be a number, not 'many'" in proc.stdout, proc.stdout
