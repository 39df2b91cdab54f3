"""Wake-ups, not polls: a commit wakes the consumers of what it appended.

Topics (docs/runtime.md, "Wake-ups, not polls"): ``outbox`` (new outbox rows: the search
indexer, the event dispatcher), ``jobs`` (jobs enqueued or re-queued: the workers),
``indexed`` (the indexer published a position: searches waiting for their own write).

A consumer takes a listener *before* its first read, reads, and waits on the listener;
after every wake-up (or time-out) it reads its position again. A wake-up carries no data
and only shortens a wait: many notifications coalesce into one, and a consumer that
finds nothing new simply waits again. A slow time-out stays as a safety net, for a
notification lost to a crash between a commit and its notify.

Two implementations of the port:

- ``SocketWakeups`` (the embedded default): each listening process binds one Unix
  datagram socket per topic under ``<data dir>/run/wake/<topic>/``; ``notify`` sends one
  byte to every socket there without blocking (a full socket already has a wake-up
  pending; a socket whose process is gone refuses, and is removed). The event loop
  watches the socket itself: no thread, no timer.
- ``PostgresWakeups``: the write path issues ``pg_notify`` inside its transaction, so
  PostgreSQL sends it at commit and only if the transaction commits; listeners
  ``LISTEN`` on one dedicated connection per process, which is what wakes consumers on
  other machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import text

from assetvault.adapters.database.connection import Connection

if TYPE_CHECKING:  # imported when first used: SQLite processes never load it
    import asyncpg

log = logging.getLogger("assetvault.runtime.wake")

OUTBOX = "outbox"
JOBS = "jobs"
INDEXED = "indexed"
TOPICS = (OUTBOX, JOBS, INDEXED)

# A Unix socket's path holds at most 107 bytes on Linux; a longer one is reached through
# the directory's descriptor (/proc/self/fd/<n>/<name>), which is always short.
_MAX_SOCKET_PATH = 100
# PostgreSQL: the LISTEN connection, lost, is opened again after these many seconds at
# most (doubling from the first).
_RECONNECT_FIRST_SECONDS = 0.5
_RECONNECT_MAX_SECONDS = 30.0


def _checked(topic: str) -> str:
    if topic not in TOPICS:
        raise ValueError(f"unknown wake-up topic {topic!r}: one of {', '.join(TOPICS)}")
    return topic


class Listener(Protocol):
    async def wait(self, seconds: float, *, stop: asyncio.Event | None = None) -> bool:
        """Until the topic is notified (True), ``seconds`` pass or ``stop`` is set
        (False). A notification that arrived since the last wait returned counts: it
        returns True at once."""
        ...

    def kick(self) -> None:
        """Wake this listener's waiter from inside the process (no notification sent)."""
        ...


class Wakeups(Protocol):
    async def listen(self, topic: str) -> Listener:
        """A listener of ``topic``, listening when this returns: take it before the first
        read of what the topic announces, so no notification falls between."""
        ...

    async def before_commit(self, conn: Connection, topics: Iterable[str]) -> None:
        """Inside a write transaction that appended what ``topics`` announce, just before
        it commits (PostgreSQL: the NOTIFY, sent by the commit)."""
        ...

    def after_commit(self, topics: Iterable[str]) -> None:
        """After that transaction committed (the embedded default: the datagrams). Never
        blocks, never raises."""
        ...

    def notify(self, topics: Iterable[str]) -> None:
        """Outside any transaction: wake the listeners of ``topics`` now. Never blocks,
        never raises."""
        ...

    async def close(self) -> None: ...


