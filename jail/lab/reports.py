"""The syscall lab: learn what a command needs, run with reports, compare two profiles."""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from typing import Any, NamedTuple

from jail.policy import profile as profiles


def write_learned(path: str, base: str, argv: list[str], recorder: Any) -> int:
    """Write the base plus an allow-list of exactly the syscalls seen, with counts; how many were learned.

    The data (extends, description, the allow-list) is written by a TOML writer, never by hand; what the
    jail made (paths it opened, programs, addresses) goes only into comments, each line through
    display.shown, so no newline, quote or bracket in a name can become a line of the profile. Written
    to a temporary file and renamed: an interrupted learn never leaves half a profile.
    """
    import tomli_w

    from jail.display import shown
    from jail.errors import JailError
    from jail.lab.learn import describe
    from jail.seccomp.groups import CORE

    base_ref = base if "/" not in base and not base.endswith(".toml") else os.path.abspath(base)
    if any("\ud800" <= c <= "\udfff" for c in base_ref):
        raise JailError(f"the base profile's path {shown(base_ref)} is not UTF-8, which TOML cannot hold",
                        "name a base profile by a UTF-8 path or a built-in name")
    counts = {name: count for name, count in recorder.syscalls.items() if name not in CORE}
    allowed = sorted(name for name in counts if _NAME.match(name))  # "syscall 999": no name to allow
    unnamed = sorted(set(counts) - set(allowed))
    command = shown(shlex.join(argv))
    lines = [f"# Learned by shelljail learn on {time.strftime('%Y-%m-%d %H:%M')} from: {command}",
             "# Only the syscalls below (and a small core: read, write, mmap, execve, ...) pass;",
             "# anything else fails with seccomp.errno_value, and shelljail lab run names it.",
             "#", *describe(recorder.summary()), "#", "# Calls seen of each syscall allowed:"]
    lines += [f"#   {name}: {counts[name]} call{'s' if counts[name] != 1 else ''}" for name in allowed]
    if unnamed:
        lines.append("# Numbers libseccomp has no name for (not allowed): "
                     + ", ".join(f"{shown(name)} ({counts[name]}x)" for name in unnamed))
    data = {"extends": base_ref, "description": "Learned from: " + command[:200], "seccomp": {"allow": allowed}}
    text = "\n".join(lines) + "\n" + tomli_w.dumps(data)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, path)
    return len(allowed)


_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")  # a syscall name, as profile validation accepts it


def report(counts: dict[str, int], events: list[dict[str, Any]]) -> str:
    """Each denied syscall with its count and the first program that tried it (its name the jail's: escaped)."""
    from jail.display import shown

    if not counts:
        return "no syscall was denied"
    first = {e.get("syscall"): e.get("program", "?") for e in reversed(events) if e.get("event") == "seccomp-denial"}
    rows = [f"  {shown(name):24} {count:6}  first by {shown(first.get(name, '?'))}" for name, count in
            sorted(counts.items(), key=lambda item: -item[1])]
    return "denied syscalls:\n" + "\n".join(rows)


class _Syscalls(NamedTuple):
    """A profile's syscall policy by name: what it denies, and its allow-list (None: no allow-list)."""

    denied: frozenset[str]
    allowed: frozenset[str] | None
    note: str = ""


def _syscalls(p: profiles.Profile) -> _Syscalls:
    from jail.seccomp.groups import CORE, names_in

    if not p.seccomp.enabled:
        return _Syscalls(frozenset(), None, "seccomp off")
    if p.seccomp.oci:
        return _Syscalls(frozenset(), None, f"the OCI file {p.seccomp.oci}, not compared by name")
    denied = frozenset(names_in(p.seccomp.errno + p.seccomp.kill, argument_rules=False))
    allowed = frozenset(set(names_in(p.seccomp.allow)) | set(CORE)) - denied if p.seccomp.allow else None
    return _Syscalls(denied, allowed)


def _more_syscalls(x: _Syscalls, y: _Syscalls) -> str:
    """The syscalls x lets through and y does not, in words."""
    if x.note or y.note:
        return "unknown (" + "; ".join(note for note in (x.note, y.note) if note) + ")"
    if x.allowed is None and y.allowed is not None:
        extra = sorted(y.denied - x.denied)
        return (f"every syscall outside the other's allow-list of {len(y.allowed)}"
                + (f", and {', '.join(extra)}" if extra else ""))
    more = (x.allowed - y.allowed if x.allowed is not None and y.allowed is not None
            else x.allowed & y.denied if x.allowed is not None else y.denied - x.denied)
    return ", ".join(sorted(more)) or "none"


def diff(first: str, second: str) -> str:
    """What one profile allows that the other does not: syscalls, paths, network."""
    a, b = profiles.load(first), profiles.load(second)
    out = [f"A = {first} ({a.description or a.source})", f"B = {second} ({b.description or b.source})"]
    sa, sb = _syscalls(a), _syscalls(b)
    out += [f"syscalls A allows and B does not: {_more_syscalls(sa, sb)}",
            f"syscalls B allows and A does not: {_more_syscalls(sb, sa)}"]
    for label, x, y in (("A", a, b), ("B", b, a)):
        for key in ("read_only", "read_only_optional", "read_write", "tmpfs"):
            extra = sorted(set(getattr(x.filesystem, key)) - set(getattr(y.filesystem, key)))
            if extra:
                out.append(f"paths only {label} mounts ({key}): {', '.join(extra)}")
        unhidden = sorted(set(y.filesystem.hidden) - set(x.filesystem.hidden))
        if unhidden:
            out.append(f"paths only {label} leaves visible (the other's hidden): {', '.join(unhidden)}")
    if a.filesystem.workspace != b.filesystem.workspace:
        out.append(f"workspace: A {a.filesystem.workspace}, B {b.filesystem.workspace}")
    same = a.network == b.network
    out.append(f"network: both {a.network.mode}" if same else f"network: A {a.network.mode}, B {b.network.mode}")
    if not same:
        for label, x, y in (("A", a.network, b.network), ("B", b.network, a.network)):
            for key in ("allow", "forward", "allow_addresses"):
                extra = sorted(set(getattr(x, key)) - set(getattr(y, key))) if x.mode == "proxy" else []
                if extra:
                    out.append(f"network.{key} only in {label}: {', '.join(extra)}")
    if a.interposer.enabled != b.interposer.enabled:
        on_off = {True: "on", False: "off"}
        out.append(f"interposer: A {on_off[a.interposer.enabled]}, B {on_off[b.interposer.enabled]}")
    if a.landlock.mode != b.landlock.mode:
        out.append(f"landlock: A {a.landlock.mode}, B {b.landlock.mode}")
    return "\n".join(out)


def print_report(log_directory: str) -> None:
    """The denial report of a finished run, from its audit log (the supervisor's record of it)."""
    from jail.supervisor.audit import LOG_NAME, parse_line

    try:
        with open(os.path.join(log_directory, LOG_NAME), "rb") as f:
            events = [parse_line(line) for line in f if line.strip()]
    except OSError:
        events = []
    counts: dict[str, int] = {}
    for event in events:
        if event.get("event") == "seccomp-denials" and isinstance(event.get("counts"), dict):
            counts = {str(k): v for k, v in event["counts"].items() if isinstance(v, int)}
    print(f"shelljail: {report(counts, events)}", file=sys.stderr)
