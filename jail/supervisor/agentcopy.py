"""The per-workspace copy of an agent's configuration (agent.config = "copy"), made before the jail starts.

On first use each place of agent.config_paths is copied from the real home into the store
(agentconfig.store): directories, regular files and symlinks as links, never a FIFO, socket or
device opened, never a setuid bit, nothing the profile hides (its credential files) or skips
(agent.copy_skip: other projects' transcripts, prompt history), bounded in
bytes and entries. After that the store is the jail's: it is never read back into the real home,
and host-side code touches it only beneath a directory fd, without following a symlink, to add a
seed file that is missing (its contents written by json or tomli_w, never through a link).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from typing import Any

from jail.errors import JailError
from jail.kernel import beneath
from jail.policy import agentconfig
from jail.policy.profile import Profile, expand

MAX_BYTES = 256 << 20  # what one first copy may hold; a bigger configuration: read-only, or trim it
MAX_ENTRIES = 20_000


class _Budget:
    def __init__(self, what: str) -> None:
        self.what, self.bytes, self.entries = what, 0, 0

    def take(self, size: int) -> None:
        self.bytes += size
        self.entries += 1
        if self.bytes > MAX_BYTES or self.entries > MAX_ENTRIES:
            raise JailError(f"{self.what} holds more than {MAX_BYTES >> 20} MiB or {MAX_ENTRIES} entries, "
                            "too much to copy for the jail",
                            "run with --agent-config read-only (or none), or trim it")


def prepare(profile: Profile, workspace: str, home: str) -> str | None:
    """Make the store's missing copies and seeds; the store's path (None unless agent.config is "copy")."""
    if profile.agent.config != "copy" or not profile.agent.config_paths:
        return None
    root = agentconfig.store(profile, workspace)
    values = {"home": home, "workspace": os.path.realpath(workspace), "user": os.path.basename(home)}
    hidden = {os.path.normpath(expand(path, values)) for path in (*profile.filesystem.hidden,
                                                                  *profile.agent.copy_skip)}
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        store = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise JailError(f"cannot make the agent's configuration copy {root}: {exc.strerror}",
                        "check that shelljail's state directory is writable, or run with --agent-config read-only"
                        ) from None
    try:
        for entry in agentconfig.entries(profile):
            _copy_entry(store, home, entry, hidden)
        for path, table in profile.agent.seed.items():
            _seed(store, path[len("{home}/"):], _expanded(table, values))
    except OSError as exc:
        raise JailError(f"cannot prepare the agent's configuration copy in {root}: {exc.strerror} "
                        f"({exc.filename or ''})", "fix it, or run with --agent-config read-only") from None
    finally:
        os.close(store)
    return root


def _copy_entry(store: int, home: str, entry: agentconfig.ConfigBind, hidden: set[str]) -> None:
    parent_relative, name = os.path.split(entry.relative)
    parent = beneath.make_directories(store, parent_relative, 0o700)
    try:
        try:
            os.lstat(name, dir_fd=parent)
            return  # made before: the jail's now
        except FileNotFoundError:
            pass
        real = os.path.join(home, entry.relative)
        try:  # your own link (a dotfiles manager's) is followed: the copy is of what it names, never a link,
            info = os.stat(real)  # which the bind would follow to the real file, writable
        except FileNotFoundError:
            if entry.directory:
                os.mkdir(name, 0o700, dir_fd=parent)
            return
        incoming = f".incoming-{os.getpid()}-{name}"
        budget = _Budget(f"~/{entry.relative}")
        if stat.S_ISDIR(info.st_mode):
            source = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                _copy_directory(source, parent, incoming, info, real, hidden, budget)
            finally:
                os.close(source)
        elif stat.S_ISREG(info.st_mode) and real not in hidden:
            resolved = os.path.realpath(real)
            _copy_file(os.open(os.path.dirname(resolved), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC),
                       os.path.basename(resolved), parent, incoming, budget)
        else:
            return
        try:
            beneath.rename_noreplace(parent, incoming, parent, name)
        except FileExistsError:  # another run of this workspace made it first: theirs is the copy
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(incoming, dir_fd=parent)
            else:
                os.unlink(incoming, dir_fd=parent)
    finally:
        os.close(parent)


def _copy_file(source_dir: int, name: str, destination: int, as_name: str, budget: _Budget) -> None:
    try:
        fd = beneath.open_regular(source_dir, name)
        try:
            budget.take(os.fstat(fd).st_size)
            beneath.write_copy(fd, destination, as_name, os.fstat(fd))
        finally:
            os.close(fd)
    finally:
        os.close(source_dir)


def _copy_directory(source: int, parent: int, name: str, info: os.stat_result, path: str, hidden: set[str],
                    budget: _Budget) -> None:
    """The tree under the open directory `source` as `name` in `parent`: directories, regular files, links."""
    os.mkdir(name, 0o700, dir_fd=parent)
    destination = beneath.open_directory(parent, name)
    try:
        for child in os.scandir(source):
            child_path = os.path.join(path, child.name)
            if child_path in hidden:
                continue
            child_info = child.stat(follow_symlinks=False)
            budget.take(child_info.st_size if stat.S_ISREG(child_info.st_mode) else 0)
            if stat.S_ISDIR(child_info.st_mode):
                inner = beneath.open_directory(source, child.name)
                try:
                    _copy_directory(inner, destination, child.name, child_info, child_path, hidden, budget)
                finally:
                    os.close(inner)
            elif stat.S_ISREG(child_info.st_mode):
                _copy_file(os.dup(source), child.name, destination, child.name, budget)
            elif stat.S_ISLNK(child_info.st_mode):
                os.symlink(os.readlink(child.name, dir_fd=source), child.name, dir_fd=destination)
        os.chmod(destination, beneath.safe_mode(info.st_mode) | stat.S_IRWXU)
    finally:
        os.close(destination)


def _seed(store: int, relative: str, table: dict[str, Any]) -> None:
    """Write a missing seed file beneath the store (never through a link, never over a file)."""
    parent_relative, name = os.path.split(relative)
    parent = beneath.make_directories(store, parent_relative, 0o700)
    try:
        if relative.endswith(".json"):
            text = json.dumps(table, indent=2) + "\n"
        else:
            import tomli_w

            text = tomli_w.dumps(table)
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=parent)
        except FileExistsError:
            return  # the agent's own (or the user's copied) file wins
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    finally:
        os.close(parent)


def _expanded(value: Any, values: dict[str, str]) -> Any:
    """{home}, {workspace} and {user} replaced in every key and string of a seed's table."""
    if isinstance(value, str):
        return expand(value, values)
    if isinstance(value, dict):
        return {expand(key, values): _expanded(item, values) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_expanded(item, values) for item in value]
    return value
