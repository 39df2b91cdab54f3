"""Settings from the environment (``ASSETVAULT_*``) and an optional TOML file.

Everything of the embedded default lives under ``data_dir``; the backends are chosen
by URL only (``database_url``, ``blobs_url``), so the same code runs scaled out.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# Types a browser only displays, never runs as a document of the origin. SVG is an image
# type but a document with scripts, so it is not here.
INLINE_MEDIA_TYPES = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/bmp",
    "image/tiff",
    "image/heic",
    "image/heif",
    "image/vnd.microsoft.icon",
    "image/x-icon",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "video/quicktime",
    "video/mpeg",
    "audio/mpeg",
    "audio/mp4",
    "audio/ogg",
    "audio/wav",
    "audio/webm",
    "audio/flac",
    "audio/aac",
    "application/pdf",
)


def _default_data_dir() -> Path:
    return Path(os.environ.get("ASSETVAULT_DATA_DIR", "./assetvault-data"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ASSETVAULT_",
        toml_file=os.environ.get("ASSETVAULT_CONFIG", "assetvault.toml"),
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    blobs_url: str | None = None
    # With blobs in an S3 store, a GET of an original or a rendition is answered with a
    # 302 to a presigned GET of the object, valid this long, so the bytes never pass
    # through the API process (docs/deploy.md); off, the API streams them as it does
    # from the local directory. The local directory ignores both.
    blobs_redirect: bool = True
    blobs_redirect_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)
    # Public base URL used in absolute links (Siren hrefs, upload URIs). When unset the
    # request's own scheme and host are used, which is what clients on loopback expect.
    public_url: str | None = None

    # Request bodies. Every JSON body of every interface (and JSON text in a form field)
    # is read by one reader: larger is 413, nested deeper is 400, both before parsing.
    json_max_bytes: int = 1024 * 1024
    json_max_depth: int = 32
    # Form bodies (direct-upload initiate and complete, classic folders and comments).
    form_max_bytes: int = 4 * 1024 * 1024
    # A body the server answered before reading it all (a 413, a refusal) is read on
    # and discarded up to these bounds before the answer is sent, so a client that sends
    # its whole body before reading (Python's urllib) gets the answer, not a reset; past
    # them the answer closes the connection (as nginx's lingering close does).
    body_drain_max_bytes: int = 8 * 1024 * 1024
    body_drain_max_seconds: float = 2.0

    # Direct binary upload. Off: initiateUpload.json answers as an AEM 6.5 without direct
    # binary access does (no completeURI), and the AEM upload clients fall back to the
    # create-asset servlet (<folder>.createasset.html) by themselves; its chunks are held
    # to upload_max_part_size, its files to upload_max_file_size.
    direct_binary_upload: bool = True
    upload_min_part_size: int = 1024 * 1024
    # Part URIs are handed out for parts of about this size (more when a file would need
    # more than upload_max_parts): small enough to retry cheaply, large enough to stream.
    upload_preferred_part_size: int = 16 * 1024 * 1024
    upload_max_part_size: int = 256 * 1024 * 1024
    upload_max_file_size: int = 1024 * 1024 * 1024 * 1024  # 1 TiB
    upload_max_parts: int = 10_000
    # One initiate hands out at most this many part URIs in all (parts grow, up to
    # upload_max_part_size, to fit), for at most this many declared bytes: 413 beyond.
    upload_max_initiate_uris: int = 10_000
    upload_max_initiate_bytes: int = 1024 * 1024 * 1024 * 1024  # 1 TiB
    upload_token_ttl_seconds: int = 3600
    # Unreferenced blobs and abandoned staging areas younger than this are left alone by the
    # sweep, so a complete that is between "blob stored" and "row committed" is never raced.
    sweep_grace_seconds: int = 3600
    # Outbox rows are kept at least this long, and always until every consumer of this
    # deployment (the event dispatcher; the embedded search indexer when search is
    # embedded) has read them; the sweep then removes them (docs/write-path.md).
    outbox_retention_seconds: float = 24 * 3600.0
    # Finished jobs (an asset's processing, the Author API's asset jobs, import jobs and
    # their files) stay readable this long after they ended, then the periodic sweep
    # removes them (docs/runtime.md, "What the periodic sweep removes"); queued and running jobs
    # are never removed.
    finished_jobs_retention_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)

    # Consumers (the search indexer, the event dispatcher, the workers, a search waiting
    # for its own write) are woken by the commits that concern them; they also look on
    # their own this often, a safety net for a wake-up lost to a crash (docs/runtime.md).
    wake_safety_seconds: float = Field(default=30.0, gt=0)

    # A request that arrives while a snapshot is being restored (or the data reset) waits
    # this long for it to end, then is answered 503 with Retry-After (docs/ci.md).
    gate_wait_seconds: float = Field(default=5.0, ge=0)

    # API processes `serve` runs over the same data directory (SQLite WAL across
    # processes); default: two on a machine with two cores or more, so both answer.
    api_processes: int | None = None
    # An API process whose event loop has not turned for this long (blocked, deadlocked,
    # stopped) is killed and replaced by serve.
    api_hang_seconds: float = Field(default=60.0, gt=0)

    # serve's worker and background processes run at a lower CPU priority than its API
    # processes: this much niceness added, and Linux's SCHED_BATCH (no wake-up
    # preemption), so requests win the cores while events are delivered, the index
    # written and an ingest processed beside them (docs/runtime.md). 0 (the default
    # until a quiet measurement shows the gain): as the API processes run. Mind that a
    # starved background builds the search index late (searches answer 503 meanwhile).
    roles_nice: int = Field(default=0, ge=0, le=19)

    # Processing (renditions, metadata extraction) in worker processes.
    workers: int | None = None  # jobs `serve`'s worker runs at once; default: one per core
    processing_max_pixels: int = 200_000_000  # larger images are refused, not decoded
    processing_timeout_seconds: float = 300.0
    processing_memory_limit_mb: int = 2048  # address-space limit of the media sandbox
    processing_max_attempts: int = 3
    job_lease_seconds: float = 60.0

    # Search: a PDF sent as the query ("enhanced search") may be this large.
    search_pdf_max_bytes: int = 20 * 2**20
    # The search index: "tantivy" (embedded, under data_dir/search, fed by the outbox),
    # "database" (PostgreSQL full text in the database itself, shared by every machine),
    # or "auto": tantivy on SQLite, database on PostgreSQL.
    search_backend: Literal["auto", "tantivy", "database"] = "auto"
    # Whether this process may write the embedded index itself when no indexer holds it
    # (a lone process: tests, the CLI). `serve` runs one indexer and sets this off in
    # its API processes.
    search_index_here: bool = True
    # How long a search waits for the embedded index to apply the changes committed
    # before it (then it answers from what the index has).
    search_wait_seconds: float = 2.0
    # How long a search waits for the first embedded index when there is none yet (the
    # background role builds it after serve is ready; on a loaded machine that can take
    # seconds), then it answers 503.
    search_first_wait_seconds: float = Field(default=30.0, ge=0)

    # Binaries of these passive types are served inline; every other type (HTML, XHTML,
    # SVG, XML, JavaScript, anything unknown) as an attachment with CSP sandbox, so an
    # uploaded page never runs in Assetvault's origin (see docs/hostile-input.md).
    inline_media_types: list[str] = Field(default_factory=lambda: list(INLINE_MEDIA_TYPES))

    # Outgoing requests (URL imports, webhook deliveries) reach only public addresses;
    # comma-separated host, host:port or CIDR entries open specific other targets
    # (ASSETVAULT_FETCH_ALLOW, e.g. "127.0.0.1:8080,10.0.0.0/8,dam-hooks.internal").
    fetch_allow: str = ""

    # Share links (docs/ui.md, "Share links"): how long a new link lasts unless its
    # creator asks for less or more, and the most anyone may ask for.
    share_link_default_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    share_link_max_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    # Media URLs (docs/ui.md, "Media URLs"): how long a signed URL of one binary, made for
    # a signed-in browser's <video>, <img> or download, opens it.
    media_url_seconds: int = Field(default=300, ge=10, le=3600)

    # Asset events (docs/events.md). The source of every event is
    # acct:aem-p<program>-e<environment>@adobe.com; the journal lives under the org.
    aem_program_id: str = "1"
    aem_environment_id: str = "1"
    ims_org_id: str = "ASSETVAULT@AdobeOrg"
    # Retries wait 1, 2, 4, 8, then every 15 units, for at most events_retry_window
    # seconds (Adobe: a unit is a minute, the window 24 hours); tests shrink both.
    events_retry_unit_seconds: float = 60.0
    events_retry_window_seconds: float = 24 * 3600.0
    events_timeout_seconds: float = 10.0  # per delivery, connecting included
    events_response_max_bytes: int = 64 * 1024  # more of a receiver's answer is not read
    # The health rule: over this window, >= 10 attempts with >= 80 % failed make an
    # active registration unstable, and one still so a window later disabled.
    events_health_window_seconds: float = 24 * 3600.0
    events_validation_seconds: float = 300.0  # a validationUrl is valid this long
    events_journal_retention_seconds: float = 7 * 24 * 3600.0
    events_journal_retry_after_seconds: int = 10
    events_batch_max_events: int = 20
    events_batch_max_bytes: int = 2 * 1024 * 1024
    events_concurrency: int = 16  # deliveries in flight at once
    # The dispatcher's shortest sleep between two rounds that found nothing to do (it is
    # woken by commits and answers; docs/runtime.md).
    events_poll_seconds: float = 0.05
    # Imports (from URLs and from Dropbox / OneDrive sources; docs/import.md).
    import_concurrency: int = 8  # files of one job's part fetched at a time
    # Parts of a job, each a job of its own, so several import runners fetch (and hash)
    # one import at once.
    import_shards: int = 2
    import_max_file_size: int = 100 * 1024**3  # bytes; a larger file fails, the rest import
    import_deadline_seconds: float = 6 * 3600.0  # a job's files not fetched by then fail
    import_connect_timeout_seconds: float = 10.0
    import_read_timeout_seconds: float = 60.0  # between two chunks of a response
    import_retries: int = 3  # further attempts of a file after a 5xx or a timeout
    # Files this large need a source that answers "Range: bytes=0-0" with 206 first (the
    # Author API's rule for files of 10 GB and more).
    import_range_probe_bytes: int = 10 * 1000**3
    import_max_attempts: int = 5  # runs of a job (a crash or kill ends one)
    # Import jobs run at once by the background role (tasks of its one process; never in
    # the processing workers, so a slow source holds none of their capacity).
    import_runners: int = 2
    # The OAuth apps of the sources, and the providers' base URLs (so a provider that
    # follows the documented wire format elsewhere can stand in, e.g. in tests).
    dropbox_client_id: str = ""
    dropbox_client_secret: str = ""
    dropbox_auth_url: str = "https://www.dropbox.com/oauth2/authorize"
    dropbox_api_url: str = "https://api.dropboxapi.com"
    dropbox_content_url: str = "https://content.dropboxapi.com"
    onedrive_client_id: str = ""
    onedrive_client_secret: str = ""
    onedrive_login_url: str = "https://login.microsoftonline.com/common/oauth2/v2.0"
    onedrive_graph_url: str = "https://graph.microsoft.com/v1.0"

    # Lenient by default, as AEM clients vary: unknown headers, query parameters and
    # API-version markers never fail a request. Strict: an unknown query parameter or
    # API-version marker is answered 400 (docs/ci.md, "Lenient by default").
    strict: bool = False

    # Test-harness features (docs/ci.md), off by default and only switched on at start
    # (``serve --faults``, ``serve --journal N``): fault injection rules, and a journal
    # of the last ``journal_size`` requests (0: none, and no cost).
    faults: bool = False
    journal_size: int = Field(default=0, ge=0, le=10_000_000)

    # /adobe/* requires an X-Api-Key as AEM does. Empty list: any non-empty key is accepted.
    api_keys: list[str] = Field(default_factory=list)

    # The secret that signs upload tokens and part URIs, and from which the key that
    # encrypts the import sources' OAuth tokens is derived. Unset: made once and kept in
    # the database on PostgreSQL (shared by every machine), in <data dir>/secret.key on
    # the embedded default. Set it (at least 32 random characters, the same on every
    # machine) to keep it in your own secret store instead; changing it invalidates
    # uploads in progress and the stored source tokens (docs/deploy.md).
    installation_secret: str | None = Field(default=None, min_length=32)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("aem_program_id", "aem_environment_id")
    @classmethod
    def _digits(cls, value: str) -> str:
        if not value.isdigit():
            raise ValueError("AEM program and environment ids are digits")
        return value

    @field_validator("fetch_allow")
    @classmethod
    def _allow_list(cls, value: str) -> str:
        from assetvault.adapters.fetch.guard import AllowList

        AllowList.parse(value)  # a bad entry stops the start, not the first delivery
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'assetvault.db'}"

    @property
    def resolved_blobs_url(self) -> str:
        return self.blobs_url or f"file://{self.data_dir / 'blobs'}"

    @cached_property
    def secret_key(self) -> bytes:
        """Key that signs upload tokens and part URIs (and from which the import sources'
        token key is derived): ``installation_secret`` when set; else, on a shared
        database (PostgreSQL), the one stored in the database, made by the first process
        that needs it, so every machine signs and verifies alike; else made once per
        data directory (``secret.key``)."""
        if self.installation_secret:
            return self.installation_secret.encode()
        from assetvault.adapters.database.secrets import is_shared_database, shared_secret

        if is_shared_database(self.resolved_database_url):
            return shared_secret(
                self.resolved_database_url, "upload-token-secret", lambda: secrets.token_urlsafe(48)
            ).encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # first writer wins; never replace a key in use
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return path.read_text().strip().encode()


def load_settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
