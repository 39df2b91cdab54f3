"""Media URLs: short-lived, signed, read-only URLs of one binary, for what a browser loads
by URL and cannot send a token with (``<video src>``, ``<img src>``, ``<a download>``).

A signed-in client asks for one with its token (``POST /media-urls``, api/ui/media.py)
and gets the binary's own API path with a ``media`` query parameter::

    /adobe/assets/<id>/renditions/<name>/as/<seo>?media=<expires>.<token id>.<signature>

The signature is an HMAC-SHA256 over the method class (read), the raw request path,
the expiry (Unix seconds) and the id of the API token it was made for, with a key
derived (HKDF) from the data directory's secret (``Settings.secret_key``, the one upload
tokens are signed with; docs/runtime.md plans it into the database with the other keys).
So the URL opens that path only, until it expires, and only while the token it was made
with is still active: every use reads the token's row (no cache), so revoking the token
revokes its media URLs from the next request on. The token itself never goes into the
URL; its id (a UUID, not its name, not its hash) does. docs/hostile-input.md, "Media
URLs", has the threat model.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import zlib
from dataclasses import dataclass

from assetvault.auth.models import Principal
from assetvault.auth.service import AuthService
from assetvault.errors import Forbidden, PayloadTooLarge
from assetvault.settings import Settings

# The longest a grant may be (three fields, a UUID and a 43-character signature).
MAX_GRANT = 120
# The ZIP of a selection (GET /adobe/assets/archive): its grant carries the paths it
# names (compressed, signed with the rest), so it may be longer, up to this; a selection
# whose grant would be longer is POSTed as before.
ARCHIVE_PATH = "/adobe/assets/archive"
MAX_ARCHIVE_GRANT = 6000
MAX_ARCHIVE_TEXT = 256 * 1024  # bytes of the paths' JSON, decompressed, at most


@dataclass(frozen=True)
class MediaGrant:
    """What a valid ``media`` parameter grants: reading ``path`` until ``expires``, as
    the token ``token_id``; for the ZIP, of these ``paths``, saved as ``name``."""

    token_id: str
    path: str
    expires: int
    paths: tuple[str, ...] = ()
    name: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hkdf_sha256(secret: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF (RFC 5869) with SHA-256 and no salt, from the standard library: what
    cryptography's ``HKDF(SHA256(), length, salt=None, info)`` derives (a test holds the
    two equal), without importing cryptography into every API process for one key."""
    prk = hmac.new(b"\0" * hashlib.sha256().digest_size, secret, hashlib.sha256).digest()
    out, block = b"", b""
    for counter in range(1, -(-length // len(prk)) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
    return out[:length]


class MediaUrls:
    def __init__(self, secret: bytes) -> None:
        self._key = hkdf_sha256(secret, b"assetvault media urls")

    def _signature(self, token_id: str, path: str, expires: int) -> str:
        message = f"read\n{path}\n{expires}\n{token_id}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def sign(self, token_id: str, path: str, expires: int) -> str:
        """The ``media`` parameter granting ``path`` (raw, as the request will carry it)
        until ``expires`` (Unix seconds)."""
        return f"{expires}.{token_id}.{self._signature(token_id, path, expires)}"

    def sign_archive(
        self, token_id: str, paths: list[str], expires: int, name: str | None = None
    ) -> str:
        """The ``media`` parameter of ``GET /adobe/assets/archive`` for these paths (and
        the file name to save it as): they travel in it (compressed), and the signature
        covers them."""
        text = json.dumps({"paths": paths, "name": name}, separators=(",", ":"), ensure_ascii=False)
        packed = _b64(zlib.compress(text.encode(), 9))
        signature = self._signature(token_id, f"{ARCHIVE_PATH}\n{text}", expires)
        return f"{expires}.{token_id}.{signature}.{packed}"

    def check(self, grant: str, path: str, *, now: float | None = None) -> MediaGrant:
        """The grant, if it was signed here for this raw ``path`` (and, for the ZIP, the
        paths it carries) and has not expired; otherwise :class:`Forbidden`, saying why
        (none of the reasons is a secret)."""
        archive = path == ARCHIVE_PATH
        parts = (
            grant.split(".") if len(grant) <= (MAX_ARCHIVE_GRANT if archive else MAX_GRANT) else []
        )
        if len(parts) != (4 if archive else 3) or not parts[0].isdigit():
            raise Forbidden("the media URL is not valid")
        expires, token_id, signature = int(parts[0]), parts[1], parts[2]
        paths: tuple[str, ...] = ()
        name = None
        resource = path
        if archive:
            text = _unpack(parts[3])
            paths, name = _archive(text)
            resource = f"{path}\n{text}"
        expected = self._signature(token_id, resource, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise Forbidden("the media URL is not valid for this path")
        if (time.time() if now is None else now) >= expires:
            raise Forbidden("the media URL has expired; ask for a new one")
        return MediaGrant(token_id=token_id, path=path, expires=expires, paths=paths, name=name)


def _unpack(packed: str) -> str:
    """The paths' JSON text from its compressed form, bounded before it is inflated."""
    try:
        data = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4))
        inflate = zlib.decompressobj()
        text = inflate.decompress(data, MAX_ARCHIVE_TEXT)
        if inflate.unconsumed_tail or inflate.unused_data or not inflate.eof:
            raise ValueError("too long, cut short or followed by more")
        return text.decode("utf-8")
    except (ValueError, zlib.error) as exc:  # binascii.Error and UnicodeError are ValueErrors
        raise Forbidden("the media URL is not valid") from exc


def _archive(text: str) -> tuple[tuple[str, ...], str | None]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise Forbidden("the media URL is not valid") from exc
    paths = value.get("paths") if isinstance(value, dict) else None
    name = value.get("name") if isinstance(value, dict) else None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise Forbidden("the media URL is not valid")
    if name is not None and not isinstance(name, str):
        raise Forbidden("the media URL is not valid")
    return tuple(paths), name


class MediaUrlService:
    """Makes and opens media URLs for API tokens (``auth``: whose rows say which token
    is active). The key follows ``settings.secret_key``, which a restore may replace."""

    def __init__(self, settings: Settings, auth: AuthService) -> None:
        self.settings = settings
        self.auth = auth
        self._urls: tuple[bytes, MediaUrls] | None = None

    @property
    def urls(self) -> MediaUrls:
        secret = self.settings.secret_key
        if self._urls is None or self._urls[0] != secret:
            self._urls = (secret, MediaUrls(secret))
        return self._urls[1]

    async def mint(self, principal: Principal, path: str) -> tuple[str, int]:
        """The ``media`` parameter for ``path`` and its expiry (Unix seconds), for the
        token ``principal`` signed in with."""
        token_id = await self.auth.token_id(principal.name)
        if token_id is None:
            raise Forbidden("media URLs are made for API tokens only")
        expires = int(time.time()) + self.settings.media_url_seconds
        return self.urls.sign(token_id, path, expires), expires

    async def mint_archive(
        self, principal: Principal, paths: list[str], name: str | None = None
    ) -> tuple[str, int]:
        """The ``media`` parameter of the ZIP of ``paths`` (saved as ``name``), and its
        expiry."""
        token_id = await self.auth.token_id(principal.name)
        if token_id is None:
            raise Forbidden("media URLs are made for API tokens only")
        expires = int(time.time()) + self.settings.media_url_seconds
        grant = self.urls.sign_archive(token_id, paths, expires, name)
        if len(grant) > MAX_ARCHIVE_GRANT:
            raise PayloadTooLarge(
                "these paths do not fit in a URL; POST them to /adobe/assets/archive instead"
            )
        return grant, expires

    async def open(self, grant: str, path: str) -> tuple[Principal, MediaGrant]:
        """Who reads through this grant at this raw path (the token's principal, read
        now), and what the grant holds."""
        checked = self.urls.check(grant, path)
        principal = await self.auth.principal_by_id(checked.token_id)
        if principal is None or not principal.allows("read"):
            raise Forbidden("the token this media URL was made for is no longer active")
        return principal, checked
