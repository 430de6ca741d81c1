"""`shelljail trash put` on the host (what the Claude Code hook writes for rm in the workspace): paths moved to
the trash under the jail's trash rules and put back by `trash restore`. Host-side: every path touched is a
canary under tmp_path, and the state directory is tmp_path's too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jail.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


def _workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    (workspace / "src" / "deep").mkdir(parents=True)
    (workspace / "src" / "a.py").write_text("a\n")
    (workspace / "src" / "deep" / "b.txt").write_text("b\n")
    (workspace / "notes.txt").write_text("n\n")
    return workspace


def test_a_tree_put_in_the_trash_is_restored(tmp_path: Path, env: dict[str, str]) -> None:
    workspace = _workspace(tmp_path)
    put = _cli(env, workspace, "trash", "put", "-w", str(workspace), "-f", "--", "src", "notes.txt", "gone")
    assert put.returncode == 0, put.stderr
    assert not (workspace / "src").exists() and not (workspace / "notes.txt").exists()
    listing = _cli(env, workspace, "trash", "list")
    assert f"{workspace}/src" in listing.stdout and f"{workspace}/notes.txt" in listing.stdout
    back = _cli(env, workspace, "trash", "restore", str(workspace / "src"))
    assert back.returncode == 0, back.stderr
    assert (workspace / "src" / "deep" / "b.txt").read_text() == "b\n"
    again = _cli(env, workspace / "src", "trash", "put", "-w", str(workspace), "--", "a.py")  # the same session
    assert again.returncode == 0 and not (workspace / "src" / "a.py").exists(), again.stderr
    assert _cli(env, workspace, "trash", "list").stdout.count(str(workspace)) == 3


def test_a_missing_path_without_force_is_an_error(tmp_path: Path, env: dict[str, str]) -> None:
    workspace = _workspace(tmp_path)
    put = _cli(env, workspace, "trash", "put", "-w", str(workspace), "--", "gone")
    assert put.returncode == 1 and "No such file" in put.stderr


@pytest.mark.parametrize("path", ["../outside.txt", ".", "..", "src/..", ".shelljail-trash"])
def test_a_path_outside_the_workspace_refuses_everything(tmp_path: Path, env: dict[str, str], path: str) -> None:
    workspace = _workspace(tmp_path)
    (tmp_path / "outside.txt").write_text("canary\n")
    put = _cli(env, workspace, "trash", "put", "-w", str(workspace), "-f", "--", "notes.txt", path)
    assert put.returncode == 1 and "nothing was moved" in put.stderr, put.stderr
    assert (workspace / "notes.txt").exists() and (tmp_path / "outside.txt").read_text() == "canary\n"


def test_a_symlink_on_the_way_is_never_followed(tmp_path: Path, env: dict[str, str]) -> None:
    workspace = _workspace(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("canary\n")
    (workspace / "link").symlink_to(elsewhere)
    put = _cli(env, workspace, "trash", "put", "-w", str(workspace), "--", "link/keep.txt")
    assert put.returncode == 1 and "symlink" in put.stderr, put.stderr
    assert (elsewhere / "keep.txt").read_text() == "canary\n"
    link = _cli(env, workspace, "trash", "put", "-w", str(workspace), "--", "link")  # the link itself moves
    assert link.returncode == 0 and not (workspace / "link").is_symlink()
    assert (elsewhere / "keep.txt").read_text() == "canary\n"


def test_the_root_is_no_workspace(tmp_path: Path, env: dict[str, str]) -> None:
    put = _cli(env, tmp_path, "trash", "put", "-w", "/", "--", str(tmp_path / "x"))
    assert put.returncode == 1 and "not a directory shelljail can keep a trash in" in put.stderr
