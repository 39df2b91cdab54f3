"""What ``assetvault seed DIR`` will make of a local folder, read and checked before
anything is written.

Directories become folders and files assets, walked by the rules of the CLI upload
(``client/transfer.py``): a directory's name has the characters AEM refuses in folder
names replaced with "-" (its own name becomes the folder's title), only regular files
are taken, and a symlink is followed only when it leads to a place inside DIR.

A file ``<name>.metadata.json`` beside ``<name>`` is that file's sidecar, never an asset
of its own::

    {
      "assetMetadata": {"dc:title": "Sunset", "dc:subject": ["beach"]},
      "relations": [{"relationType": "derived", "path": "../raw/sunset.tif"}]
    }

``assetMetadata`` is checked by the one metadata validation (``metadata/limits.py``);
a relation's ``path`` is relative to the sidecar's directory (it must stay inside DIR
and name a file being seeded) or an absolute ``/content/dam/...`` path of an asset.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assetvault.client.http import ClientError
from assetvault.client.localfs import open_regular, shown
from assetvault.client.transfer import Planned, UploadPlan, plan_contents
from assetvault.errors import InvalidInput
from assetvault.metadata import limits
from assetvault.relations.service import check_type
from assetvault.tree.paths import ROOT

SIDECAR = ".metadata.json"
MAX_SIDECAR_BYTES = 2 * limits.MAX_METADATA_BYTES  # room for relations and white space
SIDECAR_KEYS = frozenset({"assetMetadata", "relations"})


@dataclass(frozen=True)
class SeedRelation:
    relation_type: str
    target: str  # the related asset's /content/dam path


@dataclass(frozen=True)
class SeedFile:
    local: Path
    opened: Path  # what is read (a symlink's target inside DIR)
    remote: str  # the asset's /content/dam path
    size: int
    metadata: dict[str, Any] = field(default_factory=dict)
    relations: tuple[SeedRelation, ...] = ()

    @property
    def folder(self) -> str:
        return self.remote.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.remote.rsplit("/", 1)[1]


@dataclass(frozen=True)
class Problem:
    """A file or sidecar left out, and why."""

    local: Path
    status: str  # "failed" or "skipped"
    detail: str


@dataclass
class SeedPlan:
    source: Path
    folder: str
    folders: list[tuple[str, str]] = field(default_factory=list)  # (path, title)
    files: list[SeedFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def is_sidecar(name: str) -> bool:
    return name.endswith(SIDECAR) and len(name) > len(SIDECAR)


def read_sidecar(path: Path) -> dict[str, Any]:
    """A sidecar's JSON object, checked; InvalidInput naming the fault otherwise."""
    try:
        opened = open_regular(path)
    except (ClientError, OSError) as exc:
        raise InvalidInput(f"cannot read it: {exc}") from None
    with opened.fh as fh:
        raw = fh.read(MAX_SIDECAR_BYTES + 1)
    if len(raw) > MAX_SIDECAR_BYTES:
        raise InvalidInput(f"it is larger than {MAX_SIDECAR_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"it is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInput("it must hold a JSON object")
    unknown = sorted(set(doc) - SIDECAR_KEYS)
    if unknown:
        raise InvalidInput(
            f"unknown keys {', '.join(unknown)}; a sidecar holds assetMetadata and relations"
        )
    metadata = doc.get("assetMetadata", {})
    if not isinstance(metadata, dict):
        raise InvalidInput("assetMetadata must be an object")
    if any(v is None for v in metadata.values()):
        raise InvalidInput("assetMetadata values cannot be null")
    limits.check_new(metadata, "assetMetadata: ")
    relations = doc.get("relations", [])
    if not isinstance(relations, list):
        raise InvalidInput("relations must be an array")
    for i, item in enumerate(relations):
        if not isinstance(item, dict) or set(item) != {"relationType", "path"}:
            raise InvalidInput(f"relations[{i}] must be an object of relationType and path")
        if not isinstance(item["relationType"], str) or not isinstance(item["path"], str):
            raise InvalidInput(f"relations[{i}]: relationType and path are strings")
        check_type(item["relationType"])
    return doc


def _target(item: Planned, given: str, by_local: dict[str, str]) -> str:
    """The /content/dam path a relation's ``path`` names."""
    if given.startswith("/"):
        if given != ROOT and not given.startswith(ROOT + "/"):
            raise InvalidInput(f"the relation path {given!r} is not under {ROOT}")
        if any(part in (".", "..") for part in given.split("/")):
            raise InvalidInput(f"the relation path {given!r} has . or .. segments")
        return given.rstrip("/")
    here = posixpath.dirname(item.local.as_posix())
    local = posixpath.normpath(posixpath.join(here, given))
    found = by_local.get(local)
    if found is None:
        raise InvalidInput(
            f"the relation path {given!r} names no file seeded from this folder "
            "(a path relative to the sidecar, or /content/dam/...)"
        )
    return found


def plan_seed(source: Path, folder: str = ROOT) -> SeedPlan:
    """The folders and files of ``source`` as they go into ``folder``, with their
    sidecars read and checked. A fault of one file or sidecar is recorded in
    ``problems`` and leaves that file out; the rest stays in the plan."""
    walked: UploadPlan = plan_contents(source, folder)
    plan = SeedPlan(source, folder, folders=list(walked.folders))
    for refused in walked.refused:  # the upload's words, less its option seed has not
        detail = refused.detail.split(" (--follow-symlinks", 1)[0]
        plan.problems.append(Problem(refused.local, refused.status, detail))
    # Local files by their path as walked (posix), for relations given relative.
    assets = [i for i in walked.items if not is_sidecar(i.local.name)]
    sidecars = {i.local.as_posix(): i for i in walked.items if is_sidecar(i.local.name)}
    by_local = {i.local.as_posix(): i.remote for i in assets}
    for item in assets:
        sidecar = sidecars.pop(item.local.as_posix() + SIDECAR, None)
        metadata: dict[str, Any] = {}
        relations: list[SeedRelation] = []
        if sidecar is not None:
            try:
                doc = read_sidecar(sidecar.opened)
                metadata = dict(doc.get("assetMetadata", {}))
                for rel in doc.get("relations", []):
                    target = _target(item, rel["path"], by_local)
                    if target == item.remote:
                        raise InvalidInput("an asset cannot be related to itself")
                    relations.append(SeedRelation(rel["relationType"], target))
            except InvalidInput as exc:
                plan.problems.append(
                    Problem(sidecar.local, "failed", f"{shown(str(sidecar.local))}: {exc.detail}")
                )
                continue
        plan.files.append(
            SeedFile(
                item.local,
                item.opened,
                item.remote,
                item.size,
                metadata,
                tuple(dict.fromkeys(relations)),
            )
        )
    for orphan in sidecars.values():
        plan.problems.append(
            Problem(orphan.local, "skipped", "a sidecar with no file of its name beside it")
        )
    return plan
