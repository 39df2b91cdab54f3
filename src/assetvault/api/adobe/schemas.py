"""Wire shapes of the Assets Author API, for the OpenAPI document the app publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str


class MetadataEnvelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    assetId: str
    assetMetadata: dict[str, Any]
    repositoryMetadata: dict[str, Any]


class Dimensions(BaseModel):
    width: int
    height: int


class RenditionItem(BaseModel):
    name: str
    format: str
    size: int
    dimensions: Dimensions | None


class RenditionList(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    assetId: str
    repo_name: str = Field(alias="repo:name")
    items: list[RenditionItem]


class VersionItem(BaseModel):
    name: str
    label: str | None
    comment: str | None
    size: int | None
    sha1: str | None
    mimeType: str | None
    created: datetime
    createdBy: str
    current: bool


class VersionList(BaseModel):
    assetId: str
    items: list[VersionItem]


class RelationItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    relationType: Literal["sources", "derived", "others"]
    relatedAssetId: str = Field(min_length=1)


class RelationList(BaseModel):
    items: list[RelationItem]
    cursor: str | None = Field(default=None, min_length=1)


class RelationsCreate(BaseModel):
    items: list[RelationItem] = Field(min_length=1)


class RelationTypeList(BaseModel):
    items: list[str]
    cursor: str | None = Field(default=None, min_length=1)


JobStateName = Literal["PROCESSING", "COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED"]


class JobState(BaseModel):
    jobId: str
    state: JobStateName


class JobResult(BaseModel):
    jobId: str
    state: JobStateName
    errors: list[Problem] = []


class PublishRequest(BaseModel):
    """POST /adobe/assets/publish and /unpublish (docs/events.md)."""

    assets: list[str] = Field(min_length=1, max_length=10, description="urn:aaid:aem:<uuid> ids")
    target: Literal["AEM_PUBLISH", "DYNAMIC_MEDIA"] = "AEM_PUBLISH"


class ArchiveRequest(BaseModel):
    """POST /adobe/assets/archive (an Assetvault extension, docs/author-api.md)."""

    paths: list[str] = Field(
        min_length=1,
        max_length=1000,
        description="asset and folder paths below /content/dam; a folder brings every "
        "asset below it, under the folder's name",
    )


class EventOfInterest(BaseModel):
    provider_id: str = "aem-assets"
    event_code: str


class RegistrationRequest(BaseModel):
    """An event registration, as Adobe I/O Events' registration API takes it."""

    name: str
    description: str | None = None
    client_id: str | None = None
    delivery_type: Literal["webhook", "webhook_batch", "journal"]
    webhook_url: str | None = None
    events_of_interest: list[EventOfInterest | str] = Field(min_length=1)
    enabled: bool = True
    runtime_action: str | None = Field(
        default=None, description="Adobe's; only empty: Assetvault has no I/O Runtime"
    )
    runtimeWebhook: bool | None = Field(default=None, description="Adobe's; only false")
    destination_metadata: dict[str, Any] | None = Field(
        default=None, description="Adobe's, for aws_eventbridge; only empty"
    )
    subscriber_filters: list[dict[str, Any]] | None = Field(
        default=None, description="Adobe's; only empty: no subscriber-defined filters"
    )
