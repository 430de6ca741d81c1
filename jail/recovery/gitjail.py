"""Our own git scripts (listing and restoring snapshots), run in a jail on the workspace.

A repository an agent could change may carry hooks, filters and config that run programs: those
run in a jail like the agent's own git, never on the host. Kept apart from snapshots.py, whose
script text the interposer writes into lines, so that the interposer never imports the run.
"""

from __future__ import annotations

import os
from typing import Any

GIT_OUTPUT_BYTES = 1 << 22  # what `snapshots` or `rollback` shows of each stream; the rest is drained unseen


def run(workspace: str | None, script: str, shape: Any = None) -> int:
    """A git script of ours, run in a jail on the workspace (no interposer: the script is not the agent's).

    What it prints (commit subjects, file names, whatever the repository's hooks say) is the jail's:
    it comes back through pipes, bounded, and is shown escaped (by `shape` for its standard output, if
    given), never written to the terminal raw."""
    import _thread
    import sys

    from jail.display import shown_lines
    from jail.policy import profile, spec

    loaded = profile.load("coding-agent")
    jail_spec = spec.build(loaded, workspace or os.getcwd(), ["/bin/sh", "-c", script], os.environ)
    streams: list[tuple[Any, int, int, list[bytes], Any]] = []
    for target in (sys.stdout, sys.stderr):  # both before the fork: two pipes, one reader each
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        done = _thread.allocate_lock()
        done.acquire()
        kept: list[bytes] = []
        streams.append((target, read_end, write_end, kept, done))
        _thread.start_new_thread(_drain, (read_end, kept, done))
    jail_spec = jail_spec._replace(stdout_fd=streams[0][2], stderr_fd=streams[1][2])
    from jail.run import RunOptions, supervise

    try:
        code = supervise(loaded, jail_spec, RunOptions(interposing=False, timeout=600, ask="deny"))[0]
    finally:
        for target, _read_end, write_end, kept, done in streams:
            os.close(write_end)  # the jail is gone: the reader reaches the end
            done.acquire(timeout=10)
            data = b"".join(kept)
            text = (shape if shape is not None and target is sys.stdout else shown_lines)(data[:GIT_OUTPUT_BYTES])
            if len(data) > GIT_OUTPUT_BYTES:
                text += f"\n[shelljail: output cut after {GIT_OUTPUT_BYTES} bytes]\n"
            target.write(text)
            target.flush()
    return code


def _drain(source: int, kept: list[bytes], done: Any) -> None:
    """Read a pipe to its end, keeping the first GIT_OUTPUT_BYTES (and one more, to know it was cut)."""
    held = 0
    try:
        while chunk := os.read(source, 1 << 16):
            if held <= GIT_OUTPUT_BYTES:
                kept.append(chunk)
                held += len(chunk)
    except OSError:
        pass
    finally:
        os.close(source)
        done.release()
