"""The Author API's published OpenAPI document against the seeds, and schemathesis
against a running server: no 5xx, no response outside the documented schema."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests import media
from tests.live import LiveServer, create_token

pytestmark = pytest.mark.e2e

# Every operation of seeds/000 (2026.04) except search and import, which have their own
# issues; the asset id is {assetId} in the seeds' paths.
SEED_OPERATIONS = {
    ("get", "/adobe/assets/{assetId}"),
    ("delete", "/adobe/assets/{assetId}"),
    ("get", "/adobe/assets/{assetId}/original/as/{seoName}"),
    ("get", "/adobe/assets/{assetId}/renditions"),
    ("get", "/adobe/assets/{assetId}/renditions/{renditionName}/as/{seoName}"),
    ("head", "/adobe/assets/{assetId}/metadata"),
    ("get", "/adobe/assets/{assetId}/metadata"),
    ("patch", "/adobe/assets/{assetId}/metadata"),
    ("get", "/adobe/assets/{assetId}/relations"),
    ("post", "/adobe/assets/{assetId}/relations"),
    ("get", "/adobe/assets/{assetId}/relations/{relationType}"),
    ("delete", "/adobe/assets/{assetId}/relations/{relationType}"),
    ("delete", "/adobe/assets/{assetId}/relations/{relationType}/{relatedAssetId}"),
    ("get", "/adobe/assets/{assetId}/relationTypes"),
    ("get", "/adobe/assets/jobs/{jobId}/status"),
    ("post", "/adobe/assets/search"),
}
# Beyond the seeds: publishing and the admin API of event registrations (docs/events.md).
EVENT_OPERATIONS = {
    ("post", "/adobe/assets/publish"),
    ("post", "/adobe/assets/unpublish"),
    ("post", "/adobe/events/registrations"),
    ("get", "/adobe/events/registrations"),
    ("get", "/adobe/events/registrations/{registrationId}"),
    ("put", "/adobe/events/registrations/{registrationId}"),
    ("patch", "/adobe/events/registrations/{registrationId}"),
    ("delete", "/adobe/events/registrations/{registrationId}"),
}
# Assetvault's own extensions of the Author API (docs/author-api.md).
# The Import API (seeds/002) and the Author API's URL import (docs/import.md).
IMPORT_OPERATIONS = {
    ("post", "/adobe/assets/import/fromUrl"),
    ("get", "/adobe/assets/import/jobs/{importJobId}/status"),
    ("head", "/adobe/assets/import/jobs/{importJobId}/status"),
    ("get", "/adobe/assets/import/jobs/{importJobId}/result"),
    ("head", "/adobe/assets/import/jobs/{importJobId}/result"),
    ("post", "/adobe/import/from-url"),
    ("get", "/adobe/import/jobs"),
    ("get", "/adobe/import/jobs/{importJobId}/status"),
    ("head", "/adobe/import/jobs/{importJobId}/status"),
    ("get", "/adobe/import/jobs/{importJobId}/result"),
    ("head", "/adobe/import/jobs/{importJobId}/result"),
    ("get", "/adobe/import/sources"),
    ("post", "/adobe/import/sources"),
    ("get", "/adobe/import/sources/{importSourceName}"),
    ("delete", "/adobe/import/sources/{importSourceName}"),
    ("get", "/adobe/import/sources/authentication/callback"),
    ("get", "/adobe/import/sources/{importSourceName}/authentication/oauth"),
    ("get", "/adobe/import/sources/{importSourceName}/items"),
    ("get", "/adobe/import/sources/{importSourceName}/items/{itemId}/thumbnail"),
    ("post", "/adobe/import/sources/{importSourceName}/start"),
    ("post", "/adobe/import/sources/{importSourceName}/{itemId}/start"),
}

EXTENSION_OPERATIONS = {
    ("get", "/adobe/assets/{assetId}/versions"),
    ("post", "/adobe/assets/archive"),
    ("get", "/adobe/assets/archive"),  # through a media URL (docs/ui.md)
    ("get", "/adobe/assets/{assetId}/versions/{versionName}/as/{seoName}"),
    ("post", "/adobe/assets/{assetId}/versions/{versionName}/restore"),
}
# Outside /adobe: the Adobe I/O Events journal, its challenge check and its signing keys.
IO_EVENTS_OPERATIONS = {
    ("get", "/events/organizations/{org}/integrations/{credential}/{registrationId}"),
    ("get", "/events/organizations/{org}/integrations/{credential}/{registrationId}/validate"),
    ("get", "/events/validate"),
    ("get", "/prod/keys/{name}"),
    # Adobe I/O Events' own registration paths (docs/events.md).
    ("post", "/events/{consumerOrgId}/{projectId}/{workspaceId}/registrations"),
    ("get", "/events/{consumerOrgId}/{projectId}/{workspaceId}/registrations"),
    ("get", "/events/{consumerOrgId}/{projectId}/{workspaceId}/registrations/{registrationId}"),
    ("put", "/events/{consumerOrgId}/{projectId}/{workspaceId}/registrations/{registrationId}"),
    ("patch", "/events/{consumerOrgId}/{projectId}/{workspaceId}/registrations/{registrationId}"),
    ("delete", "/events/{consumerOrgId}/{projectId}/{workspaceId}/registrations/{registrationId}"),
    ("get", "/events/{consumerOrgId}/registrations"),
}
# Share links (docs/ui.md).
SHARE_OPERATIONS = {
    ("post", "/share-links"),
    ("get", "/share-links"),
    ("delete", "/share-links/{linkId}"),
    # Media URLs (docs/ui.md).
    ("post", "/media-urls"),
}
# The admin API for test harnesses (docs/ci.md). Reset and restore are not fuzzed: each
# replaces the whole state the other cases stand on (tests/api/admin covers them).
ADMIN_OPERATIONS = {
    ("get", "/_assetvault/snapshots"),
    ("post", "/_assetvault/snapshots"),
    ("delete", "/_assetvault/snapshots/{name}"),
    ("get", "/_assetvault/snapshots/{name}/archive"),
    ("put", "/_assetvault/snapshots/{name}/archive"),
}
NOT_FUZZED = {
    ("post", "/_assetvault/reset"),
    ("post", "/_assetvault/snapshots/{name}/restore"),
}
# Cases per operation: a fast subset in `make test`, thousands in `make soak`.
EXAMPLES = int(os.environ.get("ASSETVAULT_FUZZ_EXAMPLES", "25"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "fuzz"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    s = LiveServer(data_dir=tmp_path_factory.mktemp("contract") / "data").start()
    yield s  # type: ignore[misc]
    s.stop()


def test_openapi_lists_the_seed_operations(server: LiveServer) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    published = {
        (method, path)
        for path, operations in spec["paths"].items()
        for method in operations
        if path.startswith("/adobe/")
    }
    assert published >= SEED_OPERATIONS, SEED_OPERATIONS - published
    assert published >= EXTENSION_OPERATIONS, EXTENSION_OPERATIONS - published
    others = EVENT_OPERATIONS | IMPORT_OPERATIONS | EXTENSION_OPERATIONS
    assert published == SEED_OPERATIONS | others | {("get", "/adobe/assets/jobs/{jobId}/result")}


@pytest.mark.timeout(max(300, 12 * EXAMPLES))  # make soak's thousands of cases take time
def test_schemathesis_finds_no_5xx_and_no_schema_breaks(server: LiveServer, tmp_path: Path) -> None:
    token = create_token(server.data_dir, "contract", "admin")
    headers = {"Authorization": f"Bearer {token}", "X-Api-Key": "contract"}
    http = httpx.Client(base_url=server.url, headers=headers, timeout=60)
    data = media.cmyk_jpeg(tmp_path / "c.jpg").read_bytes()
    init = http.post(
        "/content/dam.initiateUpload.json", data={"fileName": "c.jpg", "fileSize": str(len(data))}
    ).json()["files"][0]
    httpx.put(init["uploadURIs"][0], content=data).raise_for_status()
    done = http.post(
        "/content/dam.completeUpload.json",
        data={"fileName": "c.jpg", "fileSize": str(len(data)), "uploadToken": init["uploadToken"]},
    )
    asset_id = done.json()["assetId"]

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    failures: list[str] = []
    calls: dict[str, int] = {}
    published = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        published.add((operation.method.lower(), operation.path))
        if (operation.method.lower(), operation.path) not in NOT_FUZZED:
            exercise(operation, asset_id, headers, failures, calls)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report = {"examples": EXAMPLES, "cases": sum(calls.values()), "failures": len(failures)}
    (ARTIFACTS / "report.json").write_text(json.dumps({**report, "calls": calls}, indent=2))
    print(f"schemathesis: {report}")
    assert not failures, "\n\n".join(failures[:10])
    # Every operation of the document is known here (a new one must be added above), and
    # every one but the two that replace the whole state was really called.
    known = (
        SEED_OPERATIONS
        | {("get", "/adobe/assets/jobs/{jobId}/result")}
        | EVENT_OPERATIONS
        | IMPORT_OPERATIONS
        | EXTENSION_OPERATIONS
        | IO_EVENTS_OPERATIONS
        | SHARE_OPERATIONS
        | ADMIN_OPERATIONS
        | NOT_FUZZED
    )
    assert published == known, (published - known, known - published)
    assert set(calls) == {f"{m.upper()} {p}" for m, p in known - NOT_FUZZED}, sorted(calls)
    # (a GET with no parameters at all has one case to make)
    fixed = {"GET /adobe/events/registrations"}
    few = {name: n for name, n in calls.items() if n < 10 and name not in fixed}
    assert not few, few


def exercise(
    operation: schemathesis.APIOperation,
    asset_id: str,
    headers: dict[str, str],
    failures: list[str],
    calls: dict[str, int],
) -> None:
    name = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case: schemathesis.Case) -> None:
        # Half the cases aim at a real asset, so success paths are exercised too.
        if (
            case.path_parameters
            and "assetId" in case.path_parameters
            and (len(calls) + calls.get(name, 0)) % 2 == 0
        ):
            case.path_parameters["assetId"] = asset_id
        calls[name] = calls.get(name, 0) + 1
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except Exception as exc:  # collected, so one run reports every broken operation
            failures.append(f"{name}: {exc}"[:2000])
            raise

    with contextlib.suppress(Exception):
        run()
