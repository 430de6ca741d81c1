"""Overlay workspaces: the agent writes to a layer of its own; a person reviews, then commits or discards.

With `filesystem.workspace = "overlay"` (or `run --workspace-mode overlay`),
the real workspace is the read-only lower layer of an overlayfs mounted in the
jail's user namespace, and every write lands in the session's upper directory,
`$XDG_STATE_HOME/shelljail/sessions/<id>/overlay/upper`. Nothing in the real
workspace changes during the run.

Afterwards the upper directory says what the agent did, in overlayfs's own
terms: a file or symlink there is added or changed; a character device 0/0
(a whiteout) is a deletion; a directory marked opaque (the `user.overlay.opaque`
xattr, since the mount uses `userxattr`) replaced the directory below.
`diff` reads that, `commit` applies all or some of it, each file by a rename
from a temporary file beside it (atomic per file), and refuses a path whose
real file changed since the session started (its ctime is later than the
start); `discard` throws the layer away.
"""

from __future__ import annotations

import difflib
import os
import shutil
import stat
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from .kernel.beneath import STRICT, make_directories, openat2
from .view import Bind, Overlay

OPAQUE_XATTR = "user.overlay.opaque"
MARGIN_NS = 50_000_000  # file times use a coarse clock: a change just before the start counts as after it


class Change(NamedTuple):
    kind: str  # "A" added, "M" changed, "D" deleted
    path: str  # relative to the workspace
    upper: str | None  # the file in the upper layer (None for a deletion)


def attach(spec: Any, log: Any) -> Any:
    """The spec with the workspace mounted as an overlay whose upper layer is the session's."""
    base = os.path.join(log.directory, "overlay")
    upper, work = os.path.join(base, "upper"), os.path.join(base, "work")
    os.makedirs(upper)
    os.makedirs(work)
    workspace = spec.view.workspace
    disk = spec.limits.disk
    mounts = tuple(Overlay(workspace, upper, work, workspace, disk) if isinstance(m, Bind) and m.target == workspace
                   else m for m in spec.view.mounts)
    log.state(overlay="pending", overlay_started_ns=time.time_ns())
    log.event("overlay", workspace=workspace, upper=upper,
              review=f"shelljail diff {os.path.basename(log.directory)}")
    return spec._replace(view=spec.view._replace(mounts=mounts), writable=(*spec.writable, workspace))


def export(source: int, destination: int) -> None:
    """Copy a layer (directory fds) as overlayfs wrote it: whiteouts, opaque marks, modes, times.

    Runs in the jail's pid 1 after everything else in the jail is dead; never follows a symlink."""
    with os.scandir(source) as entries:
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            name, mode = entry.name, stat.S_IMODE(info.st_mode)
            if stat.S_ISDIR(info.st_mode):
                os.mkdir(name, 0o700, dir_fd=destination)
                inner_src = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source)
                inner_dst = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                    dir_fd=destination)
                try:
                    export(inner_src, inner_dst)
                    if _opaque(inner_src):
                        os.setxattr(inner_dst, OPAQUE_XATTR, b"y")
                    os.fchmod(inner_dst, mode)
                finally:
                    os.close(inner_src)
                    os.close(inner_dst)
            elif stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                os.mknod(name, stat.S_IFCHR, 0, dir_fd=destination)  # a whiteout (no CAP_MKNOD needed)
            elif stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(name, dir_fd=source), name, dir_fd=destination)
            elif stat.S_ISREG(info.st_mode):
                src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source)
                dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                              dir_fd=destination)
                try:
                    while os.sendfile(dst, src, None, 1 << 24):
                        pass
                    os.fchmod(dst, mode)
                    os.utime(dst, ns=(info.st_atime_ns, info.st_mtime_ns))
                finally:
                    os.close(src)
                    os.close(dst)


def summarize(log: Any, workspace: str) -> None:
    """The audit event that closes an overlay run: what it would change, and how to review it."""
    found = changes(os.path.join(log.directory, "overlay", "upper"), workspace)
    counts = {kind: sum(1 for c in found if c.kind == kind) for kind in "AMD"}
    session = os.path.basename(log.directory)
    log.event("overlay-changes", added=counts["A"], changed=counts["M"], deleted=counts["D"],
              review=f"shelljail diff {session}", apply=f"shelljail commit {session}",
              drop=f"shelljail discard {session}")


# ---- reading a session's layer ------------------------------------------------------------------

