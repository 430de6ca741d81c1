"""unshare(2): enter new namespaces (os.unshare arrives only in Python 3.12)."""

from __future__ import annotations

from jail.kernel.libc import check, libc

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000


def unshare(flags: int) -> None:
    """Move the calling (single-threaded) process into new namespaces."""
    check(libc.unshare(flags), "unshare")
