"""The trash: `rm` and `unlink` in the jail move workspace files here instead of deleting them.

Inside the jail, the rm and unlink binaries are the launcher (like the shells);
it sends its argv to the decision service, which calls `handle` here, in the
supervisor. Each workspace path that is not a regenerable cache is renamed into
the session's trash, keeping its relative path and metadata, and the agent
gets the output and exit status rm would have given. Everything else (caches,
whose deletion frees the space an agent needs; paths outside the workspace;
paths through a symlink or a mount; options this does not know) runs the real
program, inside the jail, as before.

Two things, kept apart, make an entry:

- its record, `$XDG_STATE_HOME/shelljail/trash/<session>/<N>/entry.json`, written by the
  supervisor alone, in the state directory no jail sees. Only records are trusted, and only
  as far as they are valid: the workspace an entry restores into is the one the session's
  own record names (never a field of the entry), and each path in it is relative, with no
  `..`, `.` or empty part.
- its files, `<N>/files/` beneath the session's store: the same directory as the records
  when the state directory is on the workspace's filesystem (a move must be a rename), else
  `<workspace>/.shelljail-trash/<session>/`, hidden from the jail. Files are jail-made in
  either place (a process of the jail that kept a directory open as its cwd goes on writing
  in it after it was moved; a later session without the interposer sees the in-workspace
  store), so they are never trusted: every open on either side goes through
  jail.kernel.beneath, beneath a directory fd, with no symlink on the way, and a file is
  never opened at all, only renamed.

A directory an `rm` moved is jail-made content from then on: a later operand of the same
command beneath it (`rm -f d d/x`, with `d` raced back into existence) is refused, never
put through it; nothing is renamed over an existing name (renameat2 RENAME_NOREPLACE).
Restoring drops setuid and setgid bits, and refuses an entry whose files directory is not
the one the supervisor made (its device and inode are in the record).
"""

from __future__ import annotations

import _thread
import collections
import errno
import json
import os
import stat
import time
from typing import Any

from jail.kernel.beneath import (
    RESOLVE_NO_XDEV,
    STRICT,
    make_directories,
    open_directory,
    openat2,
    read_regular,
    rename_noreplace,
    safe_mode,
    write_all,
)
from jail.supervisor.audit import sessions, state_home

WORKSPACE_TRASH = ".shelljail-trash"
STATE_STORE, WORKSPACE_STORE = "state", "workspace"  # where an entry's files are, as its record says
_WORKSPACE = STRICT | RESOLVE_NO_XDEV  # the workspace side: no symlink, no mount crossed
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_SETID = stat.S_ISUID | stat.S_ISGID
RECORD_LIMIT = 4 << 20  # bytes of one entry.json read back (argv and paths of one rm)
ENTRIES_LIMIT = 10_000  # records read per session by `trash list` and `restore`, the newest
DEPTH_LIMIT = 256  # directory levels walked (measured, purged, checked for setuid bits); one fd each


# What the agent sees: an exit status and output; or `real`: run the real program with `argv`.
# (collections.namedtuple: typing.NamedTuple costs a millisecond at import, on every start.)
Outcome = collections.namedtuple("Outcome", "status stdout stderr real argv", defaults=(0, "", "", False, ()))


class TooDeep(OSError):
    """A tree deeper than DEPTH_LIMIT directories."""

    def __init__(self, name: str) -> None:
        super().__init__(errno.ELOOP, f"more than {DEPTH_LIMIT} directory levels", name)


def trash_base() -> str:
    """`$XDG_STATE_HOME/shelljail/trash`: every session's records (and files, on the same filesystem)."""
    return os.path.join(os.path.dirname(state_home()), "trash")


