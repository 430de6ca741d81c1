"""Docker/OCI seccomp profiles: imported as a profile's policy, and exported from one.

The OCI runtime-spec format (`linux.seccomp`: `defaultAction`,
`defaultErrnoRet`, `architectures`, `syscalls[].names/action/errnoRet/args`)
lets the same policy run under containerd, Podman or Kubernetes. Docker's
own extra keys are read as Docker reads them for a process that, like a
jailed one, has no capabilities: `includes`/`excludes` by capability,
architecture and minimum kernel; `archMap` and `comment` are ignored (with a
note). Only the native architecture is ever allowed, whatever
`architectures` lists: other ABIs are killed.
"""

from __future__ import annotations

import errno
import json
import os
from typing import Any, NamedTuple

from jail.errors import JailError
from jail.seccomp import filters, groups

_ACTIONS = ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_LOG", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_NOTIFY")
_OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ")
_PERMISSIVE = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")  # a call they match may run
_ARCH_NAMES = {"x86_64": "amd64", "aarch64": "arm64"}  # Docker's names for `includes.arches`
_OCI_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}


class OciRule(NamedTuple):
    names: tuple[str, ...]
    action: str
    errno_ret: int | None
    args: tuple[tuple[int, str, int, int], ...]  # (index, op, value, valueTwo)


class OciPolicy(NamedTuple):
    default_action: str
    default_errno: int
    rules: tuple[OciRule, ...]
    notes: tuple[str, ...]


def read(path: str) -> OciPolicy:
    """An OCI/Docker seccomp JSON file, as it applies to a jailed process (no capabilities)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as exc:
        raise JailError(f"seccomp.oci: cannot read {path}: {exc.strerror}", "fix the path in the profile") from None
    except ValueError as exc:
        raise JailError(f"seccomp.oci: {path} is not JSON: {exc}", "fix the file") from None
    return parse(data, path)


def parse(data: dict[str, Any], source: str = "the OCI profile") -> OciPolicy:
    def fail(problem: str) -> JailError:
        return JailError(f"seccomp.oci: {source}: {problem}", "see docs/seccomp.md")

    if not isinstance(data, dict) or data.get("defaultAction") not in _ACTIONS:
        raise fail("defaultAction is missing or unknown")
    notes = [f"ignored Docker's key {key!r}" for key in ("archMap", "comment") if key in data]
    if data.get("architectures"):
        notes.append("architectures: only the native one is allowed; other ABIs are killed")
    rules = []
    for index, entry in enumerate(data.get("syscalls", [])):
        if not isinstance(entry, dict) or entry.get("action") not in _ACTIONS:
            raise fail(f"syscalls[{index}]: action is missing or unknown")
        if not _applies(entry):
            continue
        names = entry.get("names") or ([entry["name"]] if "name" in entry else [])
        args = []
        for arg in entry.get("args") or []:
            if arg.get("op") not in _OPS:
                raise fail(f"syscalls[{index}]: unknown comparison {arg.get('op')!r}")
            args.append((int(arg["index"]), arg["op"], int(arg.get("value", 0)), int(arg.get("valueTwo", 0))))
        rules.append(OciRule(tuple(names), entry["action"], entry.get("errnoRet"), tuple(args)))
    return OciPolicy(data["defaultAction"], int(data.get("defaultErrnoRet", errno.EPERM)), tuple(rules),
                     tuple(notes))


def _applies(entry: dict[str, Any]) -> bool:
    """Docker's includes/excludes, for a process with no capabilities on this machine."""
    arch = _ARCH_NAMES.get(os.uname().machine, os.uname().machine)
    includes, excludes = entry.get("includes") or {}, entry.get("excludes") or {}
    if includes.get("caps"):
        return False  # granted only with a capability the jail never has
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if includes.get("minKernel") and _kernel() < _version(includes["minKernel"]):
        return False
    if excludes.get("arches") and arch in excludes["arches"]:
        return False
    return True


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("-")[0].split(".")[:3] if part.isdigit())


def _kernel() -> tuple[int, ...]:
    return _version(os.uname().release)


def build(path: str, notify: bool = False) -> bytes:
    """The BPF program for a Docker/OCI seccomp file, cached by the file's content."""
    import zlib


    with open(path, "rb") as f:
        content = f.read()
    key = repr(("oci", zlib.crc32(content), len(content), notify, os.uname().machine, filters.VERSION)).encode()
    return filters.cached(key + b"\n", lambda: compile_policy(read(path), notify))


