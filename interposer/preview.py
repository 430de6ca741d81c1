"""What a command would do to files, shown to the person asked to approve it.

For a line that writes files, the preview is a unified diff where the new
content is known before anything runs: `echo`/`printf` of literal words into
a file (`>` or `>>`), a here-document into `cat > FILE` or `tee FILE`, and
`truncate -s 0` or `shred`, which empty a file. Anything else that writes is
named with "(its new content is only known when it runs)". The old content
is read as the jail sees it: beneath a directory fd of the shell's own root,
with RESOLVE_IN_ROOT (an absolute symlink resolves in the jail, never on the
host), regular files only, opened without blocking, bounded, and never from
the jail's /proc or /sys, which the supervisor would read with its own rights.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping

from jail.kernel import beneath

from .resolve import Invocation, resolve

MAX_READ = 256 << 10
MAX_LINES = 200
MAX_FILES = 32  # files diffed for one line: each read costs up to MAX_READ
MAX_TEXT = 64 << 10  # characters of preview shown, stored with the question and logged


def preview(line: str, cwd: str, env: Mapping[str, str], read: Callable[[str], bytes | None]) -> str:
    """A unified diff (or notes) for the files `line` writes; "" when it writes none."""
    parts: list[str] = []
    writes = [w for invocation in resolve(line, cwd, {**env, "PWD": cwd}).invocations for w in _writes(invocation)]
    for path, new, append in writes[:MAX_FILES]:
        parts.append(_diff(path, new, append, read))
    if len(writes) > MAX_FILES:
        parts.append(f"... and {len(writes) - MAX_FILES} more files written\n")
    text = "".join(parts)
    lines = text.splitlines(keepends=True)
    if len(lines) > MAX_LINES:
        text = "".join(lines[:MAX_LINES]) + f"... ({len(lines) - MAX_LINES} more lines)\n"
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + f"\n... ({len(text) - MAX_TEXT} more characters)\n"
    return text


def _writes(invocation: Invocation) -> list[tuple[str, str | None, bool]]:
    """(path, new content or None when unknown, appended) for each file the program writes."""
    command = invocation.command
    values = invocation.values()
    found = []
    content = _content(invocation)
    for redirect in command.redirects:
        if redirect.writes_file and redirect.target is not None and redirect.fd in (None, 1):
            path = os.path.normpath(os.path.join(command.cwd, redirect.target.value))
            found.append((path, content if redirect.target.literal else None, redirect.op == ">>"))
    if invocation.name == "tee":
        body = next((r.body for r in command.redirects if r.body is not None), None)
        append = "-a" in values or "--append" in values
        for value in [v for v in values if not v.startswith("-")]:
            found.append((os.path.normpath(os.path.join(command.cwd, value)), body, append))
    if invocation.name in ("truncate", "shred") and values:
        emptied = invocation.name == "shred" or any(v in ("-s0", "--size=0") for v in values) or \
            any(a == "-s" and b == "0" for a, b in zip(values, values[1:], strict=False))
        for value in [v for v in values if not v.startswith("-") and v != "0"]:
            found.append((os.path.normpath(os.path.join(command.cwd, value)), "" if emptied else None, False))
    return found


def _content(invocation: Invocation) -> str | None:
    """What the program prints, when that is known from its words alone."""
    args = invocation.command.argv[1:]
    if not all(word.literal for word in args):
        return None
    values = [word.value for word in args]
    if invocation.name == "echo":
        newline = "\n"
        while values and values[0] in ("-n", "-e", "-E", "-ne", "-en"):
            newline = "" if "n" in values[0] else newline
            values = values[1:]
        return " ".join(values) + newline
    if invocation.name == "printf" and len(values) == 1 and "%" not in values[0]:
        return values[0].replace("\\n", "\n").replace("\\t", "\t")
    if invocation.name == "cat" and not values:
        return next((r.body for r in invocation.command.redirects if r.body is not None), None)
    return None


def _diff(path: str, new: str | None, append: bool, read: Callable[[str], bytes | None]) -> str:
    try:
        old_bytes = read(path)
    except beneath.NotRegular as exc:
        return f"{path}: a {exc.kind} (not read)\n"
    except beneath.TooLarge as exc:
        return f"{path}: {exc.size} bytes, too large to show{' (emptied)' if new == '' else ''}\n"
    except OSError as exc:
        return f"{path}: cannot be read ({exc.strerror or exc})\n"
    if old_bytes is not None and b"\0" in old_bytes[:8192]:
        return f"{path}: a binary file{' (emptied)' if new == '' else ''}\n"
    old = old_bytes.decode(errors="replace") if old_bytes is not None else None
    if new is None:
        state = "new file" if old is None else "changed"
        return f"{path}: {state} (its new content is only known when it runs)\n"
    after = (old or "") + new if append else new
    lines = difflib.unified_diff((old or "").splitlines(keepends=True), after.splitlines(keepends=True),
                                 "/dev/null" if old is None else f"a{path}", f"b{path}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def read_in_jail(root: int, path: str, limit: int) -> bytes:
    """A file's bytes as the process whose root is `root` sees `path` (NotRegular, TooLarge, OSError).

    The jail's /proc (and a /sys) are refused: their files would be read with the supervisor's
    rights (host root's view of kallsyms, another process's environ), not the jail's.
    """
    fd = beneath.open_regular(root, path, beneath.IN_JAIL_ROOT)
    try:
        device = os.fstat(fd).st_dev
        for pseudo in ("proc", "sys"):
            try:
                if os.stat(pseudo, dir_fd=root, follow_symlinks=False).st_dev == device:
                    raise OSError(13, f"a file of the jail's /{pseudo}, not read", path)
            except FileNotFoundError:
                pass
        return beneath.read_fd(fd, limit, path)
    finally:
        os.close(fd)


def reader(root: int | str) -> Callable[[str], bytes | None]:
    """Read files as a process sees them: `root` is a directory fd of its /proc/PID/root, or a
    directory's path ("" for this process's "/"). None: no such file; other failures raise."""
    def read(path: str) -> bytes | None:
        fd = root if isinstance(root, int) else os.open(root or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return read_in_jail(fd, path, MAX_READ)
        except (FileNotFoundError, NotADirectoryError):
            return None
        finally:
            if not isinstance(root, int):
                os.close(fd)

    return read
