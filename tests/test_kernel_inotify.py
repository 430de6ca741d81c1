"""jail/kernel/inotify.py with real inotify on tmp_path: events of a watched directory, removal, a queue larger
than one read, and no ldconfig or ctypes.util on the way (what inotify_simple cost every session, #27)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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


DETACHED = r'''
import os, sys
from jail.kernel import inotify
watcher = inotify.INotify()
watcher.add_watch(sys.argv[1], inotify.CREATE)
fd = watcher.fd
watcher.close(detached=True)
try:
    os.fstat(fd)
    print("still open here")
except OSError:
    pass
(cat,) = [int(pid) for pid in open(f"/proc/self/task/{os.getpid()}/children").read().split()]
print(cat, os.readlink(f"/proc/{cat}/fd/{fd}"), os.readlink(f"/proc/{cat}/exe"), flush=True)
sys.stdin.readline()  # the test looks at the cat while this process lives
'''


def test_a_detached_close_leaves_the_last_reference_to_a_cat_that_ends_with_this_process(tmp_path: Path) -> None:
    program = subprocess.Popen([sys.executable, "-c", DETACHED, str(tmp_path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        cat, descriptor, executable = program.stdout.readline().split()
        assert descriptor == "anon_inode:inotify" and os.path.basename(executable) == "cat"
        with open(f"/proc/{cat}/status") as status:
            assert "State:\tZ" not in status.read()  # alive, on the pipe only this process holds: not closed yet
    finally:
        program.communicate("\n", timeout=60)
    assert program.returncode == 0
    for _ in range(600):  # the cat reads EOF once the process is gone, and ends (reaped by init)
        if not os.path.exists(f"/proc/{cat}") or "State:\tZ" in Path(f"/proc/{cat}/status").read_text():
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"cat {cat} still runs after the process that spawned it ended")
