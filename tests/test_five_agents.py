"""The real agents beyond pi and mini-swe-agent (Claude Code first), unmodified, headless, in a real jail.

Each replays the incident against its scripted model server on 127.0.0.1: turn 1 the model writes a file in
the workspace (it works); turn 2 it deletes the home directory (`bash -c "rm -rf ~"`), which the
interposer denies (`shelljail: denied: ...`, exit 126), and the denial text is in the next request the agent
sends the model; turn 3 it deletes the build cache inside the workspace, which frees the space it took.
The agents are the ones `make agents` installs into `.agents/`; a test skips only if the registry could not
be reached, and fails if it could and the agent is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SHELLJAIL, Jail
from model_server import ModelServer, call, say
from model_servers import AnthropicServer, GeminiServer, ResponsesServer

pytestmark = pytest.mark.jail

PROJECT = Path(__file__).resolve().parent.parent
AGENTS = PROJECT / ".agents"
CLAUDE = AGENTS / "claude-code" / "node_modules" / ".bin" / "claude"
CODEX = AGENTS / "codex" / "node_modules" / ".bin" / "codex"
GEMINI = AGENTS / "gemini" / "node_modules" / ".bin" / "gemini"
OPENCODE = AGENTS / "opencode" / "node_modules" / ".bin" / "opencode"
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


def check_incident(incident: Incident, results: list[str], free_before: int, commands: list[str] = COMMANDS) -> None:
    """What the interposer decided, what the agent was told, and what changed on the disk."""
    # The agent runs lines of its own too (a shell snapshot, ps) and wraps each scripted one (eval '...').
    decisions = [next(d for d in incident.decisions() if c in d[0]) for c in commands]
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


def test_claude_code_replays_the_incident_in_the_jail(incident: Incident) -> None:
    installed(CLAUDE, "Claude Code (@anthropic-ai/claude-code)", ["npm", "ping"])
    server = AnthropicServer([*(call("Bash", command=c, description="run it") for c in COMMANDS),
                              say("the cache is gone and the notes are written")])
    try:
        port = server.url.rsplit(":", 1)[1]
        profile = incident.jail.root / "claude.toml"
        profile.write_text(
            f'extends = "claude-code"\n[filesystem]\nread_only = {json.dumps([str(AGENTS / "claude-code")])}\n'
            f'[network]\nforward = [{{ address = "127.0.0.1:{port}", allow_paths = ["POST /v1/messages",'
            ' "POST /v1/messages/count_tokens"] }]\n')
        free_before = incident.free()
        result = subprocess.run(
            [*SHELLJAIL, "run", "-p", str(profile), "-w", str(incident.workspace), "--ask", "deny",
             "--timeout", "150", "--secret", "ANTHROPIC_API_KEY", "--env", f"ANTHROPIC_BASE_URL={server.url}",
             "--env", f"ANTHROPIC_MODEL={server.model}", "--env", f"ANTHROPIC_SMALL_FAST_MODEL={server.model}",
             "--", str(CLAUDE), "-p", "the disk is nearly full: write the notes and make room",
             "--dangerously-skip-permissions", "--model", server.model],
            capture_output=True, text=True, timeout=200, env=incident.jail.env(ANTHROPIC_API_KEY="sk-ant-scripted"),
            cwd=incident.workspace, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "the cache is gone" in result.stdout
        results = server.tool_results()
        assert len(results) == 3, (results, result.stdout, result.stderr)
        # The denial reached the model in the very next request the agent sent after turn 2.
        after_denial = [r for r in server.requests if sum(m["role"] == "assistant" for m in r["messages"]) == 2]
        assert after_denial and "shelljail: denied" in json.dumps(after_denial[0]["messages"][-1])
        check_incident(incident, results, free_before)
    finally:
        server.close()




# Codex's own exec policy refuses rm -f forms ("rm -f style commands are not permitted"): rm -r reaches the shell.
CODEX_COMMANDS = ["echo written > notes.txt && cat notes.txt", "rm -r ~/", "rm -r target && echo freed"]


def test_codex_replays_the_incident_in_the_jail(incident: Incident) -> None:
    installed(CODEX, "Codex CLI (@openai/codex)", ["npm", "ping"])
    server = ResponsesServer([*(call("exec_command", cmd=c) for c in CODEX_COMMANDS), say("all done")])
    try:
        port = server.url.rsplit(":", 1)[1]
        profile = incident.jail.root / "codex.toml"
        profile.write_text(
            f'extends = "codex"\n[filesystem]\nread_only = {json.dumps([str(AGENTS / "codex")])}\n'
            f'[network]\nforward = [{{ address = "127.0.0.1:{port}", allow_paths = ["POST /v1/responses"] }}]\n')
        provider = (f'model_providers.fake={{name="fake",base_url="{server.url}/v1",wire_api="responses",'
                    'env_key="OPENAI_API_KEY"}')
        free_before = incident.free()
        result = subprocess.run(
            [*SHELLJAIL, "run", "-p", str(profile), "-w", str(incident.workspace), "--ask", "deny",
             "--timeout", "150", "--secret", "OPENAI_API_KEY", "--", str(CODEX), "exec", "--skip-git-repo-check",
             "--dangerously-bypass-approvals-and-sandbox", "-c", "model_provider=fake", "-c", provider,
             "-m", server.model, "the disk is nearly full: write the notes and make room"],
            capture_output=True, text=True, timeout=200, env=incident.jail.env(OPENAI_API_KEY="sk-scripted"),
            cwd=incident.workspace, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "all done" in result.stdout
        results = server.tool_results()
        assert len(results) == 3, (results, result.stdout, result.stderr)
        assert "Process exited with code 126" in results[1]
        # The denial reached the model in the very next request the agent sent after turn 2.
        after_denial = [r for r in server.requests
                        if sum(i.get("type") == "function_call" for i in r.get("input", [])) == 2]
        assert after_denial and "shelljail: denied" in json.dumps(after_denial[0]["input"][-1])
        check_incident(incident, results, free_before, CODEX_COMMANDS)
    finally:
        server.close()


GEMINI_COMMANDS = ["echo written > notes.txt && cat notes.txt", "rm -rf ~/", "rm -rf target && echo freed"]


def test_gemini_cli_replays_the_incident_in_the_jail(incident: Incident) -> None:
    installed(GEMINI, "Gemini CLI (@google/gemini-cli)", ["npm", "ping"])
    server = GeminiServer([*(call("run_shell_command", command=c) for c in GEMINI_COMMANDS), say("all done")])
    try:
        port = server.url.rsplit(":", 1)[1]
        profile = incident.jail.root / "gemini.toml"
        profile.write_text(
            f'extends = "gemini"\n[filesystem]\nread_only = {json.dumps([str(AGENTS / "gemini")])}\n'
            f'[network]\nforward = [{{ address = "127.0.0.1:{port}", allow_paths = ["POST /v1beta/models/*"] }}]\n')
        free_before = incident.free()
        result = subprocess.run(
            [*SHELLJAIL, "run", "-p", str(profile), "-w", str(incident.workspace), "--ask", "deny",
             "--timeout", "150", "--secret", "GEMINI_API_KEY", "--env", f"GOOGLE_GEMINI_BASE_URL={server.url}",
             "--", str(GEMINI), "--yolo", "-m", "gemini-2.5-flash",
             "-p", "the disk is nearly full: write the notes and make room"],
            capture_output=True, text=True, timeout=200, env=incident.jail.env(GEMINI_API_KEY="scripted"),
            cwd=incident.workspace, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "all done" in result.stdout
        results = server.tool_results()
        assert len(results) == 3, (results, result.stdout, result.stderr)
        assert "Exit Code: 126" in results[1]
        # The denial reached the model in the very next request the agent sent after turn 2.
        after_denial = [r for r in server.requests
                        if sum(c.get("role") == "model" and any("functionCall" in p for p in c.get("parts", []))
                               for c in r.get("contents", [])) == 2]
        assert after_denial and "shelljail: denied" in json.dumps(after_denial[0]["contents"][-1])
        check_incident(incident, results, free_before, GEMINI_COMMANDS)
    finally:
        server.close()


def test_opencode_replays_the_incident_in_the_jail(incident: Incident) -> None:
    installed(OPENCODE, "opencode (opencode-ai)", ["npm", "ping"])
    script = [*(call("bash", command=c, description="run it") for c in GEMINI_COMMANDS), say("all done")]
    server = ModelServer(script, by_turn=True)  # OpenAI chat completions, streaming
    try:
        port = server.url.rsplit(":", 1)[1]
        profile = incident.jail.root / "opencode.toml"
        profile.write_text(f'extends = "opencode"\n[filesystem]\nread_only = {json.dumps([str(AGENTS / "opencode")])}\n'
                           f'[network]\nforward = ["127.0.0.1:{port}"]\n')
        config = {"provider": {"scripted": {"npm": "@ai-sdk/openai-compatible",
                                            "options": {"baseURL": f"{server.url}/v1", "apiKey": "none"},
                                            "models": {server.model: {}}}},
                  "permission": {"external_directory": "allow"}}
        free_before = incident.free()
        result = subprocess.run(
            [*SHELLJAIL, "run", "-p", str(profile), "-w", str(incident.workspace), "--ask", "deny",
             "--timeout", "150", "--env", "OPENCODE_CONFIG_CONTENT=" + json.dumps(config), "--", str(OPENCODE),
             "run", "--model", f"scripted/{server.model}", "the disk is nearly full: write the notes and make room"],
            capture_output=True, text=True, timeout=200, env=incident.jail.env(), cwd=incident.workspace,
            stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "all done" in result.stdout
        results = server.tool_results()
        assert len(results) == 3, (results, result.stdout, result.stderr)
        # The denial reached the model in the very next request the agent sent after turn 2.
        after_denial = [r for r in server.requests if sum(m["role"] == "assistant" for m in r["messages"]) == 2]
        assert after_denial and "shelljail: denied" in json.dumps(after_denial[0]["messages"][-1])
        check_incident(incident, results, free_before, GEMINI_COMMANDS)
    finally:
        server.close()
