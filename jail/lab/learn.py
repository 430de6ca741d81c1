"""What a learning run did, read from its seccomp notifications in the supervisor.

`shelljail learn` routes every syscall outside a small core to the supervisor
and lets it continue (seccomp_notify). Each one is counted there; the calls
below are also read for their arguments, from the waiting process's memory
(/proc/PID/mem), to tell a researcher what the workload touched: files opened
for writing outside the workspace, programs run, sockets opened and where
they connected. It is a record, not a check: a process could change the
memory after it was read, which is why this never decides anything.
"""

from __future__ import annotations

import os
import stat
import struct
from typing import Any

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
_WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000  # O_WRONLY, O_RDWR, O_CREAT, O_TRUNC
_QUIET_PREFIXES = ("/dev/", "/proc/")  # the jail's own devices and process files: noise, not findings
# Distinct items kept per finding (each up to 4 KiB): the jail can open millions of names, and the
# supervisor holds them all until the run ends; past this, a new item is only counted in `not_kept`.
MAX_DISTINCT = 2000


class Recorder:
    """Files written outside the workspace, programs, sockets and connections, each with a count."""

    def __init__(self, workspace: str) -> None:
        self.workspace = workspace
        self.syscalls: dict[str, int] = {}  # every notified syscall, set by the supervisor at the end
        self.writes: dict[str, int] = {}
        self.programs: dict[str, int] = {}
        self.sockets: dict[str, int] = {}
        self.connections: dict[str, int] = {}
        self.not_kept = 0  # observations of new items past MAX_DISTINCT

    def observe(self, pid: int, name: str, args: list[int]) -> None:
        """Called for each notified syscall while it waits; never raises (a dead process is common)."""
        try:
            self._observe(pid, name, args)
        except (OSError, ValueError, UnicodeDecodeError):
            pass

    def _observe(self, pid: int, name: str, args: list[int]) -> None:
        if name in ("openat", "open", "creat", "openat2"):
            path, flags = self._open(pid, name, args)
            if path and (name == "creat" or flags & _WRITE_FLAGS) and self._outside(path):
                self._add(self.writes, path)
        elif name in ("execve", "execveat"):
            path = (_string(pid, args[0]) if name == "execve"
                    else self._resolve(pid, _fd(args[0]), _string(pid, args[1]), args[4] & AT_EMPTY_PATH))
            if path and _runnable(pid, path):  # not each PATH entry tried
                self._add(self.programs, path)
        elif name == "socket":
            self._add(self.sockets, f"{_family(args[0])} {_kind(args[1])}")
        elif name == "connect":
            self._add(self.connections, _address(_memory(pid, args[1], min(args[2], 128))))

    def _open(self, pid: int, name: str, args: list[int]) -> tuple[str, int]:
        if name in ("open", "creat"):
            return self._resolve(pid, AT_FDCWD, _string(pid, args[0])), args[1] if name == "open" else 0
        flags = args[2] if name == "openat" else struct.unpack("=Q", _memory(pid, args[2], 8))[0]
        return self._resolve(pid, _fd(args[0]), _string(pid, args[1])), flags

    def _resolve(self, pid: int, dirfd: int, path: str, empty_path: int = 0) -> str:
        """An absolute path as the jailed process sees it (the workspace sits at the same path inside)."""
        if path.startswith("/"):
            return os.path.normpath(path)
        base = os.readlink(f"/proc/{pid}/cwd" if dirfd == AT_FDCWD else f"/proc/{pid}/fd/{dirfd}")
        if empty_path and not path:
            return base
        return os.path.normpath(os.path.join(base, path))

    def _outside(self, path: str) -> bool:
        if path.startswith(_QUIET_PREFIXES):
            return False
        return not (path == self.workspace or path.startswith(self.workspace.rstrip("/") + "/"))

    def _add(self, counts: dict[str, int], key: str) -> None:
        if key in counts or len(counts) < MAX_DISTINCT:
            counts[key] = counts.get(key, 0) + 1
        else:
            self.not_kept += 1

    def summary(self) -> dict[str, Any]:
        return {"writes_outside_workspace": dict(self.writes), "programs": dict(self.programs),
                "sockets": dict(self.sockets), "connections": dict(self.connections), "not_kept": self.not_kept}


