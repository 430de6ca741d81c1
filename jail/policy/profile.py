"""Profiles: TOML files loaded and validated once into frozen dataclasses.

A profile may `extends` another (a built-in name or a path relative to the
file). Tables merge key by key, lists append to the parent's (a child can
widen its parent, never silently narrow it) except interposer rules, which
come before the parent's (first match wins), other values replace. Every
key is checked: an unknown key, a wrong type or a bad value refuses the
whole profile with the file, the line and the key, so a jail never starts
on a half-read profile.

The records are NamedTuples rather than frozen dataclasses: just as immutable
and typed, but importing `dataclasses` (it pulls in `inspect`) and building
the classes cost about 15 ms of a 50 ms start-up budget here. For the same
reason the modules that define records do not use `from __future__ import
annotations`: NamedTuple compiles every string annotation (about 3 ms).
"""


import marshal
import os
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from jail.errors import ProfileError
from jail.policy import programs
from jail.seccomp import groups as seccomp_groups

DEFAULT_PROFILE = "coding-agent"
PLACEHOLDERS = ("workspace", "home", "user")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kKmMgGtT]?)i?[bB]?\s*$")
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# Files shelljail writes itself for the mapped user; a profile cannot bind them.
GENERATED_FILES = ("/etc/passwd", "/etc/group", "/etc/hosts", "/etc/hostname")


class Filesystem(NamedTuple):
    read_only: tuple[str, ...] = ()
    read_only_optional: tuple[str, ...] = ()
    read_write: tuple[str, ...] = ()
    tmpfs: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    workspace: str = "read-write"
    # Bind, read-only, where the programs on the caller's PATH and in the home's toolchain binds really
    # are (a link's target, its venv or prefix), and add those PATH folders to the jail's PATH (pathtargets.py).
    path_targets: bool = False


class Environment(NamedTuple):
    keep: tuple[str, ...] = ()
    set: Mapping[str, str] = MappingProxyType({})


class Limits(NamedTuple):
    cpu_seconds: int | None = None
    address_space: int | None = None
    processes: int | None = None
    open_files: int | None = None
    file_size: int | None = None
    tmpfs_size: int | None = None
    wall_time: float | None = None
    output_bytes: int | None = None
    disk: int | None = None  # what an overlay workspace's session may write (its layer is a tmpfs of this size)
    audit_bytes: int | None = None  # the session's audit log (None: audit.LOG_BYTES); past it, commands denied


# The Ollama API's management endpoints (METHOD, path; "*" is one more path segment): they change the
# host's models and disk. A filtered ("ollama") forward refuses them unless `allow_management` names them.
MODEL_MANAGEMENT = (("POST", "/api/pull"), ("POST", "/api/push"), ("POST", "/api/create"), ("POST", "/api/copy"),
                    ("DELETE", "/api/delete"), ("HEAD", "/api/blobs/*"), ("POST", "/api/blobs/*"))
FORWARD_PROTOCOLS = ("ollama", "tcp")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")


class Forward(NamedTuple):
    """One forward in full: which host port, how it is relayed, and what of the Ollama API passes."""

    address: str  # "127.0.0.1:11434"
    protocol: str = "ollama"  # "ollama": HTTP, each request checked (the default); "tcp": raw bytes, anything
    allow_management: tuple[str, ...] = ()  # management paths of MODEL_MANAGEMENT let through (true: all)
    allow_paths: tuple[str, ...] = ()  # more endpoints let through: "METHOD /path", "/*" ending = one segment


class Network(NamedTuple):
    mode: str = "none"  # none: only a loopback; proxy: also an HTTP proxy to the allowed destinations
    allow: tuple[str, ...] = ()  # "host", "*.domain", with ":port" (default: 80 and 443)
    deny: tuple[str, ...] = ()  # checked first
    hosts: Mapping[str, str] = MappingProxyType({})  # names the proxy resolves to these addresses
    allow_addresses: tuple[str, ...] = ()  # networks the proxy may connect to though private or loopback
    forward: tuple[str, ...] = ()  # "127.0.0.1:11434": a host loopback port, at the same address inside
    proxy_port: int = 3128  # where the proxy listens inside the jail (on its 127.0.0.1)
    connect_local: bool = False  # TCP connect to any port of the jail's own loopback (not only the bridged)
    # The agent's own API ("METHOD /path"): what a filtered forward whose table names no allow_paths (a bare
    # "127.0.0.1:PORT", every `run --forward`) lets through beyond the inference endpoints.
    forward_paths: tuple[str, ...] = ()
    # Each forward of `forward`, in full (derived from the same key, not set by itself): its protocol, what passes.
    forward_settings: tuple[Forward, ...] = ()


