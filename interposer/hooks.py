"""The interposer's judgement in an agent's own permission hook, with or without the jail.

`shelljail hook claude-code` is a Claude Code PreToolUse hook: it reads the
hook's JSON on stdin (`tool_name`, `tool_input.command`, `cwd`) and answers
with `hookSpecificOutput`: `deny` with the reason (Claude sees it, and can
change course), `ask` (the person sees the reason in Claude Code's prompt),
or, for a rewrite, `allow` with `updatedInput` holding the safer command.
An `allow` says nothing, leaving the decision to Claude Code's own
permission rules.

It judges with host semantics (the real home, the real root, no jail's `rm`
under the line): a delete inside the workspace is rewritten to `shelljail
trash put` (rewrite.py, `host-trash`), and what cannot be made safe so is
asked (profiles/base.toml, rules with `where = ["host"]`).

It fails closed. Claude Code blocks a tool call only when the hook exits 2
(its stderr is the reason the model reads) or answers `deny`; any other
failure, exit 1 included, lets the call go ahead. So every failure here is
exit 2 with one line on stderr: input over MAX_INPUT, not UTF-8 JSON, a
field missing or of the wrong type, a command with a lone surrogate (not
text a shell runs as written), a line nested deeper than the judge reads
(syntax over 100 levels, more than 32 wrappers around one command),
a profile that does not load, and any error while judging. The judgement
runs in a forked child with a deadline, so that even a crash (a signal, the
kernel's OOM killer) or a judgement that never ends is a deny.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
from typing import Any, BinaryIO

MAX_INPUT = 1 << 20  # bytes of hook input read; more is refused (a command line is far shorter)
DEADLINE = 30.0  # seconds for the judgement (Claude Code's own hook timeout is longer, and fails open)
MAX_REASON = 400  # characters of a refusal's line
EXIT_DENY = 2  # Claude Code's "blocking error": the tool call does not run, stderr goes to the model


class Refused(Exception):
    """The hook cannot judge this input: a deny, with the reason as its one line."""


def claude_code(data: bytes | str, profile_name: str, workspace: str | None) -> dict[str, Any] | None:
    """The hook's answer (None: no opinion); Refused when the input cannot be judged."""
    from jail.policy import profile

    from .check import policy_for
    from .judge import decide
    from .resolve import unread

    if len(data) > MAX_INPUT:
        raise Refused(f"the hook's input is over {MAX_INPUT} bytes")
    try:
        event = json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError too: bytes that are not UTF-8
        raise Refused(f"the hook's input is not UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(event, dict) or not isinstance(event.get("tool_name"), str):
        raise Refused("the hook's input has no tool_name string")
    if event["tool_name"] != "Bash":
        return None
    tool_input, cwd = event.get("tool_input"), event.get("cwd")
    if not isinstance(tool_input, dict) or not isinstance(tool_input.get("command"), str):
        raise Refused("the Bash tool's input has no command string")
    if not isinstance(cwd, str) or not cwd.startswith("/") or "\0" in cwd:
        raise Refused("the hook's input has no absolute cwd")
    command: str = tool_input["command"]
    surrogate = next((c for c in command if "\ud800" <= c <= "\udfff"), None)
    if surrogate is not None:
        raise Refused(f"the command holds a lone surrogate (\\u{ord(surrogate):04x}), which is not text a shell runs "
                      "as written; write it without")
    if "\0" in command:
        raise Refused("the command holds a NUL character, which a shell cannot run as written")
    cwd = os.path.realpath(cwd)
    root = workspace or os.environ.get("CLAUDE_PROJECT_DIR") or cwd
    decision = decide(command, cwd, policy_for(profile.load(profile_name), os.path.realpath(root), jailed=False))
    too_deep = unread(decision.opaque_reasons)
    if too_deep is not None:  # not read to the end: no judgement, whatever the profile's `opaque` says
        raise Refused(f"shelljail cannot read the command: {too_deep}; write it flatter")
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


def run_claude_code(stdin: BinaryIO, stdout: BinaryIO, stderr: BinaryIO, profile_name: str,
                    workspace: str | None) -> int:
    """The whole hook as a command: 0 with the answer (or nothing) on stdout, or 2 with one line on stderr."""
    try:
        data = _read_bounded(stdin)
        outcome = _judged_apart(data, profile_name, workspace)
    except Refused as exc:
        outcome = "E" + str(exc)
    except Exception as exc:  # noqa: BLE001 - whatever fails here, the call must not go ahead
        outcome = f"Eshelljail failed before judging ({type(exc).__name__}: {exc})"
    if outcome.startswith("A"):
        stdout.write(outcome[1:].encode("ascii"))
        stdout.flush()
        return 0
    from jail.display import shown

    text = shown(outcome[1:])
    if len(text) > MAX_REASON:
        text = text[:MAX_REASON] + "..."
    stderr.write(f"{text if text.startswith('shelljail') else 'shelljail: ' + text}; denied\n".encode("ascii",
                                                                                                  "backslashreplace"))
    stderr.flush()
    return EXIT_DENY


def _read_bounded(stdin: BinaryIO) -> bytes:
    data = stdin.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise Refused(f"the hook's input is over {MAX_INPUT} bytes")
    return data


def _judged_apart(data: bytes, profile_name: str, workspace: str | None) -> str:
    """The judgement in a forked child: "A" + the JSON answer to print, or "E" + why it is a deny.

    The child reports through a pipe; the parent waits at most DEADLINE, and anything but a whole
    report (a crash, a kill, silence) is a deny.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: judge, report, and leave without running the parent's cleanup
        os.close(read_end)
        try:
            answer = claude_code(data, profile_name, workspace)
            report = "A" + (json.dumps(answer, ensure_ascii=True) + "\n" if answer is not None else "")
        except Refused as exc:
            report = "E" + str(exc)
        except BaseException as exc:  # noqa: BLE001 - RecursionError, MemoryError...: all a deny
            report = f"Eshelljail could not judge the command ({type(exc).__name__}: {exc})"
        try:
            encoded = report.encode("ascii", "backslashreplace")
            while encoded:
                encoded = encoded[os.write(write_end, encoded):]
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        received, ended = _receive(read_end, time.monotonic() + DEADLINE)
    finally:
        os.close(read_end)
    if not ended:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if not ended:
        return f"Eshelljail could not judge the command within {DEADLINE:g} s"
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0 or received[:1] not in (b"A", b"E"):
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"status {os.WEXITSTATUS(status)}"
        return f"Eshelljail's judgement ended without an answer ({how})"
    return received.decode("ascii")


def _receive(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything written to the pipe until its writer closes it, and whether that came before the deadline."""
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return b"".join(chunks), False
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
