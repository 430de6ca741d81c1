"""The timeline of an overlay workspace: the workspace as the jail sees it (the merged view), not the real one.

Why the merged view and not the layer read from the host: a size-capped layer lives on a tmpfs only the jail
sees until its end, and reading the upper layer and the lower directory apart would mean redoing overlayfs
(whiteouts, opaque directories, copy-up) by hand. During the session the supervisor opens the jail's
workspace once, through its pid 1's root, and keeps that directory fd: every checkpoint, the last one too
(the jail is gone by then, but an open fd keeps its mount), walks beneath it as for a read-write workspace.
The root it is opened beneath is that of the first jail process whose line gets a checkpoint (the
decision service's peer, held by a pidfd), not pid 1's: an ordinary user may not open the root of a
process that has not exec'd since it left the host's user namespace.

Undo, after the session, mounts the same overlay again (the real workspace read-only below, the session's
upper directory above) over the workspace's path in a child process's own user and mount namespaces, and
runs the ordinary undo there: whatever it puts back lands in the layer, and the real workspace is untouched
until `shelljail commit`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from jail.kernel.beneath import STRICT, open_directory
from jail.kernel.mount import MS_NODEV, MS_NOSUID, MS_PRIVATE, MS_REC, mount
from jail.kernel.unshare import CLONE_NEWNS
from jail.sandbox.namespaces import enter

RESULT_BYTES = 16 << 20  # what the child's answer may hold


class LayerError(Exception):
    """The undo in the layer failed, or the layer is gone; the message says why (timeline.undo re-raises it
    as its own TimelineError)."""


def jail_workspace(root: int, workspace: str) -> int:
    """A directory fd of the workspace as the jail sees it, beneath `root` (the root of a jail process, as
    the decision service holds it), with no symlink followed on the way."""
    return open_directory(root, workspace.lstrip("/"), STRICT)


def in_layer(session_directory: str, workspace: str, body: Callable[[], Any]) -> Any:
    """`body()` run with the session's overlay mounted over `workspace` (in a child's own namespaces); its
    JSON-able result, or what it raised, as a LayerError with its message. What the child runs is imported before
    the fork: a caller with threads (the dashboard) may hold the import lock when it forks."""
    upper = os.path.join(session_directory, "overlay", "upper")
    work = os.path.join(session_directory, "overlay", "work")
    for path in (upper, work):
        if not os.path.isdir(path) or os.path.islink(path):
            raise LayerError(f"the session's overlay layer {path} is gone (discarded?): nothing to undo in it")
    uid, gid = os.getuid(), os.getgid()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller
        code = 1
        try:
            os.close(reader)
            answer = {"result": _mounted(workspace, upper, work, uid, gid, body)}
        except BaseException as exc:  # noqa: BLE001 - the parent reports whatever it was
            answer = {"error": str(exc) or type(exc).__name__}
        try:
            data = json.dumps(answer).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(writer, view):]
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    chunks, size = [], 0
    try:
        while size <= RESULT_BYTES:
            chunk = os.read(reader, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(reader)
        os.waitpid(pid, 0)
    try:
        answer = json.loads(b"".join(chunks)) if size <= RESULT_BYTES else {"error": "its answer was too long"}
    except ValueError:
        answer = {"error": "the undo in the overlay ended without an answer"}
    if "error" in answer:
        raise LayerError(str(answer["error"]))
    return answer["result"]


def _mounted(workspace: str, upper: str, work: str, uid: int, gid: int, body: Callable[[], Any]) -> Any:
    enter(uid, gid, CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here reaches the host

    def escaped(path: str) -> str:
        return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")

    mount("overlay", workspace, "overlay", MS_NOSUID | MS_NODEV,
          f"lowerdir={escaped(workspace)},upperdir={escaped(upper)},workdir={escaped(work)},userxattr")
    return body()
