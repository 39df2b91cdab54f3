"""Wiring: builds the adapters named by the settings and the services on top of them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from assetvault.adapters.blobs.base import BlobBackend, DirectUploads
from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.secrets import is_shared_database
from assetvault.adapters.fetch.client import GuardedClient
from assetvault.adapters.fetch.download import UrlDownloader
from assetvault.adapters.fetch.dropbox import DropboxClient
from assetvault.adapters.fetch.guard import AllowList, Guard
from assetvault.adapters.fetch.onedrive import OneDriveClient
from assetvault.adapters.fetch.webhook import GuardedWebhookSender
from assetvault.adapters.media.tools import SandboxedMediaTools
from assetvault.adapters.queue.table import TableJobQueue
from assetvault.adapters.search.sql import SqlSearchIndex
from assetvault.adapters.signing.keys import DatabaseKeyRing, RsaKeyRing
from assetvault.assets.service import AssetService
from assetvault.auth.media_urls import MediaUrlService
from assetvault.auth.service import AuthService
from assetvault.events import repository as events_repo
from assetvault.events.dispatcher import Dispatcher
from assetvault.events.ports import Signer, WebhookSender
from assetvault.events.service import EventService
from assetvault.fragments.service import FragmentService
from assetvault.imports.service import ImportService
from assetvault.imports.sources import SourceService
from assetvault.maintenance.guard import BlobGuard
from assetvault.maintenance.service import MaintenanceService, PositionReader
from assetvault.metadata.service import MetadataService
from assetvault.processing.ports import MediaTools
from assetvault.processing.service import ProcessingService
from assetvault.relations.service import RelationService
from assetvault.runtime.gate import Gate
from assetvault.runtime.wake import Wakeups, wakeups_for
from assetvault.search.indexer import EmbeddedSearch, embedded_position
from assetvault.search.ports import DocumentIndex, DocumentIndexes, SearchIndex
from assetvault.search.service import SearchService
from assetvault.settings import Settings
from assetvault.shares.service import ShareService
from assetvault.snapshots.service import SnapshotService
from assetvault.tree.service import TreeChanges, TreeService
from assetvault.tree.writes import Writes
from assetvault.uploads.service import UploadService

log = logging.getLogger("assetvault.services")


@dataclass
class Services:
    settings: Settings
    db: Database
    blobs: BlobBackend
    tree: TreeService
    uploads: UploadService
    auth: AuthService
    media_urls: MediaUrlService
    maintenance: MaintenanceService
    queue: TableJobQueue
    processing: ProcessingService
    metadata: MetadataService
    relations: RelationService
    assets: AssetService
    changes: TreeChanges
    search: SearchService
    writes: Writes
    events: EventService
    webhooks: WebhookSender
    signer: Signer
    imports: ImportService
    sources: SourceService
    fetch_client: GuardedClient
    fragments: FragmentService
    shares: ShareService
    # How commits wake the consumers of what they appended (runtime/wake.py).
    wakeups: Wakeups
    # The restore gate of the data directory (runtime/gate.py) and the snapshots.
    gate: Gate
    snapshots: SnapshotService
    # The embedded search index and its indexer (None on the database backend).
    embedded_search: EmbeddedSearch | None = None

    def dispatcher(self) -> Dispatcher:
        return Dispatcher(
            self.settings, self.db, self.metadata, self.webhooks, self.signer, self.wakeups
        )

    async def reopen(self) -> None:
        """After a restore or reset: forget what this process held of the state before
        (database connections, the search reader, cached tokens and keys)."""
        await self.db.reopen()
        if self.embedded_search is not None:
            await self.embedded_search.forget()
        self.auth.forget_cached()
        self.settings.__dict__.pop("secret_key", None)  # a cached_property
        self.gate.caught_up()

    async def close(self) -> None:
        try:  # the download events noted and not yet written
            await self.tree.downloads.flush()
        except Exception:
            log.exception("the events of %d downloads were lost", self.tree.downloads.pending)
        self.gate.close()
        self.processing.close()
        close_blobs = getattr(self.blobs, "close", None)  # the S3 store's threads
        if close_blobs is not None:
            close_blobs()
        close = getattr(self.webhooks, "aclose", None)
        if close is not None:
            await close()
        await self.fetch_client.aclose()
        if self.embedded_search is not None:
            await self.embedded_search.close()
        await self.wakeups.close()
        await self.db.dispose()


def blob_store_from_url(url: str, temp_dir: Path | None = None) -> BlobBackend:
    """The store ``url`` names: ``file://`` a local directory, ``s3://`` an S3-compatible
    object store (whose local copies and scratch files go in ``temp_dir``)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from assetvault.adapters.blobs.local import LocalBlobStore

        return LocalBlobStore(Path(parsed.path))
    if parsed.scheme == "s3":
        from assetvault.adapters.blobs.s3 import S3BlobStore

        return S3BlobStore.from_url(url, temp_dir=temp_dir)
    raise ValueError(f"unsupported blob store URL scheme: {parsed.scheme!r}")


def outbox_consumers(embedded: EmbeddedSearch | None) -> list[PositionReader]:
    """Who reads the outbox in this deployment: the event dispatcher always; the embedded
    index's indexer only when search is embedded (the database backend reads the nodes
    themselves, and an index left from an earlier embedded time rebuilds when it finds
    the outbox pruned past it)."""
    consumers: list[PositionReader] = [events_repo.dispatch_position]
    if embedded is not None:
        consumers.append(embedded_position)
    return consumers