class Trash:
    """One session's trash: the moves, their records, the cap."""

    def __init__(self, session: str, workspace: str, in_workspace: bool, max_bytes: int, caches: Any,
                 covered: tuple[str, ...], log: Any = None) -> None:
        self.session = session
        self.workspace = workspace
        self.records = os.path.join(trash_base(), session)  # the supervisor's alone
        self.in_workspace = in_workspace
        self.store = os.path.join(workspace, WORKSPACE_TRASH, session) if in_workspace else self.records
        self.max_bytes = max_bytes
        self.is_cache = caches  # relative path -> bool: regenerable, so really deleted
        self.covered = covered  # mount points in the workspace (hidden paths...): left to the real rm
        self.log = log
        self.sequence = 0
        self.entries: list[dict[str, Any]] = []  # this session's records, as written
        self._fds: tuple[int, int, int] | None = None  # workspace, records, store: opened at the first rm
        self._pending: dict[str, Any] = {}  # the entry of the rm being run
        self._files = -1  # its files/ directory, open while it runs
        self._lock = _thread.allocate_lock()  # the service's threads: one rm at a time owns the above

    # ---- the rm and unlink commands ------------------------------------------------------

    def handle(self, tool: str, argv: list[str], cwd: str) -> Outcome:
        with self._lock:
            return self._handle(tool, argv, cwd)

    def _handle(self, tool: str, argv: list[str], cwd: str) -> Outcome:
        if tool == "unlink":
            if len(argv) != 2 or argv[1].startswith("-"):
                return Outcome(real=True, argv=tuple(argv))
            return self._remove(tool, argv, cwd, [argv[1]], force=False, recursive=False, empty_dirs=False,
                                verbose=False)
        options, operands = _rm_arguments(argv[1:])
        if options is None:
            return Outcome(real=True, argv=tuple(argv))  # an option this does not emulate
        return self._remove(tool, argv, cwd, operands, force="f" in options, recursive="r" in options,
                            empty_dirs="d" in options, verbose="v" in options, flags=options)

    def _remove(self, tool: str, argv: list[str], cwd: str, operands: list[str], force: bool, recursive: bool,
                empty_dirs: bool, verbose: bool, flags: str = "") -> Outcome:
        real: list[str] = []
        out, err = [], []
        status = 0
        self._pending = {"paths": [], "moved": set(), "bytes": 0, "files": 0, "made": set()}
        try:
            for operand in operands:
                relative = self._relative(cwd, operand)
                if relative is None:
                    real.append(operand)
                    continue
                message, moved = self._trash_one(tool, operand, relative, force, recursive, empty_dirs)
                if moved == "real":
                    real.append(operand)
                elif message:
                    err.append(message)
                    status = 1
                elif moved and verbose:
                    out.append(f"removed {'directory ' if moved == 'dir' else ''}'{operand}'")
        finally:
            self._finish(argv)
        text_out = "".join(line + "\n" for line in out)
        text_err = "".join(line + "\n" for line in err)
        if real:  # the rest, as the agent wrote it, to the real program in the jail
            if not operands or len(real) == len(operands):
                return Outcome(real=True, argv=tuple(argv))
            options = [f"-{flags}"] if flags else []
            return Outcome(status, text_out, text_err, real=True, argv=(argv[0], *options, "--", *real))
        return Outcome(status, text_out, text_err)

    def _relative(self, cwd: str, operand: str) -> str | None:
        """The operand's path relative to the workspace, or None when the real rm should handle it."""
        if not operand or operand.rstrip("/").endswith(("/.", "/..")) or operand.rstrip("/") in (".", ".."):
            return None
        path = os.path.normpath(os.path.join(cwd, operand))
        if not path.startswith(self.workspace.rstrip("/") + "/"):
            return None  # outside, or the workspace itself: the real rm, and the jail, decide
        relative = path[len(self.workspace.rstrip("/")) + 1:]
        first = relative.split("/")[0]
        if first == WORKSPACE_TRASH or self.is_cache(relative):
            return None
        if any(path == c or path.startswith(c + "/") or c.startswith(path + "/") for c in self.covered):
            return None
        return relative

    def _trash_one(self, tool: str, operand: str, relative: str, force: bool, recursive: bool,
                   empty_dirs: bool) -> tuple[str, str]:
        """(an error line, or ""; "file"/"dir" when moved, "real" for the real rm in the jail)."""
        parent_rel, name = os.path.split(relative)
        verb = "cannot unlink" if tool == "unlink" else "cannot remove"
        missing = ("" if force else f"{tool}: {verb} '{operand}': No such file or directory"), ""
        try:
            workspace = self._open()[0]
        except OSError as exc:  # fail closed: never the real rm instead
            return (f"{tool}: {verb} '{operand}': shelljail's trash {self.store} cannot be opened "
                    f"({exc.strerror}); nothing was removed"), ""
        try:
            parent = open_directory(workspace, parent_rel, _WORKSPACE)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return missing
            if exc.errno == errno.ENOTDIR:
                return f"{tool}: {verb} '{operand}': Not a directory", ""
            if exc.errno in (errno.ELOOP, errno.EXDEV):
                return "", "real"  # a symlink or a mount on the way: the jail's rm, in the jail's view
            return f"{tool}: {verb} '{operand}': {os.strerror(exc.errno or errno.EIO)}", ""
        try:
            try:
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                return missing
            parts = relative.split("/")
            moved = [p for p in ("/".join(parts[:i]) for i in range(1, len(parts) + 1)) if p in self._pending["moved"]]
            if moved:  # raced back into existence since this rm moved it: never put anything through that
                return (f"{tool}: {verb} '{operand}': '{moved[0]}' changed while rm ran (this rm moved it to "
                        "shelljail's trash already); nothing more was removed from it: run rm again"), ""
            is_dir = stat.S_ISDIR(info.st_mode)
            if is_dir and tool == "unlink":
                return f"{tool}: {verb} '{operand}': Is a directory", ""
            if is_dir and not recursive:
                if not empty_dirs:
                    return f"{tool}: {verb} '{operand}': Is a directory", ""
                inside = open_directory(parent, name)
                try:
                    if os.listdir(inside):
                        return f"{tool}: {verb} '{operand}': Directory not empty", ""
                finally:
                    os.close(inside)
            size, files = _measure(parent, name, is_dir)
            refusal = self._make_room(size)
            if refusal:
                return f"{tool}: {verb} '{operand}': {refusal}", ""
            return self._move(parent, name, relative, size, files, f"{tool}: {verb} '{operand}'")
        except OSError as exc:
            return f"{tool}: {verb} '{operand}': {exc.strerror or os.strerror(exc.errno or errno.EIO)}", ""
        finally:
            os.close(parent)

    # ---- moving, recording, the cap --------------------------------------------------------

    def _open(self) -> tuple[int, int, int]:
        """The workspace, this session's records and its store, opened once (the store beneath the
        workspace without symlinks, when it lives there)."""
        if self._fds is None:
            os.makedirs(self.records, mode=0o700, exist_ok=True)
            workspace = os.open(self.workspace, _DIRECTORY)
            try:
                records = os.open(self.records, _DIRECTORY)
                if self.in_workspace:
                    store = make_directories(workspace, os.path.join(WORKSPACE_TRASH, self.session), 0o700)
                else:
                    store = os.dup(records)
            except BaseException:
                os.close(workspace)
                raise
            self._fds = (workspace, records, store)
            self.sequence = max((int(n) for n in os.listdir(records) if n.isdigit()), default=0)
        return self._fds

    def _begin(self) -> None:
        """This command's entry: a new number, its record's directory and its files/ directory, both new."""
        _workspace, records, store = self._open()
        for _ in range(1000):
            self.sequence += 1
            entry = str(self.sequence)
            try:
                os.mkdir(entry, 0o700, dir_fd=records)
                if self.in_workspace:
                    os.mkdir(entry, 0o700, dir_fd=store)
            except FileExistsError:
                continue  # left by an earlier crash, or planted: never reused
            files = open_directory(store, entry)
            try:
                os.mkdir("files", 0o700, dir_fd=files)
                self._files = open_directory(files, "files")
            finally:
                os.close(files)
            info = os.fstat(self._files)
            self._pending.update(id=entry, files_id=[info.st_dev, info.st_ino])
            return
        raise OSError(errno.EEXIST, "no free entry number in the trash", self.store)

    def _move(self, parent: int, name: str, relative: str, size: int, files: int, prefix: str) -> tuple[str, str]:
        """Rename into this command's entry (one per rm or unlink run, made at its first move)."""
        if not self._pending["paths"]:
            self._begin()
        parent_rel = os.path.dirname(relative)
        target = make_directories(self._files, parent_rel, 0o700)  # no symlink; never through a moved path
        try:
            is_dir = stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
            parts = parent_rel.split("/") if parent_rel else []
            self._pending["made"].update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
            try:
                rename_noreplace(parent, name, target, name)
            except FileExistsError:
                if relative not in self._pending["made"] or not is_dir:
                    raise
                # its place holds what this rm moved from inside it (`rm -r a/b a`; find -depth
                # -delete: the files, then their directory): what is left goes in beside it
                self._pending["paths"].append(relative)  # recorded even if the rest fails half-way
                self._pending["moved"].add(relative)
                self._fold(parent, name, target, relative, 0)
                self._pending["paths"].remove(relative)
        finally:
            os.close(target)
        self._pending["paths"].append(relative)
        self._pending["moved"].add(relative)
        self._pending["bytes"] += size
        self._pending["files"] += files
        return "", "dir" if is_dir else "file"

    def _fold(self, parent: int, name: str, target: int, relative: str, depth: int) -> None:
        """Move the rest of directory `name` into its place in the trash, a directory this rm made."""
        if depth >= DEPTH_LIMIT:
            raise TooDeep(relative)
        source = open_directory(parent, name, _WORKSPACE)
        try:
            inner = open_directory(target, name)
            try:
                for child in os.listdir(source):
                    try:
                        rename_noreplace(source, child, inner, child)
                    except FileExistsError:
                        if f"{relative}/{child}" not in self._pending["made"]:
                            raise
                        self._fold(source, child, inner, f"{relative}/{child}", depth + 1)
            finally:
                os.close(inner)
        finally:
            os.close(source)
        os.rmdir(name, dir_fd=parent)

    def _finish(self, argv: list[str]) -> None:
        """Record the command's entry and log it, with what undoes it."""
        pending = self._pending
        if self._files >= 0:
            os.close(self._files)
            self._files = -1
        if not pending.get("paths"):
            return
        entry = pending["id"]
        record = {"id": entry, "paths": pending["paths"], "time": time.time(), "bytes": pending["bytes"],
                  "files": pending["files"], "argv": argv, "store": WORKSPACE_STORE if self.in_workspace else
                  STATE_STORE, "files_id": pending["files_id"]}
        self._write_record(record)
        self.entries.append(record)
        if self.log is not None:
            self.log.event("trash", id=entry, paths=[os.path.join(self.workspace, p) for p in pending["paths"]],
                           bytes=pending["bytes"], files=pending["files"], argv=argv,
                           trash=os.path.join(self.store, entry, "files"),
                           undo=f"shelljail trash restore {self.session}/{entry}")

    def _write_record(self, record: dict[str, Any]) -> None:
        """entry.json, atomically, beneath the records' directory fd."""
        records = self._open()[1]
        data = json.dumps(record, default=str).encode()  # ASCII: a name that was not UTF-8 is kept as \udcXX
        temporary, final = f"{record['id']}/entry.json.tmp", f"{record['id']}/entry.json"
        fd = openat2(records, temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     STRICT, 0o600)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(temporary, final, src_dir_fd=records, dst_dir_fd=records)

    def _make_room(self, size: int) -> str:
        """"" when `size` more bytes fit under the cap (purging regenerable parts first), else why not."""
        if not self.max_bytes:
            return ""
        used = sum(e.get("bytes", 0) for e in self.entries) + self._pending["bytes"]
        if used + size <= self.max_bytes:
            return ""
        for entry in sorted(self.entries, key=lambda e: e.get("time", 0)):  # the oldest first
            used -= self._purge_caches(entry)
            if used + size <= self.max_bytes:
                return ""
        return (f"shelljail's trash is full ({human(used)} of trash.max_bytes {human(self.max_bytes)}); "
                "nothing was removed: ask the person to restore or empty it (shelljail trash list)")

    def _purge_caches(self, entry: dict[str, Any]) -> int:
        """Really delete the regenerable directories inside a trash entry; the bytes freed."""
        freed = 0
        try:
            files = _entry_files(self._open()[2], entry)
        except OSError:
            return 0
        try:
            for parent, name, relative in _cache_directories(files, "", self.is_cache, 0):
                try:
                    size, _ = _measure(parent, name, True)
                    _remove_tree(parent, name, 0)
                except OSError:
                    continue
                freed += size
                if self.log is not None:
                    self.log.event("trash-purged", id=entry["id"], path=relative, bytes=size,
                                   reason="the trash reached trash.max_bytes; regenerable caches go first")
        finally:
            os.close(files)
        if freed:
            entry["bytes"] = max(0, entry.get("bytes", 0) - freed)
            self._write_record(entry)
        return freed


