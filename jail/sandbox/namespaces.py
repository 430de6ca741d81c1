"""Enter the jail's namespaces and map the caller's ids to themselves."""

from __future__ import annotations

from jail.kernel.unshare import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    unshare,
)

JAIL_NAMESPACES = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET


def enter(uid: int, gid: int, flags: int = JAIL_NAMESPACES) -> None:
    """New user, mount, pid, ipc, uts and network namespaces; the next fork is pid 1.

    The caller's uid and gid map to themselves, so files keep their owners and
    an ordinary user needs no helper (newuidmap) and no privilege. The ids
    must be read before the unshare: inside, unmapped, they read as 65534.
    For root this keeps the jail's uid 0 the host's uid 0 (a jail mapped elsewhere
    could not write the workspace's root-owned files); what that would allow is
    closed elsewhere: setid modes by seccomp.setid_guard, the process limit by a
    pids cgroup (limits.PidsCgroup).
    """
    unshare(flags | CLONE_NEWUSER)
    _write("/proc/self/setgroups", "deny")  # required before an unprivileged gid_map
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