def changes(upper: str, workspace: str) -> list[Change]:
    """What the layer does to the workspace, sorted by path."""
    found: list[Change] = []
    for relative, kind in _walk(upper, ""):
        full = os.path.join(upper, relative)
        below = os.path.join(workspace, relative)
        if kind == "whiteout":
            found += [Change("D", p, None) for p in _below(workspace, relative)]
        elif kind == "opaque":
            found += [Change("D", p, None) for p in _below(workspace, relative, keep=full)]
            if not os.path.isdir(below) or os.path.islink(below):
                found.append(Change("A", relative, full))
        elif kind == "dir":
            if not os.path.lexists(below) or not os.path.isdir(below) or os.path.islink(below):
                found.append(Change("A", relative, full))
        elif not os.path.lexists(below):
            found.append(Change("A", relative, full))
        elif not _same(full, below):
            found.append(Change("M", relative, full))
    return sorted(found, key=lambda c: c.path)


def _walk(upper: str, relative: str) -> Iterator[tuple[str, str]]:
    """(relative path, kind) for everything in the layer: dir, opaque, whiteout, file."""
    try:
        names = sorted(os.listdir(os.path.join(upper, relative)))
    except OSError:
        return
    for name in names:
        path = os.path.join(relative, name)
        info = os.lstat(os.path.join(upper, path))
        if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
            yield path, "whiteout"
        elif stat.S_ISDIR(info.st_mode):
            yield path, "opaque" if _opaque(os.path.join(upper, path)) else "dir"
            yield from _walk(upper, path)
        else:
            yield path, "file"


def _opaque(path: str | int) -> bool:
    try:
        if isinstance(path, int):
            return os.getxattr(path, OPAQUE_XATTR) == b"y"
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _below(workspace: str, relative: str, keep: str | None = None) -> list[str]:
    """The real paths a deletion of `relative` removes (a tree: every file, then the directory).
    With `keep` (an opaque directory), what the layer has again is not deleted."""
    below = os.path.join(workspace, relative)
    if not os.path.lexists(below):
        return []
    if not os.path.isdir(below) or os.path.islink(below):
        return [] if keep else [relative]
    found = []
    for directory, subdirectories, files in os.walk(below, topdown=False):
        inner = os.path.relpath(directory, workspace)
        for name in files + [d for d in subdirectories if os.path.islink(os.path.join(directory, d))]:
            path = os.path.join(inner, name)
            if keep is None or not os.path.lexists(os.path.join(keep, os.path.relpath(path, relative))):
                found.append(path)
        if keep is None:
            found.append(inner)
    return found


def _same(a: str, b: str) -> bool:
    sa, sb = os.lstat(a), os.lstat(b)
    if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode) or stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
        return False
    if stat.S_ISLNK(sa.st_mode):
        return os.readlink(a) == os.readlink(b)
    if sa.st_size != sb.st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            chunk = fa.read(1 << 20)
            if chunk != fb.read(1 << 20):
                return False
            if not chunk:
                return True


def unified(change: Change, workspace: str) -> str:
    """A unified diff of one change, or a line saying a binary file differs."""
    below = os.path.join(workspace, change.path)
    old = _text(below) if change.kind != "A" else ""
    new = _text(change.upper) if change.upper and change.kind != "D" else ""
    if old is None or new is None:
        return f"Binary files a/{change.path} and b/{change.path} differ\n"
    if change.upper and os.path.isdir(change.upper):
        return ""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 "/dev/null" if change.kind == "A" else f"a/{change.path}",
                                 "/dev/null" if change.kind == "D" else f"b/{change.path}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _text(path: str | None) -> str | None:
    if path is None or not os.path.lexists(path) or os.path.isdir(path):
        return ""
    if os.path.islink(path):
        return f"(symlink to {os.readlink(path)})\n"
    with open(path, "rb") as f:
        data = f.read(8 << 20)
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


# ---- applying it -------------------------------------------------------------------------------

class Session(NamedTuple):
    id: str
    directory: str
    workspace: str
    upper: str
    started_ns: int
    state: str


def session(info: dict[str, Any], directory: str) -> Session:
    if not info.get("overlay"):
        raise LookupError(f"session {info.get('session')} did not use an overlay workspace "
                          "(shelljail run --workspace-mode overlay)")
    return Session(str(info["session"]), directory, info["workspace"], os.path.join(directory, "overlay", "upper"),
                   int(info.get("overlay_started_ns", 0)), str(info["overlay"]))


def selected(all_changes: list[Change], paths: list[str], workspace: str, cwd: str) -> list[Change]:
    if not paths:
        return all_changes
    wanted = []
    for path in paths:
        full = os.path.normpath(os.path.join(cwd, path))
        wanted.append(os.path.relpath(full, workspace) if full.startswith(workspace.rstrip("/") + "/")
                      else os.path.normpath(path))
    return [c for c in all_changes if any(c.path == w or c.path.startswith(w + "/") for w in wanted)]