# ---- reading and restoring (the CLI, outside any jail) ---------------------------------------

def all_entries() -> list[dict[str, Any]]:
    """Every valid trash entry of every session, newest first, each with its `session` and the
    `workspace` of the session's own record. Records that are not valid are left out."""
    try:
        base = os.open(trash_base(), _DIRECTORY)
    except OSError:
        return []
    found = []
    try:
        for info in sessions():
            session, workspace = info.get("session"), info.get("workspace")
            if not (isinstance(session, str) and _is_name(session) and isinstance(workspace, str)
                    and os.path.isabs(workspace)):
                continue
            try:
                records = open_directory(base, session)
            except OSError:
                continue
            try:
                for record in _records(records):
                    found.append({**record, "session": session, "workspace": os.path.normpath(workspace)})
            finally:
                os.close(records)
    finally:
        os.close(base)
    return sorted(found, key=lambda e: -e["time"])


def restore(reference: str, cwd: str) -> tuple[str, str]:
    """Put an entry (SESSION/N: all it holds), or a path in one, back; (what was restored, "" or why not).

    What is already there again is kept: a directory is merged, file by file, and a file that
    exists on both sides is a conflict (left in the trash, and named). Both sides are opened
    beneath a directory fd with no symlink on the way: a symlink planted in the trash or in
    the workspace since is refused, never followed. Nothing restored keeps a setuid or setgid bit.
    """
    from jail.display import shown

    chosen, relatives = _find(all_entries(), reference, cwd)
    if chosen is None:
        return "", f"nothing in the trash matches {shown(reference)} (shelljail trash list shows what is there)"
    workspace, name = chosen["workspace"], f"{chosen['session']}/{chosen['id']}"
    try:
        root = os.open(workspace, _DIRECTORY)
    except OSError as exc:
        return "", f"cannot restore {name}: its workspace {shown(workspace)}: {exc.strerror}"
    try:
        try:
            files = _store_files(chosen, root)
        except OSError as exc:
            return "", (f"cannot restore {name}: its files in the trash are not the directory shelljail made "
                        f"({exc.strerror}); nothing was restored (a jail may have replaced them)")
        try:
            return _restore_paths(chosen, relatives, root, files, shown)
        finally:
            os.close(files)
    finally:
        os.close(root)


