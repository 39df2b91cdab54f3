"""The bounded JSON reader: its depth scan against the real nesting of any document, and
the values it refuses, named by their place."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assetvault import cursors, jsontext

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8) | st.sampled_from(
    ['"', "\\", "[", "]", "{", "}", '\\"[', '"]}', "\u2028", "\x00"]
)
documents = st.recursive(
    scalars | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(documents, st.booleans())
def test_depth_scan_matches_the_document(doc: Any, pretty: bool) -> None:
    raw = json.dumps(doc, indent=1 if pretty else None, ensure_ascii=pretty).encode()
    assert jsontext.nesting_depth(raw) == depth(doc)
    assert jsontext.loads(raw, max_depth=depth(doc)) == orjson.loads(raw)
    if depth(doc):
        with pytest.raises(jsontext.JSONTextError, match="levels deep"):
            jsontext.loads(raw, max_depth=depth(doc) - 1)


@pytest.mark.parametrize("n", [33, 1_000, 100_000, 1_000_000])
def test_deep_text_is_refused_without_parsing(n: int) -> None:
    for raw in (b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n, b"[" * n):
        with pytest.raises(jsontext.JSONTextError, match=f"nests {n} levels deep"):
            jsontext.loads(raw, max_depth=32)


def test_scan_is_linear_on_hostile_strings() -> None:
    """Unterminated strings and escape runs must not make the scan retry from every quote."""
    hostile = [b'"\\"' * 350_000, b'["' + b'a\\"' * 350_000, b'"' * 1_000_000, b"[" * 1_000_000]
    for raw in hostile:
        started = time.perf_counter()
        jsontext.nesting_depth(raw)
        assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "text, pointer",
    [
        (b"1e999", "/"),
        (b"[1, -1e999]", "/1"),
        (b'{"a": {"b": NaN}}', "/a/b"),
        (b'{"a/b~c": Infinity}', "/a~1b~0c"),
        (b'[{"v": -Infinity}]', "/0/v"),
        (b'{"s": "ok\\ud800"}', "/s"),
        (b'{"\\udfff": 1}', "/\\udfff"),
        (b'[["fine"], ["\\ud83d"]]', "/1/0"),
    ],
)
def test_unstorable_values_are_named(text: bytes, pointer: str) -> None:
    with pytest.raises(jsontext.JSONTextError) as caught:
        jsontext.loads(text, max_depth=32)
    assert str(caught.value).startswith(f"{pointer}: ")


@pytest.mark.parametrize(
    "text", [b"", b"[1,", b"{'a': 1}", b"\xff\xfe", b'"\\x"', b"[1] 2", b"01", b"tru"]
)
def test_malformed_text_says_it_is_not_json(text: bytes) -> None:
    with pytest.raises(jsontext.JSONTextError, match="not valid JSON"):
        jsontext.loads(text, max_depth=32)


def test_well_formed_unicode_and_large_numbers_pass() -> None:
    raw = b'{"emoji": "\\ud83d\\ude00", "max": 1.7976931348623157e308, "big": 123}'
    assert jsontext.loads(raw, max_depth=32) == {
        "emoji": "\U0001f600",
        "max": 1.7976931348623157e308,
        "big": 123,
    }


def test_cursors_read_through_the_bounded_reader() -> None:
    state = {"f": "x", "k": [{"d": "2026-01-01"}, 1.5]}
    assert cursors.unpack(cursors.pack(state)) == state
    for hostile in (b"[" * 5_000 + b"]" * 5_000, b"NaN", b'"\\ud800"', b"[1e999]"):
        cursor = base64.urlsafe_b64encode(hostile).decode().rstrip("=")
        with pytest.raises(ValueError):
            cursors.unpack(cursor)
