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

Everything in the layer was made by the jail, so it is read as hostile input
(jail.kernel.beneath): every path, in the layer and in the workspace, is opened
beneath a directory fd with no symlink followed; only regular files are read,
opened without blocking, previews bounded; a FIFO, socket or device is listed
as such and never created in the workspace; no setuid or setgid bit leaves the
layer; the export of a size-capped layer writes no more to the host than the
layer held (holes kept, hard links copied once, as many entries as the cap's
tmpfs allows).
"""

from __future__ import annotations

import difflib
import errno
import os
import stat
import sys
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from jail.errors import EXIT_REFUSED, JailError
from jail.kernel.beneath import (
    NotRegular,
    TooLarge,
    kind,
    make_directories,
    open_directory,
    open_regular,
    read_fd,
    safe_mode,
    write_copy,
)
from jail.policy.view import Bind, Overlay

OPAQUE_XATTR = "user.overlay.opaque"
MARGIN_NS = 50_000_000  # file times use a coarse clock: a change just before the start counts as after it
PREVIEW_BYTES = 1 << 20  # a diff shows a file up to this size; a larger one is named with its size, not read
MAX_DEPTH = 256  # directories nested deeper than this (the jail can make any depth) are refused, not walked
MAX_ENTRIES = 1_000_000  # what one review holds in memory; a layer with more is refused
MAX_PATH = 3072  # bytes of a relative path: longer ones (the jail can nest any names) are refused, not opened
DIFF_PAIRS = 4_000_000  # difflib compares lines pairwise at worst (5,000 crafted lines: 4 s); past this, GNU diff
DIFF_SECONDS = 20.0  # what GNU diff may take in all, for one review: a crafted file slows any diff down
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_SPECIAL = ("fifo", "socket", "character device", "block device", "unknown")
_review = {"deadline": 0.0}  # when GNU diff's time for the current review (set by changes()) runs out


class Change(NamedTuple):
    kind: str  # "A" added, "M" changed, "D" deleted
    path: str  # relative to the workspace
    upper: str | None  # the file in the upper layer (None for a deletion)
    layer: str = ""  # the upper directory the path is relative to
    type: str = ""  # what the layer holds there (beneath.kind: file, directory, symlink, fifo...)

    @property
    def special(self) -> bool:
        """A FIFO, socket or device: listed, never copied to the workspace."""
        return self.kind != "D" and self.type in _SPECIAL


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


# ---- copying a size-capped layer out of the jail --------------------------------------------------

class _Budget:
    """What the export may still write to the host: the bytes and the entries the layer's tmpfs had room for.

    The cap is the tmpfs's own (`size=` limits.disk, `nr_inodes=`), read from the layer itself: the jail's
    processes never see that tmpfs's mount, so they cannot have changed it."""

    def __init__(self, layer: int, destination: int) -> None:
        info = os.fstatvfs(layer)
        self.bytes = info.f_blocks * info.f_frsize
        self.entries = info.f_files
        self.root = destination
        self.links: dict[int, str] = {}  # inode -> the path it was first written at

    def take(self, relative: str, info: os.stat_result, data: bool) -> None:
        self.entries -= 1
        if data:
            self.bytes -= info.st_blocks * 512  # what the tmpfs allocated: holes cost nothing, there and here
        if self.entries < 0 or self.bytes < 0:
            raise ValueError(f"the layer holds more than its disk cap lets out (at {relative!r}); nothing was saved")


def export(source: int, destination: int) -> None:
    """Copy a layer (directory fds) as overlayfs wrote it: whiteouts, opaque marks, modes, times.

    Runs in the jail's pid 1 after everything else in the jail is dead. Never follows a symlink,
    never opens anything but a regular file; drops setuid and setgid bits; keeps holes and hard
    links, so the host gets at most what the layer's tmpfs (limits.disk) held. On any failure it
    removes what it wrote: the session then shows no change rather than part of them."""
    try:
        _export(source, destination, _Budget(source, destination), "", 0)
    except BaseException:
        _clear(destination)
        raise


