"""The C library handle and the errno convention shared by the kernel wrappers."""

from __future__ import annotations

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

# Syscalls without a glibc wrapper on Debian 12; numbers >= 424 are the same on every arch.
_ARCH_SYSCALLS = {
    "x86_64": {"pivot_root": 155},
    "aarch64": {"pivot_root": 41},
}
_COMMON_SYSCALLS = {"openat2": 437, "mount_setattr": 442}


def syscall_number(name: str) -> int:
    """The number of syscall `name` on this machine's architecture."""
    if name in _COMMON_SYSCALLS:
        return _COMMON_SYSCALLS[name]
    arch = os.uname().machine
    try:
        return _ARCH_SYSCALLS[arch][name]
    except KeyError:
        raise OSError(f"shelljail does not know syscall {name} on {arch}") from None


def check(result: int, what: str) -> int:
    """Raise OSError naming `what` when a libc call returned -1."""
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def fsencode(path: str | bytes | None) -> bytes | None:
    return None if path is None else os.fsencode(path)
