"""The workspace timeline: a checkpoint before every command the agent runs, and undo to any of them.

The trash covers rm, snapshots cover git's discarding commands; this covers the rest (`: > f`, `sed -i`,
`mv src /tmp/`, a script's own deletions) with one mechanism. The decision service calls `checkpoint`
before it lets a top-level command line run; the point records what changed in the workspace since
the point before it.

Why a store of our own and not a shadow git repository: git on the host would read the workspace's
configuration, attributes and hooks unless each is switched off, and `git add` follows no rules of ours
about FIFOs, sizes and symlinks. The store is simple: under the session's directory (outside every
jail's view), file contents by SHA-256, zlib-compressed, appended to pack files (a small file costs its
bytes, not a disk block); `points.jsonl`, one JSON line per point, holding only the entries that changed
since the point before (the first point: all of them) and where the contents it stored are. A line is
appended whole after its contents are written, so a supervisor killed mid-session leaves every point
it finished.

What is incremental: a file whose (inode, size, mtime, ctime, mode) is the one recorded is not read
again. Caches (jail/policy/paths.py is_cache_path) and mounts inside the workspace are left out; files
over `max_file_bytes` are recorded but not kept (undo says so); FIFOs, sockets and devices are recorded
as what they are and never opened. Restoring works beneath the workspace's directory fd, one name at a
time, never through a symlink, and never sets a setuid or setgid bit.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from jail.kernel.beneath import (
    RESOLVE_NO_XDEV,
    STRICT,
    NotRegular,
    kind,
    open_directory,
    open_regular,
    openat2,
    safe_mode,
    write_all,
)

POINTS_NAME = "points.jsonl"
PACKS_NAME = "packs"
DEPTH_LIMIT = 256  # directory levels walked
ENTRIES_LIMIT = 200_000  # files recorded per walk (each costs memory in the supervisor)
POINTS_LIMIT = 100_000  # points read back
LINE_LIMIT = 256 << 20  # bytes of one point's line read back
FULL_EVERY = 16  # every so many points walk everything, whatever inotify said
MERGE_AT = 0.9  # of timeline.max_bytes: before a point, the oldest points are merged away ...
MERGE_TO = 0.5  # ... until what the rest needs is at most this share
UNDO_FILE_BYTES = 64 << 20  # a file undo reads, for a timeline that does not say its own limit
_WORKSPACE = STRICT | RESOLVE_NO_XDEV  # never a symlink, never into another mount
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
WORKSPACE_TRASH = ".shelljail-trash"

# An entry: the state of one path. type: file | dir | symlink | other; `keep` the content's digest
# (None: not kept, too large or unreadable); `target` a symlink's; `what` an other's kind.
Entry = dict[str, Any]


class TimelineError(Exception):
    """A timeline that cannot be read or restored; the message says why and what to do."""


def timeline_directory(session_directory: str) -> str:
    return os.path.join(session_directory, "timeline")


class Walk:
    """Walks of the workspace: every entry by relative path, files read only when their identity changed
    since `known` (path -> entry of the walk before). `run` walks everything; `rescan` only the
    directories a Watcher saw change (and what is new under them), keeping the rest as it was."""

    def __init__(self, root: int, store: Store | None, known: dict[str, Entry], skip: Callable[[str], bool],
                 max_file_bytes: int, watcher: Watcher | None = None) -> None:
        self.root, self.store, self.known, self.skip = root, store, known, skip
        self.max_file_bytes, self.watcher = max_file_bytes, watcher
        self.entries: dict[str, Entry] = {}
        self.children: dict[str, set[str]] = {}  # a directory's prefix ("" or "a/b/") -> the names recorded in it
        self.touched: set[str] = set()  # paths a rescan set or dropped: the only ones that can have changed
        # Files with more than one link: a write through another name (in a cache, outside the workspace)
        # reaches no watched directory, so a rescan lists their directories whatever inotify said.
        self.linked: set[str] = set()

    def run(self) -> dict[str, Entry]:
        self._directory(os.dup(self.root), "", 0, True)
        return self.entries

    def rescan(self, dirty: set[str], children: dict[str, set[str]], linked: set[str]) -> dict[str, Entry]:
        """The entries with only the `dirty` directories listed again; `children` the index of the walk
        before. A directory that is gone or no longer a directory makes it raise Stale (walk everything)."""
        self.entries = dict(self.known)
        self.children = dict(children)  # its sets are replaced, never changed in place: shared safely
        self.linked = set(linked)
        self._list(dirty | {_folder(path) for path in linked})
        # A link made since the walk before: link() tells no watch of the first name's folder (its count
        # changed on the inode alone), so that name's later writes through the new one would go unseen
        # until a full walk. The new linked files' inodes, looked up among the names recorded, name them.
        new = {self.entries[path]["id"][0] for path in self.linked - linked if path in self.entries}
        if new:
            others = {path for path, entry in self.entries.items() if entry["type"] == "file"
                      and entry["id"][0] in new and path not in self.linked}
            self._list({_folder(path) for path in others})  # their listing adds them to `linked`
        return self.entries

    def _list(self, dirty: set[str]) -> None:
        """List the `dirty` directories again (prefixes "" or "a/b/")."""
        for prefix in sorted(dirty, key=len):  # parents first: a new directory's walk covers its children
            if prefix not in self.children:
                if prefix.rstrip("/") in self.entries or not prefix:
                    raise Stale(prefix)
                continue  # under a directory this rescan already walked whole
            try:
                fd = open_directory(self.root, prefix, _WORKSPACE)
            except OSError:
                raise Stale(prefix) from None
            if prefix:  # the directory's own entry (its mode, its times) is in its parent's listing
                self.entries[prefix[:-1]] = self._entry(fd, "", prefix[:-1], os.fstat(fd))
                self.touched.add(prefix[:-1])
            self._directory(fd, prefix, prefix.count("/"), False)

    def _directory(self, fd: int, prefix: str, depth: int, recurse: bool) -> None:
        """List the directory open as `fd`. Subdirectories: walked whole if `recurse` or if new (not a
        directory in `known`), else kept as recorded (their own events bring them here)."""
        try:
            if depth > DEPTH_LIMIT:
                raise TimelineError(f"more than {DEPTH_LIMIT} directory levels under {prefix or '.'}")
            if self.watcher is not None:
                self.watcher.add(fd, prefix)  # before the listing: a change after it is an event
            with os.scandir(fd) as listing:
                names = [entry.name for entry in listing]
            before = self.children.get(prefix, set())
            for gone in before.difference(names):
                self._forget(prefix + gone)
            present = set()
            for name in names:
                relative = prefix + name
                if self.skip(relative):
                    continue
                if len(self.entries) >= ENTRIES_LIMIT:
                    raise TimelineError(f"more than {ENTRIES_LIMIT} files in the workspace")
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:  # gone since the listing
                    self._forget(relative)
                    continue
                was = self.entries.get(relative)
                if was is not None and was["type"] == "dir" and not stat.S_ISDIR(st.st_mode):
                    self._forget(relative)
                self.entries[relative] = self._entry(fd, name, relative, st)
                self.touched.add(relative)
                if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                    self.linked.add(relative)
                else:
                    self.linked.discard(relative)
                present.add(name)
                if stat.S_ISDIR(st.st_mode) and (recurse or was is None or was["type"] != "dir" or
                                                 relative + "/" not in self.children):
                    try:
                        child = openat2(fd, name, _DIRECTORY, _WORKSPACE)
                    except OSError as exc:
                        if exc.errno in (errno.EXDEV, errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                            continue  # a mount inside the workspace, or swapped since the stat
                        raise
                    self._directory(child, relative + "/", depth + 1, True)
            self.children[prefix] = present
        finally:
            os.close(fd)

    def _forget(self, relative: str) -> None:
        """A path gone from its directory, and, if it was one, everything recorded under it."""
        entry = self.entries.pop(relative, None)
        self.touched.add(relative)
        self.linked.discard(relative)
        if entry is not None and entry["type"] == "dir":
            for name in self.children.pop(relative + "/", set()):
                self._forget(relative + "/" + name)

    def _entry(self, parent: int, name: str, relative: str, st: os.stat_result) -> Entry:
        ident = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode]
        before = self.known.get(relative)
        if before is not None and before.get("id") == ident:
            return before
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            return {"type": "dir", "mode": mode, "id": ident}
        if stat.S_ISLNK(st.st_mode):
            return {"type": "symlink", "target": os.readlink(name, dir_fd=parent), "id": ident}
        if not stat.S_ISREG(st.st_mode):
            return {"type": "other", "what": kind(st.st_mode), "id": ident}
        entry = {"type": "file", "mode": mode, "size": st.st_size, "mtime": st.st_mtime_ns, "keep": None,
                 "id": ident}
        if self.store is not None and st.st_size <= self.max_file_bytes:
            try:
                fd = open_regular(parent, name, _WORKSPACE)
            except (NotRegular, OSError):
                return entry  # swapped or gone since the stat: recorded, not kept
            try:
                entry["keep"] = self.store.put(fd, self.max_file_bytes)
            finally:
                os.close(fd)
        return entry


def _digest(data: bytes) -> str:
    """sha256 in hex. hashlib (OpenSSL: 3-4 ms) is imported at the first content kept, in the timeline's
    thread, not before the jail's fork (#27)."""
    import hashlib

    return hashlib.sha256(data).hexdigest()


