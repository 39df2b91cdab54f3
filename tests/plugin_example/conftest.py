"""The example suite's server: seeded from ./seed, with fault injection and a journal,
and 1 MiB upload parts so a small file goes up in several part PUTs. The plugin itself
is loaded by the top-level conftest (tests/conftest.py) or by its entry point."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from assetvault.testing.pytest_plugin import Options

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def assetvault_options(assetvault_options: Options) -> Options:
    return dataclasses.replace(
        assetvault_options,
        seed=HERE / "seed",
        faults=True,
        journal=1000,
        env={"ASSETVAULT_UPLOAD_PREFERRED_PART_SIZE": str(2**20)},
    )
