"""Git safety rewrites, for real: snapshots before discarding work, rollback, force-with-lease."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import Jail, guarded

IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.org"}
JAIL_IDENTITY = tuple(option for key, value in IDENTITY.items() for option in ("--env", f"{key}={value}"))


def git(repo: Path, *args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo), **IDENTITY}
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True, env=env).stdout


def _repository(jail: Jail) -> Path:
    repo = jail.workspace
    git(repo, "init", "-q", "-b", "main")
    for i in (1, 2, 3):
        (repo / f"f{i}").write_text(f"v{i}\n")
        git(repo, "add", f"f{i}")
        git(repo, "commit", "-qm", f"c{i}")
    (repo / "f1").write_text("uncommitted work\n")
    (repo / "notes.txt").write_text("untracked work\n")
    return repo


def _shell(jail: Jail, script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return jail.cli("run", "-w", str(jail.workspace), "--ask", "deny", *JAIL_IDENTITY, "--",
                    "/bin/sh", "-c", guarded(script), env=env)


def test_reset_hard_is_undone_by_rollback(jail: Jail) -> None:
    repo = _repository(jail)
    result = _shell(jail, "git reset -q --hard HEAD~2 && git log --oneline | wc -l && cat f1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "v1"]  # the reset ran: two commits and the work gone
    events = [json.loads(line) for line in jail.cli("log", "--json").stdout.splitlines()]
    [decision] = [e for e in events if e["event"] == "decision"]
    assert decision["decision"] == "rewrite" and "shelljail rollback" in decision["undo"]
    listing = jail.cli("snapshots", "-w", str(repo))
    assert listing.stdout.startswith("1\t") and "before: git reset -q --hard HEAD~2" in listing.stdout

    back = jail.cli("rollback", "1", "-w", str(repo))
    assert back.returncode == 0, back.stderr
    assert "snapshot 2" in back.stdout  # the state it replaced is kept too
    assert git(repo, "log", "--format=%s").split() == ["c3", "c2", "c1"]
    assert (repo / "f1").read_text() == "uncommitted work\n"
    assert (repo / "notes.txt").read_text() == "untracked work\n"
    assert git(repo, "status", "--porcelain").splitlines() == [" M f1", "?? notes.txt"]  # staging as it was


def test_a_dropped_stash_comes_back(jail: Jail) -> None:
    repo = _repository(jail)
    git(repo, "stash", "-q")
    result = _shell(jail, "git stash drop -q && git stash list | wc -l")
    assert result.stdout.split() == ["0"], result.stderr
    assert jail.cli("rollback", "1", "-w", str(repo)).returncode == 0
    assert git(repo, "stash", "list").count("\n") == 1
    git(repo, "stash", "pop", "-q")
    assert (repo / "f1").read_text() == "uncommitted work\n"


def test_no_snapshot_no_command(jail: Jail) -> None:
    """Outside a repository the snapshot fails, and the command it guards does not run."""
    (jail.workspace / "keep").write_text("x\n")
    result = _shell(jail, "git clean -fq; echo status=$?")
    assert result.stdout.strip() != "status=0" and "not a git repository" in result.stderr
    missing = jail.cli("rollback", "9", "-w", str(jail.workspace))
    assert missing.returncode != 0


def test_the_python_launcher_runs_the_rewritten_line(jail: Jail) -> None:
    repo = _repository(jail)
    result = _shell(jail, "git checkout -- . && cat f1", env=jail.env(SHELLJAIL_PYTHON_LAUNCHER="1"))
    assert result.stdout.strip() == "v1", result.stderr
    assert "before: git checkout -- ." in git(repo, "log", "--format=%s", "refs/shelljail/snapshots/1", "-1")


def test_force_push_with_lease_refuses_to_overwrite_unseen_work(jail: Jail, tmp_path: Path) -> None:
    repo = _repository(jail)
    git(repo, "commit", "-qam", "c4")
    remote = jail.workspace / "remote.git"
    git(jail.workspace, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "-b", "main", str(remote), str(other))
    (other / "theirs").write_text("someone else's work\n")
    git(other, "add", "theirs")
    git(other, "commit", "-qm", "theirs")
    git(other, "push", "-q", "origin", "main")  # the jail's clone has not seen this one
    git(repo, "commit", "-q", "--amend", "-m", "c4 amended")
    result = _shell(jail, "git push -q --force origin main; echo status=$?")
    assert result.stdout.strip() == "status=1", result.stderr
    assert "stale info" in result.stderr or "rejected" in result.stderr
    assert git(remote, "log", "--format=%s", "-1", "main").strip() == "theirs"  # nothing overwritten


def test_a_path_scoped_checkout_is_snapshotted_and_a_dry_run_clean_deletes_nothing(jail: Jail) -> None:
    repo = _repository(jail)
    result = _shell(jail, "git clean -xdn && git checkout -- f1 && cat f1")
    assert result.returncode == 0, result.stderr
    assert "Would remove notes.txt" in result.stdout and result.stdout.split()[-1] == "v1"
    assert (repo / "notes.txt").read_text() == "untracked work\n"  # the dry run deleted nothing
    listing = jail.cli("snapshots", "-w", str(repo))
    assert listing.stdout.count("\n") == 1 and "before: git checkout -- f1" in listing.stdout, listing.stdout
    back = jail.cli("rollback", "1", "-w", str(repo))
    assert back.returncode == 0, back.stderr
    assert (repo / "f1").read_text() == "uncommitted work\n"
