"""The trash: `rm` and `unlink` in the jail move workspace files here instead of deleting them.

Inside the jail, the rm and unlink binaries are the launcher (like the shells);
it sends its argv to the decision service, which calls `handle` here, in the
supervisor. Each workspace path that is not a regenerable cache is renamed into
the session's trash, keeping its relative path and metadata, and the agent
gets the output and exit status rm would have given. Everything else (caches,
whose deletion frees the space an agent needs; paths outside the workspace;
options this does not know) runs the real program, inside the jail, as before.

The trash lives on the workspace's filesystem, so a move is a rename:
`$XDG_STATE_HOME/shelljail/trash/<session>/` when the state directory is on
that filesystem, else `<workspace>/.shelljail-trash/<session>/`, which the jail
sees as an empty read-only directory. Either way nothing in the jail can reach
it. Paths are opened beneath the workspace with openat2(RESOLVE_BENEATH,
RESOLVE_NO_XDEV): a symlink or mount that leads elsewhere is left to the real
rm in the jail, which sees the jail's view of it.
"""

from __future__ import annotations

import collections
import errno
import json
import os
import stat
import time
from typing import Any

from .audit import remove_tree, sessions, state_home, write_json

WORKSPACE_TRASH = ".shelljail-trash"
_RESOLVE = 0x01 | 0x02 | 0x08  # RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH
_SYS_OPENAT2 = 437  # the same number on x86_64 and aarch64


# What the agent sees: an exit status and output; or `real`: run the real program with `argv`.
# (collections.namedtuple: typing.NamedTuple costs a millisecond at import, on every start.)
Outcome = collections.namedtuple("Outcome", "status stdout stderr real argv", defaults=(0, "", "", False, ()))


def trash_root(workspace: str, session: str) -> str:
    """Where this session's trash goes: on the workspace's filesystem, outside the jail's view."""
    state = os.path.dirname(state_home())  # .../shelljail
    os.makedirs(state, exist_ok=True)
    if os.stat(state).st_dev == os.stat(workspace).st_dev:
        return os.path.join(state, "trash", session)
    return os.path.join(workspace, WORKSPACE_TRASH, session)