def _restore_paths(chosen: dict[str, Any], relatives: list[str], root: int, files: int,
                   shown: Any) -> tuple[str, str]:
    """Check every path first (nothing half-done on a refusal), then move each back."""
    sources = []
    for relative in relatives:
        destination = shown(os.path.join(chosen["workspace"], relative))
        parent_rel, name = os.path.split(relative)
        try:
            parent = open_directory(files, parent_rel)
        except FileNotFoundError:
            parent = -1
        except OSError as exc:
            for opened, _n, _d in sources:
                os.close(opened)
            return "", (f"cannot restore {destination}: in the trash, {exc.strerror} on the way (a symlink or "
                        "not a directory, planted since); nothing was restored")
        if parent >= 0 and not _exists(parent, name):
            os.close(parent)
            parent = -1
        if parent < 0:
            if len(relatives) == 1:
                return "", f"{destination} was already restored from {chosen['session']}/{chosen['id']}"
            continue
        sources.append((parent, name, relative))
    done, conflicts, problem = [], [], ""
    try:
        for parent, name, relative in sources:
            destination = os.path.join(chosen["workspace"], relative)
            if problem:
                continue
            try:
                _strip_setid(parent, name, 0)  # in the trash first: a rename keeps the mode
                target = make_directories(root, os.path.dirname(relative))
                try:
                    conflicts += _merge(parent, target, name, destination, 0)
                finally:
                    os.close(target)
            except OSError as exc:
                why = {errno.ELOOP: " on the way (a symlink, planted since)", errno.ENOTDIR: " on the way",
                       errno.EXDEV: " on the way (it would leave the workspace)"}.get(exc.errno or 0, "")
                problem = f"cannot restore {shown(destination)}: {exc.strerror}{why}"
                continue
            done.append(shown(destination))
    finally:
        for parent, _name, _relative in sources:
            os.close(parent)
    if problem:
        return "", problem + (f"; restored before it: {', '.join(done)}" if done else "; nothing was restored")
    if conflicts:
        listed = ", ".join(shown(c) for c in conflicts[:5])
        more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        return "", f"restored all but what exists again at {listed}{more}; move those away and restore again"
    if not done:
        return "", f"everything in {chosen['session']}/{chosen['id']} was already restored"
    return ", ".join(done), ""


