"""The jail's network namespace: a loopback that is up, and nothing else but the bridged ports.

In proxy mode pid 1 listens on the jail's 127.0.0.1 for the proxy and each forward and passes each
listener, once, to the supervisor, which accepts and serves the connections itself (see proxy.py: a
forward to the local model speaks HTTP and checks each request): the namespace never gets a route out."""

from __future__ import annotations

import fcntl
import os
import struct

from jail.kernel.libc import check, libc

AF_INET = 2
SOCK_DGRAM = 2
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = "16sH22x"


def loopback_up() -> None:
    """A new network namespace has only `lo`, and it is down until brought up.

    A raw libc socket rather than the `socket` module: this runs on every
    start, and importing `socket` costs 2 ms.
    """
    fd = check(libc.socket(AF_INET, SOCK_DGRAM, 0), "socket")
    try:
        flags = struct.unpack(_IFREQ, fcntl.ioctl(fd, SIOCGIFFLAGS, struct.pack(_IFREQ, b"lo", 0)))[1]
        fcntl.ioctl(fd, SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | IFF_UP))
    finally:
        os.close(fd)


def set_hostname(name: str) -> None:
    encoded = name.encode()
    check(libc.sethostname(encoded, len(encoded)), "sethostname")


def listen(bridges: tuple[tuple[int, str], ...]) -> list[tuple[object, str]]:
    """In pid 1: a TCP listener on the jail's 127.0.0.1 for each bridged port (the proxy, forwards)."""
    if not bridges:
        return []
    import _socket  # not `socket`: this runs before the command starts, and that import costs 2 ms

    listeners = []
    for port, path in bridges:
        listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(512)
        listeners.append((listener, path))
    return listeners


def bridge(listeners: list[tuple[object, str]]) -> None:
    """Pass each listener, once, to its unix socket's server (the supervisor's proxy or forward).

    The supervisor then accepts the jail's connections itself and reads and writes them directly:
    no process of the jail stands between, and a connection costs no hop through pid 1. Pid 1
    keeps no copy; if the supervisor is gone, connecting to the port is refused (docs/results.md: what this
    hand-off saves)."""
    if not listeners:
        return
    import _socket

    from jail.kernel.fdpass import send_fds

    for listener, path in listeners:
        assert isinstance(listener, _socket.socket)
        upstream = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        try:
            upstream.connect(path)
            send_fds(upstream, b"L", [listener.fileno()])
        except OSError:
            pass  # the supervisor is gone: nothing will serve the port
        finally:
            upstream.close()
            listener.close()
