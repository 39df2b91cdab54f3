"""Seeding: a planned local folder (``seeding/plan.py``) made into folders, assets,
metadata and relations through the write path, as any client's writes are: each asset
is processed as usual (renditions, extracted metadata) and every change leaves its
outbox rows.

Idempotent: what is already there as planned is left alone, so a second run over the
same folder writes nothing (no version, no outbox row). A file whose bytes changed
becomes a new version of its asset (the old original kept as a version, as the CLI
upload does by default); sidecar properties are set when they differ, others are left
as they are; relations are added when missing (seeding never removes one).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from assetvault.adapters.blobs.base import BlobInfo
from assetvault.client.localfs import open_regular
from assetvault.errors import AssetvaultError, InvalidInput
from assetvault.metadata.service import MetadataService
from assetvault.relations.service import RelationService
from assetvault.seeding.plan import Problem, SeedFile, SeedPlan
from assetvault.tree.paths import ROOT, check_name, urn
from assetvault.tree.service import TreeService
from assetvault.tree.writes import Writes
from assetvault.uploads.service import guess_mime

USER = "assetvault-seed"
CHUNK = 1024 * 1024

# (what was done: "created", "updated", "unchanged", "failed"; the file or folder path)
Progress = Callable[[str, str], None]


@dataclass
class SeedOutcome:
    folders_created: int = 0
    assets_created: int = 0
    assets_updated: int = 0  # a new original (the old one kept as a version)
    metadata_updated: int = 0
    relations_added: int = 0
    unchanged: int = 0  # files whose asset, metadata and relations were already so
    problems: list[Problem] = field(default_factory=list)

    @property
    def failed(self) -> list[Problem]:
        return [p for p in self.problems if p.status == "failed"]

    @property
    def changed(self) -> bool:
        return bool(
            self.folders_created
            or self.assets_created
            or self.assets_updated
            or self.metadata_updated
            or self.relations_added
        )


def _pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _sha1(path: Any) -> str:
    h = hashlib.sha1()
    with open_regular(path).fh as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


class SeedService:
    def __init__(
        self,
        tree: TreeService,
        writes: Writes,
        metadata: MetadataService,
        relations: RelationService,
    ) -> None:
        self.tree = tree
        self.writes = writes
        self.metadata = metadata
        self.relations = relations

    async def seed(self, plan: SeedPlan, progress: Progress | None = None) -> SeedOutcome:
        """Applies ``plan``: folders first, then each file's asset and metadata, then
        the relations (their targets exist by then). A fault of one item is recorded
        and the rest goes on."""
        done = progress or (lambda what, path: None)
        outcome = SeedOutcome(problems=list(plan.problems))
        broken = await self._folders(plan, outcome)
        changed: dict[str, bool] = {}  # remote path -> written, for the files that went in
        for item in plan.files:
            if any(item.folder == b or item.folder.startswith(b + "/") for b in broken):
                outcome.problems.append(Problem(item.local, "failed", "its folder was not made"))
                done("failed", item.remote)
                continue
            try:
                wrote = await self._asset(item, outcome)
                wrote = await self._metadata(item, outcome) or wrote
            except (AssetvaultError, OSError) as exc:
                detail = exc.detail if isinstance(exc, AssetvaultError) else str(exc)
                outcome.problems.append(Problem(item.local, "failed", detail))
                done("failed", item.remote)
                continue
            changed[item.remote] = wrote
            done("changed" if wrote else "unchanged", item.remote)
        for item in plan.files:
            if not item.relations or item.remote not in changed:
                continue
            try:
                added = await self._relations(item)
            except AssetvaultError as exc:
                outcome.problems.append(Problem(item.local, "failed", exc.detail))
                continue
            outcome.relations_added += added
            changed[item.remote] = changed[item.remote] or added > 0
        outcome.unchanged = sum(1 for wrote in changed.values() if not wrote)
        return outcome

    async def _folders(self, plan: SeedPlan, outcome: SeedOutcome) -> set[str]:
        """Makes the missing folders (titled with their directory's name); returns the
        ones that could not be made."""
        broken: set[str] = set()
        wanted = dict(plan.folders)
        if plan.folder != ROOT:
            parts = plan.folder[len(ROOT) + 1 :].split("/")
            for i in range(len(parts)):
                path = "/".join([ROOT, *parts[: i + 1]])
                wanted.setdefault(path, parts[i])
        for path in sorted(wanted, key=lambda p: p.count("/")):
            if any(path.startswith(b + "/") for b in broken):
                broken.add(path)
                continue
            parent, _, name = path.rpartition("/")
            try:
                check_name(name)
                found = await self.tree.find(path)
                if found is not None:
                    if found.kind != "folder":
                        raise InvalidInput(f"{path} is an asset, not a folder")
                    continue
                await self.tree.create_folder(
                    parent, name, user=USER, properties={"jcr:title": wanted[path]}
                )
                outcome.folders_created += 1
            except AssetvaultError as exc:
                outcome.problems.append(Problem(plan.source, "failed", f"{path}: {exc.detail}"))
                broken.add(path)
        return broken

    async def _stream(self, item: SeedFile) -> AsyncIterator[bytes]:
        opened = await asyncio.to_thread(open_regular, item.opened)
        try:
            while block := await asyncio.to_thread(opened.fh.read, CHUNK):
                yield block
        finally:
            opened.fh.close()

    async def _asset(self, item: SeedFile, outcome: SeedOutcome) -> bool:
        """The file as the asset's original unless it is already; whether it wrote."""
        check_name(item.name)
        node = await self.tree.find(item.remote)
        if node is not None and node.kind != "asset":
            raise InvalidInput(f"{item.remote} is a folder")
        same_size = node is not None and node.size == item.size
        if (
            same_size
            and node is not None
            and node.sha1 == await asyncio.to_thread(_sha1, item.opened)
        ):
            return False
        blob: BlobInfo = await self.writes.store_stream(self._stream(item))
        await self.tree.store_original(
            item.folder,
            item.name,
            blob,
            mime_type=guess_mime(item.name),
            user=USER,
            create_version=node is not None,
        )
        if node is None:
            outcome.assets_created += 1
        else:
            outcome.assets_updated += 1
        return True

    async def _metadata(self, item: SeedFile, outcome: SeedOutcome) -> bool:
        """The sidecar's properties set where they differ; whether it wrote."""
        if not item.metadata:
            return False
        node = await self.tree.get(item.remote)
        view = node.asset_metadata
        ops = [
            {"op": "add", "path": _pointer(key), "value": value}
            for key, value in item.metadata.items()
            if key not in view or view[key] != value
        ]
        if not ops:
            return False
        await self.metadata.patch(node.id, ops, if_match="*", user=USER)
        outcome.metadata_updated += 1
        return True

    async def _relations(self, item: SeedFile) -> int:
        """The sidecar's relations added where missing (adding one that exists writes
        nothing); how many were new."""
        node = await self.tree.get(item.remote)
        wanted: list[dict[str, str]] = []
        for rel in item.relations:
            target = await self.tree.find(rel.target)
            if target is None or target.kind != "asset":
                raise InvalidInput(f"the related asset {rel.target} does not exist")
            wanted.append({"relationType": rel.relation_type, "relatedAssetId": urn(target.id)})
        return await self.relations.add(node.id, wanted, user=USER)
