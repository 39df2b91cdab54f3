"""Import sources (Dropbox, OneDrive) of the Import API: each belongs to the user who
made it, and is ``authenticated`` once the provider's OAuth callback (code flow with
PKCE) stored that user's tokens. Tokens and the pending PKCE verifier are stored
encrypted (Fernet, with a key derived from the data directory's secret) and refreshed
when they have expired. Every call to a provider goes through the SSRF guard.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Row, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from assetvault import cursors, mediatypes
from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.tables import import_sources
from assetvault.errors import AlreadyExists, BadGateway, Forbidden, InvalidInput, NotFound
from assetvault.imports.models import FROM_SOURCE, ImportFile, ImportJob, ImportSource, NewFile
from assetvault.imports.ports import (
    Download,
    FetchFailed,
    SourceClient,
    SourceItem,
    SourcePage,
    Thumbnail,
    Tokens,
)
from assetvault.imports.repository import aware
from assetvault.imports.requests import SourceImport
from assetvault.imports.service import ImportService
from assetvault.settings import Settings

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

NAME = re.compile(r"^(?!(authentication|import|items)).*$")
TYPES = ("dropbox", "onedrive")
MAX_NAME_LENGTH = 255
MAX_FILES_PER_IMPORT = 10_000  # files a source import may expand to (folders included)
# What one start reads of a provider's listings, whatever the provider answers: a
# listing that goes on past these (pages of nothing, of folders only, or a cursor that
# comes round again) is the provider's fault, and the start fails with 502 saying so.
MAX_LIST_PAGES = 1_000
MAX_LISTED_ENTRIES = 5 * MAX_FILES_PER_IMPORT
REFRESH_MARGIN = timedelta(seconds=60)
LIST_PAGE = 200

_T = TypeVar("_T")


def _now() -> datetime:
    return datetime.now(UTC)


def _absolute(source: str, item: SourceItem) -> None:
    """A listed item's path is where its folders come from: it must be absolute (an
    empty or relative one would be taken relative to the server's own directory)."""
    if not item.path.startswith("/"):
        raise BadGateway(
            f"import source {source!r}: item {item.id!r} was listed without an absolute path"
        )


def check_source_name(name: Any, field: str = "name") -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{field} is required: a non-empty name")
    if not NAME.match(name):
        raise InvalidInput(
            f"{field}: a source name may not begin with authentication, import or items"
        )
    if len(name) > MAX_NAME_LENGTH or "/" in name or any(ord(c) < 32 for c in name):
        raise InvalidInput(f"{field}: at most {MAX_NAME_LENGTH} characters, no '/' or controls")
    return name


@dataclass(frozen=True)
class _Row:
    source: ImportSource
    oauth_state: str | None
    code_verifier: str | None
    access_token: str | None
    refresh_token: str | None
    expires_at: datetime | None


