"""How an element's value becomes its model type (AEM's conversions), and what a model
file may say."""

from __future__ import annotations

from typing import Any

import pytest

from assetvault.errors import InvalidInput
from assetvault.fragments.models import BadValue, Unchanged, parse_model


def field(**spec: Any) -> Any:
    return parse_model("c", {"name": "m", "fields": [{"name": "f", **spec}]}).fields[0]


@pytest.mark.parametrize(
    ("spec", "given", "stored"),
    [
        ({"type": "number", "valueType": "long"}, "8", 8),
        ({"type": "number", "valueType": "long"}, 8.0, 8),
        ({"type": "number", "valueType": "double"}, "2.5", 2.5),
        ({"type": "boolean"}, "TRUE", True),
        ({"type": "boolean"}, "yes", False),  # as JCR converts text
        ({"type": "date"}, "2024-05-01T09:00:00.000Z", 1714554000000),
        ({"type": "date"}, "1714554000000", 1714554000000),
        ({"type": "text-single"}, True, "true"),
        ({"type": "json"}, {"a": 1}, '{"a":1}'),
        ({"type": "tags"}, "a:b", ["a:b"]),
        ({"type": "text-single", "multiple": True}, ["x", None, "y"], ["x", "y"]),
        ({"type": "text-single"}, None, None),
    ],
)
def test_values_are_converted(spec: dict[str, Any], given: Any, stored: Any) -> None:
    assert field(**spec).coerce(given) == stored


@pytest.mark.parametrize(
    ("spec", "given"),
    [
        ({"type": "number", "valueType": "long"}, "8.5"),
        ({"type": "number", "valueType": "long"}, 2**63),
        ({"type": "number", "valueType": "long"}, True),
        ({"type": "number", "valueType": "double"}, "inf"),
        ({"type": "boolean"}, 0),
        ({"type": "text-single"}, {"a": 1}),
        ({"type": "text-single"}, ["a"]),
    ],
)
def test_values_an_element_cannot_hold(spec: dict[str, Any], given: Any) -> None:
    with pytest.raises(BadValue):
        field(**spec).coerce(given)


@pytest.mark.parametrize("given", ["2024-05-01", "2024-05-01T09:00:00Z", "soon", 1.5])
def test_a_calendar_aem_cannot_read_leaves_the_value(given: Any) -> None:
    with pytest.raises(Unchanged):
        field(type="date").coerce(given)


@pytest.mark.parametrize(
    "document",
    [
        {"name": "m", "fields": []},
        {"name": "m", "fields": [{"name": "f", "type": "text-single"}] * 2},
        {"name": "m/x", "fields": [{"name": "f", "type": "text-single"}]},
        {"name": "m", "fields": [{"name": "f", "type": "text-single", "colour": 1}]},
        {"name": "m", "fields": [{"name": "f", "type": "boolean", "valueType": "long"}]},
        {"name": "m", "fields": [{"name": "f", "type": "date", "default": "May"}]},
    ],
)
def test_a_bad_model_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        parse_model("c", document)
