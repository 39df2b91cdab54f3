"""Content Fragment models and values: the model file's format, the types of its fields,
and how a value given for an element is made one of its model's type, as AEM's Assets
HTTP API does (docs/classic-api.md, "Content Fragments").

A model file is JSON::

    {"name": "adventure", "title": "Adventure", "description": "", "status": "enabled",
     "fields": [{"name": "title", "label": "Title", "type": "text-single",
                 "multiple": false, "default": null, "required": true,
                 "translatable": true}, ...]}

Field types (AEM's ``metaType`` names): ``text-single``, ``text-multi`` (with
``defaultMimeType`` text/plain, text/html or text/x-markdown), ``number`` (with
``valueType`` long or double), ``boolean``, ``date`` (date and time: a calendar),
``enumeration`` (``options``), ``tags`` (always multi-valued), ``content-reference``,
``fragment-reference``, ``json``. ``required``, ``options`` and ``maxLength`` are kept for
editors and not enforced, as AEM's API does not enforce them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from assetvault.errors import InvalidInput

MODELS_ROOT = "/conf"
MODEL_PATH = re.compile(
    r"^/conf/([A-Za-z0-9_-]{1,64})/settings/dam/cfm/models/([A-Za-z0-9_-]{1,64})$"
)
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# AEM: "Property names may only contain A-Z a-z 0-9 _".
FIELD_NAME = re.compile(r"^[A-Za-z0-9_]{1,128}$")
TEXT_TYPES = ("text/plain", "text/html", "text/x-markdown")
# AEM reads a calendar given as text only in this form (seconds, milliseconds and a
# zone); any other text leaves the value as it was, without an error.
CALENDAR_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2})$")
LONG_TEXT = re.compile(r"^[+-]?\d{1,19}$")
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

FieldType = Literal[
    "text-single",
    "text-multi",
    "number",
    "boolean",
    "date",
    "enumeration",
    "tags",
    "content-reference",
    "fragment-reference",
    "json",
]
DataType = Literal["string", "long", "double", "boolean", "calendar"]
TRANSLATABLE_BY_DEFAULT = frozenset({"text-single", "text-multi"})


class BadValue(Exception):
    """A value that cannot be one of its element's type (AEM: 500, "Could not update
    content element")."""


class Unchanged(Exception):
    """A calendar text AEM does not read: the element keeps its value, silently."""


def model_path(conf: str, name: str) -> str:
    if not NAME.match(conf):
        raise InvalidInput(f"the configuration name {conf!r} may hold A-Z a-z 0-9 _ - only")
    if not NAME.match(name):
        raise InvalidInput(f"the model name {name!r} may hold A-Z a-z 0-9 _ - only")
    return f"{MODELS_ROOT}/{conf}/settings/dam/cfm/models/{name}"


class FieldSpec(BaseModel):
    """One field of a model file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=FIELD_NAME.pattern)
    label: str | None = Field(default=None, max_length=512)
    type: FieldType
    value_type: Literal["long", "double"] | None = Field(default=None, alias="valueType")
    default_mime_type: Literal["text/plain", "text/html", "text/x-markdown"] = Field(
        default="text/plain", alias="defaultMimeType"
    )
    multiple: bool = False
    default: Any = None
    required: bool = False
    translatable: bool | None = None
    options: list[str] | None = Field(default=None, max_length=1000)
    max_length: int | None = Field(default=None, alias="maxLength", ge=1)

    @model_validator(mode="after")
    def _number_has_a_value_type(self) -> FieldSpec:
        if self.type == "number" and self.value_type is None:
            raise ValueError(f"{self.name}: a number field needs valueType long or double")
        if self.type != "number" and self.value_type is not None:
            raise ValueError(f"{self.name}: valueType is for number fields only")
        return self


class ModelSpec(BaseModel):
    """A model file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME.pattern)
    title: str | None = Field(default=None, max_length=512)
    description: str = Field(default="", max_length=4096)
    status: Literal["enabled", "draft", "disabled"] = "enabled"
    fields: list[FieldSpec] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _names_are_unique(self) -> ModelSpec:
        seen: set[str] = set()
        for f in self.fields:
            if f.name in seen:
                raise ValueError(f"the field name {f.name!r} is used twice")
            seen.add(f.name)
        return self


@dataclass(frozen=True)
class ModelField:
    name: str
    label: str
    type: FieldType
    data_type: DataType
    multiple: bool
    default: Any
    required: bool
    translatable: bool
    default_mime_type: str
    options: tuple[str, ...] | None
    max_length: int | None

    @property
    def is_multiline(self) -> bool:
        return self.type == "text-multi"

    def type_of(self, content_type: str | None) -> str:
        """The element's ``:type``: the MIME type of multi-line text, else the data type."""
        if self.is_multiline:
            return content_type or self.default_mime_type
        return self.data_type

    def coerce(self, value: Any) -> Any:
        """``value`` as this field stores it (calendars as epoch milliseconds); BadValue
        when it cannot be, Unchanged when AEM would leave the element as it was."""
        if value is None:
            return None
        if self.multiple:
            items = value if isinstance(value, list) else [value]
            return [self._one(v) for v in items if v is not None]
        if isinstance(value, list):
            raise BadValue(f"{self.name} holds one value, not a list")
        return self._one(value)

    def _one(self, value: Any) -> Any:
        kind = self.data_type
        if kind == "long":
            return _long(self.name, value)
        if kind == "double":
            return _double(self.name, value)
        if kind == "boolean":
            return _boolean(self.name, value)
        if kind == "calendar":
            return _calendar(value)
        if self.type == "json":
            return value if isinstance(value, str) else orjson.dumps(value).decode()
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str):
            return value
        raise BadValue(f"{self.name} holds text, not a {type(value).__name__}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "dataType": self.data_type,
            "multiple": self.multiple,
            "default": self.default,
            "required": self.required,
            "translatable": self.translatable,
            "defaultMimeType": self.default_mime_type,
            "options": list(self.options) if self.options is not None else None,
            "maxLength": self.max_length,
        }


