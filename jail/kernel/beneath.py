"""openat2(2) and the one safe way host-side code touches paths a jail made.

Everything under a workspace, an overlay layer, a trash or a jail's /proc/PID/root may have
been planted by a program in the jail: a symlink out, a FIFO that blocks an open, a device, a
setuid bit, a file of a hundred gigabytes. Host-side code therefore never opens such a path by
name. It opens a directory it trusts (the workspace as the user named it), then walks beneath
it with openat2: no symlink followed, no magic link, no `..` out, files opened non-blocking and
checked to be regular before a byte is read, reads bounded. Each function here is one of those
rules; the callers (trash, overlay, the decision service, previews, the dashboard) use them
and nothing else.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat

from jail.kernel.libc import fsencode, libc, syscall_number

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# Beneath the directory, no symlink or magic link anywhere on the way.
STRICT = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
# The jail's own view of a path: absolute symlinks resolve against the jail's root (the
# directory fd), never the host's; `..` stops at that root.
IN_JAIL_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_SETID = stat.S_ISUID | stat.S_ISGID


class NotRegular(OSError):
    """A path that is not a regular file (a FIFO, socket, device, directory or symlink)."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file ({kind})", path)
        self.kind = kind


class TooLarge(OSError):
    """A file over the size a caller will read."""

    def __init__(self, path: str, size: int, limit: int) -> None:
        super().__init__(errno.EFBIG, f"{size} bytes, more than the {limit} read", path)
        self.size = size


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): Python has no binding. Raises OSError like os.open."""
    how = (ctypes.c_uint64 * 3)(flags, mode, resolve)
    fd = libc.syscall(syscall_number("openat2"), ctypes.c_int(dirfd), fsencode(path), ctypes.byref(how),
                      ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), path)
    return fd


RENAME_NOREPLACE = 1


def rename_noreplace(source_dir: int, source: str, destination_dir: int, destination: str) -> None:
    """renameat2(RENAME_NOREPLACE): move a name between directory fds, never over an existing one.

    os.rename replaces what is at the destination (a file silently, an empty directory too):
    moving jail-made paths must never destroy what is already there. FileExistsError if taken.
    Neither name may contain a slash: each is one entry of its directory fd.
    """
    for name in (source, destination):
        if not name or "/" in name or name in (".", ".."):
            raise OSError(errno.EINVAL, "not a single name in its directory", name)
    result = libc.renameat2(ctypes.c_int(source_dir), fsencode(source), ctypes.c_int(destination_dir),
                            fsencode(destination), ctypes.c_uint(RENAME_NOREPLACE))
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), destination)


def kind(mode: int) -> str:
    """A file type's name, for messages and logs."""
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "unknown"


def open_directory(dirfd: int, relative: str, resolve: int = STRICT) -> int:
    """A directory beneath `dirfd` ("" or "." is `dirfd` itself, duplicated)."""
    relative = relative.strip("/") or "."
    return openat2(dirfd, relative, _DIRECTORY, resolve)


def make_directories(dirfd: int, relative: str, mode: int = 0o755) -> int:
    """mkdir -p beneath `dirfd`, refusing symlinks on the way; the last directory, open."""
    current = os.dup(dirfd)
    try:
        for part in [p for p in relative.split("/") if p and p != "."]:
            if part == "..":
                raise OSError(errno.EXDEV, "'..' in a path made beneath a directory", relative)
            try:
                os.mkdir(part, mode, dir_fd=current)
            except FileExistsError:
                pass
            following = openat2(current, part, _DIRECTORY, STRICT)
            os.close(current)
            current = following
    except BaseException:
        os.close(current)
        raise
    return current


def open_regular(dirfd: int, relative: str, resolve: int = STRICT, flags: int = os.O_RDONLY) -> int:
    """A regular file beneath `dirfd`, opened without blocking (a FIFO is refused, never waited on).

    O_NONBLOCK makes open() of a FIFO return at once; the fstat then refuses it, and sockets,
    devices and directories alike, with NotRegular. The flag is cleared before returning, so
    reads of the regular file behave as usual. A final symlink is refused, except with
    IN_JAIL_ROOT, where symlinks resolve inside the jail's root as the jail itself sees them.
    """
    nofollow = 0 if resolve & RESOLVE_IN_ROOT else os.O_NOFOLLOW
    fd = openat2(dirfd, relative, flags | nofollow | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, resolve)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegular(relative, kind(mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_fd(fd: int, limit: int, name: str = "") -> bytes:
    """At most `limit` bytes of an open regular file; TooLarge past it (its size is checked first)."""
    size = os.fstat(fd).st_size
    if size > limit:
        raise TooLarge(name, size, limit)
    chunks, left = [], limit + 1
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    if len(data) > limit:  # grew while read
        raise TooLarge(name, len(data), limit)
    return data


def write_all(fd: int, data: bytes, offset: int | None = None) -> None:
    """All of `data` to `fd` (at `offset` with pwrite), however short each write the kernel does is."""
    view, done = memoryview(data), 0
    while done < len(data):
        done += os.write(fd, view[done:]) if offset is None else os.pwrite(fd, view[done:], offset + done)


def read_regular(dirfd: int, relative: str, limit: int, resolve: int = STRICT) -> bytes:
    """The bytes of a regular file beneath `dirfd`, at most `limit` (NotRegular, TooLarge, OSError)."""
    fd = open_regular(dirfd, relative, resolve)
    try:
        return read_fd(fd, limit, relative)
    finally:
        os.close(fd)


def safe_mode(mode: int) -> int:
    """Permission bits a host file may carry when it came from a jail: never setuid or setgid."""
    return stat.S_IMODE(mode) & ~_SETID


def copy_sparse(source: int, destination: int) -> int:
    """Copy an open regular file's data into another, keeping its holes; bytes allocated on the way.

    A sparse file costs nothing on the layer's tmpfs: written out dense it would cost its whole
    apparent size on the host disk. SEEK_DATA/SEEK_HOLE find the data; the holes stay holes.
    """
    size = os.fstat(source).st_size
    written, offset = 0, 0
    while offset < size:
        try:
            start = os.lseek(source, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole is left
                break
            raise
        end = os.lseek(source, start, os.SEEK_HOLE)
        position = start
        while position < end:
            chunk = os.pread(source, min(end - position, 1 << 20), position)
            if not chunk:
                break
            os.pwrite(destination, chunk, position)
            position += len(chunk)
            written += len(chunk)
        offset = end
    os.ftruncate(destination, size)
    return written


def write_copy(source: int, parent: int, name: str, like: os.stat_result) -> os.stat_result:
    """A new file `name` beneath `parent` (never an existing one, never through a symlink) holding the
    open regular file `source`, holes kept, with `like`'s permission bits less setuid/setgid and its
    times; the new file's stat. Made 0600 and opened to this process only until it is complete."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
    try:
        copy_sparse(source, fd)
        os.fchmod(fd, safe_mode(like.st_mode))
        os.utime(fd, ns=(like.st_atime_ns, like.st_mtime_ns))
        return os.fstat(fd)
    finally:
        os.close(fd)