class Trash:
    """One session's trash: the moves, their records, the cap."""

    def __init__(self, root: str, workspace: str, max_bytes: int, caches: Any, covered: tuple[str, ...],
                 log: Any = None) -> None:
        self.root = root
        self.workspace = workspace
        self.max_bytes = max_bytes
        self.is_cache = caches  # relative path -> bool: regenerable, so really deleted
        self.covered = covered  # mount points in the workspace (hidden paths...): left to the real rm
        self.log = log
        self.sequence = len(_entries(root))
        self._workspace_fd: int | None = None
        self._pending: dict[str, Any] = {"paths": [], "bytes": 0, "files": 0}  # the entry of the rm being run

    # ---- the rm and unlink commands ------------------------------------------------------

    def handle(self, tool: str, argv: list[str], cwd: str) -> Outcome:
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
        self._pending = {"paths": [], "bytes": 0, "files": 0}
        for operand in operands:
            relative = self._relative(cwd, operand)
            if relative is None:
                real.append(operand)
                continue
            message, moved = self._trash_one(tool, operand, relative, force, recursive, empty_dirs, argv)
            if message:
                err.append(message)
                status = 1
            elif moved and verbose:
                out.append(f"removed {'directory ' if moved == 'dir' else ''}'{operand}'")
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

    def _trash_one(self, tool: str, operand: str, relative: str, force: bool, recursive: bool, empty_dirs: bool,
                   argv: list[str]) -> tuple[str, str]:
        """(an error line, or ""; "file"/"dir" when moved)."""
        parent_rel, name = os.path.split(relative)
        verb = "cannot unlink" if tool == "unlink" else "cannot remove"
        try:
            parent = self._open_beneath(parent_rel)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return ("" if force else f"{tool}: {verb} '{operand}': No such file or directory"), ""
            if exc.errno == errno.ENOTDIR:
                return f"{tool}: {verb} '{operand}': Not a directory", ""
            return f"{tool}: {verb} '{operand}': {os.strerror(exc.errno or errno.EIO)}", ""
        try:
            try:
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                return ("" if force else f"{tool}: {verb} '{operand}': No such file or directory"), ""
            is_dir = stat.S_ISDIR(info.st_mode)
            if is_dir and tool == "unlink":
                return f"{tool}: {verb} '{operand}': Is a directory", ""
            if is_dir and not recursive:
                if not empty_dirs:
                    return f"{tool}: {verb} '{operand}': Is a directory", ""
                if _measure(parent, name, True)[1]:
                    return f"{tool}: {verb} '{operand}': Directory not empty", ""
            size, files = _measure(parent, name, is_dir)
            refusal = self._make_room(size)
            if refusal:
                return f"{tool}: {verb} '{operand}': {refusal}", ""
            self._move(parent, name, relative, size, files, argv)
            return "", "dir" if is_dir else "file"
        finally:
            os.close(parent)

    # ---- moving, recording, the cap --------------------------------------------------------

    def _open_beneath(self, relative: str) -> int:
        if self._workspace_fd is None:
            self._workspace_fd = os.open(self.workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return openat2(self._workspace_fd, relative or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, _RESOLVE)

    def _move(self, parent: int, name: str, relative: str, size: int, files: int, argv: list[str]) -> None:
        """Rename into this command's entry (one per rm or unlink run, made at its first move)."""
        if not self._pending["paths"]:
            self.sequence += 1
            self._pending["id"] = str(self.sequence)
        destination = os.path.join(self.root, self._pending["id"], "files", relative)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        if self.root.startswith(self.workspace.rstrip("/") + "/"):
            ignore = os.path.join(self.workspace, WORKSPACE_TRASH, ".gitignore")
            if not os.path.exists(ignore):
                with open(ignore, "w") as f:
                    f.write("# shelljail's trash: restorable files, see shelljail trash list\n*\n")
        target = os.open(os.path.dirname(destination), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.rename(name, os.path.basename(destination), src_dir_fd=parent, dst_dir_fd=target)
        finally:
            os.close(target)
        self._pending["paths"].append(relative)
        self._pending["bytes"] += size
        self._pending["files"] += files

    def _finish(self, argv: list[str]) -> None:
        """Record the command's entry and log it, with what undoes it."""
        pending = self._pending
        if not pending["paths"]:
            return
        entry = pending["id"]
        record = {"id": entry, "workspace": self.workspace, "paths": pending["paths"], "time": time.time(),
                  "bytes": pending["bytes"], "files": pending["files"], "argv": argv}
        write_json(os.path.join(self.root, entry, "entry.json"), record)
        if self.log is not None:
            self.log.event("trash", id=entry, paths=[os.path.join(self.workspace, p) for p in pending["paths"]],
                           bytes=pending["bytes"], files=pending["files"], argv=argv,
                           trash=os.path.join(self.root, entry, "files"),
                           undo=f"shelljail trash restore {os.path.basename(self.root)}/{entry}")

    def _make_room(self, size: int) -> str:
        """"" when `size` more bytes fit under the cap (purging regenerable parts first), else why not."""
        if not self.max_bytes:
            return ""
        entries = _entries(self.root)
        used = sum(e.get("bytes", 0) for e in entries) + self._pending["bytes"]
        if used + size <= self.max_bytes:
            return ""
        for entry in sorted(entries, key=lambda e: e.get("time", 0)):  # the oldest first
            used -= self._purge_caches(entry)
            if used + size <= self.max_bytes:
                return ""
        return (f"shelljail's trash is full ({human(used)} of trash.max_bytes {human(self.max_bytes)}); "
                "nothing was removed: ask the person to restore or empty it (shelljail trash list)")

    def _purge_caches(self, entry: dict[str, Any]) -> int:
        """Really delete the regenerable directories inside a trash entry; the bytes freed."""
        base = os.path.join(self.root, entry["id"], "files")
        freed = 0
        for directory, subdirectories, _files in os.walk(base):
            for name in list(subdirectories):
                full = os.path.join(directory, name)
                if self.is_cache(os.path.relpath(full, base)):
                    size, _ = _measure(None, full, True)
                    remove_tree(full)
                    freed += size
                    subdirectories.remove(name)
                    if self.log is not None:
                        self.log.event("trash-purged", id=entry["id"], path=os.path.relpath(full, base), bytes=size,
                                       reason="the trash reached trash.max_bytes; regenerable caches go first")
        if freed:
            entry["bytes"] = max(0, entry.get("bytes", 0) - freed)
            write_json(os.path.join(self.root, entry["id"], "entry.json"), entry)
        return freed


# ---- reading and restoring (the CLI, outside any jail) ---------------------------------------

def all_entries() -> list[dict[str, Any]]:
    """Every trash entry of every session, newest first, each with its `session` and `root`."""
    found = []
    for info in sessions():
        session, workspace = str(info.get("session")), info.get("workspace") or "/nonexistent"
        roots = {os.path.join(os.path.dirname(state_home()), "trash", session),
                 os.path.join(workspace, WORKSPACE_TRASH, session)}
        for root in roots:
            for entry in _entries(root):
                found.append({**entry, "session": session, "root": root})
    return sorted(found, key=lambda e: -e.get("time", 0))


def restore(reference: str, cwd: str) -> tuple[str, str]:
    """Put an entry (SESSION/N: all it holds), or a path in one, back; (what was restored, "" or why not).

    What is already there again is kept: a directory is merged, file by file, and a file that
    exists on both sides is a conflict (left in the trash, and named). The destination is opened
    beneath the workspace, so a symlink planted there since cannot send the files elsewhere.
    """
    chosen, relatives = _find(all_entries(), reference, cwd)
    if chosen is None:
        return "", f"nothing in the trash matches {reference} (shelljail trash list shows what is there)"
    workspace = chosen["workspace"]
    done, conflicts = [], []
    for relative in relatives:
        source = os.path.join(chosen["root"], chosen["id"], "files", relative)
        destination = os.path.join(workspace, relative)
        if not os.path.lexists(source):
            if len(relatives) == 1:
                return "", f"{destination} was already restored from {chosen['session']}/{chosen['id']}"
            continue
        parent_rel, name = os.path.split(relative)
        try:
            root = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                _make_directories(root, parent_rel)
                parent = openat2(root, parent_rel or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, _RESOLVE)
            finally:
                os.close(root)
            try:
                conflicts += _merge(source, parent, name, destination)
            finally:
                os.close(parent)
        except OSError as exc:
            return "", f"cannot restore {destination}: {exc.strerror} (it leaves the workspace, or is not writable)"
        done.append(destination)
    if conflicts:
        shown = ", ".join(conflicts[:5]) + (f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        return "", f"restored all but what exists again at {shown}; move those away and restore again"
    if not done:
        return "", f"everything in {chosen['session']}/{chosen['id']} was already restored"
    return ", ".join(done), ""


def _make_directories(root: int, relative: str) -> None:
    """mkdir -p beneath `root`, refusing symlinks on the way."""
    current = os.dup(root)
    try:
        for part in [p for p in relative.split("/") if p]:
            try:
                os.mkdir(part, 0o755, dir_fd=current)
            except FileExistsError:
                pass
            following = openat2(current, part, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, _RESOLVE | 0x04)
            os.close(current)
            current = following
    finally:
        os.close(current)


def _merge(source: str, parent: int, name: str, shown: str) -> list[str]:
    """Rename `source` to `name` in `parent`; into an existing directory, child by child. The conflicts."""
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        os.rename(source, name, dst_dir_fd=parent)
        return []
    if not (stat.S_ISDIR(info.st_mode) and os.path.isdir(source) and not os.path.islink(source)):
        return [shown]
    inner = openat2(parent, name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, _RESOLVE | 0x04)
    conflicts = []
    try:
        for child in sorted(os.listdir(source)):
            conflicts += _merge(os.path.join(source, child), inner, child, os.path.join(shown, child))
    finally:
        os.close(inner)
    if not conflicts:
        os.rmdir(source)
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
                if os.path.lexists(os.path.join(entry["root"], entry["id"], "files", wanted)):
                    return entry, [wanted]
                restored = restored or (entry, [wanted])
    return restored or (None, [])


def _entries(root: str) -> list[dict[str, Any]]:
    try:
        names = os.listdir(root)
    except OSError:
        return []
    out = []
    for name in names:
        try:
            with open(os.path.join(root, name, "entry.json")) as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            continue
    return out


# ---- helpers ------------------------------------------------------------------------------------

def _rm_arguments(args: list[str]) -> tuple[str | None, list[str]]:
    """rm's options as letters (f, r, d, v) and its operands; None for options not emulated (-i, -I, ...)."""
    letters = ""
    operands = []
    long_options = {"--force": "f", "--recursive": "r", "--dir": "d", "--verbose": "v",
                    "--preserve-root": "", "--one-file-system": ""}
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            operands += list(rest)
            break
        if arg.startswith("--"):
            if arg not in long_options:
                return None, []
            letters += long_options[arg]
        elif arg.startswith("-") and len(arg) > 1:
            for letter in arg[1:]:
                mapped = {"R": "r"}.get(letter, letter)
                if mapped not in "frdv":
                    return None, []
                letters += mapped
        else:
            operands.append(arg)
    return "".join(sorted(set(letters))), operands


def _measure(parent: int | None, name: str, is_dir: bool) -> tuple[int, int]:
    """(bytes on disk, files) of a file or a tree, never following symlinks."""
    info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if not is_dir:
        return info.st_blocks * 512, 1
    total, count = info.st_blocks * 512, 0
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    stack = [fd]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for entry in it:
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_blocks * 512
                    count += 1
                    if stat.S_ISDIR(st.st_mode):
                        try:
                            stack.append(os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW |
                                                 os.O_CLOEXEC, dir_fd=current))
                        except OSError:
                            pass
        finally:
            os.close(current)
    return total, count


def openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    """openat2(2): Python has no binding. Raises OSError like os.open."""
    import ctypes

    how = (ctypes.c_uint64 * 3)(flags, 0, resolve)
    fd = _libc().syscall(_SYS_OPENAT2, dirfd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), path)
    return fd


_LIBC: Any = None


def _libc() -> Any:
    import ctypes

    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.syscall.restype = ctypes.c_long
    return _LIBC


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
    from .view import Bind, Hide, Tmpfs

    def is_cache_path(relative: str) -> bool:  # the interposer's analysis, imported at the first rm
        from interposer.effects import is_cache_path as classify

        return classify(relative)


    workspace = spec.view.workspace
    root = trash_root(workspace, os.path.basename(log.directory))
    view = spec.view
    if root.startswith(os.path.join(workspace, WORKSPACE_TRASH) + "/"):
        os.makedirs(os.path.join(workspace, WORKSPACE_TRASH), exist_ok=True)
        view = view._replace(mounts=view.mounts + (Hide(os.path.join(workspace, WORKSPACE_TRASH)),))
    covered = tuple(m.target for m in view.mounts if isinstance(m, Bind | Hide | Tmpfs)
                    and m.target.startswith(workspace.rstrip("/") + "/"))
    trash = Trash(root, workspace, profile.trash.max_bytes or 0, is_cache_path, covered, log)
    return trash, spec._replace(view=view)
