"""``assetvault cf-model load FILE --conf CONFIG`` on a data directory's database (SQLite
and PostgreSQL): the model lands under its /conf path, a bad file is refused with exit
code 2 and a message naming the fault, and ``cf-model list`` shows what is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import anyio.to_thread
import pytest

from assetvault.cli import main
from assetvault.services import Services

MODEL = {
    "name": "author",
    "title": "Author",
    "fields": [
        {"name": "firstName", "label": "First Name", "type": "text-single", "required": True},
        {"name": "bio", "type": "text-multi", "defaultMimeType": "text/html"},
        {"name": "age", "type": "number", "valueType": "long", "default": "30"},
        {"name": "born", "type": "date", "default": "1988-09-26T14:09:00.000-07:00"},
        {"name": "tags", "type": "tags"},
    ],
}


async def run(services: Services, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    if services.settings.database_url:  # PostgreSQL: the command reaches it by its URL
        monkeypatch.setenv("ASSETVAULT_DATABASE_URL", services.settings.database_url)
    argv = [*args, "--data-dir", str(services.settings.data_dir)]
    return await anyio.to_thread.run_sync(main, argv)


async def test_load_stores_the_model_under_its_conf_path(
    services: Services,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    file = tmp_path / "author.json"
    file.write_text(json.dumps(MODEL))
    assert await run(services, monkeypatch, "cf-model", "load", str(file), "--conf", "wknd") == 0
    path = "/conf/wknd/settings/dam/cfm/models/author"
    assert f"loaded {path} (5 fields, enabled)" in capsys.readouterr().out
    model = await services.fragments.model(path)
    assert model is not None and model.title == "Author"
    fields = {f.name: f for f in model.fields}
    assert [f.name for f in model.fields] == ["firstName", "bio", "age", "born", "tags"]
    assert fields["firstName"].label == "First Name" and fields["firstName"].required
    assert fields["bio"].default_mime_type == "text/html" and fields["bio"].data_type == "string"
    assert (fields["age"].data_type, fields["age"].default) == ("long", 30)
    assert (fields["born"].data_type, fields["born"].default) == ("calendar", 591311340000)
    assert fields["tags"].multiple
    # Loading again replaces it.
    file.write_text(json.dumps({**MODEL, "title": "Writer"}))
    assert await run(services, monkeypatch, "cf-model", "load", str(file), "--conf", "wknd") == 0
    again = await services.fragments.model(path)
    assert again is not None and again.title == "Writer"
    assert await run(services, monkeypatch, "cf-model", "list") == 0
    assert f"{path}\tenabled\tfirstName:text-single" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "conf", "fault"),
    [
        ("{not json", "wknd", "is not JSON"),
        (json.dumps({**MODEL, "fields": [{"name": "a b", "type": "text-single"}]}), "wknd", "name"),
        (json.dumps({**MODEL, "fields": [{"name": "n", "type": "number"}]}), "wknd", "valueType"),
        (json.dumps({**MODEL, "fields": [{"name": "n", "type": "colour"}]}), "wknd", "type"),
        (
            json.dumps({**MODEL, "fields": [{"name": "n", "type": "boolean", "default": 3}]}),
            "wknd",
            "default",
        ),
        (json.dumps(MODEL), "../etc", "configuration name"),
    ],
)
async def test_a_bad_model_file_is_refused(
    services: Services,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str,
    conf: str,
    fault: str,
) -> None:
    file = tmp_path / "model.json"
    file.write_text(content)
    assert await run(services, monkeypatch, "cf-model", "load", str(file), "--conf", conf) == 2
    assert fault in capsys.readouterr().err
    assert await services.fragments.models() == []
