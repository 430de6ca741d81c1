"""mount(2), umount2(2) and mount_setattr(2)."""

from __future__ import annotations

import ctypes

from jail.kernel.libc import check, fsencode, libc, syscall_number

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000

MNT_DETACH = 0x2

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_RECURSIVE = 0x8000

libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    check(
        libc.mount(fsencode(source), fsencode(target), fsencode(fstype), flags, fsencode(data)),
        f"mount {fstype or source or ''} on {target}",
    )


def umount2(target: str, flags: int = 0) -> None:
    check(libc.umount2(fsencode(target), flags), f"umount {target}")


def mount_setattr(target: str, attr_set: int, recursive: bool = True) -> None:
    """Set mount attributes on `target` (and, recursively, on every mount under it).

    Unlike a remount, this only adds flags, so the flags the kernel locked in a
    user namespace (nosuid, nodev, noexec) are kept without naming them.
    """
    attr = _MountAttr(attr_set, 0, 0, 0)
    flags = AT_SYMLINK_NOFOLLOW | (AT_RECURSIVE if recursive else 0)
    result = libc.syscall(
        syscall_number("mount_setattr"),
        ctypes.c_int(AT_FDCWD),
        fsencode(target),
        ctypes.c_uint(flags),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    check(result, f"mount_setattr {target}")