def open_tantivy(directory: Path, *, create: bool) -> DocumentIndex:
    """The embedded index at ``directory``; Tantivy (23 MiB) is imported by the first
    search of a process that only reads the index (an API process under serve), not
    by every process that might search."""
    from assetvault.adapters.search.tantivy import open_tantivy as open_index

    return open_index(directory, create=create)


def build_services(
    settings: Settings,
    *,
    blobs: BlobBackend | None = None,
    media: MediaTools | None = None,
    search_index: SearchIndex | None = None,
    webhooks: WebhookSender | None = None,
) -> Services:
    """The services on the adapters the settings name; ``blobs``, ``media`` and
    ``search_index`` replace the blob store, the media tools and the search index (tests
    pass in-memory fakes, tests/fakes.py)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    if blobs is None:
        blobs = blob_store_from_url(settings.resolved_blobs_url, settings.data_dir / "blob-temp")
    if media is None:
        media = SandboxedMediaTools()
    wakeups = wakeups_for(settings.resolved_database_url, settings.data_dir)
    embedded: EmbeddedSearch | None = None
    if search_index is None:
        backend = settings.search_backend
        if backend == "auto":
            backend = "tantivy" if db.is_sqlite else "database"
        if backend == "tantivy":
            indexes: DocumentIndexes = open_tantivy  # imports Tantivy at the first search
            if settings.search_index_here:  # it indexes here: it opens the index at once
                from assetvault.adapters.search import tantivy

                indexes = tantivy.open_tantivy
            embedded = EmbeddedSearch(
                db,
                settings.data_dir / "search",
                indexes,
                index_here=settings.search_index_here,
                wait_seconds=settings.search_wait_seconds,
                first_wait_seconds=settings.search_first_wait_seconds,
                wakeups=wakeups,
                safety_seconds=settings.wake_safety_seconds,
            )
            search_index = embedded
        elif backend == "database":
            search_index = SqlSearchIndex.for_database(db)
        else:
            raise ValueError(f"unknown search backend {backend!r}: tantivy, database or auto")
    queue = TableJobQueue(db)
    writes = Writes(db, blobs, queue, wakeups)
    tree = TreeService(db, writes)
    guard = BlobGuard()
    processing = ProcessingService(settings, db, blobs, queue, writes, media)
    writes.on_new_original(processing.enqueue)
    relations = RelationService(db, writes)
    metadata = MetadataService(db, writes)
    if webhooks is None:
        webhooks = GuardedWebhookSender(
            Guard(AllowList.parse(settings.fetch_allow)),
            timeout=settings.events_timeout_seconds,
            max_body=settings.events_response_max_bytes,
        )
    # On a shared database every machine signs with the same pairs, kept there.
    signer: Signer = (
        DatabaseKeyRing(settings.resolved_database_url)
        if is_shared_database(settings.resolved_database_url)
        else RsaKeyRing(settings.data_dir / "event-keys")
    )
    # One guarded client for every outgoing request of imports (the SSRF guard).
    fetch_client = GuardedClient(
        Guard(AllowList.parse(settings.fetch_allow)),
        timeout=httpx.Timeout(
            settings.import_read_timeout_seconds, connect=settings.import_connect_timeout_seconds
        ),
        max_connections=max(20, settings.import_concurrency * 2),
    )
    imports = ImportService(
        settings,
        db,
        writes,
        queue,
        blobs,
        media,
        UrlDownloader(fetch_client, retries=settings.import_retries),
    )
    sources = SourceService(
        settings,
        db,
        imports,
        {
            "dropbox": DropboxClient(
                fetch_client,
                client_id=settings.dropbox_client_id,
                client_secret=settings.dropbox_client_secret,
                auth_url=settings.dropbox_auth_url,
                api_url=settings.dropbox_api_url,
                content_url=settings.dropbox_content_url,
            ),
            "onedrive": OneDriveClient(
                fetch_client,
                client_id=settings.onedrive_client_id,
                client_secret=settings.onedrive_client_secret,
                login_url=settings.onedrive_login_url,
                graph_url=settings.onedrive_graph_url,
            ),
        },
    )
    gate = Gate(settings.data_dir)
    blob_root = (
        getattr(blobs, "root", None)
        if urlparse(settings.resolved_blobs_url).scheme == "file"
        else None
    )
    snapshots = SnapshotService(
        settings,
        db,
        blob_root,
        gate,
        embedded.indexes if embedded is not None else None,
        blobs=blobs,
    )
    auth = AuthService(db)
    return Services(
        settings=settings,
        gate=gate,
        snapshots=snapshots,
        db=db,
        blobs=blobs,
        tree=tree,
        uploads=UploadService(
            settings, tree, blobs, guard, blobs if isinstance(blobs, DirectUploads) else None
        ),
        auth=auth,
        media_urls=MediaUrlService(settings, auth),
        maintenance=MaintenanceService(
            db,
            blobs,
            guard,
            writes,
            outbox_consumers(embedded),
            finished_jobs=[queue.forget_finished, imports.forget_finished],
        ),
        queue=queue,
        processing=processing,
        metadata=metadata,
        relations=relations,
        assets=AssetService(db, queue, relations, writes),
        changes=TreeChanges(db, writes),
        search=SearchService(settings, db, search_index, metadata, media),
        writes=writes,
        events=EventService(settings, db, webhooks, signer),
        webhooks=webhooks,
        signer=signer,
        imports=imports,
        sources=sources,
        fetch_client=fetch_client,
        fragments=FragmentService(db, writes),
        shares=ShareService(settings, db, tree),
        wakeups=wakeups,
        embedded_search=embedded,
    )
