"""Signed, short-lived upload tokens and part URI tokens.

The upload token carries everything the complete step needs, so an initiate writes
nothing: the probe initiate the upload client sends first, or any abandoned upload,
simply expires. Part URIs carry a token of their own because the client sends part
PUTs without its Authorization header (as it would to cloud blob storage).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from assetvault.errors import Forbidden, InvalidInput


@dataclass(frozen=True)
class UploadTicket:
    upload_id: str
    folder_path: str
    file_name: str
    file_size: int
    mime_type: str
    part_count: int
    max_part_size: int
    user: str
    # The object store's multipart upload the parts go to, when they go straight to the
    # store (S3) rather than through the API; None for parts that come through the API.
    store_upload: str | None = None


@dataclass(frozen=True)
class PartGrant:
    upload_id: str
    number: int
    max_part_size: int
    file_size: int | None = None  # the file's declared size (None in older tokens)


class UploadTokens:
    def __init__(self, secret: bytes, ttl_seconds: int) -> None:
        self.ttl = ttl_seconds
        self._uploads = URLSafeTimedSerializer(secret, salt="assetvault.upload-token")
        self._parts = URLSafeTimedSerializer(secret, salt="assetvault.upload-part")

    def upload_token(self, ticket: UploadTicket) -> str:
        return self._uploads.dumps(asdict(ticket))

    def read_upload_token(self, token: str) -> UploadTicket:
        try:
            data = self._uploads.loads(token, max_age=self.ttl)
            return UploadTicket(**data)
        except SignatureExpired as exc:
            raise InvalidInput("the upload token has expired; initiate the upload again") from exc
        except (BadSignature, TypeError) as exc:
            raise InvalidInput("the upload token is not valid") from exc

    def part_token(
        self, upload_id: str, number: int, max_part_size: int, file_size: int | None = None
    ) -> str:
        grant = [upload_id, number, max_part_size]
        return self._parts.dumps(grant if file_size is None else [*grant, file_size])

    def read_part_token(self, token: str, upload_id: str, number: int) -> PartGrant:
        try:
            data = self._parts.loads(token, max_age=self.ttl)
            grant = PartGrant(*data[:4])
        except SignatureExpired as exc:
            raise Forbidden("the upload URI has expired") from exc
        except (BadSignature, TypeError, IndexError, KeyError) as exc:
            raise Forbidden("the upload URI's signature is not valid") from exc
        if grant.upload_id != upload_id or grant.number != number:
            raise Forbidden("the upload URI's signature is for another part")
        return grant
