from __future__ import annotations

import pytest

from assetvault.errors import Forbidden, InvalidInput
from assetvault.uploads.tokens import UploadTicket, UploadTokens
from tests.factories import tampered

TICKET = UploadTicket(
    upload_id="ab" * 16,
    folder_path="/content/dam/a",
    file_name="x.jpg",
    file_size=10,
    mime_type="image/jpeg",
    part_count=1,
    max_part_size=100,
    user="u",
)


def test_round_trip() -> None:
    tokens = UploadTokens(b"secret", 60)
    assert tokens.read_upload_token(tokens.upload_token(TICKET)) == TICKET
    grant = tokens.read_part_token(tokens.part_token("ab" * 16, 2, 100), "ab" * 16, 2)
    assert (grant.number, grant.max_part_size, grant.file_size) == (2, 100, None)
    grant = tokens.read_part_token(tokens.part_token("ab" * 16, 2, 100, 10), "ab" * 16, 2)
    assert (grant.number, grant.max_part_size, grant.file_size) == (2, 100, 10)


def test_other_key_tampering_and_expiry() -> None:
    tokens = UploadTokens(b"secret", 60)
    token = tokens.upload_token(TICKET)
    with pytest.raises(InvalidInput, match="not valid"):
        UploadTokens(b"other", 60).read_upload_token(token)
    with pytest.raises(InvalidInput, match="not valid"):
        tokens.read_upload_token(tampered(token))
    with pytest.raises(InvalidInput, match="expired"):
        UploadTokens(b"secret", -1).read_upload_token(token)
    part = tokens.part_token("ab" * 16, 1, 100)
    with pytest.raises(Forbidden, match="another part"):
        tokens.read_part_token(part, "ab" * 16, 2)
    with pytest.raises(Forbidden, match="another part"):
        tokens.read_part_token(part, "cd" * 16, 1)
    with pytest.raises(Forbidden, match="expired"):
        UploadTokens(b"secret", -1).read_part_token(part, "ab" * 16, 1)
    with pytest.raises(Forbidden):
        tokens.read_part_token("garbage", "ab" * 16, 1)