class Rule(NamedTuple):
    """One interposer rule: every matcher given must match; within a list, any item may."""

    id: str
    decision: str
    reason: str
    alternative: str = ""
    command: tuple[str, ...] = ()  # glob patterns on the program's name: rm, mkfs.*
    subcommand: tuple[str, ...] = ()  # its first operand: git push, terraform destroy
    flags: tuple[str, ...] = ()  # any of these options (-rf counts as -r and -f)
    args: tuple[str, ...] = ()  # any argument matching one of these glob patterns
    unless_args: tuple[str, ...] = ()  # ...but not when an argument matches one of these
    deletes: tuple[str, ...] = ()  # path classes it deletes: outside-workspace, workspace-root, ...
    writes: tuple[str, ...] = ()  # path classes it writes
    reads: tuple[str, ...] = ()  # path classes whose content it reads: dotenv, credentials
    mentions: tuple[str, ...] = ()  # path classes named in its arguments, unless it only reads them (cat, grep)
    sends: tuple[str, ...] = ()  # path classes of local files it sends over the network (curl -T, scp)
    stdin_from: tuple[str, ...] = ()  # reads a script from a pipe fed by one of these programs
    via: tuple[str, ...] = ()  # reached through one of these wrappers or runners: sudo, bash -c, xargs
    acts: tuple[str, ...] = ()  # what its form does by the program catalogue: destroys-data, kills, ...
    # Only where a line is judged so (not a matcher on its own): "jail", a jail's own home, processes and
    # network (shelljail run, check); "host", the real ones (the hook). A question the jail makes needless.
    where: tuple[str, ...] = ()
    # A safer form to run instead, where the command can be rewritten (else `decision` holds):
    # "snapshot" (save the work tree to a hidden git ref first), "force-with-lease", "trash" (find -delete
    # through rm, which moves workspace files to the trash).
    rewrite: str = ""


class Interposer(NamedTuple):
    enabled: bool = True  # /bin/sh and /bin/bash in the jail lead to the interposer
    opaque: str = "ask"  # what cannot be known statically: never allowed silently
    default: str = "allow"  # when no rule matches
    judge_child_shells: bool = False  # judge shells started by an allowed shell (make, npm scripts) too
    ask_timeout: float = 120.0  # seconds a question waits for a person before it is a denial
    rules: tuple[Rule, ...] = ()
    # Program catalogue entries over the built-in ones, by program name (jail/policy/programs.py).
    programs: Mapping[str, Any] = MappingProxyType({})


class Seccomp(NamedTuple):
    enabled: bool = True
    errno: tuple[str, ...] = ()  # syscalls and @groups that fail with errno_value
    kill: tuple[str, ...] = ()  # ... that kill the process
    log: tuple[str, ...] = ()  # ... that are allowed and logged by the kernel
    errno_value: str = "EPERM"
    oci: str = ""  # a Docker/OCI seccomp JSON file whose policy replaces the lists above
    allow: tuple[str, ...] = ()  # if set, only these (and a small core) pass: an allow-list stacked on the rest


class Landlock(NamedTuple):
    mode: str = "best-effort"  # "required": refuse to run without it; "off": do not use it


class Trash(NamedTuple):
    enabled: bool = True  # rm and unlink in the workspace move to a restorable trash (needs the interposer)
    max_bytes: int | None = 2 << 30  # the session's trash holds at most this much; then rm is refused


class Timeline(NamedTuple):
    # A checkpoint of the workspace before every command line the agent runs: shelljail timeline, undo
    # (needs the interposer and a read-write or overlay workspace; jail/recovery/timeline.py).
    enabled: bool = True
    max_bytes: int = 1 << 30  # compressed contents kept per session; then no more checkpoints (logged)
    max_file_bytes: int = 64 << 20  # a larger file is recorded, not kept: undo names it


AGENT_CONFIG = ("copy", "read-only", "none")
SEED_FORMATS = (".json", ".toml")


class Agent(NamedTuple):
    """An agent's profile: which programs pick it, and how the jail gets the agent's own configuration
    (jail/policy/agentconfig.py). Never the real one read-write: a copy per workspace, or read-only."""

    programs: tuple[str, ...] = ()  # `run -- NAME ...` with no -p picks this profile (a built-in's)
    config: str = "none"  # "copy": a per-workspace copy it may write; "read-only": the real one; "none"
    config_paths: tuple[str, ...] = ()  # under {home}; a trailing "/" is a directory the copy starts empty
    # Files written into the copy when absent (JSON or TOML by the name's end, from these tables):
    # what makes the agent's headless mode work without a person (an auth type, a trusted folder).
    seed: Mapping[str, Any] = MappingProxyType({})
    secrets: tuple[str, ...] = ()  # the key variables it reads: named in the hint when set but not passed
    # Left out of the first copy (other projects' transcripts, prompt history, logs): private and large.
    copy_skip: tuple[str, ...] = ()


class Secrets(NamedTuple):
    # NAME = "env" | "file:PATH" | "cmd:COMMAND", each optionally ending in ":file"
    values: Mapping[str, str] = MappingProxyType({})


class Profile(NamedTuple):
    name: str
    source: str
    description: str = ""
    filesystem: Filesystem = Filesystem()
    environment: Environment = Environment()
    limits: Limits = Limits()
    network: Network = Network()
    interposer: Interposer = Interposer()
    seccomp: Seccomp = Seccomp()
    landlock: Landlock = Landlock()
    secrets: Secrets = Secrets()
    trash: Trash = Trash()
    timeline: Timeline = Timeline()
    agent: Agent = Agent()


