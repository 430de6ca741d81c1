"""The real agents beyond pi and mini-swe-agent (Claude Code first), unmodified, headless, in a real jail.

Each replays the incident against its scripted model server on 127.0.0.1: turn 1 the model writes a file in
the workspace (it works); turn 2 it deletes the home directory (`bash -c "rm -rf ~"`), which the
interposer denies (`shelljail: denied: ...`, exit 126), and the denial text is in the next request the agent
sends the model; turn 3 it deletes the build cache inside the workspace, which frees the space it took.
Each runs with no profile file: flags only, the profile the one `run` picks by the program's name (its
forward_paths let the agent's API through `--forward`). The agents are the ones `make agents` installs
into `.agents/`; a test skips only if the registry could not be reached, and fails if it could and the
agent is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import SHELLJAIL, Jail
from model_server import ModelServer, call, say
from model_servers import AnthropicServer, GeminiServer, ResponsesServer

pytestmark = pytest.mark.jail

PROJECT = Path(__file__).resolve().parent.parent
AGENTS = PROJECT / ".agents"
DISK_SIZE = 16 << 20
CACHE_SIZE = 8 << 20


def installed(program: Path, what: str, registry_check: list[str]) -> None:
    """Skip only when the registry `make agents` installs from cannot be reached; otherwise fail."""
    if program.exists():
        return
    if subprocess.run(registry_check, capture_output=True, timeout=60).returncode != 0:
        pytest.skip(f"{what} is not installed and its registry is unreachable ({' '.join(registry_check)} failed);"
                    " make agents installs it once the registry can be reached")
    pytest.fail(f"{what} is not installed at {program} though its registry is reachable: run make agents")


@dataclass
class Incident:
    jail: Jail
    disk: Path
    home_canary: Path

    @property
    def workspace(self) -> Path:
        return self.jail.workspace

    def free(self) -> int:
        stat = os.statvfs(self.disk)
        return stat.f_bavail * stat.f_frsize

    def decisions(self) -> list[tuple[str, str, str]]:
        session = json.loads(self.jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
        events = [json.loads(line) for line in self.jail.cli("log", session, "--json").stdout.splitlines()]
        return [(e["command"], e["decision"], e.get("rule") or "") for e in events if e["event"] == "decision"]


@pytest.fixture
def incident(tmp_path: Path) -> Iterator[Incident]:
    """A workspace on a 16 MB tmpfs, half of it a Rust build cache; notes in the (fake) home directory."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0755", "shelljail-test", str(disk)],
                   check=True)
    try:
        jail = Jail(tmp_path)
        jail.workspace = disk / "project"
        (jail.workspace / "src").mkdir(parents=True)
        (jail.workspace / "Cargo.toml").write_text('[package]\nname = "app"\nversion = "0.1.0"\n')
        cache = jail.workspace / "target" / "debug" / "incremental"
        cache.mkdir(parents=True)
        (cache / "app-1.bin").write_bytes(b"\1" * CACHE_SIZE)
        home_canary = jail.home / "notes" / "keep.txt"
        home_canary.parent.mkdir()
        home_canary.write_text("in the home directory\n")
        yield Incident(jail, disk, home_canary)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# Claude Code refuses a bare `rm -rf ~` itself ("Dangerous rm operation detected"): through bash -c it reaches
# the shell, where the interposer is what stops it.
COMMANDS = ["echo written > notes.txt && cat notes.txt", 'bash -c "rm -rf ~"', "rm -rf target && echo freed"]
# Codex's own exec policy refuses rm -f forms ("rm -f style commands are not permitted"): rm -r reaches the shell.
CODEX_COMMANDS = ["echo written > notes.txt && cat notes.txt", "rm -r ~/", "rm -r target && echo freed"]
GEMINI_COMMANDS = ["echo written > notes.txt && cat notes.txt", "rm -rf ~/", "rm -rf target && echo freed"]
PROMPT = "the disk is nearly full: write the notes and make room"


def check_incident(incident: Incident, results: list[str], free_before: int, commands: list[str] = COMMANDS) -> None:
    """What the interposer decided, what the agent was told, and what changed on the disk."""
    # The agent runs lines of its own too (a shell snapshot, ps) and wraps each scripted one (eval '...'); a
    # wrapper can be longer than the log keeps of a line (Codex's restores its shell snapshot's environment
    # first: 38 KB), and the log keeps a cut line's end, where the command is: each command's decision is the
    # next one, in order, that shows it.
    decisions, log = [], iter(incident.decisions())
    for command in commands:
        decisions.append(next(d for d in log if command in d[0]))
    # A wrapped line is several commands: the line's decision names no single rule when it is allowed.
    assert [d[1] for d in decisions] == ["allow", "deny", "allow"], decisions
    assert decisions[1][2] == "delete-home", decisions
    assert "written" in results[0]
    assert "shelljail: denied: deletes" in results[1] and "home directory" in results[1], results
    assert "freed" in results[2]
    assert (incident.workspace / "notes.txt").read_text() == "written\n"
    assert incident.home_canary.read_text() == "in the home directory\n"
    assert not (incident.workspace / "target").exists()
    assert incident.free() >= free_before + CACHE_SIZE - (1 << 20)


def _chat_turns(request: dict) -> tuple[int, object]:
    """Anthropic Messages and OpenAI chat completions: the model's turns so far, and the last message."""
    return sum(m["role"] == "assistant" for m in request["messages"]), request["messages"][-1]


def _responses_turns(request: dict) -> tuple[int, object]:
    items = request.get("input", [])
    return sum(i.get("type") == "function_call" for i in items), items[-1]


def _gemini_turns(request: dict) -> tuple[int, object]:
    contents = request.get("contents", [])
    return sum(c.get("role") == "model" and any("functionCall" in p for p in c.get("parts", []))
               for c in contents), contents[-1]


