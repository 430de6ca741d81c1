"""Bytes between sockets, for the proxy and the model forward: splice relays and plain HTTP error answers.

A relay never reads what it carries into Python (splice through a pipe); its byte counts feed the
audit log's network events.
"""

from __future__ import annotations

import _socket
import _thread
import os
from typing import Any

MAX_HEAD = 64 << 10  # a request's head (or a response's, read to say Connection: close): more is refused


def response(status: int, text: str) -> bytes:
    reason = {400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large"}[status]
    body = (text + "\n").encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def splice(source: int, sink: int, counts: list[int], index: int) -> None:
    """Copy until end of file through a pipe with splice(2): the bytes never enter Python; counted.

    1 MB moves, and splice rather than a sockmap or bigger buffers: measured, see docs/results.md.
    """
    import fcntl

    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            fcntl.fcntl(write_end, 1031, 1 << 20)  # F_SETPIPE_SZ: fewer round trips
        except OSError:
            pass
        while True:
            moved = os.splice(source, write_end, 1 << 20)
            if not moved:
                return
            while moved:
                sent = os.splice(read_end, sink, moved)
                moved -= sent
                counts[index] += sent
    finally:
        os.close(read_end)
        os.close(write_end)


def relay(client: Any, upstream: Any) -> tuple[int, int]:
    """Copy both ways until both sides are done; (bytes up, bytes down)."""
    counts = [0, 0]
    upward_done = _thread.allocate_lock()
    upward_done.acquire()

    def pump(source: Any, sink: Any, index: int) -> None:
        try:
            splice(source.fileno(), sink.fileno(), counts, index)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(_socket.SHUT_WR)
            except OSError:
                pass

    def upward() -> None:
        try:
            pump(client, upstream, 0)
        finally:
            upward_done.release()

    upstream.settimeout(None)
    _thread.start_new_thread(upward, ())
    pump(upstream, client, 1)
    upward_done.acquire()  # the client saw the end (its write side was shut), so it ends too
    return counts[0], counts[1]
