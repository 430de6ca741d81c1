"""Where the caller's programs really are: what the jail must also show, read-only, for them to run.

An agent installed in the home is reached through a link on the PATH whose target is elsewhere:
`~/.local/bin/claude` into `~/.local/share/claude/versions`, a `uv tool` or pipx venv under
`~/.local/share`, `~/.bun/bin`, `~/.npm-global/bin`, Volta, fnm. The jail's home is empty, so the
link dangles and the agent is "command not found". With `filesystem.path_targets`, the view also
binds, read-only, the real place of each program under the home found on the caller's PATH and in
the profile's toolchain binds: the directory holding it, widened to the venv or prefix it runs from
(`bin/..`, the folder above `node_modules`, the one with `pyvenv.cfg`), and the same for the
interpreter its `#!` line names. Never a credential location (paths.CREDENTIALS), never what the
profile hides, never the home or a folder that holds other programs' data (~/.local, ~/.config):
those are refused and said. Outside the home the profile's own binds decide.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from jail.kernel.beneath import open_regular
from jail.policy.paths import CREDENTIALS

# Folders of the home that hold many programs' data: a program's place is a folder inside one.
_CONTAINERS = (".local", ".local/share", ".local/state", ".local/lib", ".config", ".cache")
MAX_PATH_DIRS = 64  # of the caller's PATH
MAX_ENTRIES = 4096  # looked at per directory
MAX_SCRIPTS = 256  # `#!` lines read per run
_SHEBANG_BYTES = 256
_VENV_LEVELS = 4  # how far above a program a pyvenv.cfg is looked for


class Added(NamedTuple):
    path: str  # where it appears in the jail (the same path, the home as the caller names it)
    source: str  # the real folder bound there
    why: str


class Refused(NamedTuple):
    path: str  # the program's real place
    why: str


class Found(NamedTuple):
    added: tuple[Added, ...] = ()
    refused: tuple[Refused, ...] = ()
    path: tuple[str, ...] = ()  # the caller's PATH directories the jail sees, for its PATH


def _covered(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def find(caller_path: str, toolchains: Sequence[str], home: str, workspace: str, visible: Sequence[str],
         hidden: Sequence[str]) -> Found:
    """What to bind for the programs on `caller_path` and in `toolchains` (folders the view binds from
    the home) to run. `visible`: the real folders the view shows; `hidden`: the paths it masks."""
    return _Finder(home, workspace, visible, hidden).run(caller_path, toolchains)


class _Finder:
    def __init__(self, home: str, workspace: str, visible: Sequence[str], hidden: Sequence[str]) -> None:
        self.home = home
        self.real_home = os.path.realpath(home)
        self.workspace = workspace
        self.visible = list(visible)
        self.hidden = [os.path.realpath(h) for h in hidden]
        self.added: dict[str, str] = {}  # real folder -> why
        self.refused: dict[str, str] = {}
        self.scripts = 0
        self.scanned: set[str] = set()
        self._remember()

    def _remember(self) -> None:
        """What is seen, as prefixes: _sees runs for every program found."""
        shown = [*self.visible, *self.added]
        self._shown = frozenset(shown)
        self._prefixes = tuple(root.rstrip("/") + "/" for root in shown)
        self._hidden = frozenset(self.hidden)
        self._hidden_prefixes = tuple(root.rstrip("/") + "/" for root in self.hidden)

    def run(self, caller_path: str, toolchains: Sequence[str]) -> Found:
        entries = [d for d in dict.fromkeys(caller_path.split(":")) if d.startswith("/")][:MAX_PATH_DIRS]
        for directory in entries:
            real = os.path.realpath(directory)
            if not os.path.isdir(real):
                continue
            if not self._sees(real) and (real == self.real_home or self._in_home(real)):
                self._bind(self._roots(real, is_dir=True), real, f"{self._named(directory)} is on your PATH")
            if self._sees(real):
                self._scan(directory)
        for toolchain in toolchains:
            for directory in (toolchain, os.path.join(toolchain, "bin")):
                if os.path.isdir(directory):
                    self._scan(directory)
        path = []
        for directory in entries:
            real = os.path.realpath(directory)
            if os.path.isdir(real) and self._sees(real):
                path.append(self._in_jail(real) if self._in_home(real) else directory)
        return Found(tuple(Added(self._in_jail(r), r, why) for r, why in self.added.items()),
                     tuple(Refused(p, why) for p, why in self.refused.items()), tuple(dict.fromkeys(path)))

    def _sees(self, real: str) -> bool:
        return ((real in self._shown or real.startswith(self._prefixes))
                and not (real in self._hidden or real.startswith(self._hidden_prefixes)))

    def _in_home(self, real: str) -> bool:
        return real.startswith(self.real_home + "/")

    def _in_jail(self, real: str) -> str:
        """The path the jail shows `real` at: under the home as the caller names it (links name it so)."""
        return self.home + real[len(self.real_home):] if self._in_home(real) else real

    def _named(self, path: str) -> str:
        return "~" + path[len(self.home):] if path.startswith(self.home + "/") else path

    def _scan(self, directory: str) -> None:
        """The programs of `directory` that lie in the home. Outside the home only its links are read, and
        only those whose text leads into the home are resolved: /usr/bin holds thousands of names."""
        real_directory = os.path.realpath(directory)
        if real_directory in self.scanned:
            return
        self.scanned.add(real_directory)
        inside = self._in_home(real_directory)
        homes = (self.home + "/", self.real_home + "/")
        try:
            with os.scandir(directory) as found:
                entries = [(entry.path, entry.is_symlink()) for _, entry in zip(range(MAX_ENTRIES), found,
                                                                                   strict=False)]
        except OSError:
            return
        for link, is_link in entries:
            if is_link:
                try:
                    text = os.readlink(link)
                except OSError:
                    continue
                if not inside and not os.path.normpath(os.path.join(directory, text)).startswith(homes):
                    continue
                real = os.path.realpath(link)
            elif inside:
                real = real_directory + link[len(directory):]
            else:
                continue
            if self._in_home(real) and not self._sees(real) and os.path.isfile(real) and os.access(real, os.X_OK):
                self._program(real, f"{self._named(link)} runs it", depth=0)

    def _program(self, real: str, why: str, depth: int) -> None:
        """Make the program at `real` (a file under the home, not seen yet) visible, then its interpreter."""
        if real in self.refused or self._sees(real):
            return
        self._bind(self._roots(real, is_dir=False), real, why)
        if real in self.refused:
            return
        interpreter = self._interpreter(real) if depth < 2 else None
        if interpreter:
            target = os.path.realpath(interpreter)
            if self._in_home(target) and os.path.isfile(target):
                self._program(target, f"{self._named(interpreter)} runs {self._named(self._in_jail(real))}",
                              depth + 1)

    def _bind(self, roots: list[str], real: str, why: str) -> None:
        """The widest allowed of `roots` (widest first), or the program refused with the narrowest's reason."""
        problem = ""
        for root in roots:
            problem = self._problem(root)
            if not problem:
                for inner in [r for r in self.added if _covered(r, [root])]:
                    del self.added[inner]  # one bind holds them
                self.added[root] = why
                self._remember()
                return
        self.refused[real] = problem

    def _roots(self, real: str, is_dir: bool) -> list[str]:
        """Where a program (or a PATH folder) runs from, widest first: its venv, the folder above its
        node_modules, the prefix of its bin/, its folder."""
        folder = real if is_dir else os.path.dirname(real)
        roots = []
        if not is_dir:
            above = folder
            for _ in range(_VENV_LEVELS):
                if not self._in_home(above):
                    break
                if os.path.isfile(os.path.join(above, "pyvenv.cfg")):
                    roots.append(above)
                    break
                above = os.path.dirname(above)
            parts = real[len(self.real_home) + 1:].split("/")
            if "node_modules" in parts[:-1]:
                roots.append(os.path.join(self.real_home, *parts[:parts.index("node_modules")]))
        if os.path.basename(folder) == "bin":
            roots.append(os.path.dirname(folder))
        roots.append(folder)
        return list(dict.fromkeys(roots))

    def _problem(self, root: str) -> str:
        """Why `root` may not be bound ("" if it may)."""
        if not self._in_home(root):
            return "not a folder inside the home"
        relative = root[len(self.real_home) + 1:]
        if relative in _CONTAINERS:
            return f"~/{relative} holds other programs' data, not one program"
        for credential in CREDENTIALS:
            place = os.path.join(self.real_home, credential)
            if _covered(root, [place]) or _covered(place, [root]):
                return f"~/{credential} is a credential location"
        if _covered(root, self.hidden):
            return "the profile hides it"
        if _covered(self.workspace, [root]):
            return "it holds the workspace"
        return ""

    def _interpreter(self, real: str) -> str | None:
        """The absolute interpreter of a `#!` line (a regular file's first bytes, read without blocking)."""
        if self.scripts >= MAX_SCRIPTS:
            return None
        self.scripts += 1
        try:
            directory = os.open(os.path.dirname(real), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                fd = open_regular(directory, os.path.basename(real))
            finally:
                os.close(directory)
            try:
                head = os.read(fd, _SHEBANG_BYTES)
            finally:
                os.close(fd)
        except OSError:
            return None
        if not head.startswith(b"#!"):
            return None
        words = head[2:].split(b"\n", 1)[0].split()
        return os.fsdecode(words[0]) if words and words[0].startswith(b"/") else None
