"""What the jail sees: a profile and a workspace resolved into mount operations.

Pure and computed outside the jail, before anything starts, so that every
problem (a missing path, a workspace that would expose the caller's home)
is refused up front and the resolved view can be shown and logged.
"""


import os
from typing import NamedTuple

from jail.errors import JailError
from jail.policy import agentconfig
from jail.policy.pathtargets import Found, find
from jail.policy.profile import Profile, expand

# A workspace may not contain these (the system), nor the home (its credentials): see _refuse_dangerous_workspace.
_SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/proc", "/sys", "/dev", "/boot", "/var")


class Bind(NamedTuple):
    source: str  # a real path on the host, symlinks resolved
    target: str  # where it appears in the jail
    writable: bool


class Symlink(NamedTuple):
    target: str  # the link's own path in the jail
    points_to: str


class Tmpfs(NamedTuple):
    target: str


class Overlay(NamedTuple):
    """The workspace as an overlay: the real one read-only below, the session's writes above."""

    lower: str
    upper: str
    work: str
    target: str
    disk: int | None = None  # the layer on a tmpfs of this size, copied to `upper` when the jail ends


class Hide(NamedTuple):
    target: str  # masked with an empty tmpfs (directory) or /dev/null (file)


Mount = Bind | Symlink | Tmpfs | Hide | Overlay


class View(NamedTuple):
    workspace: str
    home: str
    mounts: tuple[Mount, ...]
    # With filesystem.path_targets: what was bound for the caller's programs and why, what was refused,
    # and the caller's PATH folders the jail sees (appended to its PATH).
    programs: Found = Found()
    # The read-write binds of the agent's configuration copy (agent.config = "copy"): its targets.
    agent_copy: tuple[str, ...] = ()


def _depth(path: str) -> int:
    return len([part for part in path.split("/") if part])


def _covered(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def resolve(profile: Profile, workspace: str, home: str, user: str, caller_path: str | None = None) -> View:
    """The ordered mounts that build the jail's root for `workspace`. `caller_path`: the PATH the run
    is started with (None: this process's, as for `shelljail check` and doctor, run by the same caller)."""
    if not os.path.isdir(workspace):
        what = "is not a directory" if os.path.exists(workspace) else "does not exist"
        raise JailError(f"workspace {workspace} {what}", "create it, or pass -w DIR")
    workspace = os.path.realpath(workspace)
    _refuse_dangerous_workspace(workspace, home)
    values = {"workspace": workspace, "home": home, "user": user}
    fs = profile.filesystem

    binds: list[tuple[str, bool, bool]] = []  # (path as named, writable, required)
    binds += [(expand(p, values), False, True) for p in fs.read_only]
    binds += [(expand(p, values), False, False) for p in fs.read_only_optional]
    binds += [(expand(p, values), True, True) for p in fs.read_write]

    existing = [(os.path.normpath(p), w) for p, w, required in binds if _exists(p, required)]
    bound_sources = [os.path.realpath(p) for p, _ in existing] + [workspace]
    mounts: list[Mount] = [Tmpfs(home)]
    mounts += [Tmpfs(os.path.normpath(expand(p, values))) for p in fs.tmpfs]
    for path, writable in existing:
        real = os.path.realpath(path)
        if os.path.islink(path) and _covered(real, [s for s in bound_sources if s != real]):
            mounts.append(Symlink(path, os.readlink(path)))  # e.g. /bin -> usr/bin
        else:
            mounts.append(Bind(real, path, writable))
    mounts.append(Bind(workspace, workspace, fs.workspace == "read-write"))
    hidden = [os.path.normpath(expand(p, values)) for p in fs.hidden]
    programs = Found()
    if fs.path_targets:
        toolchains = [m.target for m in mounts if isinstance(m, Bind) and m.target.startswith(home + "/")]
        visible = [m.source for m in mounts if isinstance(m, Bind)]
        programs = find(os.environ.get("PATH", "") if caller_path is None else caller_path, toolchains, home,
                        workspace, visible, hidden)
        mounts += [Bind(added.source, added.path, False) for added in programs.added]
    # The agent's own configuration ([agent]): the real one read-only, or its per-workspace copy (agentconfig.py).
    config = agentconfig.binds(profile, workspace, home)
    mounts += [Bind(source, target, writable) for source, target, writable in config]

    # Parents before children, so a later mount never hides an earlier one.
    mounts.sort(key=lambda m: _depth(m.target))
    mounts += [Hide(path) for path in hidden]
    return View(workspace=workspace, home=home, mounts=tuple(mounts), programs=programs,
                agent_copy=tuple(target for _source, target, writable in config if writable))


def _exists(path: str, required: bool) -> bool:
    if os.path.exists(path):  # a dangling symlink counts as missing
        return True
    if required:
        raise JailError(f"profile path {path} does not exist", "create it, or move it to read_only_optional")
    return False


def _refuse_dangerous_workspace(workspace: str, home: str) -> None:
    """A workspace is the one writable place: it must not contain the system or the home."""
    real_home = os.path.realpath(home)
    if workspace == "/" or any(_covered(d, [workspace]) for d in _SYSTEM_DIRS):
        raise JailError(f"workspace {workspace} contains system directories",
                        "pass a project directory with -w DIR")
    if _covered(real_home, [workspace]):
        raise JailError(f"workspace {workspace} contains your home directory and its credentials",
                        "pass a project directory inside it with -w DIR")


def home_binds(view: View) -> tuple[str, ...]:
    """The paths under the jail's private home that it binds from the real one (toolchains, an agent's
    files read-only): the interposer judges a write there as a write to the real home. The agent's
    configuration copy is not among them: it is the jail's own, not the person's files (a write there,
    as Claude Code's shell snapshot, is ordinary). The jail's decision service and `shelljail check` both
    read them here, from the view, so check says what the jail does."""
    home = view.home
    return tuple(m.target for m in view.mounts if isinstance(m, Bind) and m.target not in view.agent_copy
                 and (m.target == home or m.target.startswith(home + "/")))


def lasting_writable(view: View) -> tuple[str, ...]:
    """What the jail can write that outlives it, besides the workspace: read-write binds (a tmpfs, the
    jail's home and /tmp among them, goes with it). None: what a line changes and keeps is in the
    workspace, where the timeline can undo it (the interposer's `where = ["timeline"]` rules)."""
    return tuple(m.target for m in view.mounts if isinstance(m, Bind) and m.writable and m.target != view.workspace)


def beyond_undo(view: View) -> tuple[str, ...]:
    """What lasts that neither the timeline undoes nor the jail's own agent keeps: lasting_writable less the
    agent's configuration copy. The copy outlives the jail, but it is the jail's: made from the real one,
    never written back, remade from it when its store is deleted, and written by the agent's own tools
    with no shell line to judge. Empty: the `where = ["timeline"]` rules may apply (a line cannot lose
    the person's work that undo does not put back)."""
    return tuple(target for target in lasting_writable(view) if target not in view.agent_copy)


def shown_in(directory: str, mounts: tuple[Mount, ...]) -> str | None:
    """The source of the jail's mount (a bind, an overlay's lower) that shows `directory` inside, if any."""
    real = os.path.realpath(directory)
    for mount in mounts:
        source = mount.source if isinstance(mount, Bind) else mount.lower if isinstance(mount, Overlay) else None
        if source and (real == source or real.startswith(source.rstrip("/") + "/")):
            return source
    return None
