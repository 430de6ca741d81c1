"""The jail's network namespace: a loopback that is up, and nothing else but the bridged ports.

In proxy mode pid 1 listens on the jail's 127.0.0.1 for the proxy and each forward and hands every
accepted connection to the supervisor (see proxy.py): the namespace itself never gets a route out."""

from __future__ import annotations

import fcntl
import os
import struct

from .kernel.libc import check, libc

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
    """Hand each connection to its unix socket's server (the supervisor's proxy or forward), from threads.

    The accepted socket itself is passed (SCM_RIGHTS), not relayed: the supervisor then reads and
    writes the jail's end directly, and the bytes make one hop fewer."""
    if not listeners:
        return
    import threading

    for listener, path in listeners:
        threading.Thread(target=_accept, args=(listener, path), daemon=True).start()


def _accept(listener: object, path: str) -> None:
    import _socket
    import array
    import socket

    assert isinstance(listener, _socket.socket)
    while True:
        try:
            fd, _ = listener._accept()
            client = socket.socket(fileno=fd)
        except OSError:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as upstream:
                upstream.connect(path)
                upstream.sendmsg([b"F"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [client.fileno()]))])
        except OSError:
            pass  # the supervisor is gone: the client sees its connection close
        finally:
            client.close()
