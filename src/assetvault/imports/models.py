"""What the import service hands out: plain, immutable values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FROM_URL = "aem.assets.import.fromurl"
FROM_SOURCE = "aem.assets.import.fromsource"
OPERATIONS = (FROM_SOURCE, FROM_URL)

# Steps of a job: the first two run, the last three are terminal.
QUEUED = "QUEUED"
IMPORTING = "IMPORTING"
COMPLETED = "COMPLETED"
COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
FAILED = "FAILED"
TERMINAL = (COMPLETED, COMPLETED_WITH_ERRORS, FAILED)

# States of a file
PENDING = "pending"
IMPORTED = "imported"
FILE_FAILED = "failed"


@dataclass(frozen=True)
class ImportFile:
    job_id: str
    idx: int
    file_name: str
    url: str | None
    item_id: str | None
    rel_path: str | None
    mime_type: str | None
    file_size: int | None
    metadata: dict[str, Any]
    state: str
    asset_id: str | None
    asset_path: str | None
    size: int | None
    error: dict[str, Any] | None
    warnings: list[str]


@dataclass(frozen=True)
class Counts:
    imported: int = 0
    failed: int = 0
    pending: int = 0
    transferred: int = 0  # bytes of the files imported so far

    @property
    def total(self) -> int:
        return self.imported + self.failed + self.pending


@dataclass(frozen=True)
class ImportJob:
    id: str
    operation: str
    user: str
    folder_id: str
    folder_path: str
    config: dict[str, Any]
    step: str
    total: int
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None
    error: str | None
    counts: Counts = field(default_factory=Counts)
    warnings: tuple[str, ...] = ()
    errors: tuple[dict[str, Any], ...] = ()  # the failed files' problems, first ones

    @property
    def done(self) -> bool:
        return self.step in TERMINAL

    @property
    def state(self) -> str:
        """The interfaces' coarse state: PROCESSING, then COMPLETED or FAILED."""
        if not self.done:
            return "PROCESSING"
        return FAILED if self.step == FAILED else COMPLETED


@dataclass(frozen=True)
class NewFile:
    """One file of a request, checked."""

    file_name: str
    url: str | None = None
    item_id: str | None = None
    rel_path: str | None = None
    mime_type: str | None = None
    file_size: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportSource:
    user: str
    name: str
    title: str
    type: str
    authenticated: bool
    created_at: datetime
