"""Content Fragments: structured assets made from a model, as AEM's Assets HTTP API
creates, reads, updates and deletes them (docs/classic-api.md, "Content Fragments").

A fragment is an asset of type ``application/vnd.adobe.contentfragment`` without an
original; its title and description are its ``dc:title`` / ``dc:description`` metadata,
its element values (master and variations) its content, stored beside the node. Every
change goes through the write path (tree/writes.py), with its outbox rows. Models are
loaded from files (``assetvault cf-model load``) under their /conf paths.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from assetvault.adapters.database.engine import Database
from assetvault.errors import AssetvaultError, InvalidInput, NotFound
from assetvault.fragments import repository as repo
from assetvault.fragments.models import (
    NAME,
    TEXT_TYPES,
    BadValue,
    DataType,
    Fragment,
    FragmentData,
    FragmentModel,
    ModelField,
    Unchanged,
    Variation,
    parse_model,
)
from assetvault.metadata import limits
from assetvault.tree import repository as tree_repo
from assetvault.tree.models import Node
from assetvault.tree.paths import check_name, join
from assetvault.tree.writes import Writes

TITLE = "dc:title"
DESCRIPTION = "dc:description"
MAX_VARIATIONS = 100
MAX_TEXT_CHARS = 200_000  # of a fragment's text kept for search
MAX_NAME_TRIES = 1000

# AEM's messages (status.message of its 500 answers).
NO_MODEL = "No content fragment model specified"
BAD_MODEL = "Cannot create a resource of given model '{}'"
NOT_CREATED = "Could not create content fragment"
NOT_SET = "Could not set value on content fragment"
NOT_SET_METADATA = "Could not set metadata on content fragment"
BAD_ELEMENT = "Could not update content element"


class FragmentFailed(AssetvaultError):
    """What AEM answers with 500 and a fixed message (a missing or unusable model, an
    unknown element, a value its element cannot hold, a missing parent folder): clients
    look for that status and message. Still a clear error, and nothing is changed."""

    status = 500
    title = "Internal Server Error"


@dataclass(frozen=True)
class FragmentView:
    """A fragment as read: its node, its model (the stored one, or one read from its
    values when the model is gone) and its content."""

    node: Node
    model: FragmentModel
    fragment: Fragment


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FragmentFailed(f"{NOT_SET}: {where} is text")
    return str(value)


def _variation_title(name: str) -> str:
    return name[:1].upper() + name[1:]


def _search_text(data: FragmentData) -> str | None:
    parts: list[str] = []
    for value in data.master.values():
        items = value if isinstance(value, list) else [value]
        parts.extend(v for v in items if isinstance(v, str))
    text = "\n".join(parts)[:MAX_TEXT_CHARS]
    return text or None


def _inferred_model(fragment: Fragment) -> FragmentModel:
    """A model read from the values, for a fragment whose model was removed."""
    fields = []
    for name, value in fragment.data.master.items():
        sample = value[0] if isinstance(value, list) and value else value
        data_type: DataType = (
            "boolean"
            if isinstance(sample, bool)
            else "long"
            if isinstance(sample, int)
            else "double"
            if isinstance(sample, float)
            else "string"
        )
        fields.append(
            ModelField(
                name=name,
                label=name,
                type="text-single" if data_type == "string" else "json",
                data_type=data_type,
                multiple=isinstance(value, list),
                default=None,
                required=False,
                translatable=False,
                default_mime_type="text/plain",
                options=None,
                max_length=None,
            )
        )
    return FragmentModel(fragment.model, fragment.model, "", "disabled", tuple(fields))


class FragmentService:
    def __init__(self, db: Database, writes: Writes) -> None:
        self.db = db
        self.writes = writes

    # -- models ---------------------------------------------------------------------------

    async def load_model(self, conf: str, document: Any, *, user: str) -> FragmentModel:
        """Check a model file's content and store it under
        ``/conf/<conf>/settings/dam/cfm/models/<name>`` (replacing the one there)."""
        model = parse_model(conf, document)
        async with self.db.write() as conn:
            await repo.put_model(conn, model, user=user, now=datetime.now(UTC))
        return model

    async def model(self, path: str) -> FragmentModel | None:
        async with self.db.reader() as r:
            return await repo.model_at(r, path)

    async def models(self) -> list[FragmentModel]:
        async with self.db.reader() as r:
            return await repo.models(r)

    # -- reads ----------------------------------------------------------------------------

    async def view(self, node: Node) -> FragmentView:
        async with self.db.reader() as r:
            fragment = await repo.fragment_of(r, node.id)
            if fragment is None:
                raise NotFound(f"{node.path} is not a content fragment")
            model = await repo.model_at(r, fragment.model)
        return FragmentView(node, model or _inferred_model(fragment), fragment)

    # -- writes ---------------------------------------------------------------------------

    async def create(
        self, parent_path: str, name: str, properties: dict[str, Any], *, user: str
    ) -> Node:
        """A new fragment from ``properties`` (AEM's create body: ``cq:model``, ``title``,
        ``description``, ``metadata``, ``elements``). A taken name gets a suffix
        (``-1``, ``-2``...), as AEM picks a free one."""
        check_name(name)
        model_path = properties.get("cq:model")
        if not isinstance(model_path, str) or not model_path.strip():
            raise FragmentFailed(NO_MODEL)
        async with self.writes.change(user) as ch:
            model = await repo.model_at(ch.reader, model_path)
            if model is None or not model.enabled:
                raise FragmentFailed(BAD_MODEL.format(model_path))
            parent = await tree_repo.by_path(ch.reader, parent_path)
            if parent is None or parent.kind != "folder":
                raise FragmentFailed(f"{NOT_CREATED}: the folder {parent_path} does not exist")
            metadata = self._metadata({}, properties, fallback_title=name)
            data = FragmentData(
                master={f.name: copy.deepcopy(f.default) for f in model.fields},
                content_types={f.name: f.default_mime_type for f in model.fields if f.is_multiline},
            )
            self._apply_elements(model, data, properties.get("elements"))
            free = await self._free_name(ch.reader, parent_path, name)
            return await ch.create_fragment(
                parent, free, metadata, model.path, data.to_json(), _search_text(data)
            )

    async def update(self, path: str, properties: dict[str, Any], *, user: str) -> Node:
        """Change what ``properties`` names (AEM's update body: any of ``title``,
        ``description``, ``metadata``, ``elements`` with values and variations); the rest
        stays. ``cq:model`` is ignored: a fragment's model does not change."""
        async with self.writes.change(user) as ch:
            node = await tree_repo.by_path(ch.reader, path, lock=True)
            fragment = await repo.fragment_of(ch.reader, node.id) if node else None
            if node is None or fragment is None:
                raise NotFound(f"{path} does not exist")
            model = await repo.model_at(ch.reader, fragment.model) or _inferred_model(fragment)
            metadata = self._metadata(node.properties, properties, fallback_title=None)
            before = fragment.data.to_json()
            data = FragmentData.from_json(copy.deepcopy(before))
            self._apply_elements(model, data, properties.get("elements"))
            return await ch.set_fragment(node, metadata, before, data.to_json(), _search_text(data))

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    async def _free_name(reader: Any, parent_path: str, name: str) -> str:
        if await tree_repo.by_path(reader, join(parent_path, name)) is None:
            return name
        for n in range(1, MAX_NAME_TRIES):
            candidate = f"{name}-{n}"
            if await tree_repo.by_path(reader, join(parent_path, candidate)) is None:
                return check_name(candidate)
        raise FragmentFailed(f"{NOT_CREATED}: no free name like {name} in {parent_path}")

    @staticmethod
    def _metadata(
        current: dict[str, Any], properties: dict[str, Any], *, fallback_title: str | None
    ) -> dict[str, Any]:
        metadata = dict(current)
        given = properties.get("metadata")
        if given is not None:
            if not isinstance(given, dict):
                raise FragmentFailed(f"{NOT_SET_METADATA}: metadata is an object")
            for key, value in given.items():
                limits.check_value(key, value, "metadata: ")
                metadata[key] = value
        if "title" in properties:
            metadata[TITLE] = _text(properties["title"], "title")
        elif fallback_title is not None and TITLE not in metadata:
            metadata[TITLE] = fallback_title
        if "description" in properties:
            metadata[DESCRIPTION] = _text(properties["description"], "description")
        elif fallback_title is not None:
            metadata.setdefault(DESCRIPTION, "")
        limits.check_changes(current, metadata, "metadata: ")
        return metadata

    def _apply_elements(self, model: FragmentModel, data: FragmentData, elements: Any) -> None:
        """Set the given elements' values and types, master first, then variations (a
        new variation starts as a copy of the master, as in AEM)."""
        if elements is None:
            return
        if not isinstance(elements, dict):
            raise FragmentFailed(f"{BAD_ELEMENT}: elements is an object")
        given: list[tuple[ModelField, dict[str, Any]]] = []
        for name, spec in elements.items():
            found = model.field(name) if isinstance(name, str) else None
            if found is None:
                raise FragmentFailed(f"{BAD_ELEMENT}: {name!r} is not an element of the model")
            if not isinstance(spec, dict):
                raise FragmentFailed(f"{BAD_ELEMENT}: {name}: give an object with a value")
            given.append((found, spec))
        for element, spec in given:
            self._set(element, spec, data.master, data.content_types)
        for element, spec in given:
            variations = spec.get("variations")
            if variations is None:
                continue
            if not isinstance(variations, dict):
                raise FragmentFailed(f"{BAD_ELEMENT}: {element.name}: variations is an object")
            for vname, vspec in variations.items():
                if not isinstance(vname, str) or not NAME.match(vname):
                    raise FragmentFailed(
                        f"{BAD_ELEMENT}: {element.name}: a variation name holds 1 to 64 of "
                        "A-Z a-z 0-9 _ -"
                    )
                if not isinstance(vspec, dict):
                    raise FragmentFailed(
                        f"{BAD_ELEMENT}: {element.name}: variation {vname}: give an object"
                    )
                variation = data.variations.get(vname)
                if variation is None:
                    if len(data.variations) >= MAX_VARIATIONS:
                        raise FragmentFailed(
                            f"{BAD_ELEMENT}: a fragment has at most {MAX_VARIATIONS} variations"
                        )
                    variation = Variation(
                        vname,
                        _text(vspec.get("title"), "a variation's title") or _variation_title(vname),
                        _text(vspec.get("description"), "a variation's description"),
                        copy.deepcopy(data.master),
                        dict(data.content_types),
                    )
                    data.variations[vname] = variation
                self._set(element, vspec, variation.values, variation.content_types)

    @staticmethod
    def _set(
        element: ModelField,
        spec: dict[str, Any],
        values: dict[str, Any],
        content_types: dict[str, str],
    ) -> None:
        if "value" in spec:
            try:
                values[element.name] = element.coerce(spec["value"])
            except Unchanged:
                pass  # AEM leaves a calendar it cannot read as it was
            except BadValue as exc:
                raise FragmentFailed(f"{BAD_ELEMENT}: {exc}") from exc
            try:
                limits.check_value(element.name, values.get(element.name))
            except InvalidInput as exc:
                raise InvalidInput(f"elements: {exc.detail}") from exc
        kind = spec.get(":type")
        # The MIME type of multi-line text; on other elements (and for other values) the
        # data type cannot change through the API, and :type is ignored, as in AEM.
        if element.is_multiline and kind in TEXT_TYPES:
            content_types[element.name] = kind
