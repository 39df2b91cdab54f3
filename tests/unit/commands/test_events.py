"""``assetvault events ...`` on a data directory: register (journal and webhook), list,
remove, rotate-keys; exit codes a script can rely on."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from assetvault.adapters.signing.keys import RsaKeyRing
from assetvault.cli import main
from tests.receivers import Received, Reply, receiver


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_register_list_remove_and_rotate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = str(tmp_path / "data")
    monkeypatch.setenv("ASSETVAULT_FETCH_ALLOW", "127.0.0.1")

    def challenge(r: Received) -> Reply:
        return Reply(200, parse_qs(urlsplit(r.path).query).get("challenge", [""])[0].encode())

    code, out = run(capsys, "events", "register", "--data-dir", data)
    assert code == 0 and "\tjournal\tnot_applicable\tenabled" in out
    journal_id = out.split("\t")[0]
    with receiver(challenge) as hook:
        code, out = run(
            capsys,
            "events",
            "register",
            "--data-dir",
            data,
            "--url",
            hook.url,
            "--types",
            "aem.assets.asset.deleted,aem.assets.asset.published",
            "--client-id",
            "cli-client",
            "--batch",
        )
    assert code == 0 and "\twebhook_batch\tverified\tenabled" in out, out
    assert "/integrations/cli-client/" in out
    with receiver(lambda r: Reply(500)) as dead:
        code, out = run(capsys, "events", "register", "--data-dir", data, "--url", dead.url)
    assert code == 1 and "hook_unreachable\tdisabled" in out  # a script sees the failure

    code, out = run(capsys, "events", "list", "--data-dir", data)
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 3
    assert any("aem.assets.asset.deleted,aem.assets.asset.published" in line for line in lines)

    assert run(capsys, "events", "remove", journal_id, "--data-dir", data)[0] == 0
    assert len(run(capsys, "events", "list", "--data-dir", data)[1].strip().splitlines()) == 2
    assert main(["events", "remove", journal_id, "--data-dir", data]) == 2  # no such one

    keys = tmp_path / "data" / "event-keys"
    before = RsaKeyRing(keys).paths()  # the two pairs in use (made on first use)
    code, out = run(capsys, "events", "rotate-keys", "--data-dir", data)
    after = json.loads((keys / "keys.json").read_text())["slots"]
    before = [p.removeprefix("/prod/keys/pub-key-").removesuffix(".pem") for p in before]
    assert code == 0 and out.startswith("new signing key: /prod/keys/pub-key-")
    assert len(set(before) & set(after)) == 1


def test_a_bad_type_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["events", "register", "--data-dir", str(tmp_path), "--types", "nope"])
    assert code == 2
    assert "nope" in capsys.readouterr().err