def _export(source: int, destination: int, budget: _Budget, relative: str, depth: int) -> None:
    if depth > MAX_DEPTH or len(os.fsencode(relative)) > MAX_PATH:
        raise ValueError(f"the layer nests directories deeper than {MAX_DEPTH} or {MAX_PATH} bytes "
                         f"(at {relative[:200]!r}); nothing was saved")
    for name in sorted(os.listdir(source)):
        info = os.stat(name, dir_fd=source, follow_symlinks=False)
        path = os.path.join(relative, name)
        mode = info.st_mode
        if stat.S_ISDIR(mode):
            budget.take(path, info, True)
            os.mkdir(name, 0o700, dir_fd=destination)
            inner_src, inner_dst = open_directory(source, name), open_directory(destination, name)
            try:
                _export(inner_src, inner_dst, budget, path, depth + 1)
                if _opaque(inner_src):
                    os.setxattr(inner_dst, OPAQUE_XATTR, b"y")
                os.fchmod(inner_dst, safe_mode(mode))
            finally:
                os.close(inner_src)
                os.close(inner_dst)
        elif stat.S_ISCHR(mode) and info.st_rdev == 0:
            budget.take(path, info, False)
            os.mknod(name, stat.S_IFCHR, 0, dir_fd=destination)  # a whiteout (no CAP_MKNOD needed)
        elif stat.S_ISLNK(mode):
            budget.take(path, info, True)
            os.symlink(os.readlink(name, dir_fd=source), name, dir_fd=destination)
        elif stat.S_ISREG(mode):
            _export_file(source, destination, budget, path, info)
        elif stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            budget.take(path, info, False)  # kept as what it is, so diff names it; never opened
            os.mknod(name, stat.S_IFMT(mode) | 0o600, dir_fd=destination)
        # no other device can be made in the jail's user namespace, nor here: nothing to copy


def _export_file(source: int, destination: int, budget: _Budget, path: str, info: os.stat_result) -> None:
    name = os.path.basename(path)
    first = budget.links.get(info.st_ino) if info.st_nlink > 1 else None
    if first is not None:  # the same inode again: a link to the copy already made, not a second copy
        budget.take(path, info, False)
        directory = open_directory(budget.root, os.path.dirname(first))
        try:
            os.link(os.path.basename(first), name, src_dir_fd=directory, dst_dir_fd=destination,
                    follow_symlinks=False)
        finally:
            os.close(directory)
        return
    budget.take(path, info, True)
    src = open_regular(source, name)
    try:
        write_copy(src, destination, name, info)
    finally:
        os.close(src)
    if info.st_nlink > 1:
        budget.links[info.st_ino] = path


