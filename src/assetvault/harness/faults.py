"""Fault injection rules: which requests (path glob or regex, method), how many (the next
N, and/or a probability drawn deterministically from a seed) and what happens to them
(an error status in the interface's own format, added latency, a response cut off
mid-body). Kept in one SQLite file every API process reads, so counts are exact across
processes: "the next 2 part PUTs answer 503" means 2 in all, whichever process answers.

Determinism: a rule counts the requests it has matched (across processes, in the order
they reached the shared counter); whether the k-th one is hit depends only on the rule's
seed and k, so a run that sends the same requests is hit the same way.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from assetvault.harness.files import connect

FILE_NAME = "faults.db"
MAX_RULES = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec TEXT NOT NULL,
    remaining INTEGER,
    matched INTEGER NOT NULL DEFAULT 0,
    fired INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
"""

HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")]
HeaderValue = Annotated[str, StringConstraints(pattern=r"^[\x20-\x7e]{0,1024}$")]


class RuleSpec(BaseModel):
    """A rule as added over the admin API (JSON) or the CLI."""

    model_config = ConfigDict(extra="forbid")

    # Which requests: a glob over the decoded path (``*`` crosses ``/``), or a regular
    # expression the whole path must match; a method, or any.
    path: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None
    regex: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None
    method: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{1,16}$")] | None = None
    # How many: the next ``count`` matching requests (spent after), each hit with
    # ``probability`` (drawn from ``seed``; chosen at random and listed when not given).
    count: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    probability: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    seed: Annotated[int, Field(ge=0, lt=2**63)] | None = None
    # What happens: added latency first, then the status (answered instead of the
    # request, in the interface's error format or as plain text), then the drop (the
    # response, real or injected, is cut off after its headers and part of its body).
    status: Annotated[int, Field(ge=400, le=599)] | None = None
    message: Annotated[str, StringConstraints(max_length=1000)] | None = None
    format: Literal["interface", "plain"] = "interface"
    headers: Annotated[dict[HeaderName, HeaderValue], Field(max_length=20)] = Field(
        default_factory=dict
    )
    delay: Annotated[float, Field(ge=0.0, le=600.0)] = 0.0
    drop: bool = False

    @model_validator(mode="after")
    def _sound(self) -> RuleSpec:
        if self.path is not None and self.regex is not None:
            raise ValueError("give path (a glob) or regex, not both")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex: {exc}") from None
        if self.status is None and not self.drop and self.delay == 0:
            raise ValueError("a rule needs an effect: status, delay or drop")
        if self.status is None and (self.message is not None or self.headers):
            raise ValueError("message and headers go with a status")
        if self.method is not None:
            self.method = self.method.upper()
        return self


@dataclass(frozen=True)
class Rule:
    id: int
    spec: RuleSpec
    seed: int
    _regex: re.Pattern[str] | None

    @classmethod
    def of(cls, rule_id: int, spec: RuleSpec) -> Rule:
        assert spec.seed is not None  # the store gives every rule one
        regex = re.compile(spec.regex) if spec.regex is not None else None
        return cls(rule_id, spec, spec.seed, regex)

    def matches(self, method: str, path: str) -> bool:
        if self.spec.method is not None and self.spec.method != method:
            return False
        if self._regex is not None:
            return self._regex.fullmatch(path) is not None
        return self.spec.path is None or fnmatchcase(path, self.spec.path)

    def hits(self, k: int) -> bool:
        """Whether the rule's k-th matching request (1-based) is hit."""
        return self.spec.probability >= 1.0 or draw(self.seed, k) < self.spec.probability


def draw(seed: int, k: int) -> float:
    """A number in [0, 1) that depends only on the seed and k (the same in every process
    and every run, unlike a random generator shared by the requests of one process)."""
    digest = hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class FaultStore:
    """The rules of one server, in ``<data dir>/faults.db``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME
        self._conn = connect(self.path, _SCHEMA)
        self._version: int | None = None
        self._rules: list[Rule] = []

    def close(self) -> None:
        self._conn.close()

    def add(self, spec: RuleSpec) -> dict[str, Any]:
        if spec.seed is None:
            spec = spec.model_copy(update={"seed": secrets.randbelow(2**63)})
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            (count,) = conn.execute("SELECT count(*) FROM rules").fetchone()
            if count >= MAX_RULES:
                raise ValueError(f"at most {MAX_RULES} rules; clear some first")
            cur = conn.execute(
                "INSERT INTO rules (spec, remaining, created) VALUES (?, ?, ?)",
                (spec.model_dump_json(exclude_none=True), spec.count, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._version = None  # our own commits leave data_version alone
        rule_id = cur.lastrowid
        assert rule_id is not None
        found = self.get(rule_id)
        assert found is not None
        return found

    def listing(self) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT id, spec, remaining, matched, fired, created FROM rules ORDER BY id"
        ).fetchall()
        return [_listed(row) for row in rows]

    def get(self, rule_id: int) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT id, spec, remaining, matched, fired, created FROM rules WHERE id = ?",
            (rule_id,),
        ).fetchone()
        return _listed(row) if row else None

    def delete(self, rule_id: int) -> bool:
        self._version = None
        return self._conn.execute("DELETE FROM rules WHERE id = ?", (rule_id,)).rowcount > 0

    def clear(self) -> int:
        self._version = None
        return self._conn.execute("DELETE FROM rules").rowcount

    def rules(self) -> list[Rule]:
        """The rules not spent, parsed again only when some process changed the file
        (SQLite's data_version tells, for the price of one pragma)."""
        (version,) = self._conn.execute("PRAGMA data_version").fetchone()
        if version != self._version:
            rows = self._conn.execute(
                "SELECT id, spec FROM rules WHERE remaining IS NULL OR remaining > 0 ORDER BY id"
            ).fetchall()
            self._rules = [Rule.of(i, RuleSpec.model_validate_json(s)) for i, s in rows]
            self._version = version
        return self._rules

    def fire(self, rule: Rule) -> bool:
        """Counts a matching request against the rule and tells whether it is hit; one
        transaction, so no two processes take the same turn or the last count twice."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "UPDATE rules SET matched = matched + 1 "
                "WHERE id = ? AND (remaining IS NULL OR remaining > 0) RETURNING matched",
                (rule.id,),
            ).fetchone()
            hit = row is not None and rule.hits(int(row[0]))
            if hit:
                conn.execute(
                    "UPDATE rules SET fired = fired + 1, remaining = remaining - 1 WHERE id = ?",
                    (rule.id,),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if hit and rule.spec.count is not None:
            self._version = None
        return hit

    def first_hit(self, method: str, path: str) -> Rule | None:
        """The first rule (in the order added) that matches the request and hits it;
        rules after it are not consulted, and their counts do not move."""
        for rule in self.rules():
            if rule.matches(method, path) and self.fire(rule):
                return rule
        return None


def _listed(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    rule_id, spec, remaining, matched, fired, created = row
    return {
        "id": rule_id,
        **json.loads(spec),
        "remaining": remaining,
        "matched": matched,
        "fired": fired,
        "created": created,
    }
