"""The Alembic migrations build exactly the schema the code declares, on both backends,
and can be undone."""

from __future__ import annotations

import subprocess
import sys
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from assetvault.adapters.database import engine
from assetvault.adapters.database.engine import Database, current_revisions, head_revisions
from assetvault.adapters.database.tables import is_declared, metadata
from assetvault.services import Services
from tests.factories import migrate_down_and_up
from tests.pg import drop_named, with_database


def _diff(conn: Connection) -> list[object]:
    # SQLAlchemy cannot reflect SQLite's expression indexes (the title sort indexes, which
    # is_declared leaves out anyway) and says so once per index.
    context = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,
            "include_name": lambda name, type_, _parents: is_declared(name, type_),
        },
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_tables(services: Services) -> None:
    async with services.db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_downgrade_to_base_and_up_again(services: Services) -> None:
    await migrate_down_and_up(services, "base")
    async with services.db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
    assert (await services.tree.get("/content/dam")).kind == "folder"


def _clauses(sql: str | None) -> str | None:
    """A CREATE TABLE's column and constraint clauses in a fixed order: a table that a
    migration rebuilt (Alembic's batch mode on SQLite) lists its constraints in the order
    Alembic collects them, which varies from one run to the next; the clauses do not."""
    if sql is None:
        return None
    return "\n".join(sorted(line.strip().rstrip(",") for line in sql.splitlines()))


def _schema(conn: Connection) -> dict[str, list[tuple[object, ...]]]:
    """Every object of the schema as its database describes it, and the rows each table
    holds (what the migrations seed), for comparing two databases exactly."""
    if conn.dialect.name == "sqlite":
        objects = [
            (kind, name, table, _clauses(sql) if kind == "table" else sql)
            for kind, name, table, sql in conn.exec_driver_sql(
                "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
            )
        ]
    else:
        objects = conn.exec_driver_sql(
            """
            SELECT 'column', table_name || '.' || column_name,
                   data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
              FROM information_schema.columns WHERE table_schema = 'public'
            UNION ALL
            SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
            UNION ALL
            SELECT 'constraint', conrelid::regclass || '.' || conname, pg_get_constraintdef(oid)
              FROM pg_constraint WHERE connamespace = 'public'::regnamespace
            UNION ALL
            SELECT 'trigger', tgname, pg_get_triggerdef(oid)
              FROM pg_trigger WHERE NOT tgisinternal
            UNION ALL
            SELECT 'function', proname, pg_get_functiondef(oid)
              FROM pg_proc WHERE pronamespace = 'public'::regnamespace
            ORDER BY 1, 2, 3
            """
        ).all()
    rows = []
    for (name,) in conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        if conn.dialect.name == "sqlite"
        else "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    ):
        rows.append((name, conn.exec_driver_sql(f'SELECT count(*) FROM "{name}"').scalar()))
    version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return {"objects": [tuple(o) for o in objects], "rows": rows, "version": sorted(version)}


@pytest.fixture
async def empty_database(
    services: Services, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Database]:
    """A database never migrated, on the backend of ``services``."""
    if services.db.is_sqlite:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty' / 'assetvault.db'}")
        yield db
        await db.dispose()
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    name = f"assetvault_empty_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    finally:
        await conn.close()
    db = Database(with_database(admin_url, name).replace("postgresql://", "postgresql+asyncpg://"))
    yield db
    await db.dispose()
    await drop_named(admin_url, name)


async def test_migrating_an_empty_database_reaches_head_and_builds_the_template(
    services: Services, empty_database: Database
) -> None:
    """The tests' services run on copies of a template migrated once: a migration of an
    empty database reaches the newest revision and builds exactly that database."""
    async with empty_database.engine.connect() as conn:
        assert await conn.run_sync(current_revisions) == frozenset()
    await empty_database.migrate()
    async with empty_database.engine.connect() as conn:
        assert await conn.run_sync(current_revisions) == head_revisions() != frozenset()
        fresh = await conn.run_sync(_schema)
    async with services.db.engine.connect() as conn:
        copied = await conn.run_sync(_schema)
    assert fresh["objects"] and ("nodes", 1) in fresh["rows"]
    assert fresh["objects"] == copied["objects"]
    assert fresh == copied


async def test_migrate_leaves_a_database_at_head_alone(
    services: Services, empty_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart, or a data directory copied from another, is not migrated again."""
    upgrades: list[str] = []
    from alembic import command  # imported by migrate itself, when it migrates

    real = command.upgrade

    def counted(cfg: Any, revision: str, **kw: Any) -> None:
        upgrades.append(revision)
        real(cfg, revision, **kw)

    monkeypatch.setattr(command, "upgrade", counted)
    await services.db.migrate()
    assert upgrades == []
    await empty_database.migrate()
    assert upgrades == ["head"]
    await empty_database.migrate()
    assert upgrades == ["head"]
    # One revision behind: migrated again.
    async with services.db.engine.connect() as conn:
        await conn.run_sync(_downgrade, services.db.url, "-1")
        await conn.commit()
        assert await conn.run_sync(current_revisions) != head_revisions()
    await services.db.migrate()
    assert upgrades == ["head", "head"]
    async with services.db.engine.connect() as conn:
        assert await conn.run_sync(current_revisions) == head_revisions()


def _downgrade(conn: Connection, url: str, revision: str) -> None:
    cfg = engine.alembic_config(url)
    cfg.attributes["connection"] = conn
    command.downgrade(cfg, revision)


def test_the_head_read_from_the_files_is_alembics() -> None:
    """serve compares the stored revision with the head read from the migration files
    (no Alembic import on a current database): the same answer as Alembic's."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(engine.alembic_config(""))
    assert head_revisions() == frozenset(script.get_heads()) != frozenset()


async def test_a_migrate_at_head_imports_no_alembic(tmp_path: Path) -> None:
    code = (
        "import asyncio, sys\n"
        "from assetvault.adapters.database.engine import Database\n"
        "async def main():\n"
        "    db = Database(sys.argv[1])\n"
        "    await db.migrate()\n"
        "    await db.dispose()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, url], capture_output=True, text=True, check=True
        )
        for _ in range(2)
    ]
    assert [r.stdout.split()[-1] for r in runs] == ["True", "False"]
    assert engine.sqlite_schema_current(tmp_path / "a.db")
