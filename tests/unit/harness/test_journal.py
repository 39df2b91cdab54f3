"""The journal keeps the last N entries and finds them by method, path, status and time."""

from __future__ import annotations

from pathlib import Path

from assetvault.harness.journal import Entry, Filter, JournalStore


def entry(n: int, method: str = "GET", path: str = "/a", status: int = 200) -> Entry:
    return Entry(
        at=1000.0 + n,
        method=method,
        path=path,
        query="",
        status=status,
        ms=1.5,
        request_bytes=n,
        response_bytes=2 * n,
        request_headers={"user-agent": "t"},
        response_headers={},
    )


def test_only_the_last_n_are_kept(tmp_path: Path) -> None:
    store = JournalStore(tmp_path, size=5)
    for n in range(12):
        store.record(entry(n))
    kept = store.entries(Filter())
    assert [e["requestBytes"] for e in kept] == [7, 8, 9, 10, 11]
    assert [e["id"] for e in kept] == [8, 9, 10, 11, 12]
    # Another process's store on the same file keeps the same bound.
    other = JournalStore(tmp_path, size=5)
    other.record(entry(12))
    assert [e["requestBytes"] for e in store.entries(Filter())] == [8, 9, 10, 11, 12]


def test_filters(tmp_path: Path) -> None:
    store = JournalStore(tmp_path, size=100)
    store.record(entry(1, "POST", "/content/dam/a.initiateUpload.json", 201))
    store.record(entry(2, "PUT", "/binary-upload/x/1", 503))
    store.record(entry(3, "PUT", "/binary-upload/x/1", 201))
    store.record(entry(4, "POST", "/content/dam/a.completeUpload.json", 200))
    store.record(entry(5, "POST", "/content/dam/b/c.completeUpload.json", 200))

    def paths(**f: object) -> list[str]:
        return [e["path"] for e in store.entries(Filter(**f))]  # type: ignore[arg-type]

    assert paths(path="/content/dam/a.completeUpload.json") == [
        "/content/dam/a.completeUpload.json"
    ]
    assert len(paths(path="/content/dam/*.completeUpload.json")) == 2
    assert paths(method="put", status=503) == ["/binary-upload/x/1"]
    assert len(paths(status=2)) == 4  # the 2xx class
    assert len(paths(since=1003.0)) == 3
    assert len(paths(after=4)) == 1
    assert paths(limit=2) == [
        "/content/dam/a.completeUpload.json",
        "/content/dam/b/c.completeUpload.json",
    ]
    assert store.clear() == 5 and store.entries(Filter()) == []
