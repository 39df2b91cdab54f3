"""The HTTP/1.1 protocol the API processes serve with: uvicorn's httptools protocol with
two changes for large bodies (docs/runtime.md, "Bytes beside Python").

- **Request bodies** are buffered up to ``BODY_HIGH_WATER`` before reading pauses, not
  uvicorn's 64 KiB: an upload's part then reaches the application in chunks of up to
  about a MiB instead of one per socket read, and reading does not stop and start again
  for every 64 KiB while the application hashes and writes on its threads.
- **Request bodies are not copied on the way.** uvicorn appends each piece of a body
  to a bytearray and hands the application a copy of it: two copies of every byte on
  the event loop, besides the socket's own. Here the pieces (each a socket read, up to
  256 KiB) are kept as they came and handed on as they are, one per message, also when
  several gathered while the application was busy.
- **Files are sent with sendfile.** Each request's scope carries the ``SENDFILE``
  extension; a response that finds it sends ``{"type": SENDFILE, "file": <fd>,
  "offset": n, "count": n}`` after ``http.response.start`` instead of body messages, and
  the bytes go from the page cache to the socket without passing through Python. The
  socket is not blocking: each ``sendfile`` call takes what the socket buffer has room
  for, on a worker thread (a file not in the page cache is read there, not on the
  loop), and the wait for room is on the loop, so a slow client holds no thread.

- **A response of known length goes out in one write.** uvicorn writes the status line
  and headers, then the body, each with its own ``send`` on the socket: two system calls
  and, on loopback, two wake-ups of the client for one answer (the writes were an eighth
  of a busy API process's samples under PATCH, a sixth under the classic listing). When
  ``http.response.start`` carries a Content-Length, its bytes are held and written with
  the body's first piece (a small one joined, a large one after them); anything else
  (a file sent with sendfile, the connection closed, a response without a body message)
  lets them go first. Responses of unknown length stream as before.

Anything else (an ASGI server without this protocol, the test client) has no such
extension in its scope, and responses stream the file as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from uvicorn import Server as UvicornServer
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

SENDFILE = "assetvault.sendfile"
BODY_HIGH_WATER = 1024 * 1024
# Bytes one sendfile call may move; the socket buffer usually takes less.
SENDFILE_CHUNK = 8 * 1024 * 1024
# A client that takes nothing for this long is dropped (uvicorn has no write timeout).
STALLED_SECONDS = 300.0

_Send = Callable[[Any], Awaitable[None]]


_PENDING = "assetvault_pending"  # the cycle's attribute: the body's pieces not yet received
# A body piece up to this size is joined to the held headers (one copy, one send); a
# larger one is written after them (a copy of it would cost more than a system call).
JOIN_BELOW_BYTES = 64 * 1024


class _Corked:
    """The connection's transport while a response of known length starts: what is
    written is held until ``release``, which writes it as one piece (a small body joined
    to the headers), or as it came when it is large. Anything else goes to the transport,
    and closing the connection releases first."""

    __slots__ = ("held", "size", "transport")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.held: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self.held.append(data)
        self.size += len(data)

    def release(self) -> None:
        held, self.held, self.size = self.held, [], 0
        if not held or self.transport.is_closing():
            return
        if len(held) == 1:
            self.transport.write(held[0])
        elif sum(len(piece) for piece in held[1:]) < JOIN_BELOW_BYTES:
            self.transport.write(b"".join(held))
        else:
            for piece in held:
                self.transport.write(piece)

    def close(self) -> None:
        self.release()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _known_length(message: Any) -> bool:
    return any(name.lower() == b"content-length" for name, _ in message.get("headers", ()))


class _Pending:
    """The pieces of a request body received from the socket and not yet handed to the
    application."""

    __slots__ = ("pieces", "size")

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.size = 0

    def take(self) -> bytes:
        """The oldest piece (an empty body when none is here)."""
        if not self.pieces:
            return b""
        piece = self.pieces.pop(0)
        self.size -= len(piece)
        return piece


def _pending(cycle: RequestResponseCycle) -> _Pending:
    found: _Pending | None = getattr(cycle, _PENDING, None)
    if found is None:
        found = _Pending()
        setattr(cycle, _PENDING, found)
    return found


# How often an idle API process wakes: to refresh the Date header (uvicorn wakes ten
# times a second for it and to look for an exit; a signal now wakes it at once).
TICK_SECONDS = 1.0
# How often an API process tells serve that its loop turns (runtime/api.py).
BEAT_SECONDS = 5.0


class Server(UvicornServer):
    """uvicorn's server, woken once a second at rest instead of ten times. With a
    ``heartbeat_fd`` (a pipe to ``serve``), it writes a byte there every
    ``BEAT_SECONDS`` while its event loop turns, so ``serve`` can tell a process that
    hangs from one that is merely idle."""

    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    heartbeat_fd: int | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        beat = self._beat(None)
        while not should_exit:
            # uvicorn refreshes the Date header when the counter is a multiple of 10.
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_SECONDS)
            should_exit = await self.on_tick(counter)
            beat = self._beat(beat)

    def _beat(self, last: float | None) -> float | None:
        """A byte to ``serve`` if the last went ``BEAT_SECONDS`` ago; when it went."""
        if self.heartbeat_fd is None:
            return None
        now = time.monotonic()
        if last is not None and now - last < BEAT_SECONDS:
            return last
        with contextlib.suppress(OSError):  # a full pipe (serve reads late) or serve gone
            os.write(self.heartbeat_fd, b".")
        return now

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
                self._loop.call_soon_threadsafe(self._wake.set)


class Protocol(HttpToolsProtocol):
    def on_body(self, body: bytes) -> None:
        # As uvicorn's, with the larger high-water mark, and the pieces kept apart.
        if (
            self.parser.should_upgrade() and self._should_upgrade()
        ) or self.cycle.response_complete:
            return
        pending = _pending(self.cycle)
        pending.pieces.append(body)
        pending.size += len(body)
        if pending.size > BODY_HIGH_WATER:
            self.flow.pause_reading()
        self.cycle.message_event.set()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        cycle.scope.setdefault("extensions", {})[SENDFILE] = {}
        plain_receive = cycle.receive

        async def receive() -> Any:
            pending = _pending(cycle)
            if pending.pieces and not (cycle.disconnected or cycle.response_complete):
                # Pieces that gathered while the application was busy go on one per
                # message, as they came: joining them would copy every byte again.
                body = pending.take()
                if not pending.pieces and cycle.more_body:
                    cycle.message_event.clear()  # set for what this hands on
                if pending.size <= BODY_HIGH_WATER:
                    cycle.flow.resume_reading()
                more = bool(pending.pieces) or cycle.more_body
                return {"type": "http.request", "body": body, "more_body": more}
            # uvicorn's receive (100-continue, resuming reads, the wait, a disconnect)
            # finds its own buffer empty; the body is what gathered here meanwhile.
            message: Any = await plain_receive()
            if message["type"] == "http.request":
                message["body"] = pending.take()
                message["more_body"] = message["more_body"] or bool(pending.pieces)
            return message

        cycle.receive = receive  # type: ignore[method-assign]
        plain: _Send = cycle.send
        corked: _Corked | None = None

        def uncork() -> None:
            nonlocal corked
            if corked is not None:
                cycle.transport = corked.transport
                held, corked = corked, None
                held.release()

        async def send(message: Any) -> None:
            nonlocal corked
            kind = message["type"]
            if kind == "http.response.start" and corked is None and _known_length(message):
                corked = _Corked(cycle.transport)
                cycle.transport = corked  # type: ignore[assignment]
                try:
                    await plain(message)
                except BaseException:
                    uncork()
                    raise
                if not cycle.response_started:  # refused, or the client is gone
                    uncork()
                return
            if kind == SENDFILE:
                uncork()  # the headers go first; the file follows from the kernel
                await _sendfile(cycle, plain, message)
                return
            try:
                await plain(message)  # the body's first piece joins the held headers
            finally:
                uncork()

        cycle.send = send  # type: ignore[method-assign]
        super()._start_asgi_task(cycle, app)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await asyncio.wait_for(ready, STALLED_SECONDS)
    finally:
        loop.remove_writer(fd)


async def _sendfile(cycle: RequestResponseCycle, plain: _Send, message: Any) -> None:
    """The body of the response from a file, then the end of the response as uvicorn
    would make it; the headers (with Content-Length) went before."""
    if not cycle.response_started or cycle.response_complete:
        raise RuntimeError(f"{SENDFILE} is only valid after http.response.start")
    count = int(message["count"])
    if count > cycle.expected_content_length:
        raise RuntimeError("Response content longer than Content-Length")
    if cycle.disconnected:
        return
    transport = cycle.transport
    loop = asyncio.get_running_loop()
    sock = transport.get_extra_info("socket")
    # The transport owns the socket's descriptor and would refuse a writer of ours on it:
    # a duplicate waits for room instead (the transport writes nothing meanwhile).
    fd = os.dup(sock.fileno())
    try:
        # What the transport still buffers (the headers) goes first.
        while transport.get_write_buffer_size() and not transport.is_closing():
            await _writable(loop, fd)
            await asyncio.sleep(0)  # the transport's own writer runs
        offset, left, src = int(message["offset"]), count, int(message["file"])
        while left > 0:
            try:
                sent = await asyncio.to_thread(
                    os.sendfile, fd, src, offset, min(left, SENDFILE_CHUNK)
                )
            except BlockingIOError:
                await _writable(loop, fd)
                continue
            if sent == 0:
                raise OSError(f"the file ended {left} bytes early")
            offset += sent
            left -= sent
    except (OSError, TimeoutError):
        # Gone or stalled client, or a file shorter than promised: the response cannot
        # be finished, so the connection ends (as uvicorn does after a failed send).
        cycle.disconnected = True
        with contextlib.suppress(Exception):
            transport.close()
        return
    finally:
        os.close(fd)
    cycle.expected_content_length -= count
