"""Limits on what a metadata write adds: property names and value sizes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from assetvault.errors import InvalidInput
from assetvault.metadata import limits, patch

CONTROL = [chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]]


@pytest.mark.parametrize("char", CONTROL, ids=[f"U+{ord(c):04X}" for c in CONTROL])
def test_control_characters_in_names_are_refused(char: str) -> None:
    for ops in (
        [{"op": "add", "path": f"/dc:ti{char}tle", "value": "v"}],
        [{"op": "set", "path": f"/{char}", "value": "v"}],
        [{"op": "add", "path": "/ok", "value": {f"in{char}ner": 1}}],
        [{"op": "add", "path": "/ok", "value": [{"deep": [{f"k{char}": 1}]}]}],
    ):
        with pytest.raises(InvalidInput, match="control characters"):
            patch.apply({}, ops)


@pytest.mark.parametrize(
    "ops, message",
    [
        ([{"op": "add", "path": "/" + "k" * 257, "value": 1}], "longer than 256"),
        ([{"op": "add", "path": "/ok", "value": {"k" * 257: 1}}], "longer than 256"),
        ([{"op": "add", "path": "/big", "value": "a" * limits.MAX_VALUE_BYTES}], "at most"),
        ([{"op": "add", "path": "/big", "value": ["a" * 1000] * 300}], "at most"),
    ],
)
def test_oversized_names_and_values_are_refused(ops: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        patch.apply({}, ops)


def test_names_and_values_at_the_limits_pass() -> None:
    value = "a" * (limits.MAX_VALUE_BYTES - 2)  # the quotes make it exactly the limit
    key = "k" * limits.MAX_KEY_CHARS
    assert patch.apply({}, [{"op": "add", "path": f"/{key}", "value": value}]) == {key: value}
    tabbed = "a\tb\nc"  # control characters are fine in values
    assert patch.apply({}, [{"op": "add", "path": "/t", "value": tabbed}]) == {"t": tabbed}


def test_the_whole_group_is_bounded() -> None:
    chunk = "a" * (limits.MAX_VALUE_BYTES - 100)
    current = {f"p{i}": chunk for i in range(4)}
    with pytest.raises(InvalidInput, match="would take"):
        patch.apply(current, [{"op": "add", "path": "/p4", "value": chunk}])
    # Already over the limit (say, by extraction): edits that shrink it pass.
    over = {**current, "p4": chunk}
    assert "p0" not in patch.apply(over, [{"op": "remove", "path": "/p0"}])
    assert patch.apply(over, [{"op": "removeIfExists", "path": "/p0"}])


def test_properties_left_as_they_were_are_not_judged() -> None:
    """Extracted metadata the limits would refuse does not make the asset unwritable."""
    current = {"odd\x01name": 1, "x" * 300: "long name"}
    assert patch.apply(current, [{"op": "add", "path": "/dc:title", "value": "t"}]) == {
        **current,
        "dc:title": "t",
    }


@pytest.mark.parametrize(
    "value, where",
    [
        (float("inf"), "x"),
        ([1.0, float("nan")], "x/1"),
        ({"a": "\ud800"}, "x/a"),
        ({"\udfff": 1}, "x/\\udfff"),
    ],
)
def test_values_that_cannot_be_stored_are_refused(value: Any, where: str) -> None:
    """The reader refuses these in request bodies; the patch refuses them from any caller."""
    with pytest.raises(InvalidInput, match=f"^{re.escape(where)}: "):
        patch.apply({}, [{"op": "add", "path": "/x", "value": value}])


@pytest.mark.parametrize("op", [["add"], {"add": 1}, 3, None])
def test_an_op_that_is_not_a_string_is_refused(op: Any) -> None:
    """An unhashable op named no operation: it answered 500, not 400."""
    with pytest.raises(InvalidInput, match=r"operation 0: unknown op"):
        patch.apply({}, [{"op": op, "path": "/x", "value": 1}])
