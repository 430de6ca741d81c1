"""inotify(7) through the C library handle the other kernel wrappers share.

Not the inotify_simple package: it finds libc with ctypes.util.find_library, which imports subprocess,
shutil and tempfile and runs `/sbin/ldconfig -p` (a fork and an exec of the supervisor), 15-25 ms of CPU
in every session with a timeline, taken while the jail starts on the same cores (#27). The descriptor is
always close-on-exec and non-blocking: no jail process gets it, and a read never waits.
"""

from __future__ import annotations

import array
import ctypes
import fcntl
import os
import struct
import termios

from jail.kernel.libc import check, libc

# <sys/inotify.h>, the same on every architecture.
MODIFY, ATTRIB, CLOSE_WRITE = 0x2, 0x4, 0x8
MOVED_FROM, MOVED_TO, CREATE, DELETE = 0x40, 0x80, 0x100, 0x200
DELETE_SELF, MOVE_SELF = 0x400, 0x800
UNMOUNT, Q_OVERFLOW, IGNORED = 0x2000, 0x4000, 0x8000
ONLYDIR, EXCL_UNLINK = 0x1000000, 0x4000000
_NONBLOCK, _CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC

_CAT = "/bin/cat"  # holds a detached close's last reference (close)
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, length of the name that follows

libc.inotify_add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
libc.inotify_rm_watch.argtypes = (ctypes.c_int, ctypes.c_int)


class INotify:
    """One inotify instance: its watches and its queue of (wd, mask) events."""

    def __init__(self) -> None:
        self.fd = check(libc.inotify_init1(_NONBLOCK | _CLOEXEC), "inotify_init1")

    def add_watch(self, path: str, mask: int) -> int:
        return check(libc.inotify_add_watch(self.fd, os.fsencode(path), mask), "inotify_add_watch")

    def rm_watch(self, wd: int) -> None:
        check(libc.inotify_rm_watch(self.fd, wd), "inotify_rm_watch")

    def read(self) -> list[tuple[int, int]]:
        """The (wd, mask) of every event queued now (FIONREAD's bytes: those that come meanwhile stay for the
        next read); [] when none is."""
        queued = array.array("i", [0])
        fcntl.ioctl(self.fd, termios.FIONREAD, queued)
        data = b""
        while len(data) < queued[0]:
            try:
                chunk = os.read(self.fd, queued[0] - len(data))
            except InterruptedError:
                continue
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        events = []
        offset = 0
        while offset + _HEADER.size <= len(data):
            wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            events.append((wd, mask))
            offset += _HEADER.size + length
        return events

    def close(self, detached: bool = False) -> None:
        """Close the instance. While it holds watches the kernel's close waits for an SRCU grace period
        (fsnotify_destroy_group), 7-15 ms when a process in new pid and net namespaces has just exited, as a
        jail's has at the end of a session. `detached`, for a process about to exit: the last reference goes
        to a `cat` reading a pipe whose other end only this process holds, so the wait is paid when this
        process has exited, by a process no one waits for. If cat cannot be started, it closes as usual."""
        if self.fd < 0:
            return
        if detached:
            read_end, write_end = os.pipe()  # the write end stays open (close-on-exec) until this process ends
            try:
                os.set_inheritable(self.fd, True)  # cat gets it at the same number (a dup2 onto itself would not
                os.set_inheritable(read_end, True)  # clear close-on-exec), and the pipe as its input
                actions = [(os.POSIX_SPAWN_DUP2, read_end, 0)] if read_end else []
                os.posix_spawn(_CAT, [_CAT], {}, file_actions=[  # its output (it writes none): /dev/null
                    *actions, *((os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)
                                if fd != self.fd)])
            except OSError:
                os.close(write_end)
            finally:
                os.close(read_end)
        os.close(self.fd)
        self.fd = -1
