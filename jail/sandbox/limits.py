"""Resource limits from the profile: rlimits just before exec, and for root a pids cgroup."""

from __future__ import annotations

import os
import re
import resource
import time

from jail.policy.profile import Limits


def rlimits(limits: Limits) -> dict[int, int]:
    """The rlimits a profile asks for; soft and hard alike, so they cannot be raised."""
    wanted = {
        resource.RLIMIT_CPU: limits.cpu_seconds,
        resource.RLIMIT_AS: limits.address_space,
        resource.RLIMIT_NPROC: limits.processes,
        resource.RLIMIT_NOFILE: limits.open_files,
        resource.RLIMIT_FSIZE: limits.file_size,
    }
    return {which: value for which, value in wanted.items() if value is not None}


def apply(limits: Limits) -> None:
    for which, value in rlimits(limits).items():
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)  # never ask for more than the caller has
        # CPU: a hard limit one second above the soft one, so that SIGXCPU (which says which
        # limit was hit) arrives before the kernel's SIGKILL at the hard limit.
        ceiling = value + 1 if which == resource.RLIMIT_CPU and (hard == resource.RLIM_INFINITY or
                                                                 value + 1 <= hard) else value
        resource.setrlimit(which, (value, ceiling))


# RLIMIT_NPROC does not hold for the host's uid 0: the kernel exempts INIT_USER (copy_process), and
# the jail's root is the host's root (namespaces.py). For root the jail goes into a pids cgroup of
# its own, whose pids.max counts every task of the jail, whatever its uid.
CGROUP_PREFIX = "shelljail-"


class NoPidsCgroup(Exception):
    """Why no pids cgroup can hold a jail here."""


class PidsCgroup:
    """A pids cgroup made for one run; the holder enters it before it makes the jail's namespaces."""

    def __init__(self, path: str) -> None:
        self.path = path

    def enter(self) -> None:
        """Move the calling process (and so everything it forks) into the cgroup.

        On cgroup v1 a single-threaded caller writes "0" (itself) to `tasks`: the kernel moves that one
        thread without taking `cgroup_threadgroup_rwsem` for writing, whose RCU grace period made a
        `cgroup.procs` write cost 12-16 ms of every root run (0.4 ms this way; docs/results.md, #27).
        With one thread, moving the thread is moving the process. v2 has no `tasks`: `cgroup.procs`."""
        tasks = os.path.join(self.path, "tasks")
        if len(os.listdir("/proc/self/task")) == 1 and os.path.exists(tasks):
            with open(tasks, "w") as f:
                f.write("0")
            return
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def refused(self) -> int:
        """How many forks the limit refused (the `max` count of pids.events)."""
        for line in _read(os.path.join(self.path, "pids.events")).splitlines():
            key, _, value = line.partition(" ")
            if key == "max" and value.strip().isdigit():
                return int(value)
        return 0

    def remove(self, wait: float = 5.0) -> bool:
        """Remove the cgroup once its tasks are gone (after the jail's pid 1, the kernel kills them all)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                os.rmdir(self.path)
                return True
            except FileNotFoundError:
                return True
            except OSError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)


def pids_cgroup_parent() -> str:
    """The directory a jail's pids cgroup is made in: beneath this process's own pids cgroup,
    so a limit set above it (a container's, a systemd slice's) still counts the jail."""
    own = _own_cgroups()
    for mount_root, mount_point, version in _cgroup_mounts():
        relative = own.get("pids" if version == 1 else "")
        if relative is None or not (relative == mount_root or relative.startswith(mount_root.rstrip("/") + "/")):
            continue
        parent = os.path.normpath(os.path.join(mount_point, relative[len(mount_root):].lstrip("/")))
        if version == 2 and "pids" not in _read(os.path.join(parent, "cgroup.subtree_control")).split():
            raise NoPidsCgroup(f"cgroup v2 at {mount_point} does not enable the pids controller for {relative}")
        if not os.access(parent, os.W_OK):
            raise NoPidsCgroup(f"{parent} is not writable (a cgroup not delegated to this user)")
        return parent
    raise NoPidsCgroup("no pids cgroup controller is mounted (/proc/self/mountinfo)")


def make_pids_cgroup(processes: int) -> PidsCgroup:
    """A new pids cgroup whose pids.max is `processes`; raises NoPidsCgroup with the reason."""
    parent = pids_cgroup_parent()
    _remove_stale(parent)
    path = os.path.join(parent, f"{CGROUP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}")
    try:
        os.mkdir(path)
    except OSError as exc:
        raise NoPidsCgroup(f"cannot make a cgroup in {parent}: {exc.strerror}") from None
    cgroup = PidsCgroup(path)
    try:
        with open(os.path.join(path, "pids.max"), "w") as f:
            f.write(str(processes))
    except OSError as exc:
        cgroup.remove(0)
        raise NoPidsCgroup(f"cannot set {path}/pids.max: {exc.strerror}") from None
    return cgroup


def _remove_stale(parent: str) -> None:
    """Empty cgroups left by runs whose supervisor was killed (rmdir refuses a cgroup with tasks)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        owner = name.removeprefix(CGROUP_PREFIX).split("-")[0]
        if name.startswith(CGROUP_PREFIX) and owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            try:
                os.rmdir(os.path.join(parent, name))
            except OSError:
                pass


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup per v1 controller, and its v2 cgroup under the key ""."""
    out: dict[str, str] = {}
    for line in _read("/proc/self/cgroup").splitlines():
        _id, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            out[controller] = path
    return out


def _cgroup_mounts() -> list[tuple[str, str, int]]:
    """(root within the hierarchy, mount point, version) of the mounts that can hold a pids cgroup."""
    found = []
    for line in _read("/proc/self/mountinfo").splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        separator = fields.index("-")
        kind, options = fields[separator + 1], fields[separator + 3].split(",") if len(fields) > separator + 3 else []
        root, point = _unescape(fields[3]), _unescape(fields[4])
        if kind == "cgroup" and "pids" in options:
            found.append((root, point, 1))
        elif kind == "cgroup2" and "pids" in _read(os.path.join(point, "cgroup.controllers")).split():
            found.append((root, point, 2))
    return found


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
