"""An agent's own configuration in the jail ([agent] of a profile), and the profile picked by its name.

Three ways, chosen by agent.config (or `run --agent-config`): "read-only" binds the real
~/.claude (...) read-only; "copy" binds a copy that lives in shelljail's state directory, one per
agent and workspace, which the jail may write and which persists across runs (made from the real
one on first use by jail/supervisor/agentcopy.py, never written back); "none" shows nothing. The
real configuration is never writable from a jail. Pure: which mounts, where the copy lives.
"""


import os
from collections.abc import Mapping
from typing import NamedTuple

from jail.policy.profile import AGENT_CONFIG, Profile, builtin_dir, builtin_names, expand, load


class ConfigBind(NamedTuple):
    relative: str  # under the home: ".claude", ".config/opencode"
    directory: bool  # named with a trailing "/": the copy starts empty when the real one is absent


def entries(profile: Profile) -> tuple[ConfigBind, ...]:
    """agent.config_paths relative to the home."""
    return tuple(ConfigBind(path.rstrip("/")[len("{home}/"):], path.endswith("/"))
                 for path in profile.agent.config_paths)


def store(profile: Profile, workspace: str) -> str:
    """The per-workspace copy of this agent's configuration: beside the sessions, outside every view; named
    by the agent's first program (a profile extending claude-code shares claude's copy) and the workspace."""
    agent = profile.agent.programs[0] if profile.agent.programs else os.path.basename(profile.name).removesuffix(
        ".toml")
    agent = "".join(c if c.isalnum() or c in "._-" else "_" for c in agent) or "agent"
    import hashlib  # OpenSSL, 3-4 ms: only a copy's run needs it, not every `run` (#27)

    digest = hashlib.sha256(os.path.realpath(workspace).encode()).hexdigest()[:16]
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "shelljail", "agents", f"{agent}-{digest}", "home")


def binds(profile: Profile, workspace: str, home: str) -> list[tuple[str, str, bool]]:
    """(source on the host, target in the jail, writable) for each configuration place shown."""
    mode = profile.agent.config
    out: list[tuple[str, str, bool]] = []
    if mode == "none":
        return out
    copy = store(profile, workspace) if mode == "copy" else ""
    for entry in entries(profile):
        real = os.path.join(home, entry.relative)
        target = expand("{home}/" + entry.relative, {"home": home, "workspace": workspace, "user": ""})
        if mode == "read-only":
            if os.path.exists(real):
                out.append((os.path.realpath(real), target, False))
            continue
        copied = os.path.join(copy, entry.relative)
        if os.path.islink(copied):
            continue  # the copy is never a link (a bind would follow it): not made by shelljail, not shown
        if entry.directory or os.path.lexists(copied) or os.path.isfile(real):
            out.append((copied, target, True))
    return out


def with_mode(profile: Profile, mode: str | None) -> Profile:
    """The profile with `run --agent-config MODE` applied (None: as it is)."""
    if mode is None:
        return profile
    if mode not in AGENT_CONFIG:
        raise ValueError(f"expected one of {', '.join(AGENT_CONFIG)}, got {mode!r}")
    return profile._replace(agent=profile.agent._replace(config=mode))


def unpassed_keys(profile: Profile, caller_env: Mapping[str, str], specs: list[str]) -> list[str]:
    """The agent's key variables set in the caller's environment when none is given with --secret: the jail
    never inherits them, so the agent would start without its key."""
    given = {spec.partition("=")[0].removesuffix(":file") for spec in specs}
    if given & set(profile.agent.secrets):
        return []
    return [name for name in profile.agent.secrets if caller_env.get(name)]


def pick(program: str) -> str | None:
    """The built-in profile whose agent.programs names this command's basename (claude -> claude-code)."""
    name = os.path.basename(program)
    if not name:
        return None
    directory = builtin_dir()
    for candidate in builtin_names():
        try:  # only a file that could name it is loaded: loading all ten cost 18 ms of every run
            with open(os.path.join(directory, f"{candidate}.toml")) as f:
                text = f.read()
        except OSError:
            continue
        if "[agent]" in text and f'"{name}"' in text and name in load(candidate).agent.programs:
            return candidate
    return None
