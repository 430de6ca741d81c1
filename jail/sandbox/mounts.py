"""Build the jail's root filesystem from a View, inside the new mount namespace.

Runs as pid 1 of the jail's pid namespace (needed to mount /proc), before
anything untrusted exists in the namespace: no jailed process can race the
path checks here.
"""

from __future__ import annotations

import os
import stat

from jail.errors import JailError
from jail.kernel.mount import (
    MNT_DETACH,
    MOUNT_ATTR_NODEV,
    MOUNT_ATTR_NOSUID,
    MOUNT_ATTR_RDONLY,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_REC,
    mount,
    mount_setattr,
    umount2,
)
from jail.kernel.pivot_root import pivot_root
from jail.policy.view import Bind, Hide, Overlay, Symlink, Tmpfs, View

STAGE = "/tmp"  # hidden by the staging tmpfs only inside our own namespace
NEW = "/newroot"
OLD = "/oldroot"
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs")


def build_root(view: View, files: dict[str, str], tmpfs_size: int | None) -> tuple[int, int] | None:
    """Replace this mount namespace's root with the jail's, then forget the host's.

    With a size-capped overlay workspace: (the layer on its tmpfs, the session's upper directory
    on the host), as directory fds that outlive the host's view, for pid 1 to copy at the end."""
    export = None
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount reaches the host
    mount("tmpfs", STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    os.chdir(STAGE)
    os.mkdir("newroot")
    os.mkdir("oldroot")
    size = f",size={tmpfs_size}" if tmpfs_size else ""
    mount("tmpfs", "newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
    pivot_root(".", "oldroot")  # "/" is now the staging tmpfs, the host is under /oldroot
    os.chdir("/")

    _mount_proc()
    for item in view.mounts:
        if isinstance(item, Bind):
            _bind(OLD + item.source, _target(item.target, dir_like=os.path.isdir(OLD + item.source)),
                  item.writable)
        elif isinstance(item, Tmpfs):
            mount("tmpfs", _target(item.target), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755" + size)
        elif isinstance(item, Symlink):
            _symlink(item.points_to, item.target)
        elif isinstance(item, Hide):
            _hide(item.target)
        elif isinstance(item, Overlay):
            export = _overlay(item) or export
    _mount_dev()
    for path, content in files.items():
        with open(_target(path, dir_like=False), "w") as out:
            out.write(content)

    umount2(OLD, MNT_DETACH)
    os.chdir(NEW)
    pivot_root(".", ".")  # the new root stacks over the staging root...
    umount2(".", MNT_DETACH)  # ...which is then dropped
    os.chdir("/")
    mount_setattr("/", MOUNT_ATTR_RDONLY, recursive=False)
    return export


def _overlay(item: Overlay) -> tuple[int, int] | None:
    """overlayfs in the user namespace: `userxattr` (KNOWN.md); paths escaped for its option syntax.

    With `item.disk`: the layer is on a tmpfs of that size; returns (that layer, the session's upper
    directory on the host) as directory fds, for pid 1 to copy the layer at the end."""
    export = None
    upper, work = OLD + item.upper, OLD + item.work
    if item.disk:  # the layer on a tmpfs of that size: a full disk is ENOSPC for the jail, not the host
        os.mkdir("/disk")
        inodes = max(item.disk // 4096, 256)  # entries cost the host disk too: one per 4 KiB of the cap
        mount("tmpfs", "/disk", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0755,size={item.disk},nr_inodes={inodes}")
        os.mkdir("/disk/upper", 0o755)
        os.mkdir("/disk/work", 0o700)
        upper, work = "/disk/upper", "/disk/work"
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        export = (os.open(upper, flags), os.open(OLD + item.upper, flags))

    def escaped(path: str) -> str:
        return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")

    options = f"lowerdir={escaped(OLD + item.lower)},upperdir={escaped(upper)},workdir={escaped(work)},userxattr"
    try:
        mount("overlay", _target(item.target), "overlay", MS_NOSUID | MS_NODEV, options)
    except OSError as exc:
        raise JailError(f"cannot mount the overlay workspace: {exc.strerror}",
                        "overlayfs in a user namespace needs Linux 5.11+, and its upper directory "
                        "(under XDG_STATE_HOME) on a filesystem such as ext4, xfs or tmpfs; see shelljail doctor"
                        ) from None
    return export


def _target(path: str, dir_like: bool = True) -> str:
    """NEW + path, creating what is missing and refusing any symlink on the way.

    Refusing symlinks keeps a link planted in the workspace from redirecting a
    mount to somewhere else in the jail.
    """
    parts = [p for p in path.split("/") if p]
    current = NEW
    for index, part in enumerate(parts):
        current = f"{current}/{part}"
        last = index == len(parts) - 1
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            if last and not dir_like:
                os.close(os.open(current, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o644))
            else:
                os.mkdir(current, 0o755)
            continue
        if stat.S_ISLNK(mode):
            raise JailError(f"{path} passes through a symlink ({current[len(NEW):]})",
                            "shelljail never mounts through a symlink; remove it or change the profile")
        if not last and not stat.S_ISDIR(mode):
            raise JailError(f"{path}: {current[len(NEW):]} is not a directory", "fix the profile")
    return current


def _bind(source: str, target: str, writable: bool) -> None:
    mount(source, target, None, MS_BIND | MS_REC)
    attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (0 if writable else MOUNT_ATTR_RDONLY)
    mount_setattr(target, attrs, recursive=True)


def _symlink(points_to: str, path: str) -> None:
    parent, name = os.path.split(path)
    os.symlink(points_to, os.path.join(_target(parent), name))


def _hide(path: str) -> None:
    try:
        mode = os.lstat(NEW + path).st_mode
    except FileNotFoundError:
        return  # nothing there to hide
    target = _target(path, dir_like=stat.S_ISDIR(mode))
    if stat.S_ISDIR(mode):
        mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0000,size=4k")
        mount_setattr(target, MOUNT_ATTR_RDONLY, recursive=False)
    else:
        _bind(OLD + "/dev/null", target, writable=False)


def _mount_proc() -> None:
    proc = _target("/proc")
    mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name in PROC_READ_ONLY:
        path = f"{proc}/{name}"
        if os.path.exists(path):
            mount(path, path, None, MS_BIND | MS_REC)
            mount_setattr(path, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, recursive=True)


def _mount_dev() -> None:
    """A minimal /dev: a few host device nodes bound onto empty files (mknod is not allowed)."""
    dev = _target("/dev")
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    for name in DEVICES:
        if os.path.exists(f"{OLD}/dev/{name}"):
            target = _target(f"/dev/{name}", dir_like=False)
            mount(f"{OLD}/dev/{name}", target, None, MS_BIND)
            mount_setattr(target, MOUNT_ATTR_NOSUID, recursive=False)
    os.mkdir(f"{dev}/pts")
    mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
    os.symlink("pts/ptmx", f"{dev}/ptmx")
    os.mkdir(f"{dev}/shm")
    mount("tmpfs", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
    for name, points_to in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                            ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(points_to, f"{dev}/{name}")
    mount_setattr(dev, MOUNT_ATTR_RDONLY, recursive=False)