def _merge(source: int, destination: int, name: str, shown: str, depth: int) -> list[str]:
    """Rename `name` from `source` to `destination` (directory fds); into an existing directory,
    child by child. Never over an existing name, never through a symlink. The conflicts."""
    try:
        there = os.stat(name, dir_fd=destination, follow_symlinks=False)
    except FileNotFoundError:
        try:
            rename_noreplace(source, name, destination, name)
        except FileExistsError:  # made again since: a conflict, like any other
            return [shown]
        _strip_setid(destination, name, 0, descend=False)
        return []
    here = os.stat(name, dir_fd=source, follow_symlinks=False)
    if not (stat.S_ISDIR(there.st_mode) and stat.S_ISDIR(here.st_mode)):
        return [shown]
    if depth >= DEPTH_LIMIT:
        raise TooDeep(shown)
    inner_source = open_directory(source, name)
    try:
        inner_destination = open_directory(destination, name)
        try:
            conflicts = []
            for child in sorted(os.listdir(inner_source)):
                conflicts += _merge(inner_source, inner_destination, child, os.path.join(shown, child), depth + 1)
        finally:
            os.close(inner_destination)
    finally:
        os.close(inner_source)
    if not conflicts:
        try:
            os.rmdir(name, dir_fd=source)
        except OSError:
            pass  # written to since: what is left stays in the trash
    return conflicts


