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
    # Public base URL used in absolute links (Siren hrefs, upload URIs). When unset the
    # request's own scheme and host are used, which is what clients on loopback expect.
    public_url: str | None = None

    # Request bodies. Every JSON body of every interface (and JSON text in a form field)
    # is read by one reader: larger is 413, nested deeper is 400, both before parsing.
    json_max_bytes: int = 1024 * 1024
    json_max_depth: int = 32
    # Form bodies (direct-upload initiate and complete, classic folders and comments).
    form_max_bytes: int = 4 * 1024 * 1024

    # Direct binary upload.
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

    # API processes `serve` runs over the same data directory (SQLite WAL across
    # processes); default: two on a machine with two cores or more, so both answer.
    api_processes: int | None = None

    # Processing (renditions, metadata extraction) in worker processes.
    workers: int | None = None  # worker processes `serve` starts; default: one per core
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

    # Binaries of these passive types are served inline; every other type (HTML, XHTML,
    # SVG, XML, JavaScript, anything unknown) as an attachment with CSP sandbox, so an
    # uploaded page never runs in Assetvault's origin (see docs/hostile-input.md).
    inline_media_types: list[str] = Field(default_factory=lambda: list(INLINE_MEDIA_TYPES))

    # /adobe/* requires an X-Api-Key as AEM does. Empty list: any non-empty key is accepted.
    api_keys: list[str] = Field(default_factory=list)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

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
        """Key that signs upload tokens and part URIs; made once per data directory."""
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