class _Topic:
    """One topic's wake-ups in this process: a counter every wake-up moves, and the
    waiters to wake."""

    def __init__(self) -> None:
        self.generation = 0
        self._waiters: set[asyncio.Future[None]] = set()

    def bump(self) -> None:
        self.generation += 1
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def waiter(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(future)
        return future

    def forget(self, future: asyncio.Future[None]) -> None:
        self._waiters.discard(future)


class TopicListener:
    """A consumer's view of a topic: it remembers which wake-ups it has seen, so several
    consumers of one topic in one process each get every wake-up."""

    def __init__(self, topic: _Topic) -> None:
        self._topic = topic
        self._seen = topic.generation
        self._kicked = False
        self._waiter: asyncio.Future[None] | None = None

    def kick(self) -> None:
        self._kicked = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _take(self) -> bool:
        if self._kicked or self._topic.generation != self._seen:
            self._kicked = False
            self._seen = self._topic.generation
            return True
        return False

    async def wait(self, seconds: float, *, stop: asyncio.Event | None = None) -> bool:
        if self._take():
            return True
        if stop is not None and stop.is_set():
            return False
        waiter = self._waiter = self._topic.waiter()
        stopping: asyncio.Task[Any] | None = None
        try:
            waiting: set[asyncio.Future[Any]] = {waiter}
            if stop is not None:
                stopping = asyncio.ensure_future(stop.wait())
                waiting.add(stopping)
            await asyncio.wait(waiting, timeout=max(seconds, 0.0), return_when="FIRST_COMPLETED")
        finally:
            self._waiter = None
            self._topic.forget(waiter)
            if stopping is not None:
                stopping.cancel()
        return self._take()


class SocketWakeups:
    """The embedded default: Unix datagram sockets under ``directory`` (see the module's
    docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._topics: dict[str, _Topic] = {}
        self._sockets: dict[str, tuple[socket.socket, Path]] = {}
        self._dirs: dict[str, int] = {}  # a topic's directory, opened (O_PATH)
        self._sender: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # What notify has sent: what a test counts.
        self.sent = 0
        self._committed: set[str] = set()  # topics of commits not yet announced

    def _topic_dir(self, topic: str) -> Path:
        return self.directory / _checked(topic)

    def _address(self, topic: str, name: str) -> str:
        """The socket ``name`` of ``topic`` as an address bind and sendto accept."""
        path = str(self._topic_dir(topic) / name)
        if len(path.encode()) <= _MAX_SOCKET_PATH:
            return path
        fd = self._dirs.get(topic)
        if fd is None:
            fd = os.open(self._topic_dir(topic), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            self._dirs[topic] = fd
        return f"/proc/self/fd/{fd}/{name}"

    async def listen(self, topic: str) -> Listener:
        state = self._topics.get(_checked(topic))
        if state is None:
            state = self._topics[topic] = _Topic()
            try:
                self._bind(topic, state)
            except OSError:
                # E.g. a file system without sockets: the safety net answers alone.
                log.warning("wake-ups of %s cannot be received here", topic, exc_info=True)
        return TopicListener(state)

    def _bind(self, topic: str, state: _Topic) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        where = self._topic_dir(topic)
        where.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.bind(self._address(topic, name))
        except OSError:
            sock.close()
            raise
        self._sockets[topic] = (sock, where / name)

        def readable() -> None:
            # Every datagram waiting is one wake-up: many notifications, one bump.
            got = False
            while True:
                try:
                    sock.recv(64)
                    got = True
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
            if got:
                state.bump()

        loop.add_reader(sock.fileno(), readable)

    async def before_commit(self, conn: Connection, topics: Iterable[str]) -> None:
        return None

    def after_commit(self, topics: Iterable[str]) -> None:
        # The changes of one group commit (connection.py) resume in the same turn of the
        # loop: their wake-ups go out once, right after them, not once per change (a
        # directory listing and a datagram per listener each).
        first = not self._committed
        self._committed.update(topics)
        if not first:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._notify_committed()
            return
        loop.call_soon(self._notify_committed)

    def _notify_committed(self) -> None:
        topics, self._committed = self._committed, set()
        self.notify(topics)

    def notify(self, topics: Iterable[str]) -> None:
        for topic in topics:
            try:
                names = os.listdir(self._topic_dir(topic))
            except FileNotFoundError:
                continue  # nobody has listened yet
            except OSError:
                log.warning("wake-ups of %s cannot be sent", topic, exc_info=True)
                continue
            for name in names:
                self._send(topic, name)

    def _send(self, topic: str, name: str) -> None:
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        try:
            self._sender.sendto(b"\0", self._address(topic, name))
            self.sent += 1
        except (BlockingIOError, InterruptedError):
            pass  # its queue is full: a wake-up is pending there already
        except ConnectionRefusedError:
            # No socket is bound there any more: its process is gone. (A listener that
            # binds later binds a new name, so this never removes a live one.)
            with contextlib.suppress(OSError):
                (self._topic_dir(topic) / name).unlink()
        except FileNotFoundError:
            pass  # removed meanwhile
        except OSError as exc:
            if exc.errno not in (errno.ENOTSOCK, errno.EPROTOTYPE):
                log.debug("wake-up of %s/%s not sent: %s", topic, name, exc)

    async def close(self) -> None:
        if self._committed:  # announced before the sockets go
            self._notify_committed()
        for topic, (sock, path) in self._sockets.items():
            if self._loop is not None and not self._loop.is_closed():
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            sock.close()
            with contextlib.suppress(OSError):
                path.unlink()
            self._topics[topic].bump()  # whoever still waits re-reads and finds the end
        self._sockets.clear()
        self._topics.clear()
        for fd in self._dirs.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._dirs.clear()
        if self._sender is not None:
            self._sender.close()
            self._sender = None


def channel(topic: str) -> str:
    return f"assetvault_{_checked(topic)}"


class PostgresWakeups:
    """PostgreSQL: NOTIFY in the writer's transaction, LISTEN on one connection per
    process (see the module's docstring)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._topics: dict[str, _Topic] = {}
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._keeper: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._closed = False
        self._notifying: set[asyncio.Task[None]] = set()

    def _on_notification(self, _conn: Any, _pid: int, name: str, _payload: object) -> None:
        state = self._topics.get(name.removeprefix("assetvault_"))
        if state is not None:
            state.bump()

    async def _connect(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            for topic in self._topics:
                await conn.add_listener(channel(topic), self._on_notification)
        except BaseException:
            await conn.close()
            raise
        conn.add_termination_listener(lambda _c: self._lost.set())
        self._conn = conn
        self._lost.clear()

    async def _keep(self) -> None:
        """Open the connection again when it is lost; every topic then counts as woken
        (notifications sent meanwhile are gone)."""
        delay = _RECONNECT_FIRST_SECONDS
        while not self._closed:
            await self._lost.wait()
            if self._closed:
                return
            async with self._lock:
                if self._conn is not None and not self._conn.is_closed():
                    self._lost.clear()  # opened again meanwhile (by a notify)
                else:
                    self._conn = None
                    try:
                        await self._connect()
                        delay = _RECONNECT_FIRST_SECONDS
                    except Exception:
                        log.warning("wake-ups: LISTEN connection lost; retrying", exc_info=True)
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, _RECONNECT_MAX_SECONDS)
                        continue
            for state in self._topics.values():
                state.bump()

    async def listen(self, topic: str) -> Listener:
        state = self._topics.get(_checked(topic))
        if state is None:
            state = self._topics[topic] = _Topic()
            async with self._lock:
                try:
                    if self._conn is None:
                        await self._connect()
                    else:
                        await self._conn.add_listener(channel(topic), self._on_notification)
                except Exception:
                    # The safety net answers until the connection is back.
                    log.warning("wake-ups: cannot LISTEN to %s", topic, exc_info=True)
                    self._lost.set()
            if self._keeper is None:
                self._keeper = asyncio.create_task(self._keep())
        return TopicListener(state)

    async def before_commit(self, conn: Connection, topics: Iterable[str]) -> None:
        for topic in sorted(set(topics)):
            await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel(topic)})

    def after_commit(self, topics: Iterable[str]) -> None:
        return None  # sent by the commit itself

    def notify(self, topics: Iterable[str]) -> None:
        wanted = sorted({channel(t) for t in topics})
        if not wanted:
            return
        task = asyncio.get_running_loop().create_task(self._notify(wanted))
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    async def _notify(self, channels: list[str]) -> None:
        try:
            async with self._lock:
                if self._conn is None or self._conn.is_closed():
                    await self._connect()
                assert self._conn is not None
                for name in channels:
                    await self._conn.execute("SELECT pg_notify($1, '')", name)
        except Exception:
            log.warning("wake-ups not sent on %s", ", ".join(channels), exc_info=True)

    async def close(self) -> None:
        self._closed = True
        self._lost.set()
        if self._notifying:
            await asyncio.wait(set(self._notifying), timeout=5)
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=5)
            self._conn = None
        for state in self._topics.values():
            state.bump()


def wakeups_for(database_url: str, data_dir: Path) -> Wakeups:
    """The wake-up channel of a deployment: LISTEN/NOTIFY on PostgreSQL (it reaches every
    machine), sockets under the data directory on the embedded default."""
    if database_url.startswith("postgresql"):
        from sqlalchemy.engine import make_url

        dsn = make_url(database_url).set(drivername="postgresql")
        return PostgresWakeups(dsn.render_as_string(hide_password=False))
    return SocketWakeups(data_dir / "run" / "wake")
