"""The interposer's judgement in an agent's own permission hook, with or without the jail.

`shelljail hook claude-code` is a Claude Code PreToolUse hook: it reads the
hook's JSON on stdin (`tool_name`, `tool_input.command`, `cwd`) and answers
with `hookSpecificOutput`: `deny` with the reason (Claude sees it, and can
change course), `ask` (the person sees the reason in Claude Code's prompt),
or, for a rewrite, `allow` with `updatedInput` holding the safer command.
An `allow` says nothing, leaving the decision to Claude Code's own
permission rules. Input it cannot read is denied: a hook that fails open is
not a guard.
"""

from __future__ import annotations

import json
import os
from typing import Any


def claude_code(stdin: str, profile_name: str, workspace: str | None) -> dict[str, Any] | None:
    """The hook's answer (None: no opinion)."""
    from jail import profile

    from .check import policy_for
    from .judge import decide

    try:
        event = json.loads(stdin)
        tool = event["tool_name"]
        tool_input = event.get("tool_input") or {}
        cwd = os.path.realpath(event.get("cwd") or os.getcwd())
    except (ValueError, KeyError, TypeError) as exc:
        return _answer("deny", f"shelljail could not read the hook's input ({exc}); nothing was judged")
    if tool != "Bash":
        return None
    command = tool_input.get("command")
    if not isinstance(command, str):
        return _answer("deny", "shelljail: the Bash tool's input has no command string")
    root = workspace or os.environ.get("CLAUDE_PROJECT_DIR") or cwd
    decision = decide(command, cwd, policy_for(profile.load(profile_name), os.path.realpath(root),
                                                    jailed=False))
    reason = f"shelljail: {decision.reason}" + (f"; instead: {decision.alternative}" if decision.alternative else "")
    if decision.decision == "deny":
        return _answer("deny", reason)
    if decision.decision == "ask":
        return _answer("ask", reason)
    if decision.decision == "rewrite" and decision.rewritten:
        return _answer("allow", f"shelljail: {decision.reason}", {**tool_input, "command": decision.rewritten})
    return None


def _answer(decision: str, reason: str, updated: dict[str, Any] | None = None) -> dict[str, Any]:
    output: dict[str, Any] = {"hookEventName": "PreToolUse", "permissionDecision": decision,
                              "permissionDecisionReason": reason}
    if updated is not None:
        output["updatedInput"] = updated
    return {"hookSpecificOutput": output}
