"""``assetvault import-url``: submit URL imports to a running Assetvault and follow them.

    assetvault import-url --server URL --token T --folder /content/dam/x FILE.csv | URL...

The files come as URLs on the command line, as a text file with one URL a line, or as
a CSV file with a ``url`` column (optional ``fileName``, ``mimeType``, ``fileSize``;
every other column is an assetMetadata property of that file). More than 300 files are
sent as several jobs of at most 300 (the Author API's limit). The jobs' progress is
shown with a progress bar; at the end each failed file is listed with its reason. The
exit code is 0 only when every file was imported, 1 when some failed, 2 when the
request itself was refused or the server could not be reached.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

BATCH = 300
FROM_URL = "/adobe/assets/import/fromUrl"


class UsageError(Exception):
    pass


@dataclass
class FileSpec:
    url: str
    file_name: str
    mime_type: str | None = None
    file_size: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"fileName": self.file_name, "url": self.url}
        if self.mime_type:
            doc["mimeType"] = self.mime_type
        if self.file_size is not None:
            doc["fileSize"] = self.file_size
        if self.metadata:
            doc["assetMetadata"] = self.metadata
        return doc


def name_of(url: str) -> str:
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    if not name:
        raise UsageError(f"{url}: no file name in the URL; give one in a CSV fileName column")
    return name


def from_csv(path: Path) -> list[FileSpec]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "url" not in reader.fieldnames:
            raise UsageError(f"{path}: a CSV needs a header row with a url column")
        specs = []
        for line, row in enumerate(reader, start=2):
            url = (row.pop("url") or "").strip()
            if not url:
                raise UsageError(f"{path}:{line}: the url is empty")
            size = (row.pop("fileSize", None) or "").strip()
            if size and not size.isdigit():
                raise UsageError(f"{path}:{line}: fileSize {size!r} is no number of bytes")
            specs.append(
                FileSpec(
                    url=url,
                    file_name=(row.pop("fileName", None) or "").strip() or name_of(url),
                    mime_type=(row.pop("mimeType", None) or "").strip() or None,
                    file_size=int(size) if size else None,
                    metadata={k: v for k, v in row.items() if k and v not in (None, "")},
                )
            )
        return specs


def collect(sources: list[str]) -> list[FileSpec]:
    specs: list[FileSpec] = []
    for source in sources:
        if "://" in source:
            specs.append(FileSpec(source, name_of(source)))
            continue
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"{source}: neither a URL nor a file")
        if path.suffix.lower() == ".csv":
            specs.extend(from_csv(path))
        else:
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    specs.append(FileSpec(line.strip(), name_of(line.strip())))
    if not specs:
        raise UsageError("no files to import")
    return specs


def _problem(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail") or r.text)
    except ValueError:
        return r.text[:500]


def run(args: argparse.Namespace, console: Console) -> int:
    specs = collect(args.sources)
    metadata = json.loads(args.metadata) if args.metadata else {}
    if not isinstance(metadata, dict):
        raise UsageError("--metadata must be a JSON object")
    token = args.token or os.environ.get("ASSETVAULT_TOKEN")
    if not token:
        raise UsageError("a token is needed: --token or ASSETVAULT_TOKEN")
    headers = {"Authorization": f"Bearer {token}", "X-Api-Key": args.api_key}
    with httpx.Client(base_url=args.server, headers=headers, timeout=60) as http:
        jobs: list[str] = []
        for start in range(0, len(specs), BATCH):
            body: dict[str, Any] = {
                "folder": args.folder,
                "files": [s.body() for s in specs[start : start + BATCH]],
            }
            if metadata:
                body["assetMetadata"] = metadata
            r = http.post(FROM_URL, json=body)
            if r.status_code != 202:
                console.print(f"[red]refused ({r.status_code}): {_problem(r)}[/red]")
                return 2
            jobs.append(r.headers["location"])
        done: dict[str, dict[str, Any]] = {}
        with Progress(
            TextColumn("[bold]importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task("import", total=len(specs), failed=0)
            while len(done) < len(jobs):
                imported = failed = 0
                wait = 1.0
                for url in jobs:
                    doc = done.get(url)
                    if doc is None:
                        r = http.get(url)
                        if r.status_code != 200:
                            console.print(f"[red]{url}: {r.status_code} {_problem(r)}[/red]")
                            return 2
                        doc = r.json()
                        if doc["state"] != "PROCESSING":
                            done[url] = doc
                        wait = min(wait, float(r.headers.get("retry-after", "1")))
                    imported += doc["progress"]["imported"]
                    failed += doc["progress"]["failed"]
                bar.update(task, completed=imported + failed, failed=failed)
                if len(done) < len(jobs):
                    time.sleep(min(max(wait, 0.2), args.poll))
        failures: list[dict[str, Any]] = []
        for url in jobs:
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 50}
                if cursor:
                    params["cursor"] = cursor
                page = http.get(url.replace("/status", "/result"), params=params).json()
                failures.extend(i for i in page["items"] if i["status"] != "imported")
                cursor = page.get("cursor")
                if not cursor:
                    break
    for item in failures:
        reason = (item.get("error") or {}).get("detail", item["status"])
        console.print(f"[red]failed[/red] {item['fileName']}: {reason}")
    total = len(specs)
    console.print(f"{total - len(failures)} of {total} file(s) imported into {args.folder}")
    return 0 if not failures else 1


def cmd_import_url(args: argparse.Namespace) -> int:
    console = Console(stderr=False)
    try:
        return run(args, console)
    except (UsageError, json.JSONDecodeError, OSError) as exc:
        print(f"assetvault import-url: {exc}", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"assetvault import-url: {args.server}: {exc}", file=sys.stderr)
        return 2


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "import-url",
        help="import files from URLs into a running server, following the progress",
        description=__doc__.split("\n\n")[2] if __doc__ else None,
    )
    p.add_argument("sources", nargs="+", metavar="CSV|FILE|URL")
    p.add_argument("--folder", required=True, help="target /content/dam path or folder URN")
    p.add_argument(
        "--server",
        default=os.environ.get("ASSETVAULT_URL", "http://127.0.0.1:4502"),
        help="the server's base URL (default: $ASSETVAULT_URL or http://127.0.0.1:4502)",
    )
    p.add_argument("--token", default=None, help="an API token (default: $ASSETVAULT_TOKEN)")
    p.add_argument("--api-key", default="assetvault-cli", help="the X-Api-Key to send")
    p.add_argument("--metadata", default=None, help="assetMetadata for every file, as JSON")
    p.add_argument("--poll", type=float, default=2.0, help="longest wait between polls (s)")
    p.set_defaults(func=cmd_import_url)
