"""Fault rules: what they match, how counts and chances are spent, and that the same seed
hits the same requests in every process and every run."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from assetvault.harness.faults import FaultStore, Rule, RuleSpec, draw


def rule(**spec: Any) -> Rule:
    return Rule.of(1, RuleSpec.model_validate({"seed": 1, "status": 503, **spec}))


def test_a_glob_matches_the_path_and_crosses_slashes() -> None:
    parts = rule(path="/binary-upload/*", method="put")
    assert parts.matches("PUT", "/binary-upload/" + "a" * 32 + "/1")
    assert not parts.matches("GET", "/binary-upload/" + "a" * 32 + "/1")
    assert not parts.matches("PUT", "/content/dam/x.initiateUpload.json")
    assert rule(path="*.completeUpload.json").matches(
        "POST", "/content/dam/a/b.completeUpload.json"
    )
    assert rule().matches("DELETE", "/anything")  # no path, no method: every request


def test_a_regex_must_match_the_whole_path() -> None:
    search = rule(regex=r"/adobe/assets/search")
    assert search.matches("POST", "/adobe/assets/search")
    assert not search.matches("POST", "/adobe/assets/search/more")
    assert rule(regex=r"/binary-upload/\w+/[12]").matches("PUT", "/binary-upload/ab/2")
    assert not rule(regex=r"/binary-upload/\w+/[12]").matches("PUT", "/binary-upload/ab/3")


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ({"path": "/a"}, "needs an effect"),
        ({"path": "/a", "regex": "/a", "status": 503}, "not both"),
        ({"regex": "(", "status": 503}, "regex"),
        ({"status": 200}, "greater than or equal to 400"),
        ({"status": 503, "probability": 0}, "greater than 0"),
        ({"status": 503, "count": 0}, "greater than or equal to 1"),
        ({"delay": 1, "message": "x"}, "go with a status"),
        ({"status": 503, "headers": {"Bad\nName": "x"}}, "pattern"),
        ({"status": 503, "headers": {"X-A": "line\r\nbreak"}}, "pattern"),
        ({"status": 503, "method": "GET /"}, "pattern"),
        ({"status": 503, "surprise": True}, "Extra inputs"),
        ({"delay": 601}, "less than or equal to 600"),
    ],
)
def test_a_rule_that_makes_no_sense_is_refused(spec: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        RuleSpec.model_validate(spec)


def test_the_draws_depend_on_the_seed_and_the_turn_only() -> None:
    first = [draw(7, k) for k in range(1, 200)]
    assert first == [draw(7, k) for k in range(1, 200)]
    assert first != [draw(8, k) for k in range(1, 200)]
    assert all(0 <= x < 1 for x in first)
    # Spread out as chances should be: about a quarter below 0.25.
    below = sum(x < 0.25 for x in (draw(3, k) for k in range(1, 4001)))
    assert 800 < below < 1200


def test_the_next_n_are_hit_then_the_rule_is_spent(tmp_path: Path) -> None:
    store = FaultStore(tmp_path)
    added = store.add(RuleSpec(path="/binary-upload/*", method="PUT", count=2, status=503))
    assert added["remaining"] == 2 and added["seed"] is not None
    hits = [store.first_hit("PUT", f"/binary-upload/x/{n}") for n in range(1, 6)]
    assert [h is not None for h in hits] == [True, True, False, False, False]
    assert store.first_hit("GET", "/binary-upload/x/1") is None
    (listed,) = store.listing()
    assert (listed["remaining"], listed["matched"], listed["fired"]) == (0, 2, 2)


def test_rules_are_consulted_in_order_and_the_first_hit_wins(tmp_path: Path) -> None:
    store = FaultStore(tmp_path)
    first = store.add(RuleSpec(path="/a", count=1, status=500))
    second = store.add(RuleSpec(path="/*", delay=0.5))
    assert [store.first_hit("GET", "/a") for _ in range(2)] == [
        _rule_of(store, first["id"]),
        _rule_of(store, second["id"]),
    ]
    counts = {r["id"]: r["matched"] for r in store.listing()}
    assert counts == {first["id"]: 1, second["id"]: 1}  # the second was not asked at first


def _rule_of(store: FaultStore, rule_id: int) -> Rule:
    spec = store.get(rule_id)
    assert spec is not None
    keep = {k: v for k, v in spec.items() if k in RuleSpec.model_fields}
    return Rule.of(rule_id, RuleSpec.model_validate(keep))


def test_a_probability_hits_the_same_turns_for_the_same_seed(tmp_path: Path) -> None:
    def run(where: Path, seed: int) -> list[bool]:
        store = FaultStore(where)
        store.add(RuleSpec(path="/adobe/assets/search", probability=0.3, seed=seed, status=503))
        return [store.first_hit("POST", "/adobe/assets/search") is not None for _ in range(300)]

    one = run(tmp_path / "one", 42)
    assert one == run(tmp_path / "two", 42)
    assert one != run(tmp_path / "three", 43)
    assert 60 < sum(one) < 120
    expected = [draw(42, k) < 0.3 for k in range(1, 301)]
    assert one == expected


def test_a_probability_and_a_count_stop_after_count_hits(tmp_path: Path) -> None:
    store = FaultStore(tmp_path)
    store.add(RuleSpec(path="/x", probability=0.5, count=3, seed=5, status=503))
    hits = [store.first_hit("GET", "/x") is not None for _ in range(50)]
    assert sum(hits) == 3
    k = [i + 1 for i, hit in enumerate(hits) if hit][-1]
    assert [draw(5, i) < 0.5 for i in range(1, k + 1)] == hits[:k]


def test_delete_and_clear(tmp_path: Path) -> None:
    store = FaultStore(tmp_path)
    a = store.add(RuleSpec(path="/a", status=500))
    store.add(RuleSpec(path="/b", status=500))
    assert store.delete(a["id"]) and not store.delete(a["id"])
    assert store.first_hit("GET", "/a") is None
    assert store.first_hit("GET", "/b") is not None
    assert store.clear() == 1
    assert store.listing() == [] and store.first_hit("GET", "/b") is None


def _take(data_dir: Path, n: int, out: Any) -> None:
    store = FaultStore(data_dir)
    out.put(sum(store.first_hit("PUT", "/binary-upload/x/1") is not None for _ in range(n)))


def test_counts_are_exact_across_processes(tmp_path: Path) -> None:
    """Four processes race for a rule's 25 hits: 25 in all, never one more."""
    store = FaultStore(tmp_path)
    store.add(RuleSpec(path="/binary-upload/*", count=25, status=503))
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_take, args=(tmp_path, 40, out)) for _ in range(4)]
    for p in procs:
        p.start()
    taken = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert sum(taken) == 25
    (listed,) = store.listing()
    assert (listed["remaining"], listed["fired"]) == (0, 25)