def _clear(top: int) -> None:
    """Empty a directory (an fd), following nothing, at any depth, with two fds open at most.

    A layer can nest directories past PATH_MAX and past any recursion limit, so the walk goes
    down one directory at a time and back up by `..`, checking each time that it came back to
    the directory it left (nothing else writes there once the session has ended). Directories
    overlayfs left with mode 000 (its work directory) are opened up first."""
    current, trail = os.dup(top), []  # trail: (name, (st_dev, st_ino) of the directory holding it)
    try:
        while True:
            inner = None
            for name in os.listdir(current):
                info = os.stat(name, dir_fd=current, follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    inner = name
                    break
                os.unlink(name, dir_fd=current)
            if inner is not None:
                os.chmod(inner, 0o700, dir_fd=current)  # a directory, just checked: nothing to follow
                here = os.fstat(current)
                following = open_directory(current, inner)
                os.close(current)
                current = following
                trail.append((inner, (here.st_dev, here.st_ino)))
                continue
            if not trail:
                return
            name, expected = trail.pop()
            parent = os.open("..", _DIRECTORY, dir_fd=current)
            os.close(current)
            current = parent
            back = os.fstat(current)
            if (back.st_dev, back.st_ino) != expected:
                raise OSError(errno.ESTALE, "a directory moved while it was removed", name)
            os.rmdir(name, dir_fd=current)
    finally:
        os.close(current)


def summarize(log: Any, workspace: str) -> None:
    """The audit event that closes an overlay run: what it would change, and how to review it.

    An uncapped layer was written on the host by the kernel: its setuid and setgid bits go first."""
    upper = os.path.join(log.directory, "overlay", "upper")
    session = os.path.basename(log.directory)
    try:
        _strip_setid(upper)
        found = changes(upper, workspace)
    except (OSError, JailError) as exc:
        log.event("overlay-changes", error=str(exc), review=f"shelljail diff {session}",
                  drop=f"shelljail discard {session}")
        return
    counts = {kind: sum(1 for c in found if c.kind == kind) for kind in "AMD"}
    log.event("overlay-changes", added=counts["A"], changed=counts["M"], deleted=counts["D"],
              special=sum(1 for c in found if c.special), review=f"shelljail diff {session}",
              apply=f"shelljail commit {session}", drop=f"shelljail discard {session}")


def _strip_setid(upper: str) -> None:
    """Drop every setuid and setgid bit in a layer on the host, at any depth (no review bound
    applies here: a file nested past it would otherwise keep its bits)."""
    try:
        root = os.open(upper, _DIRECTORY)
    except FileNotFoundError:
        return
    try:
        for directory, name, info in _every(root):
            if not info.st_mode & (stat.S_ISUID | stat.S_ISGID):
                continue
            if stat.S_ISDIR(info.st_mode):
                fd = open_directory(directory, name)
            elif stat.S_ISREG(info.st_mode):
                fd = open_regular(directory, name)
            else:
                continue
            try:
                os.fchmod(fd, safe_mode(os.fstat(fd).st_mode))
            finally:
                os.close(fd)
    finally:
        os.close(root)


def _every(top: int) -> Iterator[tuple[int, str, os.stat_result]]:
    """(directory fd, name, lstat) of everything beneath `top`, at any depth, following nothing.

    Like _clear: one directory at a time, down by name and back up by `..`, checked to be the
    directory it left; the fd yielded is valid until the next item."""
    current, trail = os.dup(top), []
    pending = [sorted(os.listdir(current), reverse=True)]
    try:
        while True:
            if pending[-1]:
                name = pending[-1].pop()
                try:
                    info = os.stat(name, dir_fd=current, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                yield current, name, info
                if stat.S_ISDIR(info.st_mode):
                    here = os.fstat(current)
                    following = open_directory(current, name)
                    os.close(current)
                    current = following
                    trail.append((here.st_dev, here.st_ino))
                    pending.append(sorted(os.listdir(current), reverse=True))
                continue
            pending.pop()
            if not trail:
                return
            expected = trail.pop()
            parent = os.open("..", _DIRECTORY, dir_fd=current)
            os.close(current)
            current = parent
            back = os.fstat(current)
            if (back.st_dev, back.st_ino) != expected:
                raise OSError(errno.ESTALE, "a directory moved while it was read")
    finally:
        os.close(current)


# ---- reading a layer and the workspace, beneath their directories ------------------------------

def _root(path: str) -> int | None:
    """A directory the user named (the workspace) or the session's own (the layer); None if it is gone."""
    try:
        return os.open(path, _DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _lstat(root: int | None, relative: str) -> os.stat_result | None:
    """lstat of a path beneath `root`, through real directories only; None if absent, or if a symlink
    or a file stands on the way (the path is then not there as such)."""
    if root is None:
        return None
    parent_rel, name = os.path.split(relative)
    try:
        parent = open_directory(root, parent_rel)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV):
            return None
        raise
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    finally:
        os.close(parent)


def _entries(root: int, relative: str, depth: int = 0) -> Iterator[tuple[str, os.stat_result]]:
    """(path, lstat) of everything beneath `root`/`relative`, parents first, sorted, following nothing."""
    if depth > MAX_DEPTH or len(os.fsencode(relative)) > MAX_PATH:
        raise JailError(f"directories nested deeper than {MAX_DEPTH} or {MAX_PATH} bytes at {relative[:200]}: "
                        "not read", "discard the session, or take files out of its layer by hand")
    try:
        directory = open_directory(root, relative)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return
        raise
    try:
        names = sorted(os.listdir(directory))
        infos = [(name, os.stat(name, dir_fd=directory, follow_symlinks=False)) for name in names]
    finally:
        os.close(directory)
    for name, info in infos:
        path = os.path.join(relative, name)
        yield path, info
        if stat.S_ISDIR(info.st_mode):
            yield from _entries(root, path, depth + 1)


def changes(upper: str, workspace: str) -> list[Change]:
    """What the layer does to the workspace, sorted by path."""
    _review["deadline"] = time.monotonic() + DIFF_SECONDS
    layer, real = _root(upper), _root(workspace)
    if layer is None:
        if real is not None:
            os.close(real)
        return []
    try:
        return _changes(layer, real, upper)
    finally:
        os.close(layer)
        if real is not None:
            os.close(real)


def _changes(layer: int, real: int | None, upper: str) -> list[Change]:
    found: list[Change] = []
    _changes_in(layer, real, upper, "", 0, found)
    return sorted(found, key=lambda c: c.path)


def _changes_in(layer: int, real: int | None, upper: str, relative: str, depth: int, found: list[Change]) -> None:
    """The changes of one directory of the layer (both sides opened once), then of its directories."""
    if depth > MAX_DEPTH or len(os.fsencode(relative)) > MAX_PATH:
        raise JailError(f"directories nested deeper than {MAX_DEPTH} or {MAX_PATH} bytes at {relative[:200]}: "
                        "not read", "discard the session, or take files out of its layer by hand")
    here, there = _directory(layer, relative), _directory(real, relative)
    if here is None:
        if there is not None:
            os.close(there)
        return
    inner = []
    try:
        for name in sorted(os.listdir(here)):
            if len(found) > MAX_ENTRIES:
                raise JailError(f"the layer holds more than {MAX_ENTRIES} changes: not read", "discard the session")
            info = os.stat(name, dir_fd=here, follow_symlinks=False)
            below = _stat_in(there, name)
            path, below_dir = os.path.join(relative, name), below is not None and stat.S_ISDIR(below.st_mode)
            change = Change("A", path, os.path.join(upper, path), upper, kind(info.st_mode))
            if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:  # a whiteout
                found += [Change("D", p, None, upper) for p in _below(real, path, None)]
            elif stat.S_ISDIR(info.st_mode):
                inner.append(path)
                if _opaque_at(here, name):
                    found += [Change("D", p, None, upper) for p in _below(real, path, layer)]
                if not below_dir:
                    found.append(change)
            elif below is None:
                found.append(change)
            elif below_dir:  # a file or symlink where a directory was: the directory goes first, then it comes
                found += [Change("D", p, None, upper) for p in _below(real, path, None)]
                found.append(change._replace(kind="M"))
            elif not _same(here, there, name, info, below):
                found.append(change._replace(kind="M"))
    finally:
        os.close(here)
        if there is not None:
            os.close(there)
    for path in inner:
        _changes_in(layer, real, upper, path, depth + 1, found)


def _directory(root: int | None, relative: str) -> int | None:
    """A real directory beneath `root`, or None if it is not there as one (absent, a file, a symlink)."""
    if root is None:
        return None
    try:
        return open_directory(root, relative)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV):
            return None
        raise


def _stat_in(directory: int | None, name: str) -> os.stat_result | None:
    if directory is None:
        return None
    try:
        return os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _opaque(directory: int) -> bool:
    try:
        return os.getxattr(directory, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def _opaque_at(layer: int, relative: str) -> bool:
    try:
        directory = open_directory(layer, relative)
    except OSError:
        return False
    try:
        return _opaque(directory)
    finally:
        os.close(directory)


def _below(real: int | None, relative: str, keep: int | None) -> list[str]:
    """The real paths a deletion of `relative` removes (a tree: every file, then the directory).
    With `keep` (the layer, for an opaque directory), what the layer has again is not deleted."""
    below = _lstat(real, relative)
    if real is None or below is None:
        return []
    if not stat.S_ISDIR(below.st_mode):
        return [relative]  # a file or symlink the layer deleted, or replaced by a directory of its own
    found: list[str] = []
    directories: list[str] = []
    for path, info in _entries(real, relative):
        if stat.S_ISDIR(info.st_mode):
            directories.append(path)
        elif keep is None or _lstat(keep, path) is None:
            found.append(path)
    if keep is None:
        found += [*sorted(directories, reverse=True), relative]  # contents first, then each directory
    return found


def _same(here: int, there: int | None, name: str, a: os.stat_result, b: os.stat_result) -> bool:
    """Whether the layer's `name` (in directory `here`) equals the workspace's (in `there`)."""
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode) or stat.S_IMODE(a.st_mode) != stat.S_IMODE(b.st_mode):
        return False
    if stat.S_ISLNK(a.st_mode):
        return _readlink(here, name) == _readlink(there, name)
    if not stat.S_ISREG(a.st_mode):
        return True  # the same kind of special file, with the same mode: nothing to compare
    if a.st_size != b.st_size:
        return False
    fa, fb = _open_file(here, name), _open_file(there, name)
    try:
        if fa is None or fb is None:
            return False
        offset = 0
        while offset < a.st_size:
            size = min(1 << 20, a.st_size - offset)  # not a fresh megabyte for each small file
            chunk = os.pread(fa, size, offset)
            if chunk != os.pread(fb, size, offset):
                return False
            if not chunk:
                break
            offset += len(chunk)
        return True
    finally:
        for fd in (fa, fb):
            if fd is not None:
                os.close(fd)


def _open_file(root: int | None, relative: str) -> int | None:
    """A regular file beneath `root` (no symlink on the way or at the end), opened without blocking;
    None if it is not one (any more)."""
    if root is None:
        return None
    try:
        return open_regular(root, relative)
    except OSError:
        return None


def _readlink(root: int | None, relative: str) -> str | None:
    """A symlink's target, beneath `root` through real directories only."""
    if root is None:
        return None
    parent_rel, name = os.path.split(relative)
    try:
        if not parent_rel:
            return os.readlink(name, dir_fd=root)
        parent = open_directory(root, parent_rel)
    except OSError:
        return None
    try:
        return os.readlink(name, dir_fd=parent)
    except OSError:
        return None
    finally:
        os.close(parent)


# ---- showing a change ---------------------------------------------------------------------------

class _Side(NamedTuple):
    text: str | None  # the content as text, or None when it is not shown as text
    note: str = ""  # why not: "binary", "large: N bytes", "fifo"...
    mode: int = 0  # its permission bits (0: not there)


def unified(change: Change, workspace: str) -> str:
    """A unified diff of one change, or a line saying what it is when it is not text to show:
    a binary file, a file larger than PREVIEW_BYTES (named with its size, not read), a FIFO,
    socket or device (never opened, never copied)."""
    real, layer = _root(workspace), _root(change.layer) if change.layer else None
    try:
        old = _side(real, change.path) if change.kind != "A" else _Side("")
        new = _side(layer, change.path) if change.kind != "D" else _Side("")
    finally:
        for fd in (real, layer):
            if fd is not None:
                os.close(fd)
    a, b = f"a/{change.path}", f"b/{change.path}"
    modes = ""
    if change.kind == "M" and old.mode != new.mode and old.mode and new.mode:
        modes = f"Mode of {b}: {old.mode:o} -> {new.mode:o}\n"
    return modes + _shown_change(change, old, new, a, b)


def _shown_change(change: Change, old: _Side, new: _Side, a: str, b: str) -> str:
    if change.special or new.note in _SPECIAL:
        return f"Special file {b} ({new.note or change.type}, not copied)\n"
    if old.note in _SPECIAL:
        return f"Special file {a} ({old.note}) {'deleted' if change.kind == 'D' else 'replaced'}\n"
    if old.note == "directory" or new.note == "directory":
        return ""
    for side, name in ((new, b), (old, a)):
        if side.note.startswith("large: "):
            return f"Large file {name} ({side.note[len('large: '):]}), not shown\n"
    if old.text is None or new.text is None:
        return f"Binary files {a} and {b} differ\n"
    before, after = old.text.splitlines(keepends=True), new.text.splitlines(keepends=True)
    labels = ("/dev/null" if change.kind == "A" else a, "/dev/null" if change.kind == "D" else b)
    if len(before) * len(after) > DIFF_PAIRS:
        return _gnu_diff(old.text, new.text, labels) or \
            f"Long file {b} ({len(before)} lines before, {len(after)} after), diff not shown\n"
    lines = difflib.unified_diff(before, after, *labels)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _gnu_diff(old: str, new: str, labels: tuple[str, str]) -> str | None:
    """`diff -u` of two texts (from memory, through memfds), within what is left of the review's
    DIFF_SECONDS; None when there is no GNU diff or no time left."""
    import shutil
    import subprocess

    program, left = shutil.which("diff"), _review["deadline"] - time.monotonic()
    if program is None or left <= 0:
        return None
    fds = [os.memfd_create("shelljail-diff"), os.memfd_create("shelljail-diff")]
    try:
        for fd, text in zip(fds, (old, new), strict=True):
            os.write(fd, text.encode())
            os.lseek(fd, 0, os.SEEK_SET)
        done = subprocess.run([program, "-u", "--label", labels[0], "--label", labels[1],
                               *(f"/dev/fd/{fd}" for fd in fds)], pass_fds=fds, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=left)
    except (OSError, subprocess.TimeoutExpired):
        return None
    finally:
        for fd in fds:
            os.close(fd)
    return done.stdout.decode(errors="replace") if done.returncode in (0, 1) else None


def _side(root: int | None, relative: str) -> _Side:
    """One side of a diff, read beneath `root`: only a regular file is opened, and at most PREVIEW_BYTES."""
    info = _lstat(root, relative)
    if root is None or info is None:
        return _Side("")
    side = _content(root, relative, info)
    return side._replace(mode=stat.S_IMODE(info.st_mode))


def _content(root: int, relative: str, info: os.stat_result) -> _Side:
    if stat.S_ISDIR(info.st_mode):
        return _Side("", "directory")
    if stat.S_ISLNK(info.st_mode):
        return _Side(f"(symlink to {_readlink(root, relative)})\n")
    if not stat.S_ISREG(info.st_mode):
        return _Side(None, kind(info.st_mode))
    fd = _open_file(root, relative)
    if fd is None:
        return _Side(None, "gone")
    try:
        data = read_fd(fd, PREVIEW_BYTES, relative)
    except TooLarge as exc:
        return _Side(None, f"large: {exc.size} bytes")
    finally:
        os.close(fd)
    if b"\0" in data[:8192]:
        return _Side(None, "binary")
    try:
        return _Side(data.decode())
    except UnicodeDecodeError:
        return _Side(None, "binary")


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
    """The paths whose real file changed (or appeared, or went) since the session started, and those
    a symlink or a file made on the way since would stand in the way of (commit never follows one)."""
    since = target.started_ns - MARGIN_NS
    out = []
    real = _root(target.workspace)
    replaced = {c.path for c in chosen if c.kind == "D"}  # deleted first, then made again: not an addition's conflict
    try:
        for change in chosen:
            obstacle = _obstacle(real, change.path, replaced)
            if obstacle:
                out.append(f"{change.path} ({obstacle} on the way, made outside the session)")
                continue
            info = _lstat(real, change.path)
            if info is None:
                if change.kind in ("M", "D"):
                    out.append(f"{change.path} (deleted outside the session)")
            elif change.kind == "A" and not stat.S_ISDIR(info.st_mode) and change.path not in replaced:
                out.append(f"{change.path} (created outside the session)")
            elif change.kind != "A" and info.st_ctime_ns > since and not stat.S_ISDIR(info.st_mode):
                out.append(f"{change.path} (changed outside the session)")
    finally:
        if real is not None:
            os.close(real)
    return out


def _obstacle(real: int | None, relative: str, replaced: set[str]) -> str | None:
    """What stands on the way to `relative` beneath `real` and is not a real directory (a symlink,
    a file); None when every parent is a directory, not there yet, or deleted by this commit first."""
    if real is None:
        return "no workspace"
    current = os.dup(real)
    try:
        prefix = ""
        for part in os.path.dirname(relative).split("/"):
            if not part:
                continue
            prefix = os.path.join(prefix, part)
            if prefix in replaced:
                return None
            try:
                info = os.stat(part, dir_fd=current, follow_symlinks=False)
            except FileNotFoundError:
                return None
            if not stat.S_ISDIR(info.st_mode):
                return f"a {kind(info.st_mode)}"
            try:
                following = open_directory(current, part)
            except FileNotFoundError:
                return None
            except OSError as exc:  # swapped since the stat (a jail on the same workspace races it)
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EXDEV):
                    return {errno.ELOOP: "a symlink", errno.EXDEV: "a mount"}.get(exc.errno, "a file")
                raise
            os.close(current)
            current = following
        return None
    finally:
        os.close(current)


