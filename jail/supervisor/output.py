"""The output relay: what the jailed command writes to the caller's stdout and stderr, bounded and masked.

A flooding agent must not fill the caller's disk or context window. When
the profile sets `limits.output_bytes` and a stream is not a terminal (a
person watching a terminal sees the flood and can stop it; a program
reading a pipe or a file cannot), the command writes into a pipe instead
and the supervisor copies at most that many bytes, across both streams,
then one marker line, and discards the rest (draining, so the command
never blocks on a full pipe). When the run has secrets, the relay also
masks them (holding back the tail of each chunk, where one may continue).
"""

from __future__ import annotations

import _thread
import os
from typing import Any

CHUNK = 1 << 16


class OutputCap:
    def __init__(self, limit: int, log: Any, redactor: Any = None) -> None:
        self.limit = limit
        self.log = log
        self.redactor = redactor  # masks the run's secrets in what is relayed
        self.written = 0
        self.truncated = False
        self._lock = _thread.allocate_lock()
        self._relays: list[tuple[int, int, int]] = []  # (target fd, read end, write end)
        self._done: list[Any] = []

    def streams(self) -> tuple[int | None, int | None]:
        """Write ends for the command's stdout and stderr (None: leave that stream as it is)."""
        ends: list[int | None] = []
        for target in (1, 2):
            if os.isatty(target):
                ends.append(None)
                continue
            read_end, write_end = os.pipe2(os.O_CLOEXEC)
            self._relays.append((target, read_end, write_end))
            ends.append(write_end)
        return ends[0], ends[1]

    def start(self) -> None:
        """After the fork: close our copies of the write ends, relay the read ends."""
        for target, read_end, write_end in self._relays:
            os.close(write_end)
            done = _thread.allocate_lock()
            done.acquire()
            self._done.append(done)
            _thread.start_new_thread(self._relay, (read_end, target, done))

    def wait(self, seconds: float = 5.0) -> None:
        """Until every stream reached its end (the jail is gone, so that is soon)."""
        for done in self._done:
            done.acquire(timeout=seconds)

    def _relay(self, source: int, target: int, done: Any) -> None:
        held = b""  # the tail of the last chunk, where a secret may continue
        try:
            while True:
                data = os.read(source, CHUNK)
                if self.redactor:
                    chunk, held = self._redact(held + data, final=not data)
                else:
                    chunk = data
                if not data and not chunk:
                    break
                with self._lock:
                    room = max(0, self.limit - self.written)
                    keep = chunk[:room]
                    self.written += len(keep)
                    first_overflow = len(keep) < len(chunk) and not self.truncated
                    if first_overflow:
                        self.truncated = True
                if keep:
                    _write_all(target, keep)
                if first_overflow:
                    _write_all(target, f"\n[shelljail: output truncated after {self.limit} bytes; "
                                       "raise limits.output_bytes to see more]\n".encode())
                    if self.log is not None:
                        self.log.event("limit", limit="output_bytes", bytes=self.limit)
                if not data:
                    break
        except OSError:
            pass
        finally:
            os.close(source)
            done.release()

    def _redact(self, data: bytes, final: bool) -> tuple[bytes, bytes]:
        """(what may go out now, masked; what to hold back until the next chunk).

        Mask first, then hold back the last (longest form - 1) bytes: any secret that
        continues in the next chunk starts within them, so no part of it goes out early.
        """
        masked = self.redactor.text(data.decode("utf-8", errors="surrogateescape")).encode(
            "utf-8", errors="surrogateescape")
        keep = 0 if final else max(0, self.redactor.longest - 1)
        cut = max(0, len(masked) - keep)
        while 0 < cut < len(masked) and (masked[cut] & 0xC0) == 0x80:
            cut -= 1  # never split a UTF-8 character
        return masked[:cut], masked[cut:]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BrokenPipeError:
            return
