"""The rules of Adobe I/O Events kept as pure functions: the retry schedule, what is
retried, the challenge's answer forms, journal positions and seek durations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from assetvault.errors import InvalidInput
from assetvault.events.dispatcher import retry_wait
from assetvault.events.models import Outcome
from assetvault.events.service import (
    challenge_answered,
    parse_duration,
    parse_position,
    position,
    with_query,
)


def test_retries_wait_1_2_4_8_then_every_15_units() -> None:
    assert [retry_wait(n, 60) for n in range(1, 9)] == [60, 120, 240, 480, 900, 900, 900, 900]


@pytest.mark.parametrize(
    ("outcome", "retried"),
    [
        (Outcome(200), False),
        (Outcome(429), True),
        (Outcome(500), True),
        (Outcome(503), True),
        (Outcome(599), True),
        (Outcome(505), False),
        (Outcome(400), False),
        (Outcome(404), False),
        (Outcome(301), False),
        (Outcome(None, error="timed out"), True),
        (Outcome(None, error="connection refused"), True),
        (Outcome(None, error="blocked", blocked=True), False),
    ],
)
def test_what_is_retried(outcome: Outcome, retried: bool) -> None:
    assert outcome.retryable is retried or outcome.ok


def test_only_2xx_is_success() -> None:
    assert Outcome(200).ok and Outcome(204).ok and not Outcome(302).ok and not Outcome(None).ok


@pytest.mark.parametrize(
    ("body", "answered"),
    [
        (b"abc-123", True),
        (b"  abc-123\n", True),
        (b'"abc-123"', True),
        (b'{"challenge": "abc-123"}', True),
        (b'{"challenge":"abc-123","other":1}', True),
        (b"abc-1234", False),
        (b'"abc"', False),
        (b'{"challenge": "nope"}', False),
        (b'["abc-123"]', False),
        (b"", False),
        (b"\xff\xfe", False),
    ],
)
def test_the_three_challenge_answers(body: bytes, answered: bool) -> None:
    assert challenge_answered(body, "abc-123") is answered


def test_the_challenge_joins_an_existing_query() -> None:
    assert with_query("http://h/x", challenge="c") == "http://h/x?challenge=c"
    assert with_query("http://h/x?a=1", challenge="c") == "http://h/x?a=1&challenge=c"


def test_positions_round_trip_and_refuse_anything_else() -> None:
    assert parse_position(position(42)) == 42
    for bad in ("42", "av:", "av:-1", "av:1x", "zz:1", "av:" + "9" * 30):
        with pytest.raises(InvalidInput):
            parse_position(bad)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("-PT2H", -timedelta(hours=2)),
        ("-P1D", -timedelta(days=1)),
        ("-P5DT2H", -timedelta(days=5, hours=2)),
        ("-PT30M", -timedelta(minutes=30)),
        ("-PT1.5S", -timedelta(seconds=1.5)),
        ("-P1W", -timedelta(weeks=1)),
        ("PT1H", timedelta(hours=1)),
    ],
)
def test_seek_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize("text", ["", "P", "-P", "PT", "-PT", "2H", "-PT2X", "yesterday"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text)