def _find(entries: list[dict[str, Any]], reference: str, cwd: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The entry meant, and the relative paths in it to restore."""
    if "/" in reference and not reference.startswith(("/", ".")):
        session, _, number = reference.rpartition("/")
        for entry in entries:
            if entry["id"] == number and entry["session"].startswith(session):
                return entry, list(entry["paths"])
    path = os.path.normpath(os.path.join(cwd, reference))
    restored = None
    for entry in entries:  # newest first: the last removal of that path that is still in the trash
        workspace = entry["workspace"].rstrip("/")
        if not path.startswith(workspace + "/"):
            continue
        wanted = path[len(workspace) + 1:]
        for relative in entry["paths"]:
            if wanted == relative or wanted.startswith(relative + "/"):
                if _in_trash(entry, wanted):
                    return entry, [wanted]
                restored = restored or (entry, [wanted])
    return restored or (None, [])


def _in_trash(entry: dict[str, Any], relative: str) -> bool:
    """Whether `relative` is still in the entry's files (looked up beneath them, no symlink followed)."""
    try:
        root = os.open(entry["workspace"], _DIRECTORY)
    except OSError:
        return False
    try:
        files = _store_files(entry, root)
    except OSError:
        os.close(root)
        return True  # let restore say what is wrong with it
    try:
        parent_rel, name = os.path.split(relative)
        parent = open_directory(files, parent_rel)
    except OSError as exc:
        return exc.errno != errno.ENOENT
    finally:
        os.close(files)
        os.close(root)
    try:
        return _exists(parent, name)
    finally:
        os.close(parent)


def _store_files(entry: dict[str, Any], workspace: int) -> int:
    """An entry's files/ directory, opened beneath its store without symlinks, checked to be the one
    the supervisor made (OSError otherwise)."""
    if entry["store"] == WORKSPACE_STORE:
        store = open_directory(workspace, os.path.join(WORKSPACE_TRASH, entry["session"]), _WORKSPACE)
    else:
        base = os.open(trash_base(), _DIRECTORY)  # the state directory: the supervisor's
        try:
            store = open_directory(base, entry["session"])
        finally:
            os.close(base)
    try:
        return _entry_files(store, entry)
    finally:
        os.close(store)


def _entry_files(store: int, entry: dict[str, Any]) -> int:
    files = open_directory(store, os.path.join(entry["id"], "files"))
    expected = entry.get("files_id")
    info = os.fstat(files)
    if expected is not None and [info.st_dev, info.st_ino] != expected:
        os.close(files)
        raise OSError(errno.ESTALE, "replaced since the supervisor made it", entry["id"])
    return files


def _records(records: int) -> list[dict[str, Any]]:
    """The valid records of one session's trash, at most ENTRIES_LIMIT (the newest), each at most
    RECORD_LIMIT bytes; anything else (garbage, a FIFO, a symlink, a huge file) is left out."""
    try:
        numbers = sorted((int(n) for n in os.listdir(records) if n.isdigit() and len(n) < 12), reverse=True)
    except OSError:
        return []
    out = []
    for number in numbers[:ENTRIES_LIMIT]:
        try:
            record = json.loads(read_regular(records, f"{number}/entry.json", RECORD_LIMIT))
        except (OSError, ValueError, RecursionError):
            continue
        valid = _valid(record, str(number))
        if valid is not None:
            out.append(valid)
    return out


def _valid(record: Any, number: str) -> dict[str, Any] | None:
    """A record's fields, checked (None when it is not one the supervisor wrote)."""
    if not isinstance(record, dict) or record.get("id") != number:
        return None
    paths = record.get("paths")
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and _is_relative(p) for p in paths):
        return None
    store = record.get("store", STATE_STORE)  # records older than the in-workspace store's own were all here
    files_id = record.get("files_id")
    if store not in (STATE_STORE, WORKSPACE_STORE) or (store == WORKSPACE_STORE and files_id is None):
        return None
    if files_id is not None and not (isinstance(files_id, list) and len(files_id) == 2
                                     and all(type(n) is int for n in files_id)):
        return None
    argv = record.get("argv")

    def number_of(key: str) -> float:
        value = record.get(key)
        return value if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else 0

    return {"id": number, "paths": paths, "time": number_of("time"), "bytes": int(number_of("bytes")),
            "files": int(number_of("files")), "store": store, "files_id": files_id,
            "argv": argv if isinstance(argv, list) and all(isinstance(a, str) for a in argv) else []}


def _is_relative(path: str) -> bool:
    """A path that stays beneath its directory: not absolute, no `..`, `.` or empty part, no NUL."""
    parts = path.split("/")
    return bool(path) and "\0" not in path and all(p not in ("", ".", "..") for p in parts) \
        and parts[0] != WORKSPACE_TRASH


def _is_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\0" not in name and name not in (".", "..")


