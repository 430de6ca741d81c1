"""A script that lives on the jail's read-only system mounts is judged as the program it is, not by its body.

`lsb_release -a` runs /usr/bin/lsb_release, a shell script whose body holds an `eval`: judged by its text it
is opaque, and refused under `--ask deny`. Its text is the system's (the jail cannot write /usr), so it is
judged as `/usr/bin/lsb_release -a`, its name and arguments, as any installed program is. A file qualifies
only if the kernel says so: opened as the jail sees it (RESOLVE_IN_ROOT), it is on a mount that is read-only
and is the very mount of one of the jail's system directories (/usr, /bin, /sbin, /lib...). A script in the
workspace, a read-only workspace or a mount placed under /usr is judged by its body as before.
"""

from __future__ import annotations

import os
import shlex

from jail.kernel import beneath

from .shellargs import invocation

SYSTEM_DIRECTORIES = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_FDINFO_BYTES = 4096


def on_system_mount(root: int, path: str) -> bool:
    """Whether `path`, as the process whose root is the directory fd `root` sees it, is a regular file on
    one of that root's read-only system mounts (OSError, NotRegular: the caller judges the body instead)."""
    fd = beneath.open_regular(root, path, beneath.IN_JAIL_ROOT)
    try:
        if not os.fstatvfs(fd).f_flag & os.ST_RDONLY:
            return False
        mount = mount_id(fd)
        for name in SYSTEM_DIRECTORIES:
            try:
                directory = beneath.open_directory(root, name, beneath.IN_JAIL_ROOT)
            except OSError:
                continue
            try:
                if mount is not None and mount_id(directory) == mount:
                    return True
            finally:
                os.close(directory)
        return False
    finally:
        os.close(fd)


def mount_id(fd: int) -> int | None:
    """The id of the mount an open file is on, from /proc/self/fdinfo (this process's own /proc)."""
    info = os.open(f"/proc/self/fdinfo/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        text = os.read(info, _FDINFO_BYTES).decode("ascii", "replace")
    finally:
        os.close(info)
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "mnt_id" and value.strip().isdigit():
            return int(value)
    return None


def program_line(argv: list[str]) -> str:
    """The command line a shell's argv runs when its script is a program: `/usr/bin/lsb_release -a`."""
    _mode, _value, index = invocation(argv)
    return shlex.join(argv[index:])
