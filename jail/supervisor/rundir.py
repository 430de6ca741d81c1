"""The supervisor's socket directories: fresh, its own, searchable by its jail (which sees them
read-only); those left by a supervisor that was killed are removed when its pid is gone."""

from __future__ import annotations

import os
import stat


def private_directory() -> str:
    """A fresh directory for the supervisor's sockets (tempfile costs 5 ms to import)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    if not os.access(base, os.W_OK):
        base = "/tmp"
    _remove_stale(base)
    while True:
        path = os.path.join(base, f"shelljail-{os.getpid()}-{os.urandom(4).hex()}")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        os.chmod(path, 0o755)
        return path


def _remove_stale(base: str) -> None:
    """SIGKILL leaves a supervisor no time to clean up: its directory goes at the next start."""
    try:
        names = [n for n in os.listdir(base) if n.startswith("shelljail-")]
    except OSError:
        return
    for name in names:
        pid = name.split("-")[1]
        if not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
            continue
        try:
            directory = os.open(os.path.join(base, name), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if os.fstat(directory).st_uid != os.getuid():
                continue
            for entry in os.listdir(directory):  # sockets and the shells list: never a directory
                if not stat.S_ISDIR(os.stat(entry, dir_fd=directory, follow_symlinks=False).st_mode):
                    os.unlink(entry, dir_fd=directory)
            os.rmdir(os.path.join(base, name))
        except OSError:
            pass
        finally:
            os.close(directory)