def _exists(parent: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError:
        return False
    return True


# ---- walking jail-made trees: by directory fd, no symlink followed, bounded depth -----------

def _measure(parent: int, name: str, is_dir: bool, depth: int = 0) -> tuple[int, int]:
    """(bytes on disk, files) of a file, or of a tree and the entries beneath it; no symlink followed."""
    info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if not is_dir or not stat.S_ISDIR(info.st_mode):
        return info.st_blocks * 512, 1
    if depth >= DEPTH_LIMIT:
        raise TooDeep(name)
    total, count = info.st_blocks * 512, 0
    fd = open_directory(parent, name)
    try:
        for child in os.listdir(fd):
            size, files = _measure(fd, child, True, depth + 1)
            is_tree = stat.S_ISDIR(os.stat(child, dir_fd=fd, follow_symlinks=False).st_mode)
            total += size
            count += files + 1 if is_tree else 1
    finally:
        os.close(fd)
    return total, count


def _strip_setid(parent: int, name: str, depth: int, descend: bool = True) -> None:
    """Drop setuid and setgid bits from `name` and, with `descend`, everything beneath it.

    chmod by name beneath the directory fd, never following a symlink (symlinks carry no such bits)."""
    info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        return
    if info.st_mode & _SETID:
        os.chmod(name, safe_mode(info.st_mode), dir_fd=parent, follow_symlinks=False)
    if not descend or not stat.S_ISDIR(info.st_mode):
        return
    if depth >= DEPTH_LIMIT:
        raise TooDeep(name)
    fd = open_directory(parent, name)
    try:
        for child in os.listdir(fd):
            _strip_setid(fd, child, depth + 1)
    finally:
        os.close(fd)


def _cache_directories(parent: int, relative: str, is_cache: Any, depth: int) -> Any:
    """(directory fd, name, relative path) of each regenerable directory beneath `parent`, outermost only."""
    if depth >= DEPTH_LIMIT:
        return
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return
    for name in names:
        try:
            if not stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                continue
        except OSError:
            continue
        path = f"{relative}/{name}" if relative else name
        if is_cache(path):
            yield parent, name, path
            continue
        try:
            inner = open_directory(parent, name)
        except OSError:
            continue
        try:
            yield from _cache_directories(inner, path, is_cache, depth + 1)
        finally:
            os.close(inner)


def _remove_tree(parent: int, name: str, depth: int) -> None:
    """rm -r of `name` beneath a directory fd, never following a symlink."""
    info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(name, dir_fd=parent)
        return
    if depth >= DEPTH_LIMIT:
        raise TooDeep(name)
    fd = open_directory(parent, name)
    try:
        for child in os.listdir(fd):
            _remove_tree(fd, child, depth + 1)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)


# ---- the host side: `shelljail trash put`, for the hook (no jail, no decision service) -------------

HOOK_STATE = "hook"  # the state of a session that only holds what `trash put` moved, on the host


def put(workspace: str, paths: list[str], cwd: str, force: bool = False) -> tuple[list[str], str]:
    """Move `paths` (files or whole trees, inside `workspace`) to the trash, restorable with `trash restore`;
    (what was moved, "" or why the rest was not). The same rules as the jail's trash: beneath the workspace
    fd, no symlink or mount on the way, never the workspace itself or the trash, nothing renamed over a name.

    Every path is checked first: one outside the workspace refuses the whole command, nothing moved. The
    entries belong to one session per workspace (state "hook"), made at the first put."""
    from jail.display import shown

    root = os.path.realpath(workspace)
    if not os.path.isdir(root) or root == "/":
        return [], f"the workspace {shown(workspace)} is not a directory shelljail can keep a trash in"
    if not paths:
        return [], "name the paths to move to the trash"
    outside = [p for p in paths if _outside(root, os.path.join(cwd, p)) or p.rstrip("/") in (".", "..")
               or p.rstrip("/").endswith(("/.", "/.."))]
    if outside:
        return [], (f"{shown(outside[0])} is not inside the workspace {shown(root)} (or is the workspace or its "
                    "trash); nothing was moved")
    log, in_workspace = _hook_session(root)
    try:
        trash = Trash(log.session, root, in_workspace, 0, lambda _relative: False, (), log)
        outcome = trash.handle("rm", ["rm", "-r" + ("f" if force else ""), "--", *paths], cwd)
    finally:
        log.close()
    moved = [os.path.join(root, p) for e in trash.entries for p in e["paths"]]
    if outcome.real:
        left = [a for a in outcome.argv[1:] if a != "--" and not a.startswith("-")] or paths
        return moved, (f"{shown(left[0])} has a symlink or a mount on the way; it was not moved (delete it "
                       "yourself if you mean to)")
    return moved, outcome.stderr.strip()


def _outside(root: str, path: str) -> bool:
    """Not strictly inside `root` (lexically, as the trash's own check reads it), or in its trash."""
    path = os.path.normpath(path)
    if not path.startswith(root.rstrip("/") + "/"):
        return True
    return path[len(root.rstrip("/")) + 1:].split("/")[0] == WORKSPACE_TRASH