# ---------------------------------------------------------------- validation

Check = Callable[[Any], Any]  # returns the converted value or raises ValueError


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_kind(value)}")
    return value


def _string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"expected a list of strings, got {_kind(value)}")
    return tuple(value)


def _string_table(value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"expected a table of strings, got {_kind(value)}")
    return MappingProxyType(dict(value))


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_kind(value)}")
    return value


def _destinations(value: Any) -> tuple[str, ...]:
    from jail.policy.hostpatterns import parse

    items = _string_list(value)
    for item in items:
        parse(item)
    return items


def _hosts(value: Any) -> Mapping[str, str]:
    import ipaddress

    table = _string_table(value)
    for name, address in table.items():
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ValueError(f"hosts: {name} = {address!r} is not an IP address") from None
    return MappingProxyType({k.lower(): v for k, v in table.items()})


def _networks(value: Any) -> tuple[str, ...]:
    import ipaddress

    items = _string_list(value)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not an address or network (such as 10.0.0.0/8)") from None
    return items


_FORWARD_KEYS = ("address", "protocol", "allow_management", "allow_paths")
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._~:@!$&'()*+,;=-]+$")


def _forward_address(item: Any) -> str:
    host, _, port = _string(item).rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{item!r}: a forward is a port on the host's loopback, as 127.0.0.1:11434")
    return f"127.0.0.1:{int(port)}"


def _endpoint(item: Any, key: str = "allow_paths: ") -> str:
    """ "METHOD /path" (a path already normal: no empty, "." or ".." segment, no %-escape), "/*" ending allowed."""
    method, _, path = _string(item).partition(" ")
    segments = path.split("/")
    if method not in HTTP_METHODS or segments[0] != "" or len(segments) < 2 or not all(
            _SEGMENT_RE.match(segment) and segment not in (".", "..") and ("*" not in segment or segment == "*"
                                                                          and index == len(segments) - 1)
            for index, segment in enumerate(segments[1:], start=1)):
        raise ValueError(f"{key}{item!r} is not \"METHOD /path\" (METHOD one of {', '.join(HTTP_METHODS)}; "
                         "a path of plain segments, no %-escapes, '.' or '..'; a last segment \"*\" is any one)")
    return f"{method} {path}"


def _forward(item: Any) -> Forward:
    if not isinstance(item, dict):
        return Forward(_forward_address(item))
    unknown = sorted(set(item) - set(_FORWARD_KEYS))
    if unknown:
        raise ValueError(f"a forward's table: unknown key {unknown[0]!r} (known: {', '.join(_FORWARD_KEYS)})")
    if "address" not in item:
        raise ValueError('a forward\'s table needs address = "127.0.0.1:PORT"')
    address = _forward_address(item["address"])
    protocol = _one_of(*FORWARD_PROTOCOLS)(item.get("protocol", "ollama"))
    management = item.get("allow_management", False)
    paths = {path for _, path in MODEL_MANAGEMENT}
    if management is True:
        allowed = tuple(sorted(paths))
    elif management is False:
        allowed = ()
    else:
        allowed = _string_list(management) if isinstance(management, list) else ()
        if not isinstance(management, list) or not all(a in paths for a in allowed):
            raise ValueError(f"{address}: allow_management is true, false or a list of "
                             f"{', '.join(sorted(paths))}; got {management!r}")
    extra = tuple(_endpoint(e) for e in _string_list(item.get("allow_paths", [])))
    if protocol == "tcp" and (allowed or extra):
        raise ValueError(f"{address}: protocol \"tcp\" relays bytes unchecked, so allow_management and allow_paths "
                         "mean nothing there; use protocol \"ollama\" with them, or drop them")
    return Forward(address, protocol, allowed, extra)


def _endpoints(value: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_endpoint(e, "") for e in _string_list(value)))


def _forwards(value: Any) -> tuple[Forward, ...]:
    """Addresses, or tables { address, protocol, allow_management, allow_paths }; a later entry for the same
    address (a child profile's) replaces an earlier one (its parent's)."""
    if not isinstance(value, list):
        raise ValueError(f"expected a list of forwards (\"127.0.0.1:PORT\" or tables), got {_kind(value)}")
    forwards: dict[str, Forward] = {}
    for item in value:
        forward = _forward(item)
        forwards.pop(forward.address, None)
        forwards[forward.address] = forward
    return tuple(forwards.values())


def forward_allow_paths(network: Network, forward: Forward) -> tuple[str, ...]:
    """The endpoints a filtered forward lets through beyond the inference ones: its table's allow_paths,
    or when it names none, the profile's forward_paths (the agent's own API)."""
    return forward.allow_paths or network.forward_paths


def _port(value: Any) -> int:
    number = _positive_int(value)
    if number >= 65536:
        raise ValueError(f"{number} is not a port")
    return number


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return value


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return float(value)


