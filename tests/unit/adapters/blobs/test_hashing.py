"""The hashing threads of blob writes in a forked process: serve forks its API processes
after work in its own process (a seed, a snapshot load) may have started them."""

from __future__ import annotations

import hashlib
import os

from assetvault.adapters.blobs.hashing import Hashes


def _hash_once(data: bytes) -> str:
    hashes = Hashes()
    hashes.start_batch([data])()
    return hashes.digests().sha256


def test_a_forked_process_hashes_on_threads_of_its_own() -> None:
    for _ in range(8):  # the pool's threads are started and left idle in this process
        assert _hash_once(b"parent") == hashlib.sha256(b"parent").hexdigest()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a batch must be hashed, not queued for threads it lacks
        os.close(read)
        try:
            ok = _hash_once(b"child") == hashlib.sha256(b"child").hexdigest()
            os.write(write, b"ok" if ok else b"wrong")
        finally:
            os._exit(0)
    os.close(write)
    import select

    ready, _, _ = select.select([read], [], [], 10)
    answer = os.read(read, 16) if ready else b"hung"
    os.close(read)
    if not ready:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    assert answer == b"ok"