class Stale(Exception):
    """A rescan that cannot be trusted (a directory moved or gone): walk everything instead."""


class Watcher:
    """Which directories changed since the last look, from inotify: a checkpoint then lists those
    only. What inotify cannot say (a directory moved or deleted, an overflowed queue, a watch the
    kernel refused) makes `changed` return None: walk everything. inotify does not see writes
    through a shared mmap or through a hard link from outside the workspace, so every FULL_EVERY-th
    point, the last and undo's walk everything anyway."""

    def __init__(self) -> None:
        # Imported here, in the timeline's thread after the jail is forked (#27).
        from jail.kernel import inotify

        self.mask = (inotify.MODIFY | inotify.ATTRIB | inotify.CLOSE_WRITE | inotify.CREATE | inotify.DELETE |
                     inotify.MOVED_FROM | inotify.MOVED_TO | inotify.DELETE_SELF | inotify.MOVE_SELF |
                     inotify.ONLYDIR | inotify.EXCL_UNLINK)
        # Not DONT_FOLLOW: /proc/self/fd/N is a link to follow, to the very directory the walk holds open.
        self.distrust = inotify.Q_OVERFLOW | inotify.DELETE_SELF | inotify.MOVE_SELF | inotify.IGNORED | inotify.UNMOUNT
        self.inotify = inotify.INotify()  # close-on-exec: no jail process gets it
        self.prefixes: dict[int, str] = {}
        self.refused: str | None = None

    def add(self, fd: int, prefix: str) -> None:
        try:  # the directory fd's own /proc link: the directory the walk opened, never a path re-resolved
            self.prefixes[self.inotify.add_watch(f"/proc/self/fd/{fd}", self.mask)] = prefix
        except OSError as exc:
            self.refused = f"inotify refused a watch ({exc.strerror}; see fs.inotify.max_user_watches)"

    def changed(self) -> set[str] | None:
        events = self.inotify.read()
        dirty = set()
        for wd, mask in events:
            prefix = self.prefixes.get(wd)
            if prefix is None or mask & self.distrust:
                return None
            dirty.add(prefix)
        return None if self.refused else dirty

    # Closing an inotify descriptor that holds watches waits for an SRCU grace period (fsnotify_destroy_group:
    # 7-15 ms here, at every full walk, the last point's included); removing the watches one by one does not
    # (5 watches: 0.05 ms). At this many the two cost the same (removals 19 ms, a close 11-21 ms).
    RESET_BY_REMOVAL = 2000

    def reset(self) -> None:
        """Before a full walk: every watch goes, the walk adds them again with their present paths."""
        if len(self.prefixes) > self.RESET_BY_REMOVAL:
            self.inotify.close()
            self.__init__()
            return
        for wd in self.prefixes:
            try:
                self.inotify.rm_watch(wd)
            except OSError:
                pass  # gone already: the kernel removed it with its directory
        while self.inotify.read():
            pass  # what came before the walk, and each removal's IN_IGNORED: the walk sees it all
        self.prefixes = {}
        self.refused = None

    def close(self, detached: bool = False) -> None:
        self.inotify.close(detached)


