"""The signing key ring: two RSA-2048 pairs, rotated one at a time under new names."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from assetvault.adapters.signing.keys import RsaKeyRing


def verifies(ring: RsaKeyRing, body: bytes, signature: str, path: str) -> bool:
    pem = ring.public_key(path.rsplit("/", 1)[-1])
    assert pem is not None
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    try:
        key.verify(base64.b64decode(signature), body, padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


def test_two_pairs_sign_and_verify(tmp_path: Path) -> None:
    ring = RsaKeyRing(tmp_path / "keys")
    signed = ring.sign(b'{"a":1}')
    assert len(signed) == 2 and signed[0][1] != signed[1][1]
    assert all(verifies(ring, b'{"a":1}', sig, path) for sig, path in signed)
    assert not verifies(ring, b'{"a":2}', *signed[0])
    for name in os.listdir(tmp_path / "keys"):
        if name.startswith("private-"):
            assert (tmp_path / "keys" / name).stat().st_mode & 0o777 == 0o600


def test_rotation_replaces_one_pair_at_a_time(tmp_path: Path) -> None:
    ring = RsaKeyRing(tmp_path / "keys")
    other_process = RsaKeyRing(tmp_path / "keys")
    first = ring.paths()
    assert other_process.paths() == first  # both read the same ring
    new = ring.rotate()
    second = other_process.paths()  # rereads the changed index
    assert new in second and len(set(first) & set(second)) == 1
    third = ring.paths() if ring.rotate() else []
    assert len(set(second) & set(third)) == 1 and not set(first) & set(third)
    # Retired public keys are still served; their private keys are gone.
    retired = first[0].rsplit("/", 1)[-1]
    assert ring.public_key(retired) is not None
    assert not (tmp_path / "keys" / retired.replace("pub-key-", "private-")).exists()


def test_only_key_file_names_are_served(tmp_path: Path) -> None:
    ring = RsaKeyRing(tmp_path / "keys")
    for name in ("keys.json", "../secret.key", "private-abcdefghij.pem", "pub-key-x.pem"):
        assert ring.public_key(name) is None


async def test_a_body_signed_looks_at_the_index_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every delivery is signed: its look at keys.json (does it still name the same
    pairs?) is one stat, not a look whether it exists and then a stat."""
    ring = RsaKeyRing(tmp_path / "keys")
    ring.sign(b"{}")  # the pairs are made on first use
    looks: list[Path] = []
    real = Path.stat

    def stat(self: Path, *args: Any, **kwargs: Any) -> os.stat_result:
        if self.name == "keys.json":
            looks.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    signed = await ring.signatures(b'{"a":1}')
    assert len(looks) == 1
    assert all(verifies(ring, b'{"a":1}', s, p) for s, p in signed)
