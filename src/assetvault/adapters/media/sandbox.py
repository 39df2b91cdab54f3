"""Runs media work in a child process with a memory limit and a deadline.

A decoder that loops, a decompression bomb or a crash in a C library ends the child,
never the worker. Children are forked from a server process that imported the media
libraries once (multiprocessing's forkserver), so a job pays a fork, not an import.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from typing import Any, TypeVar, TypeVarTuple

_PRELOAD = ["assetvault.adapters.media.work"]


class SandboxError(Exception):
    """The work could not finish: refused input, an error, a limit or a crash."""


_R = TypeVar("_R")
_Ts = TypeVarTuple("_Ts")

_context: ForkServerContext | None = None


def _ctx() -> ForkServerContext:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(_PRELOAD)
    return _context


def _child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], memory: int) -> None:
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        conn.send(("ok", fn(*args)))
    except MemoryError:
        conn.send(("error", "the file needs more memory than the processing limit allows"))
    except Exception as exc:  # reported to the parent as the reason
        message = " ".join(str(exc).split()) or type(exc).__name__
        conn.send(("error", message[:500], traceback.format_exc(limit=5)))
    finally:
        conn.close()


_hiding = threading.Lock()


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """multiprocessing makes every child re-import the parent's __main__ (here the whole
    CLI and web stack, about a second a job). The work needs none of it: it is named by
    its own module, which the fork server has loaded, so hide __main__'s path meanwhile.
    One start at a time: a worker runs several jobs at once, each from its own thread,
    and two interleaved hide-and-restore pairs would leave __main__ shown to one start
    (or hidden for good)."""
    with _hiding:
        main = sys.modules["__main__"]
        path = main.__dict__.pop("__file__", None)
        spec = getattr(main, "__spec__", None)
        main.__spec__ = None
        try:
            yield
        finally:
            if path is not None:
                main.__file__ = path
            main.__spec__ = spec


def run(fn: Callable[[*_Ts], _R], *args: *_Ts, timeout: float, memory_bytes: int) -> _R:
    """``fn(*args)`` in a child; its return value, or SandboxError with the reason."""
    ctx = _ctx()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(sender, fn, args, memory_bytes), daemon=True)
    with _main_hidden():
        process.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            process.kill()
            raise SandboxError(f"processing took longer than {timeout:g} s and was stopped")
        try:
            message = receiver.recv()
        except EOFError:
            message = None
    finally:
        receiver.close()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
    if message is None:
        code = process.exitcode or 0
        if code < 0:
            name = signal.Signals(-code).name
            raise SandboxError(f"processing crashed ({name}); the file may be malformed")
        raise SandboxError(f"processing ended without a result (exit code {code})")
    if message[0] == "ok":
        result: _R = message[1]  # fn's own return value, back through the pipe
        return result
    raise SandboxError(message[1])


def warm_up() -> None:
    """Start the fork server now rather than on the first job."""
    run(os.getpid, timeout=60, memory_bytes=0)