def _runnable(pid: int, path: str) -> bool:
    """Whether `path`, as the jail sees it, is a regular file with an execute bit.

    Resolved in the jail's root (RESOLVE_IN_ROOT): a symlink the jail planted is followed as the jail
    sees it, never to a host path (as /proc/PID/root/PATH would, for an absolute link).
    """
    from jail.kernel.beneath import IN_JAIL_ROOT, openat2

    root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = openat2(root, path, os.O_PATH | os.O_CLOEXEC, IN_JAIL_ROOT)
    finally:
        os.close(root)
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    return stat.S_ISREG(mode) and bool(mode & 0o111)


def _fd(value: int) -> int:
    """A file descriptor argument: the low 32 bits, signed (AT_FDCWD is -100)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _memory(pid: int, address: int, size: int) -> bytes:
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        return os.pread(fd, size, address)
    finally:
        os.close(fd)


def _string(pid: int, address: int, limit: int = 4096) -> str:
    """A NUL-terminated string, read a page at a time (a read across an unmapped page fails)."""
    if not address:
        return ""
    data = b""
    while len(data) < limit:
        chunk = _memory(pid, address + len(data), 4096 - (address + len(data)) % 4096)
        end = chunk.find(b"\0")
        if end >= 0:
            return (data + chunk[:end]).decode("utf-8", "surrogateescape")
        if not chunk:
            break
        data += chunk
    return data[:limit].decode("utf-8", "surrogateescape")


def _family(value: int) -> str:
    import socket

    try:
        return socket.AddressFamily(value & 0xFFFFFFFF).name
    except ValueError:
        return f"family {value & 0xFFFFFFFF}"


def _kind(value: int) -> str:
    import socket

    try:
        return socket.SocketKind(value & 0xF).name  # without SOCK_NONBLOCK and SOCK_CLOEXEC
    except ValueError:
        return f"type {value & 0xF}"


def _address(raw: bytes) -> str:
    """A sockaddr as text: 'AF_INET 10.0.0.1:443', 'AF_UNIX /run/x.sock' ('@name' when abstract)."""
    import socket

    if len(raw) < 2:
        return "?"
    family = struct.unpack("=H", raw[:2])[0]
    if family == socket.AF_INET and len(raw) >= 8:
        return f"AF_INET {socket.inet_ntop(socket.AF_INET, raw[4:8])}:{struct.unpack('!H', raw[2:4])[0]}"
    if family == socket.AF_INET6 and len(raw) >= 24:
        return f"AF_INET6 [{socket.inet_ntop(socket.AF_INET6, raw[8:24])}]:{struct.unpack('!H', raw[2:4])[0]}"
    if family == socket.AF_UNIX:
        path = raw[2:]
        if path[:1] == b"\0":
            return "AF_UNIX @" + path[1:].rstrip(b"\0").decode("utf-8", "replace")
        return "AF_UNIX " + path.split(b"\0", 1)[0].decode("utf-8", "replace")
    return _family(family)


def describe(summary: dict[str, Any]) -> list[str]:
    """The recorded findings as TOML comment lines, for the learned profile.

    Every item is jail-made (a path the jail opened, an address it connected to): each is shown through
    display.shown, so a newline, CR or other control in it is an escape in the comment, never a new line.
    """
    from jail.display import shown

    titles = {"writes_outside_workspace": "Files opened for writing outside the workspace",
              "programs": "Programs run", "sockets": "Sockets opened", "connections": "Connections tried"}
    lines = []
    for key, title in titles.items():
        counts = summary.get(key) or {}
        lines.append(f"# {title}: {'none' if not counts else len(counts)}")
        for item in sorted(counts, key=lambda k: (-counts[k], k))[:50]:
            lines.append(f"#   {shown(item)}  ({counts[item]}x)")
        if len(counts) > 50:
            lines.append(f"#   ... and {len(counts) - 50} more (shelljail log --json has more)")
    if summary.get("not_kept"):
        lines.append(f"# ... and {summary['not_kept']} observations of items past the first {MAX_DISTINCT} of a kind")
    return lines