def _hook_session(workspace: str) -> tuple[Any, bool]:
    """The host session holding `trash put`'s entries for this workspace (made once), and whether its
    files live in the workspace (the state directory on another filesystem: a move must be a rename)."""
    from jail.supervisor.audit import AuditLog

    found = next((s for s in sessions() if s.get("state") == HOOK_STATE and s.get("workspace") == workspace
                  and _is_name(str(s.get("session", "")))), None)
    log = AuditLog(session=found["session"]) if found else AuditLog()
    if found is None:
        log.state(state=HOOK_STATE, workspace=workspace, profile=None, argv=["shelljail", "trash", "put"],
                  started=time.strftime("%Y-%m-%d %H:%M:%S"))
    base = trash_base()
    os.makedirs(base, mode=0o700, exist_ok=True)
    in_workspace = os.stat(base).st_dev != os.stat(workspace).st_dev
    if in_workspace:
        _make_workspace_trash(workspace)
    return log, in_workspace


# ---- helpers ------------------------------------------------------------------------------------

def _rm_arguments(args: list[str]) -> tuple[str | None, list[str]]:
    """rm's options as letters (f, r, d, v) and its operands, read by the interposer's one option reader
    with rm's grammar from the catalogue; None for options not emulated (-i, -I, ...)."""
    # Imported here: `run` imports this module before the jail's fork, and only an rm needs the reader (1.8 ms
    # of imports); `shelljail undo` imports this module too.
    from interposer.programs.catalogue import grammar
    from interposer.programs.options import given, operands
    from interposer.words import Word

    words = [Word(arg, True, False, arg) for arg in args]
    rules = grammar("rm")
    letters = ""
    for option, value in given(words, rules):
        mapped = _RM_OPTIONS.get(option)
        if mapped is None or value is not None:  # `--force=x`: rm refuses it
            return None, []
        letters += mapped
    return "".join(sorted(set(letters))), [w.value for w in operands(words, rules)]


# The options of rm the trash emulates, as the letter each stands for ("" for those that change nothing here).
_RM_OPTIONS = {"-f": "f", "-r": "r", "-R": "r", "-d": "d", "-v": "v", "--force": "f", "--recursive": "r",
               "--dir": "d", "--verbose": "v", "--preserve-root": "", "--one-file-system": ""}


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def for_session(profile: Any, spec: Any, log: Any) -> tuple[Trash | None, Any]:
    """The session's trash (None when off, or the workspace is read-only) and the spec to run with
    (the in-workspace trash directory hidden from the jail)."""
    if not profile.trash.enabled or profile.filesystem.workspace != "read-write":
        return None, spec
    from jail.errors import EXIT_SETUP, JailError
    from jail.policy.paths import is_cache_path
    from jail.policy.view import Bind, Hide, Tmpfs

    workspace = spec.view.workspace
    session = os.path.basename(log.directory)
    base = trash_base()
    os.makedirs(base, mode=0o700, exist_ok=True)
    in_workspace = os.stat(base).st_dev != os.stat(workspace).st_dev  # a move must be a rename
    view = spec.view
    if in_workspace:
        trash = os.path.join(workspace, WORKSPACE_TRASH)
        try:
            _make_workspace_trash(workspace)
        except OSError as exc:
            from jail.supervisor import session as sessions_record

            error = JailError(f"cannot keep the trash in {trash}: {exc.strerror} (it must be a directory, and "
                              "a jail may have put a symlink there)",
                              f"move {trash} away and run again, or set trash.enabled = false")
            sessions_record.end(log, EXIT_SETUP, str(error))  # the session says why it never ran
            raise error from None
        view = view._replace(mounts=view.mounts + (Hide(trash),))
    covered = tuple(m.target for m in view.mounts if isinstance(m, Bind | Hide | Tmpfs)
                    and m.target.startswith(workspace.rstrip("/") + "/"))
    trash = Trash(session, workspace, in_workspace, profile.trash.max_bytes or 0, is_cache_path, covered, log)
    return trash, spec._replace(view=view)


def _make_workspace_trash(workspace: str) -> None:
    """<workspace>/.shelljail-trash, beneath the workspace without symlinks, with a .gitignore made
    only if none is there (O_EXCL: a planted symlink is never written through)."""
    root = os.open(workspace, _DIRECTORY)
    try:
        trash = make_directories(root, WORKSPACE_TRASH)
    finally:
        os.close(root)
    try:
        try:
            fd = openat2(trash, ".gitignore", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         STRICT, 0o644)
        except FileExistsError:
            return
        try:
            os.write(fd, b"# shelljail's trash: restorable files, see shelljail trash list\n*\n")
        except OSError:  # a full disk (the agent is often there to make room): a later session writes it
            os.unlink(".gitignore", dir_fd=trash)
        finally:
            os.close(fd)
    finally:
        os.close(trash)
