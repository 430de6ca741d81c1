"""Red team, protocol side: hostile strings fed to the Claude Code hook (host side: strings only, never run).

Each case is what an agent (or text it was fed) could put in a Bash tool call. The hook must never exit 1
(Claude Code's "go ahead"), and a line where bash would see `rm -rf ~` as a command must be denied.
"""

from __future__ import annotations

import io
import json

import pytest

from interposer.hooks import run_claude_code


def _hook(data: bytes, cwd: str) -> tuple[int, dict | None, str]:
    out, err = io.BytesIO(), io.BytesIO()
    status = run_claude_code(io.BytesIO(data), out, err, "coding-agent", cwd)
    text = out.getvalue().decode()
    return status, json.loads(text) if text.strip() else None, err.getvalue().decode()


def _call(command: str, cwd: str) -> bytes:
    return json.dumps({"tool_name": "Bash", "tool_input": {"command": command}, "cwd": cwd}).encode()


@pytest.mark.parametrize("separator", [";", "\n", "&&", "|", "\r\n"])
def test_a_real_separator_before_rm_is_denied(tmp_path, separator: str) -> None:
    """The control: with a separator bash splits at, the hook sees rm -rf ~ and denies it."""
    status, answer, err = _hook(_call(f"true{separator}rm -rf ~", str(tmp_path)), str(tmp_path))
    assert status in (0, 2), err
    assert status == 2 or answer["hookSpecificOutput"]["permissionDecision"] == "deny", (answer, err)


@pytest.mark.parametrize("joiner", ["\r", "\u00a0", "\u2028", "\u2029", "\u0085", "\u200b", "\ufeff"])
def test_characters_bash_does_not_split_at_never_fail_open(tmp_path, joiner: str) -> None:
    """CR, NBSP, Unicode line/paragraph separators, NEL, zero-width space, BOM: bash keeps them inside a
    word, so `true<c>rm` is one command name; whatever the hook answers, it is 0 or 2, never 1, and with a
    real separator after it the rm is still seen (held: measured 0 / deny)."""
    status, _answer, err = _hook(_call(f"true{joiner}rm -rf ~", str(tmp_path)), str(tmp_path))
    assert status in (0, 2), err
    status, answer, err = _hook(_call(f"true{joiner}; rm -rf ~", str(tmp_path)), str(tmp_path))
    assert status == 2 or answer["hookSpecificOutput"]["permissionDecision"] == "deny", (answer, err)


def test_a_duplicated_command_key_is_judged_as_claude_code_reads_it(tmp_path) -> None:
    """JSON with the command key twice: JavaScript's JSON.parse (Claude Code) keeps the last, and so must the
    hook, or it would judge one line while another runs (held: json.loads keeps the last too)."""
    cwd = str(tmp_path)
    data = ('{"tool_name": "Bash", "tool_input": {"command": "true", "command": "rm -rf ~"}, "cwd": '
            + json.dumps(cwd) + "}").encode()
    status, answer, err = _hook(data, cwd)
    assert status == 2 or answer["hookSpecificOutput"]["permissionDecision"] == "deny", (answer, err)