def commit(chosen: list[Change], target: Session) -> list[str]:
    """Apply the changes to the real workspace: files atomically, deletions after their contents.

    Every path is opened beneath the workspace's and the layer's directory fds, no symlink followed
    (a symlink in the layer is placed as a symlink; one made in the workspace since stops the
    commit there). A FIFO, socket or device in the layer is skipped, said on stderr and in the
    log: it has no content to keep, and a FIFO in the workspace would hang the next program that
    reads it. Returns those lines. A failure stops the commit with one line, after taking what
    was applied out of the layer (nothing half-written: each file lands by a rename, or not at all)."""
    from jail.display import shown

    root, layer = os.open(target.workspace, _DIRECTORY), os.open(target.upper, _DIRECTORY)
    done: list[Change] = []
    skipped: list[str] = []
    links: dict[tuple[int, int], tuple[str, tuple[int, int]]] = {}
    additions = sorted((c for c in chosen if c.kind != "D"), key=lambda c: c.path)  # parents first
    deletions = sorted((c for c in chosen if c.kind == "D"), key=lambda c: c.path, reverse=True)  # contents first
    try:
        for change in [*deletions, *additions]:
            try:
                what = _apply(change, root, layer, links)
            except OSError as exc:
                record(target, "overlay-commit", None, paths=[f"{c.kind} {c.path}" for c in done],
                       stopped=f"{change.kind} {change.path}: {exc.strerror or exc}")
                raise JailError(f"commit stopped at {change.path}: {exc.strerror or exc}",
                                f"{len(done)} of {len(chosen)} change(s) applied, the rest still in the session; "
                                f"shelljail diff {target.id}", EXIT_REFUSED) from None
            done.append(change)
            if what:
                skipped.append(f"{change.path} ({what}, not copied: special files never leave an overlay)")
    finally:
        os.close(root)
        os.close(layer)
        _forget(done, target)
        if skipped:
            record(target, "overlay-skip", None, paths=skipped)
            for line in skipped:
                print(f"shelljail: skipped {shown(line)}", file=sys.stderr)
    return skipped