class SourceService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        imports: ImportService,
        clients: dict[str, SourceClient],
    ) -> None:
        self.settings = settings
        self.db = db
        self.imports = imports
        self.clients = clients
        self._fernet: Fernet | None = None
        imports.source_downloads = self.download_for

    # -- encryption at rest ---------------------------------------------------------------

    @property
    def fernet(self) -> Fernet:
        if self._fernet is None:
            # Imported here: only a process that keeps a source's tokens loads it.
            from cryptography.fernet import Fernet
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            key = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=b"assetvault import-source tokens",
            ).derive(self.settings.secret_key)
            self._fernet = Fernet(base64.urlsafe_b64encode(key))
        return self._fernet

    def _seal(self, value: str | None) -> str | None:
        return None if value is None else self.fernet.encrypt(value.encode()).decode()

    def _open(self, value: str | None) -> str | None:
        if value is None:
            return None
        from cryptography.fernet import InvalidToken

        try:
            return self.fernet.decrypt(value.encode()).decode()
        except InvalidToken:
            return None  # sealed with another key: as good as no token

    # -- the sources ----------------------------------------------------------------------

    @staticmethod
    def _row(row: Row[Any]) -> _Row:
        m = row._mapping
        return _Row(
            source=ImportSource(
                user=m["user"],
                name=m["name"],
                title=m["label"],
                type=m["type"],
                authenticated=m["access_token"] is not None,
                created_at=aware(m["created_at"]),
            ),
            oauth_state=m["oauth_state"],
            code_verifier=m["code_verifier"],
            access_token=m["access_token"],
            refresh_token=m["refresh_token"],
            expires_at=aware(m["expires_at"]),
        )

    async def _load(self, user: str, name: str) -> _Row:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(import_sources).where(
                        import_sources.c.user == user, import_sources.c.name == name
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"import source {name!r} does not exist")
        return self._row(row)

    async def create(self, user: str, body: Any) -> ImportSource:
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object")
        extra = sorted(set(body) - {"name", "title", "type"})
        if extra:
            raise InvalidInput(f"{extra[0]}: unknown field (allowed: name, title, type)")
        name = check_source_name(body.get("name"))
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise InvalidInput("title is required: a non-empty display name")
        kind = body.get("type")
        if kind not in TYPES:
            raise InvalidInput(f"type must be one of {', '.join(TYPES)}")
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    insert(import_sources).values(
                        user=user, name=name, label=title, type=kind, created_at=_now()
                    )
                )
        except IntegrityError:
            raise AlreadyExists(f"an import source named {name!r} already exists") from None
        return (await self._load(user, name)).source

    async def get(self, user: str, name: str) -> ImportSource:
        return (await self._load(user, check_source_name(name, "importSourceName"))).source

    async def list(
        self, user: str, *, limit: int, cursor: str | None
    ) -> tuple[list[ImportSource], str | None]:
        after = ""
        if cursor is not None:
            try:
                value = cursors.unpack(cursor)
            except ValueError:
                value = None
            if not isinstance(value, str):
                raise InvalidInput("cursor: not a cursor of this listing")
            after = value
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(import_sources)
                    .where(import_sources.c.user == user, import_sources.c.name > after)
                    .order_by(import_sources.c.name)
                    .limit(limit + 1)
                )
            ).all()
        found = [self._row(r).source for r in rows]
        more = len(found) > limit
        found = found[:limit]
        return found, cursors.pack(found[-1].name) if more else None

    async def delete(self, user: str, name: str) -> None:
        """Removes the source and, with it, the stored authorisation."""
        check_source_name(name, "importSourceName")
        async with self.db.write() as conn:
            gone = await conn.execute(
                delete(import_sources).where(
                    import_sources.c.user == user, import_sources.c.name == name
                )
            )
        if not gone.rowcount:
            raise NotFound(f"import source {name!r} does not exist")

    # -- OAuth ----------------------------------------------------------------------------

    def _client(self, source: ImportSource) -> SourceClient:
        return self.clients[source.type]

    async def authorization_url(self, user: str, name: str, redirect_uri: str) -> str:
        """Where to send the user: the provider's consent page, with a fresh state and
        PKCE challenge (S256) remembered for the callback."""
        row = await self._load(user, check_source_name(name, "importSourceName"))
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .decode()
            .rstrip("=")
        )
        async with self.db.write() as conn:
            await conn.execute(
                update(import_sources)
                .where(import_sources.c.user == user, import_sources.c.name == name)
                .values(oauth_state=state, code_verifier=self._seal(verifier))
            )
        return self._client(row.source).authorize_url(state, challenge, redirect_uri)

    async def complete_authorization(
        self, state: str | None, code: str | None, error: str | None, redirect_uri: str
    ) -> ImportSource:
        """The provider's redirect back: the state names the source (and so the user who
        asked); the code is exchanged, with the PKCE verifier, for the tokens."""
        if not state:
            raise InvalidInput("state is required")
        async with self.db.read() as conn:
            found = (
                await conn.execute(
                    select(import_sources).where(import_sources.c.oauth_state == state)
                )
            ).first()
        if found is None:
            raise InvalidInput("state: no authorisation of a source is waiting for this state")
        row = self._row(found)
        if error:
            raise Forbidden(f"the provider did not grant access: {error}")
        if not code:
            raise InvalidInput("code is required")
        verifier = self._open(row.code_verifier)
        if verifier is None:
            raise InvalidInput("state: the authorisation can no longer be completed; start again")
        try:
            tokens = await self._client(row.source).exchange(code, verifier, redirect_uri)
        except FetchFailed as exc:
            raise InvalidInput(exc.reason) from None
        async with self.db.write() as conn:
            await conn.execute(
                update(import_sources)
                .where(import_sources.c.oauth_state == state)
                .values(oauth_state=None, code_verifier=None, **self._token_columns(tokens))
            )
        return (await self._load(row.source.user, row.source.name)).source

    def _token_columns(self, tokens: Tokens) -> dict[str, Any]:
        return {
            "access_token": self._seal(tokens.access_token),
            "refresh_token": self._seal(tokens.refresh_token),
            "expires_at": tokens.expires_at,
        }

    async def _token(self, user: str, name: str) -> tuple[SourceClient, str]:
        """The source's client and a valid access token, refreshed if it has expired."""
        row = await self._load(user, name)
        access = self._open(row.access_token)
        if access is None:
            raise Forbidden(
                f"import source {name!r} is not authenticated: authorise it through "
                f"/adobe/import/sources/{name}/authentication/oauth first"
            )
        client = self._client(row.source)
        if row.expires_at is not None and row.expires_at - REFRESH_MARGIN <= _now():
            refresh = self._open(row.refresh_token)
            if refresh is None:
                raise Forbidden(f"import source {name!r}: the authorisation expired; renew it")
            try:
                tokens = await client.refresh(refresh)
            except FetchFailed as exc:
                raise Forbidden(f"import source {name!r}: {exc.reason}") from None
            async with self.db.write() as conn:
                await conn.execute(
                    update(import_sources)
                    .where(and_(import_sources.c.user == user, import_sources.c.name == name))
                    .values(**self._token_columns(tokens))
                )
            access = tokens.access_token
        return client, access

    # -- browsing -------------------------------------------------------------------------

    async def items(
        self,
        user: str,
        name: str,
        *,
        item_id: str | None,
        recursive: bool,
        cursor: str | None,
        limit: int,
    ) -> SourcePage:
        check_source_name(name, "importSourceName")
        client, token = await self._token(user, name)
        return await self._provider(
            client.list(token, item_id, recursive=recursive, cursor=cursor, limit=limit)
        )

    async def thumbnail(self, user: str, name: str, item_id: str) -> Thumbnail:
        check_source_name(name, "importSourceName")
        client, token = await self._token(user, name)
        return await self._provider(client.thumbnail(token, item_id))

    @staticmethod
    async def _provider(call: Awaitable[_T]) -> _T:
        """A provider's failure in the interface's terms (404, 400, 403, else 502)."""
        try:
            return await call
        except FetchFailed as exc:
            kind = {400: InvalidInput, 403: Forbidden, 404: NotFound}.get(exc.status, BadGateway)
            raise kind(exc.reason) from None

    # -- importing ------------------------------------------------------------------------

    async def start(self, user: str, name: str, request: SourceImport) -> ImportJob:
        """Expand the items (a folder stands for every file below it, keeping its
        folders) and submit the job."""
        check_source_name(name, "importSourceName")
        client, token = await self._token(user, name)
        files: list[NewFile] = []
        pages = listed = 0
        for item_id in request.item_ids:
            item = await self._provider(client.item(token, item_id))
            if item.type == "file":
                files.append(self._file(item, None))
            else:
                _absolute(name, item)
                base = posixpath.dirname(item.path.rstrip("/"))
                cursor: str | None = None
                seen: set[str] = set()
                while True:
                    pages += 1
                    if pages > MAX_LIST_PAGES:
                        raise BadGateway(
                            f"import source {name!r}: its listings went on for more than "
                            f"{MAX_LIST_PAGES} pages; import fewer items at once"
                        )
                    page = await self._provider(
                        client.list(token, item.id, recursive=True, cursor=cursor, limit=LIST_PAGE)
                    )
                    listed += len(page.items)
                    if listed > MAX_LISTED_ENTRIES:
                        raise BadGateway(
                            f"import source {name!r}: its listings went on for more than "
                            f"{MAX_LISTED_ENTRIES} entries; import fewer items at once"
                        )
                    for found in page.items:
                        if found.type == "file":
                            _absolute(name, found)
                            relative = posixpath.relpath(posixpath.dirname(found.path), base)
                            files.append(self._file(found, relative))
                    if len(files) > MAX_FILES_PER_IMPORT:
                        raise InvalidInput(
                            f"items: more than {MAX_FILES_PER_IMPORT} files; import fewer at once"
                        )
                    cursor = page.cursor
                    if not cursor:
                        break
                    if cursor in seen:
                        raise BadGateway(
                            f"import source {name!r}: the listing of item {item.id!r} came "
                            "back to a page it had already given"
                        )
                    seen.add(cursor)
        if not files:
            raise InvalidInput("items: the items hold no file to import")
        config = {
            "assetMetadata": request.metadata,
            "source": name,
            "items": request.item_ids,
        }
        return await self.imports.submit(FROM_SOURCE, request.target, config, files, user=user)

    @staticmethod
    def _file(item: SourceItem, relative: str | None) -> NewFile:
        return NewFile(
            file_name=item.name,
            item_id=item.id,
            rel_path=None if relative in (None, ".", "") else relative,
            mime_type=mediatypes.or_none(item.mime_type),  # the provider's word: checked
            file_size=item.size,
        )

    async def download_for(self, job: ImportJob, file: ImportFile) -> Download:
        """How the job fetches a file: with the submitter's own, fresh token."""
        name = str(job.config.get("source", ""))
        try:
            client, token = await self._token(job.user, name)
        except (NotFound, Forbidden) as exc:
            raise FetchFailed(exc.detail, 403) from None
        assert file.item_id is not None
        return client.download(token, SourceItem(file.item_id, file.file_name, "file", ""))
