"""The ports of the events domain: the HTTP sender that reaches webhooks (through the
SSRF guard) and the key ring that signs deliveries."""

from __future__ import annotations

from typing import Protocol

from assetvault.events.models import Outcome


class WebhookSender(Protocol):
    async def send(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes | None = None
    ) -> Outcome:
        """One request, bounded by the delivery timeout (connect included) and a cap on
        the response body; errors are outcomes, never exceptions."""
        ...

    async def vet(self, url: str) -> str | None:
        """Why the guard refuses this URL, or None when it may be reached."""
        ...


class Signer(Protocol):
    def sign(self, body: bytes) -> list[tuple[str, str]]:
        """Two (base64 RSASSA-PKCS1-v1_5 SHA-256 signature of the body, public key path)
        pairs, one per key pair in use."""
        ...

    async def signatures(self, body: bytes) -> list[tuple[str, str]]:
        """``sign``'s answer, computed off the event loop (the dispatcher's path)."""
        ...

    def public_key(self, name: str) -> bytes | None:
        """The PEM (SPKI, LF line endings) of a key file name like pub-key-<id>.pem."""
        ...

    def paths(self) -> list[str]:
        """The public key paths in use (the pairs are made on first use)."""
        ...

    def rotate(self) -> str:
        """Replace the older of the two key pairs; returns the new public key's path."""
        ...