def parse_size(value: Any) -> int:
    """A byte count: an integer, or a string such as "512M" or "4GiB"."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and (match := _SIZE_RE.match(value)) and int(match.group(1)) > 0:
        return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    raise ValueError(f'expected a size such as 1048576, "512M" or "4G", got {value!r}')


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(repr(c) for c in choices)}, got {value!r}")
        return value

    return check


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


PATH_CLASSES = ("outside-workspace", "home", "jail-home", "root", "workspace-root", "inside-workspace", "work",
                "git-dir", "cache", "scratch", "unknown", "any", "dotenv", "credentials", "startup")
DECISIONS = ("allow", "deny", "ask")
REWRITES = ("snapshot", "force-with-lease", "trash", "host-trash")
WHERES = ("jail", "host", "timeline")  # a rule's `where` ("timeline": a jail whose workspace has one)
_RULE_MATCHERS = {"command", "subcommand", "flags", "args", "deletes", "writes", "reads", "mentions", "sends",
                  "stdin_from", "via", "acts"}
# unless_args only narrows a rule: it is not a matcher on its own


def _rules(value: Any) -> tuple[Rule, ...]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"expected a list of [[interposer.rules]] tables, got {_kind(value)}")
    rules = []
    seen: set[str] = set()
    for index, table in enumerate(value):
        fields: dict[str, Any] = {}
        for key, item in table.items():
            where = f"rule {index + 1} ({table.get('id', 'no id')}), key {key!r}"
            if key not in Rule._fields:
                raise ValueError(f"{where}: unknown key (known: {', '.join(Rule._fields)})")
            if key in ("id", "reason", "alternative"):
                fields[key] = _string(item)
            elif key == "rewrite":
                fields[key] = _one_of(*REWRITES)(item)
            elif key == "decision":
                fields[key] = _one_of(*DECISIONS)(item)
            else:
                items = (item,) if isinstance(item, str) else _string_list(item)
                if key in ("deletes", "writes", "reads", "mentions", "sends"):
                    for name in items:
                        if name not in PATH_CLASSES:
                            raise ValueError(f"{where}: unknown path class {name!r} "
                                             f"(known: {', '.join(PATH_CLASSES)})")
                if key == "where" and not set(items) <= set(WHERES):
                    raise ValueError(f"{where}: expected {' or '.join(WHERES)}, got {', '.join(items)}")
                if key == "acts":
                    for name in items:
                        if name not in programs.ACTS:
                            raise ValueError(f"{where}: unknown act {name!r} (known: {', '.join(programs.ACTS)})")
                fields[key] = tuple(items)
        for required in ("id", "decision", "reason"):
            if required not in fields:
                raise ValueError(f"rule {index + 1} ({table.get('id', 'no id')}): {required!r} is required")
        if not _RULE_MATCHERS & set(fields):
            raise ValueError(f"rule {index + 1} ({fields['id']}): names no matcher, so it would match every "
                             f"command (matchers: {', '.join(sorted(_RULE_MATCHERS))})")
        if fields["id"] in seen:
            continue  # a child's rule overrides its parent's rule of the same id
        seen.add(fields["id"])
        rules.append(Rule(**fields))
    return tuple(rules)


_SYSCALL_RE = re.compile(r"^(@[a-z0-9_-]+|[a-z_][a-z0-9_]*)$")


def _syscall_list(value: Any) -> tuple[str, ...]:
    names = _string_list(value)
    for name in names:
        if not _SYSCALL_RE.match(name):
            raise ValueError(f"{name!r} is neither a syscall name nor a @group")
        if name.startswith("@") and name not in seccomp_groups.GROUPS:
            raise ValueError(f"unknown group {name!r} (known: {', '.join(sorted(seccomp_groups.GROUPS))})")
    return names


def _errno_name(value: Any) -> str:
    import errno

    name = _string(value)
    if not isinstance(getattr(errno, name, None), int) or not name.startswith("E"):
        raise ValueError(f"expected an errno name such as \"EPERM\", got {name!r}")
    return name


def _secret_source(value: Any) -> str:
    source = _string(value)
    base = source[: -len(":file")] if source.endswith(":file") else source
    if base != "env" and not base.startswith(("file:", "cmd:")):
        raise ValueError(f'expected "env", "file:PATH" or "cmd:COMMAND" (each may end in ":file"), got {source!r}')
    return source


_PROGRAM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _program_names(value: Any) -> tuple[str, ...]:
    names = _string_list(value)
    for name in names:
        if not _PROGRAM_RE.match(name):
            raise ValueError(f"{name!r} is not a program name (the command's basename, such as \"claude\")")
    return names


def _variables(value: Any) -> tuple[str, ...]:
    names = _string_list(value)
    for name in names:
        if not _VARIABLE_RE.match(name):
            raise ValueError(f"{name!r} is not an environment variable name")
    return names


def _home_paths(value: Any) -> tuple[str, ...]:
    paths = _string_list(value)
    for path in paths:
        problem = _home_path_problem(path)
        if problem:
            raise ValueError(f"{path!r}: {problem}")
    return paths


def _home_path_problem(path: str) -> str | None:
    problem = _placeholder_problem(path)
    if problem:
        return problem
    parts = path.rstrip("/").split("/")
    if parts[0] != "{home}" or len(parts) < 2 or any(p in ("", ".", "..") or "{" in p for p in parts[1:]):
        return "expected a path inside the home, as \"{home}/.claude/\" (no '..', no other placeholder)"
    from jail.policy import paths

    relative = "/".join(parts[1:])
    for credential in paths.CREDENTIALS:
        if relative == credential or relative.startswith(credential + "/") or credential.startswith(relative + "/"):
            return f"~/{credential} holds credentials: an agent's key comes with run --secret"
    return None


def _seeds(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ValueError(f"expected a table of file paths to tables (the file's contents), got {_kind(value)}")
    for path in value:
        problem = _home_path_problem(path)
        if problem or path.endswith("/") or not path.endswith(SEED_FORMATS):
            raise ValueError(f"seed {path!r}: {problem or 'a file path ending in ' + ' or '.join(SEED_FORMATS)}")
    return MappingProxyType({path: _without_origin(table) for path, table in value.items()})


def _without_origin(value: Any) -> Any:
    """A seed's table as written: the merge's bookkeeping of where each key came from left out."""
    if isinstance(value, dict):
        return {key: _without_origin(item) for key, item in value.items() if key != _ORIGIN}
    if isinstance(value, list):
        return [_without_origin(item) for item in value]
    return value


_SCHEMA: dict[str, tuple[type, dict[str, Check]]] = {
    "filesystem": (Filesystem, {
        "read_only": _string_list,
        "read_only_optional": _string_list,
        "read_write": _string_list,
        "tmpfs": _string_list,
        "hidden": _string_list,
        "workspace": _one_of("read-write", "read-only", "overlay"),
        "path_targets": _bool,
    }),
    "environment": (Environment, {"keep": _string_list, "set": _string_table}),
    "limits": (Limits, {
        "cpu_seconds": _positive_int,
        "address_space": parse_size,
        "processes": _positive_int,
        "open_files": _positive_int,
        "file_size": parse_size,
        "tmpfs_size": parse_size,
        "wall_time": _seconds,
        "output_bytes": parse_size,
        "disk": parse_size,
        "audit_bytes": parse_size,
    }),
    "network": (Network, {"mode": _one_of("none", "proxy"), "allow": _destinations, "deny": _destinations,
                          "hosts": _hosts, "allow_addresses": _networks, "forward": _forwards,
                          "forward_paths": _endpoints, "proxy_port": _port, "connect_local": _bool}),
    "landlock": (Landlock, {"mode": _one_of("best-effort", "required", "off")}),
    "secrets": (Secrets, {"*": _secret_source}),
    "trash": (Trash, {"enabled": _bool, "max_bytes": parse_size}),
    "timeline": (Timeline, {"enabled": _bool, "max_bytes": parse_size, "max_file_bytes": parse_size}),
    "seccomp": (Seccomp, {"enabled": _bool, "errno": _syscall_list, "kill": _syscall_list,
                          "log": _syscall_list, "errno_value": _errno_name, "oci": _string,
                          "allow": _syscall_list}),
    "interposer": (Interposer, {"enabled": _bool, "opaque": _one_of("ask", "deny"),
                                "default": _one_of(*DECISIONS), "judge_child_shells": _bool,
                                "ask_timeout": _seconds, "rules": _rules, "programs": programs.validate}),
    "agent": (Agent, {"programs": _program_names, "config": _one_of(*AGENT_CONFIG), "config_paths": _home_paths,
                      "seed": _seeds, "secrets": _variables, "copy_skip": _home_paths}),
}
_TOP_LEVEL = {"extends": _string, "description": _string}
_PATH_LISTS = ("read_only", "read_only_optional", "read_write", "tmpfs", "hidden")


# ------------------------------------------------------------------- loading

def builtin_dir() -> str:
    """Where the built-in profiles live: in the package (a wheel), or beside it in a checkout."""
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # jail/
    for candidate in (os.path.join(package, "profiles"), os.path.join(os.path.dirname(package), "profiles")):
        if os.path.isdir(candidate):
            return candidate
    return os.path.join(os.path.dirname(package), "profiles")


def builtin_names() -> list[str]:
    return sorted(name[:-5] for name in os.listdir(builtin_dir()) if name.endswith(".toml"))


def _is_path(name_or_path: str) -> bool:
    return "/" in name_or_path or name_or_path.endswith(".toml")


def find(name_or_path: str) -> str:
    """A built-in profile name, or a path to a TOML file."""
    if _is_path(name_or_path):
        if not os.path.isfile(name_or_path):
            raise ProfileError(name_or_path, "", "no such profile file")
        return name_or_path
    path = os.path.join(builtin_dir(), f"{name_or_path}.toml")
    if not os.path.isfile(path):
        raise ProfileError(
            name_or_path, "", f"no built-in profile of that name (built in: {', '.join(builtin_names())})"
        )
    return path


def load(name_or_path: str = DEFAULT_PROFILE) -> Profile:
    """Load, merge and validate a profile; raises ProfileError on any problem."""
    path = find(name_or_path)
    name = name_or_path if not _is_path(name_or_path) else path
    cached = _cached(path, name)
    if cached is not None:
        return cached
    merged, texts = _load_chain(path, seen=())
    profile = _validate(merged, name=name, source=path, texts=texts)
    _store(path, name, [*texts, *_CODE], profile)
    return profile


# A validated profile is cached (marshal) with the identity of every file it was read from (device,
# inode, size, mtime and ctime: an edit, a rename over it or a touch back to the old mtime all show
# in one of them); any change means reading and validating again. Parsing TOML
# with the pure-Python tomllib and importing it cost about 10 ms of every start.
_CACHE_VERSION = 3  # 2: [agent]; 3: the stamp holds device, inode and ctime
_MAX_CACHED = 4 << 20  # bytes of one cached profile (a few KB in practice): a larger file is parsed again
# The code that validates: a change to it invalidates every cached profile.
_CODE = (__file__, seccomp_groups.__file__, programs.__file__)


def _cache_name(path: str, name: str) -> str:
    import zlib

    key = f"{os.path.realpath(path)}\0{name}".encode()
    return f"{zlib.crc32(key):08x}.marshal"


def _cached(path: str, name: str) -> Profile | None:
    from jail import cachedir

    raw = cachedir.read("profiles", _cache_name(path, name), _MAX_CACHED)
    if raw is None:
        return None
    try:
        data = marshal.loads(raw)
        if data["version"] != _CACHE_VERSION or data["name"] != name or data["source"] != path:
            return None
        if any(cachedir.stamp(file) != tuple(stamp) for file, stamp in data["files"]):
            return None
        return from_dict(data["profile"])
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        return None


def _store(path: str, name: str, files: list[str], profile: Profile) -> None:
    from jail import cachedir

    try:
        data = {"version": _CACHE_VERSION, "name": name, "source": path,
                "files": [(file, cachedir.stamp(file)) for file in files], "profile": to_dict(profile)}
        raw = marshal.dumps(data)
    except (OSError, ValueError):
        return  # no cache: read again next time
    if len(raw) <= _MAX_CACHED:
        cachedir.write("profiles", _cache_name(path, name), raw)


def from_dict(data: dict[str, Any]) -> Profile:
    """The inverse of to_dict, for a profile that was validated before it was cached."""
    def record(cls: type, values: dict[str, Any]) -> Any:
        fields = {}
        for key, value in values.items():
            if isinstance(value, list):
                value = tuple(Rule(**{k: tuple(v) if isinstance(v, list) else v for k, v in item.items()})
                              if isinstance(item, dict) else item for item in value)
            elif isinstance(value, dict):
                value = MappingProxyType(value)
            fields[key] = value
        return cls(**fields)

    sections = {table: record(cls, data[table]) for table, (cls, _checks) in _SCHEMA.items()
                if table != "network"}
    network = dict(data["network"])
    settings = _forwards(network.pop("forward", []))  # as to_dict wrote them: addresses, or tables
    sections["network"] = record(Network, network)._replace(forward=tuple(f.address for f in settings),
                                                           forward_settings=settings)
    return Profile(name=data["name"], source=data["source"], description=data["description"], **sections)


def _read(path: str) -> tuple[dict[str, Any], str]:
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise ProfileError(path, "", f"cannot read: {exc.strerror}") from None
    import tomllib

    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise ProfileError(path, "", f"not valid TOML: {exc}", int(line.group(1)) if line else None) from None


def _load_chain(path: str, seen: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """The profile merged over its ancestors, and each file's text (for line numbers).

    Keys in the merged dict remember nothing of their origin; `texts` maps each
    file to its text so an error can be located in whichever file set the key.
    """
    resolved = os.path.realpath(path)
    if resolved in seen:
        chain = " -> ".join((*seen, resolved))
        raise ProfileError(path, "extends", f"profiles extend each other in a loop: {chain}")
    data, text = _read(path)
    texts = {path: text}
    parent_name = data.get("extends")
    if parent_name is None:
        return _with_origin(data, path), texts
    if not isinstance(parent_name, str):
        raise ProfileError(path, "extends", f"expected a string, got {_kind(parent_name)}",
                           _find_line(text, "", "extends"))
    try:
        parent_path = find(os.path.join(os.path.dirname(path), parent_name) if _is_path(parent_name)
                           else parent_name)
    except ProfileError as exc:
        raise ProfileError(path, "extends", exc.problem + f": {parent_name!r}",
                           _find_line(text, "", "extends")) from None
    parent, parent_texts = _load_chain(parent_path, (*seen, resolved))
    texts.update(parent_texts)
    return _merge(parent, _with_origin(data, path)), texts


_ORIGIN = "\0origin"  # key under which each table remembers which file set each of its keys


def _with_origin(data: dict[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[key] = _with_origin(value, source) if isinstance(value, dict) else value
    out[_ORIGIN] = {key: source for key in data}
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    origins = dict(base.get(_ORIGIN, {}))
    for key, value in over.items():
        if key == _ORIGIN:
            continue
        origins[key] = over[_ORIGIN][key]
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif isinstance(value, list) and isinstance(out.get(key), list) and key == "rules":
            out[key] = value + out[key]  # first match wins: a child's rules come first
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = out[key] + [item for item in value if item not in out[key]]
        else:
            out[key] = value
    out[_ORIGIN] = origins
    return out


def _find_line(text: str, table: str, key: str) -> int | None:
    """The line where `key` is set inside `[table]` (or at the top for table "")."""
    current = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.match(r"^\[\s*([A-Za-z0-9_.\-\s]+?)\s*\]", line)
        if header:
            current = header.group(1)
            if key == "" and current == table:
                return number
            continue
        if current == table and re.match(rf"^{re.escape(key)}\s*=", line):
            return number
    return None


def _validate(data: dict[str, Any], name: str, source: str, texts: dict[str, str]) -> Profile:
    def fail(table: str, key: str, problem: str) -> ProfileError:
        origins = (data.get(table, {}) if table else data).get(_ORIGIN, {})
        file = origins.get(key, source)
        dotted = f"{table}.{key}" if table else key
        return ProfileError(file, dotted, problem, _find_line(texts.get(file, ""), table, key))

    for key, value in data.items():
        if key == _ORIGIN:
            continue
        if key in _TOP_LEVEL:
            try:
                _TOP_LEVEL[key](value)
            except ValueError as exc:
                raise fail("", key, str(exc)) from None
        elif key in _SCHEMA:
            if not isinstance(value, dict):
                raise fail("", key, f"expected a table [{key}], got {_kind(value)}")
        else:
            known = ", ".join([*_TOP_LEVEL, *_SCHEMA])
            raise fail("", key, f"unknown key (known: {known})")

    sections: dict[str, Any] = {}
    for table, (cls, checks) in _SCHEMA.items():
        values: dict[str, Any] = {}
        free: dict[str, Any] = {}  # a table whose keys are names (`*` in the schema): [secrets]
        for key, value in data.get(table, {}).items():
            if key == _ORIGIN:
                continue
            if key not in checks and "*" not in checks:
                raise fail(table, key, f"unknown key (known in [{table}]: {', '.join(checks)})")
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if k != _ORIGIN}
            try:
                if key in checks:
                    values[key] = checks[key](value)
                else:
                    free[key] = checks["*"](value)
            except programs.ProgramError as exc:
                raise _program_error(data, source, texts, exc) from None
            except ValueError as exc:
                raise fail(table, key, str(exc)) from None
        if "*" in checks:
            values[cls._fields[0]] = MappingProxyType(free)
        if table == "network" and "forward" in values:  # addresses, as every reader takes them; and in full
            values["forward_settings"] = values["forward"]
            values["forward"] = tuple(forward.address for forward in values["forward"])
        sections[table] = cls(**values)

    for key in _PATH_LISTS:
        for path in getattr(sections["filesystem"], key):
            problem = _path_problem(path)
            if problem:
                raise fail("filesystem", key, f"{path!r}: {problem}")
    oci = sections["seccomp"].oci
    if oci and not os.path.isabs(oci):  # relative to the profile file that names it
        origin = data.get("seccomp", {}).get(_ORIGIN, {}).get("oci", source)
        sections["seccomp"] = sections["seccomp"]._replace(oci=os.path.join(os.path.dirname(origin), oci))
    if sections["seccomp"].oci and not os.path.isfile(sections["seccomp"].oci):
        raise fail("seccomp", "oci", f"no such file: {sections['seccomp'].oci}")
    agent = sections["agent"]
    for path in agent.seed:
        if not any(path.startswith(directory) for directory in agent.config_paths if directory.endswith("/")):
            raise fail("agent", "seed", f"{path!r} is not inside a directory of agent.config_paths (one ending "
                                        "in \"/\"): a seed is written into the agent's copy")
    for path in agent.copy_skip:
        if not any(path.startswith(directory) and path != directory
                   for directory in agent.config_paths if directory.endswith("/")):
            raise fail("agent", "copy_skip", f"{path!r} is not inside a directory of agent.config_paths (one "
                                             "ending in \"/\")")
    for index, path in enumerate(agent.config_paths):
        inside = [other for other in agent.config_paths[:index] + agent.config_paths[index + 1:]
                  if path.startswith(other.rstrip("/") + "/")]
        if inside:
            raise fail("agent", "config_paths", f"{path!r} is inside {inside[0]!r}: name each place once")
    for key, value in sections["environment"].set.items():
        problem = _placeholder_problem(value)
        if problem:
            raise fail("environment", "set", f"{key} = {value!r}: {problem}")

    return Profile(name=name, source=source, description=data.get("description", ""), **sections)


def _program_error(data: dict[str, Any], source: str, texts: dict[str, str],
                   exc: "programs.ProgramError") -> ProfileError:
    """A bad [interposer.programs.NAME] entry, with the file that set it and the line of its key."""
    interposer = data.get("interposer", {})
    entry = interposer.get("programs", {}).get(exc.program, {})
    origins = entry.get(_ORIGIN, {}) if isinstance(entry, dict) else {}
    file = origins.get(exc.key) or interposer.get(_ORIGIN, {}).get("programs", source)
    table = f"interposer.programs.{exc.program}"
    return ProfileError(file, f"{table}.{exc.key}" if exc.key else table, str(exc),
                        _find_line(texts.get(file, ""), table, exc.key))


def _placeholder_problem(text: str) -> str | None:
    for match in _PLACEHOLDER_RE.finditer(text):
        if match.group(1) not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            return f"unknown placeholder {{{match.group(1)}}} (known: {known})"
    return None


def _path_problem(path: str) -> str | None:
    problem = _placeholder_problem(path)
    if problem:
        return problem
    if not (path.startswith("/") or path.startswith("{workspace}") or path.startswith("{home}")):
        return "expected an absolute path (or one starting with {workspace} or {home})"
    if ".." in path.split("/"):
        return "'..' is not allowed in a path"
    if path.rstrip("/") in GENERATED_FILES:
        return "shelljail generates this file for the jail; remove it from the profile"
    return None


# `shelljail run`'s one-off flags and the profile keys they add to, each checked by that key's validator.
RUN_FLAGS = {"--read-only": "filesystem.read_only", "--allow": "network.allow", "--forward": "network.forward"}


def run_flag(flag: str, value: str) -> str:
    """One value of a `run` flag in the form its profile key holds (a path made absolute), checked as
    the profile checks that key: ValueError names the problem."""
    if flag == "--read-only":
        path = os.path.abspath(value)
        problem = _path_problem(path)
        if problem:
            raise ValueError(problem)
        if not os.path.exists(path):
            raise ValueError(f"{path} does not exist")
        return path
    if flag == "--allow":
        return _destinations([value])[0]
    if flag == "--forward":
        return _forward(value).address
    raise ValueError(f"no run flag {flag} (known: {', '.join(RUN_FLAGS)})")


def with_run_flags(profile: Profile, read_only: tuple[str, ...] = (), allow: tuple[str, ...] = (),
                   forward: tuple[str, ...] = ()) -> Profile:
    """The profile with `run --read-only`, `--allow` and `--forward` values (checked by run_flag) added
    after its own, as a profile extending it would add them: a forward of the same port replaces the
    profile's (the Ollama filter with no management, as a "127.0.0.1:PORT" entry is)."""
    filesystem = profile.filesystem._replace(read_only=tuple(dict.fromkeys((*profile.filesystem.read_only,
                                                                              *read_only))))
    settings = {f.address: f for f in profile.network.forward_settings}
    for address in forward:
        settings.pop(address, None)
        settings[address] = _forward(address)
    network = profile.network._replace(allow=tuple(dict.fromkeys((*profile.network.allow, *allow))),
                                       forward=tuple(settings), forward_settings=tuple(settings.values()))
    return profile._replace(filesystem=filesystem, network=network)


