"""The media URLs' key derivation (auth/media_urls.py): HKDF from the standard library,
the same key cryptography's HKDF derived before, so URLs signed before an upgrade keep
their meaning."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from assetvault.auth.media_urls import hkdf_sha256


def test_rfc_5869_without_salt_or_info() -> None:
    # RFC 5869, appendix A, test case 3.
    okm = hkdf_sha256(bytes([0x0B] * 22), b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


@pytest.mark.parametrize("length", [1, 32, 33, 64, 100])
@pytest.mark.parametrize("secret", [b"", b"s", b"x" * 64, bytes(range(256))])
def test_the_same_key_as_cryptographys_hkdf(secret: bytes, length: int) -> None:
    info = b"assetvault media urls"
    expected = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)
    assert hkdf_sha256(secret, info, length) == expected