def _apply(change: Change, root: int, layer: int, links: dict[tuple[int, int], tuple[str, tuple[int, int]]]) -> str:
    """One change, beneath the workspace's fd; what was skipped ("fifo"...), or ""."""
    parent_rel, name = os.path.split(change.path)
    if change.kind == "D":
        parent = open_directory(root, parent_rel)
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
        return ""
    source = open_directory(layer, parent_rel)
    try:
        info = os.stat(name, dir_fd=source, follow_symlinks=False)
        if not (stat.S_ISDIR(info.st_mode) or stat.S_ISLNK(info.st_mode) or stat.S_ISREG(info.st_mode)):
            return kind(info.st_mode)
        parent = make_directories(root, parent_rel)
        try:
            return _place(source, parent, name, info, change.path, root, links)
        finally:
            os.close(parent)
    finally:
        os.close(source)


def _place(source: int, parent: int, name: str, info: os.stat_result, path: str, root: int,
           links: dict[tuple[int, int], tuple[str, tuple[int, int]]]) -> str:
    """A directory, symlink or regular file of the layer at `parent`/`name`, by a rename from a
    temporary name; a file the layer holds under several names is copied once and linked after."""
    if stat.S_ISDIR(info.st_mode):
        try:
            os.mkdir(name, safe_mode(info.st_mode), dir_fd=parent)
        except FileExistsError:
            pass
        return ""
    temporary = f".shelljail-{os.getpid()}-{os.urandom(4).hex()}"  # short: any name of 255 bytes still fits
    try:
        if stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(name, dir_fd=source), temporary, dir_fd=parent)  # placed, never followed
        else:
            src = open_regular(source, name)  # NotRegular if it was swapped since: skipped below
            try:
                _write(src, parent, temporary, path, root, links)
            finally:
                os.close(src)
        os.rename(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)  # replaces the old file in one step
    except NotRegular as exc:
        return exc.kind
    except BaseException:
        try:
            os.unlink(temporary, dir_fd=parent)
        except OSError:
            pass
        raise
    return ""


