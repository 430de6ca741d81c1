"""`shelljail check`: the same decision `run` makes, for a person or as JSON."""

import json
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interposer.judge import Policy, decide
from jail.policy import environment, profile

SHELLJAIL = [sys.executable, "-m", "jail.cli"]


def check(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SHELLJAIL, "check", *args], capture_output=True, text=True, input=stdin, cwd=cwd,
                          timeout=60)


def test_check_json_has_the_contract_fields(tmp_path: Path) -> None:
    result = check("--json", "-C", str(tmp_path), "rm -rf ~")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["decision"] == "deny" and payload["rule"] == "delete-home"
    assert payload["reason"] and payload["rewritten"] is None and payload["opaque"] is False
    assert payload["commands"][0]["argv"][:2] == ["rm", "-rf"]


def test_check_file_judges_one_line_each_in_order(tmp_path: Path) -> None:
    lines = ["ls -la", "rm -rf /", "eval $X", "cargo test"]
    result = check("--json", "-C", str(tmp_path), "-f", "-", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["command"] for d in decisions] == lines
    assert [d["decision"] for d in decisions] == ["allow", "deny", "ask", "allow"]
    assert decisions[2]["opaque"] is True


def test_check_explains_for_a_person(tmp_path: Path) -> None:
    result = check("-C", str(tmp_path), "bash -c 'rm -rf ~'")
    assert result.stdout.startswith("DENY: ")
    assert "via bash -c" in result.stdout and "rule delete-home" in result.stdout and "instead:" in result.stdout


def test_check_needs_a_command(tmp_path: Path) -> None:
    result = check()
    assert result.returncode == 2 and "needs a COMMAND" in result.stderr


def test_check_uses_the_directory_as_workspace(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    inside = json.loads(check("--json", "-C", str(tmp_path / "src"), "-w", str(tmp_path), "rm -rf ../src").stdout)
    assert inside["decision"] == "allow"
    root = json.loads(check("--json", "-C", str(tmp_path / "src"), "-w", str(tmp_path), "rm -rf ..").stdout)
    assert root["rule"] == "delete-workspace-root"


# -- property tests: the analyser never crashes, and never allows what it cannot read --

_POLICY = None


def policy() -> Policy:
    global _POLICY
    if _POLICY is None:
        loaded = profile.load("coding-agent")
        env = environment.build(loaded.environment, {}, {"workspace": "/w/p", "home": "/home/u", "user": "u"})
        _POLICY = Policy(loaded.interposer, "/w/p", "/home/u", env)
    return _POLICY


SHELLISH = st.text(alphabet=st.sampled_from(list("abrmf -/~$'\"\\(){}[]|&;<>*`!#=.\n\t0123456789xce")),
                   max_size=60)
SEEDS = ["rm -rf ~", "bash -c 'rm -rf /'", "find . -exec rm {} +", "echo $(ls) | sh", "a && b || c",
         "for f in *; do rm \"$f\"; done", "cat <<EOF\nx\nEOF", "$'\\x72\\x6d' -rf ~", "x=1; eval $x"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SHELLISH)
def test_random_strings_never_crash_and_unreadable_is_never_allowed(line: str) -> None:
    decision = decide(line, "/w/p", policy())
    assert decision.decision in ("allow", "rewrite", "ask", "deny")
    if decision.parsers and "none" in decision.parsers:
        assert decision.decision != "allow", line


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.integers(min_value=0, max_value=40), st.text(max_size=3))
def test_mutated_commands_never_crash(seed: str, position: int, insert: str) -> None:
    line = seed[:position] + insert + seed[position:]
    decision = decide(line, "/w/p", policy())
    assert decision.decision in ("allow", "rewrite", "ask", "deny")
    if decision.parsers and "none" in decision.parsers:
        assert decision.decision != "allow", line


def test_the_command_line_builds_only_the_command_it_runs_but_knows_them_all() -> None:
    from jail.cli import _parser

    only = _parser("check")
    assert only.parse_args(["check", "ls"]).command == "ls"
    every = subprocess.run([*SHELLJAIL, "nosuch"], capture_output=True, text=True, timeout=60)
    assert every.returncode == 2 and "invalid choice: 'nosuch'" in every.stderr
    assert all(name in every.stderr for name in ("'run'", "'dashboard'", "'trash'", "'profile'"))
    nested = subprocess.run([*SHELLJAIL, "trash", "restore", "--help"], capture_output=True, text=True, timeout=60)
    assert nested.returncode == 0 and "shelljail trash restore" in nested.stdout
