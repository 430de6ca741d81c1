"""jail/kernel/inotify.py with real inotify on tmp_path: events of a watched directory, removal, a queue larger
than one read, and no ldconfig or ctypes.util on the way (what inotify_simple cost every session, #27)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jail.kernel import inotify


def test_a_watched_directory_reports_its_changes_and_its_removal(tmp_path: Path) -> None:
    watcher = inotify.INotify()
    try:
        assert os.get_inheritable(watcher.fd) is False
        wd = watcher.add_watch(str(tmp_path), inotify.CREATE | inotify.DELETE | inotify.ONLYDIR)
        assert watcher.read() == []
        (tmp_path / "a").write_text("x")
        (tmp_path / "a").unlink()
        assert watcher.read() == [(wd, inotify.CREATE), (wd, inotify.DELETE)]
        watcher.rm_watch(wd)
        assert watcher.read() == [(wd, inotify.IGNORED)]
        (tmp_path / "b").write_text("x")
        assert watcher.read() == []
    finally:
        watcher.close()


def test_one_read_takes_every_event_queued(tmp_path: Path) -> None:
    """Events with long names, more bytes than any fixed buffer a read might use: all come in one read."""
    watcher = inotify.INotify()
    try:
        wd = watcher.add_watch(str(tmp_path), inotify.CREATE)
        for number in range(600):
            (tmp_path / f"{number:03d}{'n' * 200}").touch()
        assert watcher.read() == [(wd, inotify.CREATE)] * 600
    finally:
        watcher.close()


def test_a_refused_watch_raises_oserror(tmp_path: Path) -> None:
    watcher = inotify.INotify()
    try:
        (tmp_path / "file").touch()
        try:
            watcher.add_watch(str(tmp_path / "file"), inotify.CREATE | inotify.ONLYDIR)
        except OSError as exc:
            assert exc.errno == 20  # ENOTDIR
        else:
            raise AssertionError("a watch with ONLYDIR on a file was accepted")
    finally:
        watcher.close()


def test_making_a_watcher_runs_no_ldconfig_and_imports_no_ctypes_util() -> None:
    """No process is started (inotify_simple's find_library ran /sbin/ldconfig -p) and ctypes.util stays out."""
    code = ("import sys\n"
            "started = []\n"
            "sys.addaudithook(lambda event, args: event in ('subprocess.Popen', 'os.posix_spawn', 'os.fork', "
            "'os.exec') and started.append(event))\n"
            "from jail.recovery.timeline import Watcher\n"
            "watcher = Watcher()\n"
            "watcher.close()\n"
            "print(started, 'ctypes.util' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "False"]
