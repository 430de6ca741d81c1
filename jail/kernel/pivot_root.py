"""pivot_root(2): swap the mount namespace's root for a new one."""

from __future__ import annotations

from jail.kernel.libc import check, fsencode, libc, syscall_number


def pivot_root(new_root: str, put_old: str) -> None:
    """Never call this in the supervisor's namespace: it re-roots every process there."""
    check(libc.syscall(syscall_number("pivot_root"), fsencode(new_root), fsencode(put_old)), "pivot_root")
