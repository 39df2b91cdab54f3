"""Fails when a module other than the write path writes the tree's tables or stores the
tree's binaries (run by `make lint`; DESIGN.md: "Nothing else writes tree tables").

It reads every module of the package and reports:
- SQLAlchemy writes of a tree table: insert(T), update(T), delete(T), T.insert(),
  T.update(), T.delete();
- SQL text that writes one: INSERT INTO / UPDATE / DELETE FROM / REPLACE INTO T;
- calls that store or remove blobs: <...>.blobs.put(...), .put_file(...), .delete(...);
- calls that queue jobs on the queue itself: <...>.queue.enqueue(...), .queue.fail(...)
  (a job is queued through the change, ``ch.enqueue`` / ``ch.fail_job``, which wakes the
  workers once it has committed).

Allowed: the write path itself (tree/writes.py); the blob store's own implementation;
the migrations (schema changes and backfills); the sweep, which removes only blobs no
row references (maintenance/service.py); the storage migration (relocation/service.py),
which copies a stopped installation's rows and blobs as they are into new engines (its
outbox rows included: it is not a change to the tree).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "assetvault"
TREE_TABLES = {
    "nodes",
    "asset_versions",
    "renditions",
    "relations",
    "comments",
    "outbox",
    "outbox_floor",
    "fragment_data",
}
WRITE_FUNCTIONS = {"insert", "update", "delete"}
BLOB_WRITES = {"put", "put_file", "delete"}
QUEUE_WRITES = {"enqueue", "fail"}
QUEUE_NAMES = {"queue", "_queue"}
WRITE_PATH = {"tree/writes.py"}
COPIES_WHOLE_INSTALLATIONS = {"relocation/service.py"}
# A reset replaces the whole state with a fresh database's (the seed rows a migration
# inserts, put back after the tables are emptied): no change to send events for.
COPIES_WHOLE_INSTALLATIONS |= {"adapters/database/reset.py"}
BLOB_DELETERS = {"maintenance/service.py"}
EXEMPT_DIRS = ("adapters/database/migrations/", "adapters/blobs/")
SQL_WRITE = re.compile(
    r"\b(INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+\"?("
    + "|".join(sorted(TREE_TABLES))
    + r")\b",
    re.IGNORECASE,
)


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _mentions_blobs(node: ast.AST) -> bool:
    return any(_name(n) == "blobs" for n in ast.walk(node))


def problems_in(relative: str, source: str) -> list[str]:
    if relative in WRITE_PATH | COPIES_WHOLE_INSTALLATIONS or relative.startswith(EXEMPT_DIRS):
        return []
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Call):
            func = node.func
            callee = _name(func)
            if callee in WRITE_FUNCTIONS and isinstance(func, ast.Name) and node.args:
                table = _name(node.args[0])
                if table in TREE_TABLES:
                    found.append(f"{relative}:{line}: {callee}({table}) outside the write path")
            if isinstance(func, ast.Attribute):
                owner = _name(func.value)
                if callee in WRITE_FUNCTIONS and owner in TREE_TABLES:
                    found.append(f"{relative}:{line}: {owner}.{callee}() outside the write path")
                if (
                    callee in BLOB_WRITES
                    and _mentions_blobs(func.value)
                    and not (callee == "delete" and relative in BLOB_DELETERS)
                ):
                    found.append(f"{relative}:{line}: blob {callee}() outside the write path")
                if callee in QUEUE_WRITES and _name(func.value) in QUEUE_NAMES:
                    found.append(
                        f"{relative}:{line}: queue.{callee}() outside the write path "
                        "(queue jobs through the change: it wakes the workers)"
                    )
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL_WRITE.search(node.value)
        ):
            found.append(f"{relative}:{line}: SQL writing a tree table outside the write path")
    return found


def main(argv: list[str]) -> int:
    package = Path(argv[0]) if argv else PACKAGE
    problems = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        problems.extend(problems_in(relative, path.read_text()))
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} write(s) bypass the write path (tree/writes.py)")
        return 1
    print("write path: every write of the tree goes through tree/writes.py")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