def _long(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise BadValue(f"{name} holds a whole number, not a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and LONG_TEXT.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, int) and LONG_MIN <= value <= LONG_MAX:
        return value
    raise BadValue(f"{name} holds a whole number (64 bits), not {_shown(value)}")


def _double(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise BadValue(f"{name} holds a number, not a boolean")
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise BadValue(f"{name} holds a number, not {_shown(value)}")
    return number


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):  # as JCR converts text: "true" (any case) or false
        return value.strip().lower() == "true"
    raise BadValue(f"{name} holds a boolean, not {_shown(value)}")


def _calendar(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and LONG_MIN <= value <= LONG_MAX:
        return value
    if isinstance(value, str):
        text = value.strip()
        if LONG_TEXT.match(text):
            return int(text)
        if CALENDAR_TEXT.match(text):
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return int(moment.timestamp() * 1000)
    raise Unchanged


def _shown(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class FragmentModel:
    path: str
    title: str
    description: str
    status: str
    fields: tuple[ModelField, ...]

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"

    def field(self, name: str) -> ModelField | None:
        return next((f for f in self.fields if f.name == name), None)

    def definition(self) -> dict[str, Any]:
        """What is stored: the checked model, defaults already coerced."""
        return {
            "title": self.title,
            "description": self.description,
            "status": self.status,
            "fields": [f.as_dict() for f in self.fields],
        }

    @classmethod
    def from_definition(cls, path: str, stored: dict[str, Any]) -> FragmentModel:
        fields = tuple(
            ModelField(
                name=f["name"],
                label=f["label"],
                type=f["type"],
                data_type=f["dataType"],
                multiple=f["multiple"],
                default=f["default"],
                required=f["required"],
                translatable=f["translatable"],
                default_mime_type=f["defaultMimeType"],
                options=tuple(f["options"]) if f.get("options") is not None else None,
                max_length=f.get("maxLength"),
            )
            for f in stored["fields"]
        )
        return cls(path, stored["title"], stored["description"], stored["status"], fields)


def _data_type(spec: FieldSpec) -> DataType:
    if spec.type == "number":
        return "long" if spec.value_type == "long" else "double"
    if spec.type == "boolean":
        return "boolean"
    if spec.type == "date":
        return "calendar"
    return "string"


def parse_model(conf: str, document: Any) -> FragmentModel:
    """A model file's content, checked; InvalidInput naming the first fault."""
    try:
        spec = ModelSpec.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the model"
        raise InvalidInput(f"the model file is not valid: {where}: {first['msg']}") from exc
    fields: list[ModelField] = []
    for f in spec.fields:
        made = ModelField(
            name=f.name,
            label=f.label if f.label is not None else f.name,
            type=f.type,
            data_type=_data_type(f),
            multiple=f.multiple or f.type == "tags",
            default=None,
            required=f.required,
            translatable=(
                f.translatable if f.translatable is not None else f.type in TRANSLATABLE_BY_DEFAULT
            ),
            default_mime_type=f.default_mime_type,
            options=tuple(f.options) if f.options is not None else None,
            max_length=f.max_length,
        )
        try:
            default = made.coerce(f.default)
        except (BadValue, Unchanged) as exc:
            raise InvalidInput(
                f"the model file is not valid: fields.{f.name}.default: "
                f"{exc or 'a calendar is epoch milliseconds or 2024-05-01T09:00:00.000Z'}"
            ) from exc
        fields.append(replace(made, default=default))
    path = model_path(conf, spec.name)
    return FragmentModel(
        path, spec.title or spec.name, spec.description, spec.status, tuple(fields)
    )


@dataclass
class FragmentData:
    """A fragment's stored content: the master values of its elements, the MIME type of
    each multi-line text element, and its variations (each with its own values)."""

    master: dict[str, Any] = field(default_factory=dict)
    content_types: dict[str, str] = field(default_factory=dict)
    variations: dict[str, Variation] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "master": self.master,
            "contentTypes": self.content_types,
            "variations": [v.to_json() for v in self.variations.values()],
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> FragmentData:
        variations = [Variation.from_json(v) for v in stored.get("variations") or []]
        return cls(
            master=dict(stored.get("master") or {}),
            content_types=dict(stored.get("contentTypes") or {}),
            variations={v.name: v for v in variations},
        )


@dataclass
class Variation:
    name: str
    title: str
    description: str
    values: dict[str, Any] = field(default_factory=dict)
    content_types: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "values": self.values,
            "contentTypes": self.content_types,
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Variation:
        return cls(
            name=stored["name"],
            title=stored["title"],
            description=stored.get("description", ""),
            values=dict(stored.get("values") or {}),
            content_types=dict(stored.get("contentTypes") or {}),
        )


@dataclass(frozen=True)
class Fragment:
    """A fragment as read: its node's id and path, its model's path and its content."""

    node_id: str
    model: str
    data: FragmentData
