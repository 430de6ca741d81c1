"""The timeline's inotify watcher across a reset (before each full walk), with real inotify on tmp_path.

A reset removes the watches one by one instead of closing the descriptor (whose close waits for an SRCU
grace period, 7-15 ms, docs/results.md): what was queued before it, and the removals' own IN_IGNORED,
must not reach the next look, and a folder not watched again must say nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from jail.recovery.timeline import Watcher


def _open(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def test_a_reset_forgets_old_events_and_old_watches(tmp_path: Path) -> None:
    names = ("a", "b", "gone")
    for name in names:
        (tmp_path / name).mkdir()
    fds = {name: _open(tmp_path / name) for name in names}
    watcher = Watcher()
    try:
        for name, fd in fds.items():
            watcher.add(fd, name)
        (tmp_path / "a" / "before").write_text("x")
        os.rmdir(tmp_path / "gone")  # its watch goes with it, before the reset
        watcher.reset()
        assert watcher.changed() == set()  # nothing queued before the reset is left, no IN_IGNORED either
        watcher.add(fds["a"], "a")  # the walk watches a again, not b
        (tmp_path / "b" / "unwatched").write_text("x")
        assert watcher.changed() == set()
        (tmp_path / "a" / "after").write_text("x")
        assert watcher.changed() == {"a"}
    finally:
        watcher.close()
        for fd in fds.values():
            os.close(fd)


def test_many_watches_are_reset_by_a_new_descriptor(tmp_path: Path) -> None:
    """Past RESET_BY_REMOVAL, one close costs less than the removals: the same behaviour either way."""
    count = Watcher.RESET_BY_REMOVAL + 1
    fd = _open(tmp_path)
    watcher = Watcher()
    try:
        for number in range(count):
            (tmp_path / str(number)).mkdir()
        fds = [_open(tmp_path / str(number)) for number in range(count)]
        for number, folder in enumerate(fds):
            watcher.add(folder, str(number))
        watcher.add(fd, "")
        (tmp_path / "0" / "before").write_text("x")
        old = watcher.inotify
        watcher.reset()
        assert watcher.inotify is not old and watcher.changed() == set()
        watcher.add(fd, "")
        (tmp_path / "new").write_text("x")
        assert watcher.changed() == {""}
        for folder in fds:
            os.close(folder)
    finally:
        watcher.close()
        os.close(fd)
