"""Reading a process's status line from /proc: its parent, and its start time."""

from __future__ import annotations


def _fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces and parentheses)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()


def parent(pid: int) -> int | None:
    fields = _fields(pid)
    return int(fields[1]) if fields and len(fields) > 1 else None


def start_time(pid: int) -> int | None:
    """Clock ticks since boot: with the pid, an identity that survives pid reuse."""
    fields = _fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None