def expand(text: str, values: Mapping[str, str]) -> str:
    """Replace {workspace}, {home} and {user} in a profile value."""
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], text)


def to_toml(profile: Profile) -> str:
    """The resolved profile as TOML a profile file could hold (`profile show`), written by tomli_w; keys
    left unset (None: no limit, the default) are named in a comment, since TOML has no null."""
    import tomli_w

    unset: list[str] = []

    def kept(value: Any, where: str) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if item is None:
                    unset.append(f"{where}{key}")
                else:
                    out[key] = kept(item, f"{where}{key}.")
            return out
        if isinstance(value, list):
            return [kept(item, where) for item in value]
        return value

    data = kept(to_dict(profile), "")
    name, source = data.pop("name", ""), data.pop("source", "")
    data["secrets"] = data["secrets"]["values"]  # a profile writes [secrets] NAME = "source"
    data["interposer"]["rules"] = [{key: value for key, value in rule.items() if value not in ("", [])}
                                   for rule in data["interposer"]["rules"]]  # a matcher not given
    header = [f"# {name}, resolved from {source}"] + ([f"# not set: {', '.join(unset)}"] if unset else [])
    return "\n".join(header) + "\n" + tomli_w.dumps(data)


def to_dict(profile: Profile) -> dict[str, Any]:
    """The resolved profile as plain data, for `profile show` and the audit log."""
    def plain(value: Any) -> Any:
        if hasattr(value, "_fields"):
            return {name: plain(getattr(value, name)) for name in value._fields}
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    data = plain(profile)
    network = data["network"]
    settings = network.pop("forward_settings")
    if settings or not network["forward"]:  # each forward as a profile would write it: read back the same
        network["forward"] = [f["address"] if (f["protocol"], f["allow_management"], f["allow_paths"]) == (
            "ollama", [], []) else {k: v for k, v in f.items() if v != []} for f in settings]
    return data