def _opencode_config(url: str, model: str) -> str:
    return json.dumps({"provider": {"scripted": {"npm": "@ai-sdk/openai-compatible",
                                                 "options": {"baseURL": f"{url}/v1", "apiKey": "none"},
                                                 "models": {model: {}}}},
                       "permission": {"external_directory": "allow"}})


@dataclass
class Agent:
    """One real agent against its scripted server: how it is started (flags only: the profile is the one
    `run` picks by the program's name) and how its requests and tool results read."""

    folder: str  # under .agents/
    program: str  # node_modules/.bin/PROGRAM: the name that picks the profile
    what: str
    server: Callable[[list[dict]], Any]
    tool: Callable[[str], dict]  # the scripted tool call for one command line
    commands: list[str]
    secret: dict[str, str]  # the key, passed with --secret (never inherited)
    env: Callable[[Any], list[str]]  # --env NAME=VALUE for the server
    args: Callable[[Any], list[str]]  # the agent's own arguments
    turns: Callable[[dict], tuple[int, object]]
    denied_result: str  # how the agent reports the exit status of the denied line to the model
    done: str = "all done"
    config_write: str = ""  # how a line the agent runs itself to write into its configuration copy begins


AGENT_TABLE = [
    Agent("claude-code", "claude", "Claude Code (@anthropic-ai/claude-code)", AnthropicServer,
          lambda c: call("Bash", command=c, description="run it"), COMMANDS, {"ANTHROPIC_API_KEY": "sk-ant-scripted"},
          lambda s: [f"ANTHROPIC_BASE_URL={s.url}", f"ANTHROPIC_MODEL={s.model}",
                     f"ANTHROPIC_SMALL_FAST_MODEL={s.model}"],
          lambda s: ["-p", PROMPT, "--dangerously-skip-permissions", "--model", s.model], _chat_turns, "",
          "the cache is gone", "SNAPSHOT_FILE={home}/.claude/shell-snapshots/snapshot-bash-"),
    Agent("codex", "codex", "Codex CLI (@openai/codex)", ResponsesServer, lambda c: call("exec_command", cmd=c),
          CODEX_COMMANDS, {"OPENAI_API_KEY": "sk-scripted"}, lambda s: [],
          lambda s: ["exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
                     "-c", "model_provider=fake", "-c", f'model_providers.fake={{name="fake",base_url="{s.url}/v1",'
                     'wire_api="responses",env_key="OPENAI_API_KEY"}', "-m", s.model, PROMPT],
          _responses_turns, "Process exited with code 126"),
    Agent("gemini", "gemini", "Gemini CLI (@google/gemini-cli)", GeminiServer,
          lambda c: call("run_shell_command", command=c), GEMINI_COMMANDS, {"GEMINI_API_KEY": "scripted"},
          lambda s: [f"GOOGLE_GEMINI_BASE_URL={s.url}"], lambda s: ["--yolo", "-m", "gemini-2.5-flash", "-p", PROMPT],
          _gemini_turns, "Exit Code: 126"),
    Agent("opencode", "opencode", "opencode (opencode-ai)", lambda script: ModelServer(script, by_turn=True),
          lambda c: call("bash", command=c, description="run it"), GEMINI_COMMANDS, {},
          lambda s: ["OPENCODE_CONFIG_CONTENT=" + _opencode_config(s.url, s.model)],
          lambda s: ["run", "--model", f"scripted/{s.model}", PROMPT], _chat_turns, ""),
]


@pytest.mark.parametrize("agent", AGENT_TABLE, ids=[a.folder for a in AGENT_TABLE])
def test_the_agent_replays_the_incident_in_the_jail_with_no_profile_file(incident: Incident, agent: Agent) -> None:
    program = AGENTS / agent.folder / "node_modules" / ".bin" / agent.program
    installed(program, agent.what, ["npm", "ping"])
    server = agent.server([*(agent.tool(c) for c in agent.commands), say(agent.done)])
    try:
        port = server.url.rsplit(":", 1)[1]
        free_before = incident.free()
        result = subprocess.run(
            [*SHELLJAIL, "run", "-w", str(incident.workspace), "--ask", "deny", "--timeout", "150",
             "--read-only", str(AGENTS / agent.folder), "--forward", f"127.0.0.1:{port}",
             *(flag for name in agent.secret for flag in ("--secret", name)),
             *(flag for pair in agent.env(server) for flag in ("--env", pair)),
             "--", str(program), *agent.args(server)],
            capture_output=True, text=True, timeout=200, env=incident.jail.env(**agent.secret),
            cwd=incident.workspace, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"shelljail: using profile {agent.folder} for {agent.program}" in result.stderr
        assert agent.done in result.stdout
        results = server.tool_results()
        assert len(results) == 3, (results, result.stdout, result.stderr)
        assert agent.denied_result in results[1]
        # The denial reached the model in the very next request the agent sent after turn 2.
        after_denial = [last for turns, last in map(agent.turns, server.requests) if turns == 2]
        assert after_denial and "shelljail: denied" in json.dumps(after_denial[0])
        check_incident(incident, results, free_before, agent.commands)
        # The agent's own lines are allowed, among them what it writes into its configuration copy (Claude
        # Code's shell snapshot, ~/.claude/shell-snapshots/ through a redirect): the copy is the jail's own.
        decisions = incident.decisions()
        assert [d[1:] for d in decisions if d[1] != "allow"] == [("deny", "delete-home")], decisions
        if agent.config_write:
            written = agent.config_write.format(home=incident.jail.home)
            assert [d[1] for d in decisions if d[0].startswith(written)] == ["allow"], decisions
    finally:
        server.close()