class Store:
    """Contents by digest, compressed, appended to pack files (one per writer: a small file costs its
    bytes, not a disk block); where each content is, as the points recorded it. Bounded in bytes."""

    def __init__(self, directory: str, max_bytes: int, known: dict[str, list[Any]] | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.where: dict[str, list[Any]] = dict(known or {})  # digest -> [pack, offset, length]
        self.new: dict[str, list[Any]] = {}  # stored since the last `taken`
        os.makedirs(os.path.join(directory, PACKS_NAME), mode=0o700, exist_ok=True)
        self.fd = os.open(os.path.join(directory, PACKS_NAME), _DIRECTORY | os.O_NOFOLLOW)
        names = os.listdir(self.fd)
        self.bytes = sum(os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_size for name in names)
        self.pack = f"{len(names) + 1}-{os.getpid()}"
        self.out: int | None = None
        self.offset = 0
        self.full = False  # a content was not kept for the cap

    def put(self, source: int, limit: int) -> str | None:
        """The digest of the open file's content, stored; None if it grew past `limit` as it was read or
        the store is full."""
        data = read_up_to(source, limit)
        if data is None:
            return None
        digest = _digest(data)
        if digest in self.where:
            return digest
        packed = zlib.compress(data, 1)
        if self.bytes + len(packed) > self.max_bytes:
            self.full = True
            return None
        if self.out is None:
            self.out = os.open(self.pack, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                               dir_fd=self.fd)
        write_all(self.out, packed, self.offset)
        self.where[digest] = self.new[digest] = [self.pack, self.offset, len(packed)]
        self.offset += len(packed)
        self.bytes += len(packed)
        return digest

    def taken(self) -> dict[str, list[Any]]:
        """The contents stored since the last call, for the point that names them."""
        new, self.new = self.new, {}
        return new

    def get(self, digest: str, size: int) -> bytes:
        """A content stored here, checked against its digest."""
        place = self.where.get(digest)
        if not (isinstance(place, list) and len(place) == 3 and isinstance(place[0], str) and "/" not in place[0]
                and all(isinstance(n, int) and n >= 0 for n in place[1:])):
            raise TimelineError(f"the timeline does not say where the content {str(digest)[:12]} is")
        pack, offset, length = place
        if length > size + (size >> 6) + (1 << 16):  # zlib's worst case is far below
            raise TimelineError(f"the stored content {digest[:12]} is larger than its file")
        fd = os.open(pack, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=self.fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise TimelineError(f"the pack {pack} is not a regular file")
            packed = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        try:
            data = zlib.decompressobj().decompress(packed, size + 1)
        except zlib.error:
            data = b""
        if len(data) != size or _digest(data) != digest:
            raise TimelineError(f"the stored content {digest[:12]} is damaged")
        return data

    def close(self) -> None:
        if self.out is not None:
            os.close(self.out)
            self.out = None
        os.close(self.fd)


def read_up_to(fd: int, limit: int) -> bytes | None:
    """An open file's content, or None past `limit` bytes (it grew since its stat)."""
    chunks, size = [], 0
    while size <= limit:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    return None


def skipper(covered: tuple[str, ...], is_cache: Callable[[str], bool]) -> Callable[[str], bool]:
    """What a walk leaves out: caches, the workspace trash, what other mounts cover (relative paths)."""
    covered_set = frozenset(covered)

    def skip(relative: str) -> bool:
        return relative == WORKSPACE_TRASH or relative in covered_set or is_cache(relative)

    return skip


class Timeline:
    """One session's timeline, written by the supervisor (the decision service's threads)."""

    def __init__(self, directory: str, workspace: str, covered: tuple[str, ...], max_bytes: int,
                 max_file_bytes: int, log: Any = None, layered: bool = False) -> None:
        from jail.policy.paths import is_cache_path

        self.directory, self.workspace, self.covered, self.log = directory, workspace, covered, log
        self.skip = skipper(covered, is_cache_path)
        self.max_bytes, self.max_file_bytes = max_bytes, max_file_bytes
        self.lock = threading.Lock()
        self.state: dict[str, Entry] = {}
        self.points = 0
        self.off: str | None = None  # why no more points are taken
        self.store: Store | None = None
        self.baseline: threading.Thread | None = None
        self.watcher: Watcher | None = None
        self.children: dict[str, set[str]] = {}  # the last walk's index of directories
        self.linked: set[str] = set()  # the last walk's files with more than one link (Walk.linked)
        # An overlay workspace (timeline_overlay.py): walked as the jail sees it, from the first command on.
        self.layered = layered
        self.view: int | None = None  # the jail's workspace, held open for the session

    def _root(self) -> int:
        """A directory fd of the workspace to walk: the real one, or the overlay's merged view."""
        if not self.layered:
            return os.open(self.workspace, _DIRECTORY)
        if self.view is None:
            raise TimelineError("the jail's view of the workspace could not be opened")
        return os.dup(self.view)

    def start(self) -> None:
        """The first point, in a thread: the jail starts meanwhile (the first command waits for it). An
        overlay's first point is taken before the first command, once the jail has mounted its view."""
        if self.layered:
            return
        self.baseline = threading.Thread(target=self._first, daemon=True, name="timeline")
        self.baseline.start()

    def _first(self) -> None:
        with self.lock:
            self._point(None, "start")

    def checkpoint(self, command: str, jail_root: Callable[[], int] | None = None) -> None:
        """A point before `command` runs. Raises TimelineError when no point was taken (the timeline is
        off): the decision service then denies the line, since rules let some lines run unasked only
        because they can be undone, and the jail can turn the timeline off (a tree too deep, too many files).
        `jail_root`: the root of the process asking (an overlay's view is opened beneath it, once)."""
        if self.baseline is not None:
            self.baseline.join()
        with self.lock:
            if self.layered and self.view is None and jail_root is not None and self.off is None:
                from jail.recovery.timeline_overlay import jail_workspace

                try:
                    self.view = jail_workspace(jail_root(), self.workspace)
                except OSError as exc:
                    self._turn_off(f"the jail's view of the workspace could not be opened: {exc}")
            if self.layered and self.points == 0:
                self._point(None, "start")
            self._point(command, "command")
            if self.off is not None:
                raise TimelineError(f"the timeline is off: {self.off}")

    def finish(self, exiting: bool = False) -> None:
        """The point after the last command: what it changed. `exiting`: the process ends next (`shelljail
        run`), and the watcher's close may be left to its exit (INotify.close, detached)."""
        if self.baseline is None and not (self.layered and self.points):
            return  # the jail never started, or an overlay's ran no command
        if self.baseline is not None:
            self.baseline.join()
        with self.lock:
            if self.watcher is not None:  # the last point is a full walk: no watch is needed for it or after it
                self.watcher.close(detached=exiting)
                self.watcher = None
            self._point(None, "end")
            if self.view is not None:
                os.close(self.view)
                self.view = None
            if self.store is not None:
                self.store.close()
            if self.watcher is not None:
                self.watcher.close()

    def _point(self, command: str | None, what: str) -> None:
        if self.off is not None:
            return
        try:
            if self.store is None:
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
                self.store = Store(self.directory, self.max_bytes)
                self.watcher = Watcher()
            if self._used() > self.max_bytes * MERGE_AT:
                self._make_room()
            root = self._root()
            try:
                entries, touched = self._walk(root, what)
            finally:
                os.close(root)
        except (OSError, TimelineError) as exc:
            self._turn_off(f"the workspace could not be read: {exc}")
            return
        if touched is None:
            changes: dict[str, Entry | None] = {p: e for p, e in entries.items() if self.state.get(p) is not e}
            changes.update({p: None for p in self.state if p not in entries})
        else:  # a rescan: only what it touched can differ
            changes = {p: entries.get(p) for p in touched if entries.get(p) is not self.state.get(p)}
        self.points += 1
        extra = ({"skip": list(self.covered), "max_file_bytes": self.max_file_bytes, "layered": self.layered}
                 if what == "start" else {})
        append_point(self.directory, {"point": self.points, "what": what, "time": time.time(), "command": command,
                                      "changes": changes, "stored": self.store.taken(), **extra})
        self.state = entries
        if self.store.full or self._used() > self.max_bytes:
            self._turn_off(f"the timeline holds {self.store.bytes} bytes, near its cap (timeline.max_bytes = "
                           f"{self.max_bytes}): what changed after the point before was not all kept, and later "
                           "points are not taken")

    def _walk(self, root: int, what: str) -> tuple[dict[str, Entry], set[str] | None]:
        """The workspace now: only the directories inotify saw change, unless a full walk is due; and the
        paths the rescan touched (None after a full walk)."""
        if what == "end":  # the last point: a full walk, with no watch (finish closed the watcher)
            walk = Walk(root, self.store, self.state, self.skip, self.max_file_bytes)
            entries = walk.run()
            self.children, self.linked = walk.children, walk.linked
            return entries, None
        assert self.watcher is not None
        walk = Walk(root, self.store, self.state, self.skip, self.max_file_bytes, self.watcher)
        dirty = self.watcher.changed()
        if dirty is not None and what == "command" and self.points % FULL_EVERY:
            try:
                entries = walk.rescan(dirty, self.children, self.linked)
                self.children, self.linked = walk.children, walk.linked
                return entries, walk.touched
            except Stale:
                walk = Walk(root, self.store, self.state, self.skip, self.max_file_bytes, self.watcher)
        self.watcher.reset()
        entries = walk.run()
        self.children, self.linked = walk.children, walk.linked
        return entries, None

    def _used(self) -> int:
        """The timeline's bytes on disk: the packs and the points' own lines (a `touch` of many files adds
        a line per command and no content)."""
        try:
            points = os.stat(os.path.join(self.directory, POINTS_NAME)).st_size
        except FileNotFoundError:
            points = 0
        return (self.store.bytes if self.store is not None else 0) + points

    def _make_room(self) -> None:
        """Merge the oldest points away (their states are lost, the newer ones kept) and rewrite the store
        with only what the rest needs; the log says how many and how much."""
        assert self.store is not None
        before = self.store.bytes
        self.store.close()
        try:
            merged = merge_oldest(self.directory, self.max_bytes * MERGE_TO)
        finally:
            self.store = Store(self.directory, self.max_bytes, places(read_points(self.directory)))
        if merged and self.log is not None:
            self.log.event("timeline-merged", points=merged, freed=before - self.store.bytes,
                           reason=f"the timeline reached {MERGE_AT:.0%} of timeline.max_bytes ({self.max_bytes})")

    def _turn_off(self, reason: str) -> None:
        self.off = reason
        if self.log is not None:
            self.log.event("timeline-off", reason=reason)


def for_session(profile: Any, spec: Any, log: Any) -> Timeline | None:
    """The session's timeline (None when off, without the interposer, or the workspace is read-only)."""
    if not profile.timeline.enabled or profile.filesystem.workspace not in ("read-write", "overlay"):
        return None
    from jail.policy.view import Bind, Hide, Tmpfs

    workspace = spec.view.workspace.rstrip("/")
    covered = tuple(m.target[len(workspace) + 1:] for m in spec.view.mounts if isinstance(m, Bind | Hide | Tmpfs)
                    and m.target.startswith(workspace + "/"))
    return Timeline(timeline_directory(log.directory), workspace, covered, profile.timeline.max_bytes,
                    profile.timeline.max_file_bytes, log, profile.filesystem.workspace == "overlay")


def merge_oldest(directory: str, target: float) -> list[int]:
    """Drop the oldest points until the contents the others need take at most `target` bytes (the last
    point always stays): the first kept point then holds its whole state. The live contents are copied
    into one new pack, points.jsonl is replaced whole (rename), then the old packs go. Returns the
    numbers of the points merged away."""
    points = read_points(directory)
    where = places(points)
    changed = [{e["keep"] for e in p["changes"].values() if isinstance(e, dict) and e.get("keep")} for p in points]

    def needed(first: int) -> set[str]:
        """What points[first:] need: its state's contents and those its later points changed to."""
        keeps = {e["keep"] for e in state_at(points, first).values() if e.get("keep")}
        return keeps.union(*changed[first + 1:])

    def fits(first: int) -> bool:
        return sum(where[d][2] for d in needed(first) if d in where) <= target

    # needed() only shrinks as `first` grows: the first point that fits, by bisection (each try one pass over
    # the points, never a state per point: a long session in a large tree must not take the memory of both).
    low, high = 0, len(points) - 1
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    first = low
    if first == 0:
        return []
    state = state_at(points, first)
    live = sorted(d for d in needed(first) if d in where)
    packs = os.open(os.path.join(directory, PACKS_NAME), _DIRECTORY | os.O_NOFOLLOW)
    try:
        old = set(os.listdir(packs))
        name = f"m{time.time_ns()}-{os.getpid()}"
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=packs)
        moved: dict[str, list[Any]] = {}
        offset = 0
        try:
            for digest in live:
                pack, at, length = where[digest]
                source = os.open(pack, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=packs)
                try:
                    data = os.pread(source, length, at)
                finally:
                    os.close(source)
                write_all(out, data, offset)
                moved[digest] = [name, offset, len(data)]
                offset += len(data)
            os.fsync(out)
        finally:
            os.close(out)
        dropped = [number_of(p, i) for i, p in enumerate(points[:first])]
        kept = [{**points[first], "changes": state, "stored": moved, "merged": dropped,
                 "skip": points[0].get("skip", []), "max_file_bytes": points[0].get("max_file_bytes")}]
        kept += [{**point, "stored": {}} for point in points[first + 1:]]
        temporary = os.path.join(directory, f".{POINTS_NAME}.{os.getpid()}")
        with open(temporary, "wb") as f:
            for point in kept:
                f.write(json.dumps(point, ensure_ascii=True, separators=(",", ":")).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, os.path.join(directory, POINTS_NAME))
        for stale in old:
            os.unlink(stale, dir_fd=packs)
    finally:
        os.close(packs)
    return dropped


def append_point(directory: str, record: dict[str, Any]) -> None:
    """One point, as one whole line (O_APPEND, one write): a reader sees it all or not at all."""
    line = json.dumps(record, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
    fd = os.open(os.path.join(directory, POINTS_NAME),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        write_all(fd, line)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ reading a timeline back

def read_points(directory: str) -> list[dict[str, Any]]:
    """Every whole point of a timeline, in order (a cut last line, from a killed supervisor, left out)."""
    try:
        fd = os.open(os.path.join(directory, POINTS_NAME), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise TimelineError("this session has no timeline (timeline.enabled off, the interposer off, a "
                            "read-only workspace, or an overlay one that ran no command)") from None
    points = []
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise TimelineError("the timeline's points file is not a regular file")
        for line in f:
            if len(points) >= POINTS_LIMIT or len(line) > LINE_LIMIT:
                raise TimelineError(f"the timeline has more than {POINTS_LIMIT} points or a point over "
                                    f"{LINE_LIMIT} bytes")
            if not line.endswith(b"\n"):
                break
            try:
                point = json.loads(line)
            except ValueError:
                break
            if not isinstance(point, dict) or not isinstance(point.get("changes"), dict):
                break
            points.append(point)
    return points


def _valid_path(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and "\0" not in path and all(p not in ("", ".", "..") for p in parts)


def summary(changes: dict[str, Entry | None], before: dict[str, Entry]) -> dict[str, Any]:
    """Files added, changed and deleted by a point's changes, and the bytes written."""
    added = sorted(p for p, e in changes.items() if e is not None and p not in before)
    changed = sorted(p for p, e in changes.items() if e is not None and p in before and not _same(before[p], e))
    deleted = sorted(p for p, e in changes.items() if e is None and p in before)
    new = set(added).union(changed)  # a set: a command may change 200,000 files
    written = sum(e.get("size", 0) for p, e in changes.items() if e is not None and p in new)
    return {"added": added, "changed": changed, "deleted": deleted, "bytes": written}


def _same(a: Entry, b: Entry) -> bool:
    """The same content and metadata, whatever the inode and times (what undo would put back)."""
    keys = ("type", "mode", "size", "keep", "target", "what")
    return all(a.get(k) == b.get(k) for k in keys)


def commands(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The commands in order: each with the point before it (what undo --to restores) and what changed
    between it and the next point (None when no later point was recorded)."""
    rows: list[dict[str, Any]] = []
    state: dict[str, Entry] = {}  # one state, brought forward point by point (one per point: P x files)
    for index, point in enumerate(points):
        apply_point(state, point)
        if point.get("what") not in ("command", "undo"):
            continue
        change = summary(points[index + 1]["changes"], state) if index + 1 < len(points) else None
        rows.append({"point": number_of(point, index), "time": point.get("time"),
                     "command": point.get("command"), "what": point.get("what"), "changes": change})
    return rows


def number_of(point: dict[str, Any], index: int) -> int:
    """A point's number: kept when older points are merged away (then numbers start above 1)."""
    number = point.get("point")
    return number if isinstance(number, int) and not isinstance(number, bool) else index + 1


def index_of(points: list[dict[str, Any]], number: int) -> int:
    for index, point in enumerate(points):
        if number_of(point, index) == number:
            return index
    first, last = number_of(points[0], 0), number_of(points[-1], len(points) - 1)
    raise TimelineError(f"no point {number}: the timeline has points {first} to {last} (shelljail timeline)")


def places(points: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Where each stored content is, as the points recorded it."""
    return {d: w for p in points if isinstance(p.get("stored"), dict) for d, w in p["stored"].items()}


def states_of(points: list[dict[str, Any]]) -> list[dict[str, Entry]]:
    """The state at every point, built incrementally (copies of dicts of shared entries): memory grows
    as points x files, so readers that need one state use state_at."""
    states, state = [], {}
    for point in points:
        state = dict(state)
        apply_point(state, point)
        states.append(state)
    return states


def state_at(points: list[dict[str, Any]], index: int) -> dict[str, Entry]:
    """The state at one point (negative: from the end), in one dict."""
    state: dict[str, Entry] = {}
    for point in points[:index % len(points) + 1]:
        apply_point(state, point)
    return state


def apply_point(state: dict[str, Entry], point: dict[str, Any]) -> None:
    """`state` brought forward by one point's changes, in place."""
    for path, entry in point["changes"].items():
        if entry is None:
            state.pop(path, None)
        elif _valid_path(path) and isinstance(entry, dict):
            state[path] = entry


# ------------------------------------------------------------------ restoring

class Restore:
    """Put paths of the workspace back as a point recorded them."""

    def __init__(self, workspace: str, store: Store) -> None:
        self.workspace, self.store = workspace, store
        self.done: list[str] = []
        self.not_restored: list[tuple[str, str]] = []
        self.modes: list[tuple[str, int]] = []  # directories put back, given their modes last (see apply)

    def apply(self, target: dict[str, Entry], present: dict[str, Entry], paths: set[str]) -> None:
        root = os.open(self.workspace, _DIRECTORY)
        try:
            # Deepest first: what the target has not is removed before its directory is.
            for path in sorted((p for p in paths if p in present and p not in target), key=_depth, reverse=True):
                self._remove(root, path, present[path])
            for path in sorted((p for p in paths if p in target), key=_depth):
                if path in present and _same(present[path], target[path]):
                    continue
                self._put(root, path, target[path], present.get(path))
            # A read-only directory's mode, set before its files were written in, would refuse them to
            # an ordinary user: the directories stay writable by their owner until here, deepest first.
            for path, mode in sorted(self.modes, key=lambda m: _depth(m[0]), reverse=True):
                try:
                    fd = open_directory(root, path, _WORKSPACE)
                except OSError as exc:
                    self.not_restored.append((path, f"its mode was not set ({exc.strerror})"))
                    continue
                try:
                    os.fchmod(fd, mode)
                finally:
                    os.close(fd)
        finally:
            os.close(root)

    def _parent(self, root: int, path: str) -> tuple[int | None, str]:
        """The directory of `path`, open beneath the workspace (None, noted as not restored, if it cannot be)."""
        parent, _, name = path.rpartition("/")
        try:
            return open_directory(root, parent, _WORKSPACE), name
        except OSError as exc:
            self.not_restored.append((path, f"its directory cannot be opened ({exc.strerror})"))
            return None, name

    def _remove(self, root: int, path: str, entry: Entry) -> None:
        fd, name = self._parent(root, path)
        if fd is None:
            return
        try:
            if entry["type"] == "dir":
                os.rmdir(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)
            self.done.append(path)
        except FileNotFoundError:
            pass
        except OSError as exc:  # a directory holding what the timeline leaves out (a cache)
            self.not_restored.append((path, f"not removed ({exc.strerror})"))
        finally:
            os.close(fd)

    def _put(self, root: int, path: str, entry: Entry, present: Entry | None) -> None:
        fd, name = self._parent(root, path)
        if fd is None:
            return
        try:
            self._put_in(fd, name, path, entry, present)
        except (OSError, TimelineError) as exc:
            self.not_restored.append((path, str(exc)))
        finally:
            os.close(fd)

    def _put_in(self, fd: int, name: str, path: str, entry: Entry, present: Entry | None) -> None:
        if entry["type"] == "dir":
            if present is not None and present["type"] != "dir":
                os.unlink(name, dir_fd=fd)
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
            except FileExistsError:
                pass
            child = openat2(fd, name, _DIRECTORY, _WORKSPACE)
            try:
                os.fchmod(child, safe_mode(entry["mode"]) | stat.S_IRWXU)
            finally:
                os.close(child)
            self.modes.append((path, safe_mode(entry["mode"])))
        elif entry["type"] == "other":
            self.not_restored.append((path, f"a {entry.get('what', 'special file')} is not recreated"))
            return
        elif entry["type"] == "file" and entry.get("keep") is None:
            self.not_restored.append((path, f"its content was not kept ({entry.get('size', 0)} bytes, over "
                                            "timeline.max_file_bytes, or the store was full)"))
            return
        else:
            if present is not None and present["type"] == "dir":
                _remove_tree(fd, name, 0)
            temporary = f".shelljail-restore.{os.getpid()}.{os.urandom(8).hex()}"  # not the name: 255 bytes at most
            if entry["type"] == "symlink":
                os.symlink(str(entry["target"]), temporary, dir_fd=fd)
            else:
                data = self.store.get(str(entry["keep"]), int(entry["size"]))
                out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                              0o600, dir_fd=fd)
                try:
                    write_all(out, data)
                    os.fchmod(out, safe_mode(entry["mode"]))
                    os.utime(out, ns=(int(entry["mtime"]), int(entry["mtime"])))
                finally:
                    os.close(out)
            try:
                os.rename(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)
            except OSError:
                os.unlink(temporary, dir_fd=fd)
                raise
        self.done.append(path)


def _folder(path: str) -> str:
    """The prefix of a path's directory ("" for the workspace's own)."""
    return path.rpartition("/")[0] + "/" if "/" in path else ""


def _depth(path: str) -> int:
    return path.count("/")


def _remove_tree(parent: int, name: str, depth: int) -> None:
    """rm -r of a directory beneath `parent`, never through a symlink."""
    if depth > DEPTH_LIMIT:
        raise TimelineError(f"more than {DEPTH_LIMIT} directory levels")
    fd = openat2(parent, name, _DIRECTORY, _WORKSPACE)
    try:
        for child in os.listdir(fd):
            st = os.stat(child, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                _remove_tree(fd, child, depth + 1)
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)


def _under(path: str, chosen: tuple[str, ...]) -> bool:
    return any(path == c or path.startswith(c + "/") for c in chosen)


def _differs(a: dict[str, Entry], b: dict[str, Entry], path: str) -> bool:
    return (path in a) != (path in b) or (path in a and not _same(a[path], b[path]))


def undo(session_directory: str, workspace: str, to: int | None, paths: tuple[str, ...], force: bool,
         command: str) -> dict[str, Any]:
    """Put the workspace (or `paths` in it, relative) back as it was at point `to` (default: before the
    last command). What is there now is recorded first as a point of its own, so an undo can be undone.
    A path that changed since the session's last point (by something outside the session) is refused
    unless `force`, with nothing changed. An overlay session's undo writes its layer (timeline_overlay.py),
    never the real workspace, and puts the session back to pending review; once the layer was committed
    whole, the changes are the real workspace's, and so is the undo."""
    first = read_points(timeline_directory(session_directory))[:1]
    if not first or not first[0].get("layered") or _overlay_state(session_directory) == "committed":
        return _undo(session_directory, workspace, to, paths, force, command)
    import jail.policy.paths  # noqa: F401 - imported before the fork (in_layer)
    from jail.recovery import overlay
    from jail.recovery.timeline_overlay import LayerError, in_layer

    try:
        outcome = in_layer(session_directory, workspace, lambda: _undo(session_directory, workspace, to, paths,
                                                                       force, command))
    except LayerError as exc:
        raise TimelineError(str(exc)) from None
    outcome["not_restored"] = [tuple(pair) for pair in outcome["not_restored"]]
    if outcome["done"]:
        target = overlay.Session(os.path.basename(session_directory), session_directory, workspace,
                                 os.path.join(session_directory, "overlay", "upper"), 0, "pending")
        overlay.record(target, "overlay-undo", "pending", point=outcome["point"], paths=len(outcome["done"]))
    return outcome


def _overlay_state(session_directory: str) -> str | None:
    """An overlay session's review state (pending, committed, discarded), from its own session.json."""
    from jail.supervisor.audit import STATE_NAME

    try:
        with open(os.path.join(session_directory, STATE_NAME), "rb") as f:
            state = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return None
    return state.get("overlay") if isinstance(state, dict) else None


def _undo(session_directory: str, workspace: str, to: int | None, paths: tuple[str, ...], force: bool,
          command: str) -> dict[str, Any]:
    from jail.policy.paths import is_cache_path

    directory = timeline_directory(session_directory)
    points = read_points(directory)
    rows = [number_of(p, i) for i, p in enumerate(points) if p.get("what") in ("command", "undo")]
    if not rows:
        raise TimelineError("the timeline has no command to undo yet")
    number = rows[-1] if to is None else to
    target, recorded = state_at(points, index_of(points, number)), state_at(points, -1)
    covered = tuple(str(c) for c in points[0].get("skip", ()) if isinstance(c, str))
    # What undo records of the present is read whole into memory: never past the session's own limit
    # (a sparse file the jail left costs no disk, and could be any size).
    limit = points[0].get("max_file_bytes")
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0 else UNDO_FILE_BYTES
    skip = skipper(covered, is_cache_path)
    store = Store(directory, 1 << 62, places(points))  # the present undo records: kept whatever the cap
    try:
        root = os.open(workspace, _DIRECTORY)
        try:
            present = Walk(root, store, recorded, skip, limit).run()
        finally:
            os.close(root)
        chosen = tuple(p.strip("/") for p in paths)
        touched = {p for p in set(target) | set(present) if (not chosen or _under(p, chosen))
                   and _differs(target, present, p)}
        outside = sorted(p for p in touched if _differs(recorded, present, p))
        if outside and not force:
            ended = points[-1].get("what") in ("end", "restored")
            why = ("changed since the session's last point" if ended else
                   "changed since the last point (the session ended without a final one, so the last command's "
                   "own changes cannot be told from changes made outside it)")
            raise TimelineError(f"{len(outside)} path(s) {why}: {', '.join(outside[:5])}"
                                f"{' ...' if len(outside) > 5 else ''}; nothing was changed (--force overwrites)")
        changes: dict[str, Entry | None] = {p: e for p, e in present.items() if recorded.get(p) is not e}
        changes.update({p: None for p in recorded if p not in present})
        saved = number_of(points[-1], len(points) - 1) + 1
        append_point(directory, {"point": saved, "what": "undo", "time": time.time(), "command": command,
                                 "changes": changes, "stored": store.taken()})
        restore = Restore(workspace, store)
        restore.apply(target, present, touched)
        root = os.open(workspace, _DIRECTORY)
        try:
            after = Walk(root, store, present, skip, limit).run()
        finally:
            os.close(root)
        changes = {p: e for p, e in after.items() if present.get(p) is not e}
        changes.update({p: None for p in present if p not in after})
        append_point(directory, {"point": saved + 1, "what": "restored", "time": time.time(), "command": None,
                                 "changes": changes, "stored": store.taken()})
    finally:
        store.close()
    # `saved`: the point that holds what was there before; `not_restored`: (path, why) pairs.
    return {"point": number, "saved": saved, "done": sorted(restore.done), "not_restored": restore.not_restored}


DIFF_FILES = 20  # files shown with a diff per command
DIFF_BYTES = 256 << 10  # a larger file, or one that is not text, is named, not diffed
DIFF_PAGE_BYTES = 4 << 20  # diff text for one page in all


def command_diffs(session_directory: str, wanted: set[int], budget: int = DIFF_PAGE_BYTES
                  ) -> dict[int, list[tuple[str, str]]]:
    """What the commands at the `wanted` points changed, file by file: point -> [(a line "A|M|D path", its
    unified diff or "")], in one pass over the points, the diffs' text bounded by `budget` bytes in all
    (past it, files are named only). Contents come from the store (checked against their digests)."""
    import difflib

    directory = timeline_directory(session_directory)
    points = read_points(directory)
    store = Store(directory, 1 << 62, places(points))
    found: dict[int, list[tuple[str, str]]] = {}
    state: dict[str, Entry] = {}
    try:
        for index, point in enumerate(points):
            apply_point(state, point)
            if number_of(point, index) not in wanted or index + 1 >= len(points):
                continue
            before, after = state, dict(state)
            apply_point(after, points[index + 1])
            change = summary(points[index + 1]["changes"], before)
            files: list[tuple[str, str]] = []
            for mark, key in (("A", "added"), ("M", "changed"), ("D", "deleted")):
                for path in change[key][:DIFF_FILES - len(files)]:
                    text = ""
                    if budget > 0:
                        old, new = _text_of(store, before.get(path)), _text_of(store, after.get(path))
                        if old is not None and new is not None:
                            text = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                                f"a/{path}", f"b/{path}"))
                            budget -= len(text)
                    files.append((f"{mark} {path}", text))
            found[number_of(point, index)] = files
    finally:
        store.close()
    return found


def _text_of(store: Store, entry: Entry | None) -> str | None:
    """A file's recorded content as text: "" for none (absent), None when it cannot be shown."""
    if entry is None:
        return ""
    if entry.get("type") != "file" or entry.get("keep") is None or int(entry.get("size", 0)) > DIFF_BYTES:
        return None
    try:
        data = store.get(str(entry["keep"]), int(entry["size"]))
    except (OSError, TimelineError):
        return None
    if b"\0" in data:
        return None
    return data.decode("utf-8", "replace")