def conflicts(chosen: list[Change], target: Session) -> list[str]:
    """The paths whose real file changed (or appeared, or went) since the session started."""
    since = target.started_ns - MARGIN_NS
    out = []
    for change in chosen:
        below = os.path.join(target.workspace, change.path)
        try:
            info = os.lstat(below)
        except FileNotFoundError:
            if change.kind in ("M", "D"):
                out.append(f"{change.path} (deleted outside the session)")
            continue
        if change.kind == "A" and not stat.S_ISDIR(info.st_mode):
            out.append(f"{change.path} (created outside the session)")
        elif change.kind != "A" and info.st_ctime_ns > since and not stat.S_ISDIR(info.st_mode):
            out.append(f"{change.path} (changed outside the session)")
    return out


def commit(chosen: list[Change], target: Session) -> None:
    """Apply the changes to the real workspace: files atomically, deletions after their contents."""
    root = os.open(target.workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        additions = sorted((c for c in chosen if c.kind != "D"), key=lambda c: c.path)  # parents first
        deletions = sorted((c for c in chosen if c.kind == "D"), key=lambda c: c.path, reverse=True)  # contents first
        for change in [*deletions, *additions]:
            parent_rel, name = os.path.split(change.path)
            if change.kind == "D":
                parent = openat2(root, parent_rel or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, STRICT)
                try:
                    info = os.stat(name, dir_fd=parent, follow_symlinks=False)
                    if stat.S_ISDIR(info.st_mode):
                        os.rmdir(name, dir_fd=parent)  # its contents come first in `chosen`
                    else:
                        os.unlink(name, dir_fd=parent)
                except FileNotFoundError:
                    pass
                finally:
                    os.close(parent)
                continue
            parent = make_directories(root, parent_rel)
            try:
                _place(change.upper or "", parent, name)
            finally:
                os.close(parent)
    finally:
        os.close(root)
    _forget(chosen, target)


def _place(source: str, parent: int, name: str) -> None:
    info = os.lstat(source)
    if stat.S_ISDIR(info.st_mode):
        try:
            os.mkdir(name, stat.S_IMODE(info.st_mode), dir_fd=parent)
        except FileExistsError:
            pass
        return
    temporary = f".{name}.shelljail-{os.getpid()}"
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(source), temporary, dir_fd=parent)
    else:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     stat.S_IMODE(info.st_mode), dir_fd=parent)
        with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
            os.fchmod(out.fileno(), stat.S_IMODE(info.st_mode))
            os.utime(out.fileno(), ns=(info.st_atime_ns, info.st_mtime_ns))
    os.rename(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)  # replaces the old file in one step


def _forget(chosen: list[Change], target: Session) -> None:
    """Take what was committed out of the layer, so it is neither shown nor applied again.

    A whiteout goes once nothing is left below it for real (a partly committed deletion of a
    tree keeps it, for the rest)."""
    for change in sorted(chosen, key=lambda c: c.path, reverse=True):
        for candidate in (os.path.join(target.upper, change.path), *_whiteout_parents(target.upper, change.path)):
            try:
                info = os.lstat(candidate)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if _is_whiteout(candidate):
                if not os.path.lexists(os.path.join(target.workspace, os.path.relpath(candidate, target.upper))):
                    os.unlink(candidate)
            elif stat.S_ISDIR(info.st_mode):
                try:
                    os.rmdir(candidate)
                except OSError:
                    pass  # still holds changes not committed
            else:
                os.unlink(candidate)


def _whiteout_parents(upper: str, relative: str) -> list[str]:
    """The whiteout that stands for a deleted tree containing `relative`."""
    parts = relative.split("/")
    return [os.path.join(upper, *parts[:i]) for i in range(1, len(parts))
            if _is_whiteout(os.path.join(upper, *parts[:i]))]


def _is_whiteout(path: str) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def record(target: Session, event: str, state: str | None, **fields: Any) -> None:
    """An event in the session's own log (and its new overlay state): who applied or dropped what."""
    from .audit import AuditLog

    log = AuditLog(session=target.id, directory=target.directory)
    log.event(event, by=f"pid {os.getpid()}", **fields)
    if state:
        log.state(overlay=state)
    log.close()


def discard(target: Session) -> None:
    from .audit import remove_tree

    remove_tree(os.path.join(target.directory, "overlay"))
