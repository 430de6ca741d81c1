"""The red-team harness: risky corpus cases run as an agent would, in the jail, against canary files.

Each case runs through `bash -c` in `shelljail run` with the default profile
and `--ask deny`, behind the namespace guard (it refuses to run unless its
user, mount and pid namespaces differ from the host's), on a fresh copy of a
workspace (a git repository of canary files) with a caller's home full of
canaries and a directory of canaries outside the view. Afterwards it records
what the interposer decided, whether a workspace canary was lost beyond
recovery (not in place, not in the trash, not in git: HEAD or a snapshot),
whether anything outside the workspace changed, and whether a process of
the case outlived its jail. Used by bench/redteam.py (`make redteam`) and,
on a small slice, by tests/test_redteam.py.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

from conftest import guarded

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "tests" / "data" / "corpora"
SHELLJAIL = [sys.executable, "-m", "jail.cli"]
WORKSPACE_FILES = {"src/main.py": "print('canary')\n", "README.md": "# canary project\n",
                   "data/records.csv": "id,value\n1,canary\n", ".env": "TOKEN=canary\n"}
HOME_FILES = {".ssh/id_ed25519": "canary private key\n", ".bashrc": "# canary rc\n", "notes.txt": "canary\n",
              ".aws/credentials": "[default]\nkey=canary\n"}
OUTSIDE_FILES = {"secret.txt": "canary outside\n", "db/prod.sqlite": "canary database\n"}


class Case(NamedTuple):
    source: str  # dcg, gtfobins, redcode
    category: str
    command: str


class Outcome(NamedTuple):
    case: Case
    decision: str  # the line's decision: allow, deny, ask (denied: --ask deny), rewrite; "none" if no shell ran
    status: int
    outside_changed: list[str]
    lost: list[str]
    escaped: list[str]
    rule: str | None = None  # the rule that decided the line


def risky_cases() -> list[Case]:
    cases = []
    for row in _tsv(CORPORA / "dcg_corpus.tsv"):
        if row["input_kind"] == "command" and row["expected"] == "deny":
            cases.append(Case("dcg", row["file"].split("/")[0], json.loads(row["command_json"])))
    for row in _tsv(CORPORA / "gtfobins" / "secbash_gtfobins_risky.tsv"):
        cases.append(Case("gtfobins", row["category"], json.loads(row["command_json"])))
    for row in _tsv(CORPORA / "redcode_exec_bash.tsv"):
        cases.append(Case("redcode", f"{row['scenario_id']} {row['scenario_label']}", json.loads(row["code_json"])))
    return cases


def benign_cases() -> list[Case]:
    lines = (CORPORA / "secbash_harmless.txt").read_text().splitlines()
    return [Case("benign", "secbash", line) for line in lines if line.strip()]


def _tsv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


class Arena:
    """The template of a case's world, built once; each case gets a fresh copy."""

    def __init__(self, base: Path) -> None:
        self.base = base
        template = base / "template"
        for name, text in WORKSPACE_FILES.items():
            _write(template / "workspace" / name, text)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(base), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "canaries"]):
            subprocess.run(["git", *args], cwd=template / "workspace", check=True, env=env, capture_output=True)
        for name, text in HOME_FILES.items():
            _write(template / "home" / name, text)
        for name, text in OUTSIDE_FILES.items():
            _write(template / "outside" / name, text)
        self.template = template
        self.counter = 0

    def run(self, case: Case, timeout: float = 30) -> Outcome:
        self.counter += 1
        world = self.base / f"case{self.counter}"
        shutil.copytree(self.template, world, symlinks=True)
        state = world / "state"
        before = _hashes(world / "home") | _hashes(world / "outside")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(world / "home"), "LANG": "C.UTF-8",
               "XDG_STATE_HOME": str(state), "XDG_CACHE_HOME": str(self.base / "cache"),  # shelljail's own
               "PYTHONPATH": str(ROOT), "SHELLJAIL_CASE": world.name}
        try:
            done = subprocess.run([*SHELLJAIL, "run", "-w", str(world / "workspace"), "--ask", "deny",
                                   "--timeout", str(timeout), "--", "/bin/bash", "-c", guarded(case.command)],
                                  env=env, capture_output=True, timeout=timeout + 30, stdin=subprocess.DEVNULL)
            status = done.returncode
        except subprocess.TimeoutExpired:
            status = -1
        after = _hashes(world / "home") | _hashes(world / "outside")
        outside = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
        decision, rule = _decision(state)
        outcome = Outcome(case, decision, status, outside, _lost(world, state), _escaped(world), rule)
        _remove(world)
        return outcome


def _decision(state: Path) -> tuple[str, str | None]:
    """The first line's decision and the rule that made it."""
    logs = list((state / "shelljail" / "sessions").glob("*/audit.jsonl"))
    if not logs:
        return "none", None
    decisions = [json.loads(line) for line in logs[0].read_text().splitlines() if '"decision"' in line]
    first = next((d for d in decisions if d.get("event") == "decision"), None)
    return (first["decision"], first.get("rule")) if first else ("none", None)


def _lost(world: Path, state: Path) -> list[str]:
    """Workspace canaries that are gone or changed and cannot be had back from the trash or git."""
    workspace = world / "workspace"
    lost = []
    for name, text in WORKSPACE_FILES.items():
        path = workspace / name
        try:
            if path.is_file() and not path.is_symlink() and path.read_text() == text:
                continue
        except (OSError, UnicodeDecodeError):
            pass
        in_trash = any(p.read_text(errors="replace") == text for p in (state / "shelljail" / "trash").glob(
            f"*/*/files/{name}") if p.is_file())
        if not in_trash and not _in_git(workspace, name, text):
            lost.append(name)
    return lost


def _in_git(workspace: Path, name: str, text: str) -> bool:
    if not (workspace / ".git").is_dir():
        return False
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)"], cwd=workspace, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}).stdout.split()
    for ref in ["HEAD", *refs]:
        shown = subprocess.run(["git", "show", f"{ref}:{name}"], cwd=workspace, capture_output=True, text=True,
                               env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
        if shown.returncode == 0 and shown.stdout == text:
            return True
    return False


def _escaped(world: Path) -> list[str]:
    """Host processes still running from the case's world (its jail is gone, so none should be)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"SHELLJAIL_CASE={world.name}\0".encode() in environ and int(pid) != os.getpid():
            found.append(pid)
    return found


def _hashes(root: Path) -> dict[str, str]:
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(root.parent))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _remove(path: Path) -> None:
    subprocess.run(["chmod", "-R", "u+rwX", str(path)], check=False, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    """Counts per source and category: stopped before running, outside changed, lost, escaped."""
    table: dict[str, dict[str, int]] = {}
    for outcome in outcomes:
        key = f"{outcome.case.source}: {outcome.case.category}"
        row = table.setdefault(key, {"cases": 0, "stopped": 0, "rewritten": 0, "outside changed": 0, "lost": 0,
                                     "escaped": 0})
        row["cases"] += 1
        row["stopped"] += outcome.decision in ("deny", "ask")
        row["rewritten"] += outcome.decision == "rewrite"
        row["outside changed"] += bool(outcome.outside_changed)
        row["lost"] += bool(outcome.lost)
        row["escaped"] += bool(outcome.escaped)
    return table
