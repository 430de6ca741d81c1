"""`shelljail check`: the interposer's decision for command lines, executing nothing."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable

from jail.policy import environment, profile, spec, view

from .judge import Decision, Policy, decide
from .parse import parse


def policy_for(loaded: profile.Profile, workspace: str, jailed: bool = True) -> Policy:
    """The judge's view of a jail on `workspace`: the same environment the jailed agent gets, and its
    private home with what its view binds into it (raises JailError where the jail would refuse the
    workspace), and its network. jailed=False: the real home and the host's network (a hook's view)."""
    user, home = spec.caller_identity(os.environ)
    values = {"workspace": workspace, "home": home, "user": user}
    env = environment.build(loaded.environment, {}, values)
    if not jailed:
        return Policy(loaded.interposer, workspace, home, env)
    jail_view = view.resolve(loaded, workspace, home, user)
    lasting = view.lasting_writable(jail_view)
    timeline = (loaded.timeline.enabled and loaded.filesystem.workspace in ("read-write", "overlay")  # as run
                and not view.beyond_undo(jail_view))
    return Policy(loaded.interposer, workspace, home, env, view.home_binds(jail_view), loaded.network, timeline,
                  lasting)


def explain(line: str, decision: Decision, policy: Policy, cwd: str) -> str:
    """The decision for a person: the parse, what was resolved, which rule decided, and why."""
    out = [f"{decision.decision.upper()}: {decision.reason}" + (f" (rule {decision.rule})" if decision.rule else "")]
    if decision.alternative:
        out.append(f"  instead: {decision.alternative}")
    parsed = parse(line, cwd, {**policy.env, "PWD": cwd})  # parsed again for display only: `check` is not hot
    out.append(f"  parsed by {parsed.parser} into {len(parsed.commands)} simple command(s):")
    for command in parsed.commands:
        words = " ".join(repr(w.value) if w.literal else f"<{w.source}>" for w in command.argv) or "(assignment)"
        notes = [f"in {' > '.join(command.context)}"] if command.context else []
        notes += [f"stdin from {'|'.join(command.piped_from)}"] if command.piped_from else []
        notes += [f"{r.op}{'' if r.target is None else ' ' + r.target.value}" for r in command.redirects]
        notes += [f"cwd {command.cwd}"] if command.cwd != cwd else []
        out.append(f"    {words}" + (f"   [{'; '.join(notes)}]" if notes else ""))
    out.append(f"  resolved to {len(decision.commands)} program(s):")
    for command in decision.commands:
        via = f"  via {' > '.join(command['via'])}" if command["via"] else ""
        argv = " ".join(command["argv"])
        rule = command["rule"] or "no rule"
        out.append(f"    {command['decision']:5}  {argv}{via}  [{rule}]")
        for kind in ("deletes", "writes"):
            if command[kind]:
                out.append(f"           {kind}: {', '.join(p or '(unknown)' for p in command[kind])}")
    for reason in decision.opaque_reasons:
        out.append(f"  opaque: {reason}")
    return "\n".join(out)


def run(profile_name: str, directory: str, workspace: str | None, as_json: bool, lines: Iterable[str],
        one_line: bool) -> int:
    loaded = profile.load(profile_name)
    directory = os.path.realpath(directory)
    policy = policy_for(loaded, os.path.realpath(workspace) if workspace else directory)
    for line in lines:
        line = line.rstrip("\n")
        decision = decide(line, directory, policy)
        if as_json:
            print(json.dumps(decision.as_json(line), ensure_ascii=False))
        else:
            print(("" if one_line else f"$ {line}\n") + explain(line, decision, policy, directory))
        sys.stdout.flush()
    return 0
