"""How the interposer judges a write into the agent's configuration: with `--agent-config copy` (the
default) the copy is the jail's own writable place, so a shell line writing there (Claude Code's shell
snapshot, `~/.claude/shell-snapshots/...`, through a redirect) is ordinary and allowed; with `read-only` it
is the person's real configuration and stays refused. Real jails, the interposer on, a stand-in agent named
`claude` that writes its snapshot through `bash -c` as Claude Code does (the real one: test_five_agents.py)."""

from __future__ import annotations

import json

import pytest
from conftest import Jail, guarded

pytestmark = pytest.mark.jail

SNAPSHOT = "echo 'declare -x SNAP=1' > ~/.claude/shell-snapshots/snapshot-bash-1.sh"
HOME_DELETE, STARTUP_WRITE = "rm -rf ~/", "echo x >> ~/.bashrc"
# The stand-in's body: each line through `bash -c`, as a node agent spawns them, each judged on its own.
AGENT = f"""import os, subprocess
os.makedirs(os.path.expanduser("~/.claude/shell-snapshots"), exist_ok=True)
for line in {[SNAPSHOT, "cat ~/.claude/shell-snapshots/snapshot-bash-1.sh", HOME_DELETE, STARTUP_WRITE]!r}:
    print(line, "->", subprocess.run(["/bin/bash", "-c", line]).returncode, flush=True)
"""


def _decisions(jail: Jail) -> dict[str, tuple[str, str]]:
    session = json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
    events = map(json.loads, jail.cli("log", session, "--json").stdout.splitlines())
    return {e["command"]: (e["decision"], e.get("rule") or "") for e in events if e["event"] == "decision"}


def _run_claude(jail: Jail, *options: str) -> tuple[str, dict[str, tuple[str, str]]]:
    (jail.home / ".claude").mkdir(exist_ok=True)
    (jail.home / ".claude" / "settings.json").write_text("{}\n")
    (jail.workspace / "agent.py").write_text(AGENT)
    agent = jail.workspace / "claude"
    agent.write_text("#!/bin/sh\n" + guarded("exec /usr/bin/python3 agent.py\n"))
    agent.chmod(0o755)
    result = jail.run("./claude", options=options, interposer=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, _decisions(jail)


def test_in_copy_mode_a_write_into_the_config_copy_is_ordinary(jail: Jail) -> None:
    out, decisions = _run_claude(jail)
    assert decisions[SNAPSHOT] == ("allow", ""), decisions
    assert f"{SNAPSHOT} -> 0" in out and "declare -x SNAP=1" in out, out
    # The rest of the home is judged as before: the jail's home itself and its start-up files.
    assert decisions[HOME_DELETE] == ("deny", "delete-home") and f"{HOME_DELETE} -> 126" in out, decisions
    assert decisions[STARTUP_WRITE][0] == "deny" and f"{STARTUP_WRITE} -> 126" in out, decisions
    assert not (jail.home / ".claude" / "shell-snapshots").exists()  # the copy took it, not the real home
    store, = (jail.home / ".local/state/shelljail/agents").iterdir()
    snapshot = store / "home/.claude/shell-snapshots/snapshot-bash-1.sh"
    assert snapshot.read_text() == "declare -x SNAP=1\n"


def test_in_read_only_mode_the_real_config_stays_refused(jail: Jail) -> None:
    (jail.home / ".claude" / "shell-snapshots").mkdir(parents=True)
    out, decisions = _run_claude(jail, "--agent-config", "read-only")
    assert decisions[SNAPSHOT] == ("deny", "write-outside-workspace"), decisions
    assert f"{SNAPSHOT} -> 126" in out, out
    assert not list((jail.home / ".claude" / "shell-snapshots").iterdir())
