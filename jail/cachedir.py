"""shelljail's cache directory: compiled seccomp filters and parsed profiles, which later runs trust.

So it must never be in a jail's view (session.start refuses a run whose view shows it), and its files
are read and written as the rest of the host side treats paths a jail might have reached (`read`, `write`):
beneath the cache's parent, no symlink on the way, a regular file of the caller's that no one else can write,
opened without blocking, bounded.
"""

from __future__ import annotations

import os


def cache_home() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "shelljail")


def stamp(path: str) -> tuple[str, int, int, int, int, int]:
    """A file's identity for a cache key: an edit, a rename over it or a touch back to its old mtime all
    change one of device, inode, size, mtime and ctime."""
    st = os.stat(path)
    return os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _location() -> tuple[str, str]:
    """(a folder opened as it is, the path beneath it walked without symlinks): XDG_CACHE_HOME or ~/.cache."""
    home = cache_home()
    return os.path.dirname(home), os.path.basename(home)


def read(kind: str, name: str, limit: int) -> bytes | None:
    """The bytes of cache file `kind/name`, or None when it is missing, not a plain private file, or too large."""
    from jail.kernel.beneath import open_directory, open_regular, read_fd

    root, relative = _location()
    try:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        directory = open_directory(top, f"{relative}/{kind}")
        try:
            fd = open_regular(directory, name)
        finally:
            os.close(directory)
        try:
            info = os.fstat(fd)
            if info.st_uid != os.geteuid() or info.st_mode & 0o022:
                return None
            return read_fd(fd, limit, name)
        finally:
            os.close(fd)
    except OSError:  # missing, a symlink, not a regular file, too large (TooLarge is an OSError)
        return None
    finally:
        os.close(top)


def write(kind: str, name: str, data: bytes) -> None:
    """Cache file `kind/name` replaced whole by `data` (mode 0600, folders 0700); nothing when it cannot be."""
    from jail.kernel.beneath import make_directories, write_all

    root, relative = _location()
    temporary = f"{name}.{os.getpid()}"
    try:
        os.makedirs(root, exist_ok=True)
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            directory = make_directories(top, f"{relative}/{kind}", 0o700)
        finally:
            os.close(top)
        try:
            try:
                os.unlink(temporary, dir_fd=directory)
            except FileNotFoundError:
                pass
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=directory)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
        finally:
            os.close(directory)
    except OSError:
        pass  # no cache: made again next time
