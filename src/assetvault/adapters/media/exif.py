"""Metadata reading with exiftool, kept running between files (-stay_open): starting
Perl for every file would cost more than making the renditions."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import exiftool


class ExifReader:
    def __init__(self) -> None:
        self._tool: exiftool.ExifToolHelper | None = None
        self._lock = threading.Lock()

    def read(self, path: str) -> dict[str, Any]:
        """All tags of the file, keyed ``<group>:<tag>`` (-G1), numbers unformatted (-n)."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._tool is None:
                        self._tool = exiftool.ExifToolHelper(
                            common_args=["-G1", "-n", "-struct", "-charset", "filename=utf8"],
                            check_execute=False,
                        )
                        self._tool.run()
                    [tags] = self._tool.get_metadata(path)
                    return dict(tags)
                except Exception:
                    # A dead or confused exiftool: start a fresh one once, then give up.
                    self.close()
                    if attempt == 2:
                        raise
        return {}

    def close(self) -> None:
        if self._tool is not None:
            with contextlib.suppress(Exception):  # already gone
                self._tool.terminate()
            self._tool = None
