"""Download events, written beside the responses rather than before them.

Every binary sent is an ``asset.downloaded`` event, but a download changes nothing a
client asked to keep: waiting for its outbox row's commit (a write transaction, the
write turn between processes, an fsync) before the first byte made every small
download as slow as a write, and 200 concurrent downloads queued behind one another's
commits. So a download is noted in memory and the response goes at once; one task per
process writes everything noted meanwhile in one transaction through the write path,
and again as long as more was noted during that commit (group commit without a timer:
an idle server writes a lone download's row straight away).

What this gives up, written down in docs/events.md: the rows of downloads noted but not
yet committed (those of the commit under way and the ones queued behind it, typically
milliseconds' worth) are lost if the process is killed (``kill -9``, a power cut); a
clean shutdown writes them first (``flush``). A batch whose transaction fails is kept
and tried again, up to ``MAX_PENDING`` downloads; beyond that the oldest are dropped and
logged, so a database that stays down cannot make the process hold ever more memory.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from assetvault.tree.models import Node
from assetvault.tree.writes import Writes

log = logging.getLogger("assetvault.downloads")

# Downloads held while their transaction keeps failing; far more than a second's worth.
MAX_PENDING = 50_000
# After a failed write, wait this long (doubling, up to RETRY_MAX_SECONDS) before the next.
RETRY_SECONDS = 0.1
RETRY_MAX_SECONDS = 5.0


@dataclass(frozen=True)
class _Download:
    node: Node
    rendition: str
    user: str | None
    at: datetime


class DownloadRecorder:
    """This process's download events on their way to the outbox (one per event loop:
    the API process's)."""

    def __init__(self, writes: Writes) -> None:
        self._writes = writes
        self._pending: list[_Download] = []
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # downloads whose event was given up (the database stayed down)
        self._flushing = False  # a failed write ends the task instead of waiting to retry

    def note(self, node: Node, rendition: str, user: str | None) -> None:
        """A binary is being sent: its event will be written shortly."""
        self._pending.append(_Download(node, rendition, user, datetime.now(UTC)))
        self._trim()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Write everything noted so far (a clean shutdown; tests). Raises when the
        database refuses; what could not be written stays pending."""
        self._flushing = True
        try:
            task = self._task
            if task is not None and not task.done():
                await asyncio.shield(task)
            while self._pending:
                await self._write()
        finally:
            self._flushing = False

    def _trim(self) -> None:
        over = len(self._pending) - MAX_PENDING
        if over > 0:
            del self._pending[:over]
            self.dropped += over
            log.error("dropped the events of %d downloads: the outbox could not be written", over)

    async def _write(self) -> None:
        batch, self._pending = self._pending, []
        try:
            async with self._writes.change(None) as ch:
                for d in batch:
                    ch.downloaded_earlier(d.node, d.rendition, d.user, d.at)
        except BaseException:
            # Kept, in order, ahead of what was noted meanwhile.
            self._pending[:0] = batch
            self._trim()
            raise

    async def _drain(self) -> None:
        delay = RETRY_SECONDS
        while self._pending:
            try:
                await self._write()
                delay = RETRY_SECONDS
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._flushing:  # flush tries once more itself, and says so
                    return
                log.exception("writing %d download events failed; trying again", self.pending)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
