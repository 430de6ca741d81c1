"""bench/agents.py's rules, without the agents: a run that did not do the task is an error, never a figure;
the workspace it reads is the jail's (a planted symlink or FIFO is not the notes); a missing agent stops it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))


def load(name: str) -> object:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


agents = load("agents")
report = load("report")
DONE = ["README.md\n", "", "hi\n"]


def finished(code: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["agent"], code, "agent's output", "agent's errors")


def test_a_run_that_did_the_task_passes(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi\n")
    agents.check("pi", "on", finished(), tmp_path, DONE, 3)
    agents.check("aider", "off", finished(), tmp_path, [DONE[0], DONE[2]], 2)  # aider: no result for printf


@pytest.mark.parametrize(("notes", "code", "results", "problem"), [
    (None, 0, DONE, "notes.txt does not hold hi"),
    ("ho\n", 0, DONE, "notes.txt does not hold hi"),
    ("hi\n", 1, DONE, "exited 1"),
    ("hi\n", 0, DONE[:2], "got 2 command results, not 3"),
    ("hi\n", 0, ["", "", "hi\n"], "did not get ls's output"),
    ("hi\n", 0, ["README.md\n", "", "denied\n"], "did not get cat's output"),
])
def test_a_run_that_did_not_do_the_task_is_an_error(tmp_path: Path, notes: str | None, code: int,
                                                    results: list[str], problem: str) -> None:
    if notes is not None:
        (tmp_path / "notes.txt").write_text(notes)
    with pytest.raises(agents.BenchError, match=problem) as raised:
        agents.check("codex", "on", finished(code), tmp_path, results, 3)
    assert str(raised.value).startswith("codex with --interposer on: ") and "agent's errors" in str(raised.value)


def test_notes_planted_as_a_symlink_or_a_fifo_are_not_the_notes(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("hi\n")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "notes.txt").symlink_to(outside)
    assert agents.notes(workspace) is None
    (workspace / "notes.txt").unlink()
    os.mkfifo(workspace / "notes.txt")  # opened without blocking, refused as not a regular file
    assert agents.notes(workspace) is None


def test_a_missing_agent_stops_the_bench_naming_it_and_make_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    build, _ = agents.AGENT_RUNS["opencode"]
    monkeypatch.setitem(agents.AGENT_RUNS, "opencode", (build, agents.ROOT / ".agents" / "not-installed" / "opencode"))
    monkeypatch.setattr(sys, "argv", ["agents.py", "--agents", "opencode", "-o", str(tmp_path / "agents.json")])
    assert agents.main() == 1
    error = capsys.readouterr().err
    assert "an agent is not installed: opencode (.agents/not-installed/opencode)" in error and "make setup" in error
    assert not (tmp_path / "agents.json").exists()


def test_the_report_shows_each_ratio_beside_the_goal() -> None:
    figures = {"on": {"median": 2.1, "min": 2.0, "max": 2.5}, "off": {"median": 1.5, "min": 1.4, "max": 1.6},
               "ratio": 1.4, "within goal": False, "shells judged": 11, "ms added per shell": 54.5}
    cost = {"session with no shell": 20.0, "its first shell": 100.0, "each further shell": 1.0}
    lines = report.agents_table({"goal": 1.05, "agents": {"codex": figures}, "task": "ls",
                                 "ms --interposer on adds": cost})
    # From the shells' cost alone: (1.5 s + 20 + 100 + 10 x 1 ms) / 1.5 s.
    assert "| codex | 2.1 (2.0-2.5) | 1.5 (1.4-1.6) | 1.4 | **over** (<= 1.05) | 11 | 54.5 | 1.087 |" in lines
    assert "| task | ls |" in lines
