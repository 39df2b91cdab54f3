"""/adobe/assets: the Assets Author API (2025.04 and 2026.04), except search and import,
one module per resource (jobs, assets, renditions, versions, metadata, relations), with
what they share in common.py.

Asset ids are URNs used raw in the path (``/adobe/assets/urn:aaid:aem:<uuid>/metadata``).
Errors are application/problem+json. ETags on every GET/HEAD; PATCH needs If-Match.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from assetvault.api.adobe import assets, jobs, metadata, relations, renditions, versions
from assetvault.api.adobe.schemas import (
    ArchiveRequest,
    Problem,
    PublishRequest,
    RegistrationRequest,
    RelationsCreate,
)

router = APIRouter()
# In the order the routes were declared when they were one module: jobs before the
# one-segment /{assetId}, and every path as it was (none of them overlaps another).
for module in (jobs, assets, renditions, versions, metadata, relations):
    router.include_router(module.router)

# Models the OpenAPI document refers to by name without a route declaring them.
EXTRA_SCHEMAS: list[type[BaseModel]] = [
    Problem,
    RelationsCreate,
    PublishRequest,
    RegistrationRequest,
    ArchiveRequest,
]
