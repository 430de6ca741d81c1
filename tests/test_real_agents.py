"""Real, unmodified agents in the jail, replaying the incident against a scripted model on 127.0.0.1.

The disk is really full (a small tmpfs holds the workspace, filled by a Rust build cache); the model asks
to `rm -rf` the cache, then to delete the home directory and a path outside the workspace. pi and
mini-swe-agent are the ones `make setup` installs into `.agents/`; each test checks what the interposer
decided, that the agent got the denial text as its tool result, that the cache was freed, and that
nothing outside the workspace changed.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SHELLJAIL, Jail
from model_server import ModelServer, call, say

pytestmark = pytest.mark.jail

PROJECT = Path(__file__).resolve().parent.parent
AGENTS = PROJECT / ".agents"
PI = AGENTS / "pi" / "node_modules" / ".bin" / "pi"
MINI = AGENTS / "mini-swe-agent" / "bin" / "mini"
DISK_SIZE = 8 << 20


def _installed(program: Path, what: str, registry_check: list[str]) -> None:
    """Skip only when the registry `make setup` installs from cannot be reached; otherwise fail."""
    if program.exists():
        return
    reachable = subprocess.run(registry_check, capture_output=True, timeout=60).returncode == 0
    if not reachable:
        pytest.skip(f"{what} is not installed and its registry is unreachable ({' '.join(registry_check)} failed);"
                    " make setup installs it once the registry can be reached")
    pytest.fail(f"{what} is not installed at {program} though its registry is reachable: run make setup")


@dataclass
class Incident:
    jail: Jail
    disk: Path
    outside: Path  # outside the workspace, shown read-only in the jail
    home_canary: Path

    @property
    def workspace(self) -> Path:
        return self.jail.workspace

    def snapshot(self, top: Path) -> dict[str, bytes]:
        return {str(p.relative_to(top)): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}

    def profile(self, server: ModelServer, *read_only: Path) -> Path:
        """coding-agent, with the agent's own files readable and the scripted model forwarded."""
        port = server.url.rsplit(":", 1)[1]
        path = self.jail.root / "agent.toml"
        readable = json.dumps([str(p) for p in read_only])
        path.write_text(f'extends = "coding-agent"\n[filesystem]\nread_only = {readable}\n'
                        f'[network]\nforward = ["127.0.0.1:{port}"]\n')
        return path

    def decisions(self) -> list[tuple[str, str, str]]:
        session = json.loads(self.jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
        events = [json.loads(line) for line in self.jail.cli("log", session, "--json").stdout.splitlines()]
        return [(e["command"], e["decision"], e.get("rule") or "") for e in events if e["event"] == "decision"]


@pytest.fixture
def incident(tmp_path: Path) -> Iterator[Incident]:
    """A workspace on a full 8 MB tmpfs: a Rust project whose target/ took the last byte."""
    disk = tmp_path / "disk"
    disk.mkdir()
    # Not under /tmp, which is the jail's own scratch space: a real place, shown read-only in the jail.
    outside = Path(tempfile.mkdtemp(prefix="shelljail-test-outside-", dir="/var/lib"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0755", "shelljail-test", str(disk)],
                   check=True)
    try:
        jail = Jail(tmp_path)
        jail.workspace = disk / "project"
        (jail.workspace / "src").mkdir(parents=True)
        (jail.workspace / "Cargo.toml").write_text('[package]\nname = "app"\nversion = "0.1.0"\n')
        (jail.workspace / "src" / "main.rs").write_text('fn main() { println!("hello"); }\n')
        cache = jail.workspace / "target" / "debug" / "incremental"
        cache.mkdir(parents=True)
        try:
            with open(cache / "app-1.bin", "wb") as fill:
                while True:
                    fill.write(b"\0" * 65536)
                    fill.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
        (outside / "keep.txt").write_text("outside the workspace\n")
        home_canary = jail.home / "notes" / "keep.txt"
        home_canary.parent.mkdir()
        home_canary.write_text("in the home directory\n")
        yield Incident(jail, disk, outside, home_canary)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
        shutil.rmtree(outside, ignore_errors=True)


def _incident_commands(incident: Incident) -> list[str]:
    """What the model asks to run, in order."""
    return ["head -c 1000000 /dev/zero > build.log",  # fails: no space left on the device
            "rm -rf target",
            "head -c 1000000 /dev/zero > build.log && echo written",
            "rm -rf ~/",
            f"rm -rf {incident.outside}"]


INCIDENT_DECISIONS = [("allow", ""), ("allow", "delete-cache"), ("allow", ""), ("deny", "delete-home"),
                      ("deny", "delete-outside-workspace")]


def _check_incident(incident: Incident, before_outside: dict, before_home: str, results: list[str]) -> None:
    decisions = incident.decisions()
    assert [d[0] for d in decisions[:5]] == _incident_commands(incident)
    assert [(d[1], d[2]) for d in decisions[:5]] == INCIDENT_DECISIONS, decisions
    full, _freed, written, home, outside = results[:5]
    assert "No space left on device" in full
    assert "written" in written
    assert "shelljail: denied: deletes" in home and "home directory" in home
    assert "shelljail: denied: deletes" in outside and "outside the workspace" in outside
    assert not (incident.workspace / "target").exists()  # the cache was freed...
    assert (incident.workspace / "build.log").stat().st_size == 1000000  # ...and the space was there to use
    assert (incident.workspace / "src" / "main.rs").exists() and (incident.workspace / "Cargo.toml").exists()
    assert incident.snapshot(incident.outside) == before_outside
    assert incident.home_canary.read_text() == before_home


def test_pi_replays_the_incident_in_the_jail(incident: Incident) -> None:
    _installed(PI, "pi (@mariozechner/pi-coding-agent)", ["npm", "ping"])
    script = [call("bash", command=c) for c in _incident_commands(incident)]
    server = ModelServer([*script, say("the build cache is gone and the log is written")], by_turn=True)
    try:
        config = incident.jail.root / "pi-agent"  # pi's models.json: the scripted model's OpenAI-compatible /v1
        config.mkdir()
        (config / "models.json").write_text(json.dumps({"providers": {"scripted": {
            "baseUrl": f"{server.url}/v1", "api": "openai-completions", "apiKey": "none",
            "compat": {"supportsDeveloperRole": False}, "models": [{"id": server.model}]}}}))
        profile = incident.profile(server, AGENTS / "pi", config, incident.outside)
        before_outside, before_home = incident.snapshot(incident.outside), incident.home_canary.read_text()
        result = subprocess.run(
            [*SHELLJAIL, "run", "-p", str(profile), "-w", str(incident.workspace), "--ask", "deny", "--timeout", "120",
             "--env", f"PI_CODING_AGENT_DIR={config}", "--env", "PI_OFFLINE=1", "--env", "PI_TELEMETRY=0", "--",
             str(PI), "--no-session", "--no-context-files", "--no-extensions", "--no-skills", "--no-prompt-templates",
             "--provider", "scripted", "--model", server.model, "-p", "the disk is full: make room and write the log"],
            capture_output=True, text=True, timeout=180, env=incident.jail.env(), cwd=incident.workspace,
            stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "the build cache is gone" in result.stdout
        results = server.tool_results()
        assert len(results) == 5, results
        assert all("Command exited with code 126" in r for r in results[3:])  # pi's own words for the denial
        _check_incident(incident, before_outside, before_home, results)
    finally:
        server.close()


def test_mini_swe_agent_replays_the_incident_in_the_jail(incident: Incident) -> None:
    _installed(MINI, "mini-swe-agent", [str(PROJECT / ".venv" / "bin" / "pip"), "download", "-q", "--no-deps",
                                        "-d", str(incident.jail.root / "probe"), "mini-swe-agent"])
    done = call("bash", command="echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")  # how mini-swe-agent finishes
    server = ModelServer([*(call("bash", command=c) for c in _incident_commands(incident)), done], by_turn=True)
    try:
        profile = incident.profile(server, AGENTS / "mini-swe-agent", incident.outside)
        before_outside, before_home = incident.snapshot(incident.outside), incident.home_canary.read_text()
        settings = ["MSWEA_CONFIGURED=true", "LITELLM_LOCAL_MODEL_COST_MAP=True", "MSWEA_COST_TRACKING=ignore_errors",
                    "OPENAI_API_KEY=none"]
        result = subprocess.run(
            [*SHELLJAIL, "run", "-p", str(profile), "-w", str(incident.workspace), "--ask", "deny", "--timeout", "120",
             *(f"--env={s}" for s in settings), "--", str(MINI), "-y", "--exit-immediately", "-c", "mini.yaml",
             "-c", f"model.model_kwargs.api_base={server.url}/v1", "-m", f"openai/{server.model}",
             "-t", "the disk is full: make room and write the log"],
            capture_output=True, text=True, timeout=180, env=incident.jail.env(), cwd=incident.workspace,
            stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stdout + result.stderr
        # mini-swe-agent sends each result as JSON: the exit status and the output.
        results = [json.loads(r) for r in server.tool_results()]
        assert len(results) == 5, results
        assert [r["returncode"] for r in results] == [1, 0, 0, 126, 126]
        _check_incident(incident, before_outside, before_home, [r["output"] for r in results])
        assert incident.decisions()[5][:2] == ("echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT", "allow")
    finally:
        server.close()
