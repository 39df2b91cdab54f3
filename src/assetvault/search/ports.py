"""The ports of search: the index it asks queries of, and the tool that reads the text
of a PDF given as a query (enhanced search)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from assetvault.processing.ports import Limits


class DocumentText(Protocol):
    async def pdf_text(self, src: Path, limits: Limits) -> str:
        """The text of a PDF's first pages; raises processing.ports.MediaError."""
        ...