def compile_policy(policy: OciPolicy, notify: bool) -> bytes:
    """The BPF program for an OCI policy; with `notify`, its default errno denials are counted."""
    import pyseccomp as sc


    def action(name: str, errno_ret: int | None) -> int:
        if name == "SCMP_ACT_ERRNO":
            return sc.ERRNO(errno_ret if errno_ret is not None else policy.default_errno)
        return {"SCMP_ACT_ALLOW": sc.ALLOW, "SCMP_ACT_KILL": sc.KILL_THREAD, "SCMP_ACT_KILL_THREAD": sc.KILL_THREAD,
                "SCMP_ACT_KILL_PROCESS": sc.KILL_PROCESS, "SCMP_ACT_LOG": sc.LOG, "SCMP_ACT_TRAP": sc.TRAP,
                "SCMP_ACT_TRACE": sc.TRACE(0), "SCMP_ACT_NOTIFY": sc.NOTIFY}[name]

    default = action(policy.default_action, None)
    if notify and policy.default_action == "SCMP_ACT_ERRNO":
        default = sc.NOTIFY  # the supervisor answers with defaultErrnoRet, and counts
    filter_ = sc.SyscallFilter(default)
    filter_.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    filter_.set_attr(sc.Attr.CTL_OPTIMIZE, 2)
    ops = {name: getattr(sc, name.removeprefix("SCMP_CMP_")) for name in _OPS}
    refused: set[str] = set()  # whatever the arguments
    for rule in policy.rules:
        rule_action = action(rule.action, rule.errno_ret)
        if rule_action == default:
            continue  # libseccomp refuses a rule that repeats the default
        conditions = [sc.Arg(index, ops[op], value, value_two) for index, op, value, value_two in rule.args]
        for name in rule.names:
            if sc.resolve_syscall(sc.Arch.NATIVE, name) < 0:
                continue  # a syscall this architecture does not have
            narrowed = conditions
            if rule.action in _PERMISSIVE:  # the setid guard holds under any imported policy
                if name in groups.SETID_UNREADABLE:
                    continue
                try:
                    narrowing = filters.setid_narrowing(name, rule.args)
                except ValueError as exc:
                    raise JailError(f"seccomp.oci: {exc}", "drop that comparison from the file") from None
                if narrowing is not None:
                    narrowed = [*conditions, sc.Arg(narrowing[0], sc.MASKED_EQ, *narrowing[1:])]
            elif not rule.args:
                refused.add(name)
            try:
                filter_.add_rule(rule_action, name, *narrowed)
            except OSError as exc:
                raise JailError(f"seccomp.oci: cannot add the rule for {name}: {exc.strerror}", "") from None
    filters.setid_guard(sc, filter_, sc.ERRNO(errno.EPERM), default, refused)
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as out:
        filter_.export_bpf(out)
    with os.fdopen(read_end, "rb") as data:
        return data.read()


def export(errno_names: tuple[str, ...], kill_names: tuple[str, ...], log_names: tuple[str, ...],
           errno_value: str) -> dict[str, Any]:
    """A profile's deny-list policy as an OCI seccomp profile (default allow)."""

    number = int(getattr(errno, errno_value))
    syscalls: list[dict[str, Any]] = []
    done: set[str] = set()
    refused: set[str] = set()
    for kind, names in (("kill", kill_names), ("errno", errno_names), ("log", log_names)):
        action = {"kill": "SCMP_ACT_KILL_PROCESS", "errno": "SCMP_ACT_ERRNO", "log": "SCMP_ACT_LOG"}[kind]
        for entry in groups.expand(names):
            syscall = entry if isinstance(entry, str) else entry[0]
            if syscall in done:
                continue
            done.add(syscall)
            if kind != "log" and isinstance(entry, str):
                refused.add(syscall)
            entries = _export_entry(entry, action, number)
            if kind == "log" and isinstance(entry, str):  # the setid guard wins over logging
                narrowing = filters.setid_narrowing(entry)
                entries = [] if entry in groups.SETID_UNREADABLE else \
                    [([(narrowing[0], "SCMP_CMP_MASKED_EQ", *narrowing[1:])], action, number)] if narrowing else entries
            for args, rule_action, errno_ret in entries:
                rule: dict[str, Any] = {"names": [syscall], "action": rule_action}
                if rule_action == "SCMP_ACT_ERRNO":
                    rule["errnoRet"] = errno_ret
                if args:
                    rule["args"] = [{"index": i, "value": v, "valueTwo": v2, "op": op} for i, op, v, v2 in args]
                syscalls.append(rule)
    for name, index, bit, errno_name in filters.setid_rules(errno_value):
        if name not in refused:  # the setid guard, which the imported policy gets anyway, for other runtimes
            guard: dict[str, Any] = {"names": [name], "action": "SCMP_ACT_ERRNO",
                                     "errnoRet": int(getattr(errno, errno_name))}
            if index is not None:
                guard["args"] = [{"index": index, "value": bit, "valueTwo": bit, "op": "SCMP_CMP_MASKED_EQ"}]
            syscalls.append(guard)
    arch = _OCI_ARCH.get(os.uname().machine)
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch] if arch else [], "syscalls": syscalls}


def _export_entry(entry: Any, action: str, number: int) -> list[tuple[list[tuple[int, str, int, int]], str, int]]:
    """The OCI rules of one policy entry (an argument rule may need several)."""

    if isinstance(entry, str):
        return [([], action, number)]
    _syscall, rule = entry
    masked = "SCMP_CMP_MASKED_EQ"
    if rule == "namespace-flags":
        return [([(0, masked, flag, flag)], action, number) for flag in groups.NAMESPACE_FLAGS]
    if rule == "enosys":
        return [([], "SCMP_ACT_ERRNO", errno.ENOSYS)]
    if rule == "af-vsock-alg":
        return [([(0, "SCMP_CMP_EQ", family, 0)], action, number) for family in (groups.AF_VSOCK, groups.AF_ALG)]
    if rule == "tiocsti":
        return [([(1, masked, 0xFFFFFFFF, request)], action, number)
                for request in (groups.TIOCSTI, groups.TIOCLINUX)]
    if rule == "unsafe":
        top = 1 << 31
        out = [([(0, masked, (1 << bit) | top, 1 << bit)], action, number) for bit in range(31)
               if not (1 << bit) & groups.HARMLESS_PERSONALITY_BITS]
        return out + [([(0, masked, (1 << bit) | top, top)], action, number) for bit in range(31)]
    raise ValueError(f"unknown argument rule {rule}")
