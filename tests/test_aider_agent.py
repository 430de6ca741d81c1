"""aider (PyPI aider-chat), unmodified, in a real jail with no profile file: `run` picks the built-in `aider`
profile by the program's name, and flags give it the rest (--read-only for its venv, --forward for the model).

aider proposes shell commands in ```bash blocks of its model's answer and runs one only when the answer to
"Run shell command?" is yes. `--yes-always` answers no to that question (aider's explicit_yes_required), so
these runs do not pass it: aider reads its answers from standard input, and at the end of its input
(EOFError) it takes each question's default, which for "Run shell command?" is yes (aider/io.py confirm_ask).
The model is the scripted OpenAI chat-completions server of tests/model_server.py on 127.0.0.1.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import SHELLJAIL
from model_server import ModelServer, say
from test_five_agents import AGENTS, GEMINI_COMMANDS, Incident, check_incident, incident, installed

pytestmark = pytest.mark.jail
__all__ = ["incident"]  # the shared fixture: pytest finds it here by its name

AIDER_VENV = AGENTS / "aider"
AIDER = AIDER_VENV / "bin" / "aider"
TASK = "the disk is nearly full: write the notes and make room"
# Exits 0 when PyPI answers (pip's index lookup: nothing is downloaded).
PYPI_CHECK = [str(AGENTS.parent / ".venv" / "bin" / "python"), "-m", "pip", "index", "versions", "aider-chat"]


def shell_block(command: str) -> dict[str, str]:
    """An answer of aider's model that proposes one shell command (the diff edit format reads ```bash blocks)."""
    return say(f"I will run this.\n\n```bash\n{command}\n```\n")


def run_aider(incident: Incident, server: ModelServer, *aider_args: str, stdin: str | None) -> (
        subprocess.CompletedProcess[str]):
    """`shelljail run` with flags only (no -p): the aider profile, its venv read-only, the model's port forwarded."""
    port = server.url.rsplit(":", 1)[1]
    return subprocess.run(
        [*SHELLJAIL, "run", "-w", str(incident.workspace), "--ask", "deny", "--timeout", "150",
         "--read-only", str(AIDER_VENV), "--forward", f"127.0.0.1:{port}", "--secret", "OPENAI_API_KEY",
         "--", str(AIDER), "--model", f"openai/{server.model}", "--openai-api-base", f"{server.url}/v1",
         "--edit-format", "diff", "--no-git", "--no-show-model-warnings",
         *aider_args],
        input=stdin, stdin=subprocess.DEVNULL if stdin is None else None, capture_output=True, text=True,
        timeout=200, env=incident.jail.env(OPENAI_API_KEY="sk-scripted"), cwd=incident.workspace)


def outputs(request: dict[str, object]) -> list[str]:
    """The command outputs aider put in the chat, as they are in a request to the model."""
    return [m["content"] for m in request["messages"] if m["role"] == "user"  # type: ignore[index, union-attr]
            and m["content"].startswith("Output from ")]


def test_aider_replays_the_incident_in_the_jail(incident: Incident) -> None:
    installed(AIDER, "aider (aider-chat)", PYPI_CHECK)
    server = ModelServer([*(shell_block(c) for c in GEMINI_COMMANDS), say("all done")])
    try:
        free_before = incident.free()
        # Three chat turns on aider's standard input, each followed by two empty lines: Enter, the default
        # (yes), to "Run shell command?" and to "Add command output to the chat?"; a fourth turn sends the
        # model the third command's output. A first run of a new aider version asks whether to show its release
        # notes, which would take the first line: --no-show-release-notes.
        turns = "".join(f"{TASK} (step {n})\n\n\n" for n in (1, 2, 3))
        result = run_aider(incident, server, "--no-show-release-notes", stdin=turns + "is there room now?\n")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "shelljail: using profile aider for aider" in result.stderr, result.stderr
        assert len(server.requests) == 4, (result.stdout, result.stderr)
        assert "all done" in result.stdout
        results = outputs(server.requests[-1])
        assert len(results) == 3, (results, result.stdout, result.stderr)
        # The denial reached the model in the very next request aider sent after turn 2.
        assert outputs(server.requests[2])[-1] == results[1] and "shelljail: denied" in results[1]
        check_incident(incident, results, free_before, GEMINI_COMMANDS)
    finally:
        server.close()


def test_aider_runs_its_models_commands_headless_with_its_input_at_its_end(incident: Incident) -> None:
    """`aider --message TASK` with standard input at its end and no --yes-always: no person, and the
    commands its model proposes run, through the interposer."""
    installed(AIDER, "aider (aider-chat)", PYPI_CHECK)
    server = ModelServer([say("Two steps.\n\n```bash\n" + "\n".join(GEMINI_COMMANDS[:2]) + "\n```\n")])
    try:
        result = run_aider(incident, server, "--message", TASK, stdin=None)
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(server.requests) == 1, (result.stdout, result.stderr)
        assert "shelljail: denied: deletes" in result.stdout, result.stdout
        decisions = [next(d for d in incident.decisions() if c in d[0]) for c in GEMINI_COMMANDS[:2]]
        assert [d[1:] for d in decisions] == [("allow", decisions[0][2]), ("deny", "delete-home")], decisions
        assert (incident.workspace / "notes.txt").read_text() == "written\n"
        assert incident.home_canary.read_text() == "in the home directory\n"
    finally:
        server.close()