def _write(src: int, parent: int, temporary: str, path: str, root: int,
           links: dict[tuple[int, int], tuple[str, tuple[int, int]]]) -> None:
    held = os.fstat(src)
    key = (held.st_dev, held.st_ino)
    if held.st_nlink > 1 and key in links:  # the same file again: a hard link to the copy made, if still there
        first, made = links[key]
        first_parent_rel, first_name = os.path.split(first)
        try:
            directory = open_directory(root, first_parent_rel)
        except OSError:
            directory = None
        if directory is not None:
            try:
                os.link(first_name, temporary, src_dir_fd=directory, dst_dir_fd=parent, follow_symlinks=False)
                linked = os.stat(temporary, dir_fd=parent, follow_symlinks=False)
                if (linked.st_dev, linked.st_ino) == made:
                    return
                os.unlink(temporary, dir_fd=parent)  # not the file we wrote any more: copy instead
            except FileNotFoundError:
                pass
            finally:
                os.close(directory)
    made_info = write_copy(src, parent, temporary, held)
    if held.st_nlink > 1:
        links[key] = (path, (made_info.st_dev, made_info.st_ino))


def _forget(chosen: list[Change], target: Session) -> None:
    """Take what was committed out of the layer, so it is neither shown nor applied again.

    A whiteout goes once nothing is left below it for real (a partly committed deletion of a
    tree keeps it, for the rest)."""
    layer, real = _root(target.upper), _root(target.workspace)
    if layer is None:
        return
    try:
        for change in sorted(chosen, key=lambda c: c.path, reverse=True):
            for candidate in (change.path, *_whiteout_parents(layer, change.path)):
                info = _lstat(layer, candidate)
                if info is None:
                    continue
                parent_rel, name = os.path.split(candidate)
                try:
                    parent = open_directory(layer, parent_rel)
                except OSError:
                    continue
                try:
                    if _is_whiteout(info):
                        if _lstat(real, candidate) is None:
                            os.unlink(name, dir_fd=parent)
                    elif stat.S_ISDIR(info.st_mode):
                        os.rmdir(name, dir_fd=parent)
                    else:
                        os.unlink(name, dir_fd=parent)
                except OSError:
                    pass  # a directory that still holds changes not committed
                finally:
                    os.close(parent)
    finally:
        os.close(layer)
        if real is not None:
            os.close(real)


def _whiteout_parents(layer: int, relative: str) -> list[str]:
    """The whiteout that stands for a deleted tree containing `relative`."""
    parts = relative.split("/")
    return [prefix for prefix in ("/".join(parts[:i]) for i in range(1, len(parts)))
            if _is_whiteout(_lstat(layer, prefix))]


def _is_whiteout(info: os.stat_result | None) -> bool:
    return info is not None and stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def record(target: Session, event: str, state: str | None, **fields: Any) -> None:
    """An event in the session's own log (and its new overlay state): who applied or dropped what."""
    from jail.supervisor.audit import AuditLog

    log = AuditLog(session=target.id, directory=target.directory)
    log.event(event, by=f"pid {os.getpid()}", **fields)
    if state:
        log.state(overlay=state)
    log.close()


def discard(target: Session) -> None:
    """Remove the session's layer (and overlayfs's work directory) beneath the session's directory."""
    session_dir = os.open(target.directory, _DIRECTORY)
    try:
        try:
            overlay = open_directory(session_dir, "overlay")
        except FileNotFoundError:
            return
        try:
            _clear(overlay)
        finally:
            os.close(overlay)
        os.rmdir("overlay", dir_fd=session_dir)
    finally:
        os.close(session_dir)
