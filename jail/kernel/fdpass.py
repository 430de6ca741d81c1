"""Passing file descriptors over a unix socket (SCM_RIGHTS), written once.

Built on `_socket` and `array`, not `socket`: the jail's pid 1 and the jailed
command pass fds before exec, where importing `socket` would cost start-up time.
"""

from __future__ import annotations

import _socket
import array
import os
from collections.abc import Sequence


def send_fds(sock: _socket.socket, message: bytes, fds: Sequence[int]) -> int:
    """Send `message` with `fds` attached; returns how many bytes of `message` went (the fds go with the first)."""
    return sock.sendmsg([message], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", fds))])


def receive_fd(sock: _socket.socket) -> int | None:
    """One fd passed over `sock`, which is then closed; None if none came. Any further fds are closed:
    the sender (a process of the jail) decides how many it attaches, the receiver keeps one."""
    try:
        _message, ancillary, _flags, _address = sock.recvmsg(1, _socket.CMSG_SPACE(4))
    except OSError:
        return None
    finally:
        sock.close()
    fds = [fd for level, kind, data in ancillary if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS
           for fd in array.array("i", data[:len(data) - len(data) % 4])]
    for extra in fds[1:]:
        os.close(extra)
    return fds[0] if fds else None
