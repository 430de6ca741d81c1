"""Reading /proc: a process's parent and start time, the processes under it, and what they use."""

from __future__ import annotations

import os


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


def tree(pid: int) -> list[int]:
    """pid and every process descended from it (through /proc/PID/task/TID/children)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as f:
                    queue.extend(int(child) for child in f.read().split())
            except OSError:
                continue
    return found


def usage(pids: list[int]) -> tuple[float, int]:
    """(CPU seconds, resident bytes) summed over the processes that still exist."""
    ticks, pages = 0, 0
    for pid in pids:
        fields = _fields(pid)
        if fields and len(fields) > 21:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
            pages += int(fields[21])  # rss
    return ticks / os.sysconf("SC_CLK_TCK"), pages * os.sysconf("SC_PAGE_SIZE")
