"""The trash: rm and unlink in the jail move workspace files aside, restorable; caches really go."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import Jail, guarded


def _tree(jail: Jail) -> None:
    (jail.workspace / "src" / "deep").mkdir(parents=True)
    (jail.workspace / "src" / "main.rs").write_text("fn main() {}\n")
    (jail.workspace / "src" / "deep" / "lib.rs").write_text("pub fn f() {}\n")
    os.chmod(jail.workspace / "src" / "main.rs", 0o640)
    os.utime(jail.workspace / "src" / "main.rs", (1_600_000_000, 1_600_000_000))
    (jail.workspace / "target" / "debug").mkdir(parents=True)
    (jail.workspace / "target" / "debug" / "app").write_bytes(b"\0" * 50_000)
    if jail.user is not None:
        for path in [jail.workspace, *jail.workspace.rglob("*")]:
            os.chown(path, jail.user, jail.user)


def _events(jail: Jail, kind: str, env: dict[str, str] | None = None) -> list[dict]:
    sessions = json.loads("[" + ",".join(jail.cli("sessions", "--json", env=env).stdout.split("\n")[:-1]) + "]")
    newest = sessions[0]["session"]
    log = jail.cli("log", newest, "--json", env=env).stdout.splitlines()
    return [e for e in map(json.loads, log) if e["event"] == kind]


def test_rm_moves_workspace_files_to_the_trash_and_restore_brings_them_back(any_jail: Jail) -> None:
    jail = any_jail
    _tree(jail)
    result = jail.sh("rm -rf src target; echo status=$?; ls -A", interposer=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["status=0"] and result.stderr == ""  # as rm: silent, 0
    assert not (jail.workspace / "src").exists() and not (jail.workspace / "target").exists()
    [moved] = _events(jail, "trash")  # target/ is a regenerable cache: really deleted, the space freed
    assert moved["paths"] == [str(jail.workspace / "src")] and moved["files"] == 3 and "undo" in moved

    listing = jail.cli("trash", "list")
    assert str(jail.workspace / "src") in listing.stdout and "target" not in listing.stdout
    restored = jail.cli("trash", "restore", "src/deep/lib.rs")  # a path inside a removed tree
    assert restored.returncode == 0, restored.stderr
    assert (jail.workspace / "src" / "deep" / "lib.rs").read_text() == "pub fn f() {}\n"
    assert not (jail.workspace / "src" / "main.rs").exists()
    restored = jail.cli("trash", "restore", "src")  # the rest, merged into what is back already
    assert restored.returncode == 0, restored.stderr
    main = jail.workspace / "src" / "main.rs"
    assert main.read_text() == "fn main() {}\n"
    assert main.stat().st_mode & 0o777 == 0o640 and main.stat().st_mtime == 1_600_000_000  # a rename: metadata kept
    again = jail.cli("trash", "restore", "src")
    assert again.returncode == 1 and "already restored" in again.stderr


def test_rm_and_unlink_answer_as_the_real_ones(jail: Jail) -> None:
    script = """
    mkdir d e && echo x > e/f && echo y > g && echo z > h
    rm missing; echo "1:$?"
    rm -f missing; echo "2:$?"
    rm d; echo "3:$?"
    rm -d e; echo "4:$?"
    rm -v g; echo "5:$?"
    unlink d; echo "6:$?"
    unlink h; echo "7:$?"
    rm -d d; echo "8:$?"
    ls -A
    """
    result = jail.sh(script, interposer=True)
    assert result.stdout.split() == ["1:1", "2:0", "3:1", "4:1", "removed", "'g'", "5:0", "6:1", "7:0", "8:0", "e"]
    assert result.stderr.splitlines() == [
        "rm: cannot remove 'missing': No such file or directory",
        "rm: cannot remove 'd': Is a directory",
        "rm: cannot remove 'e': Directory not empty",
        "unlink: cannot unlink 'd': Is a directory",
    ]
    assert {p.rsplit("/", 1)[1] for e in _events(jail, "trash") for p in e["paths"]} == {"g", "h", "d"}


def test_the_python_launcher_does_the_same(jail: Jail) -> None:
    _tree(jail)
    env = jail.env(SHELLJAIL_PYTHON_LAUNCHER="1")
    result = jail.cli("run", "-w", str(jail.workspace), "--ask", "deny", "--", "/bin/sh", "-c",
                      guarded("rm src/main.rs; rm nothing; echo $?"), env=env)
    assert result.stdout.split() == ["1"] and "rm: cannot remove 'nothing'" in result.stderr
    assert [e["paths"] for e in _events(jail, "trash", env)] == [[str(jail.workspace / "src" / "main.rs")]]


def test_a_symlink_out_of_the_workspace_is_never_followed_by_the_supervisor(jail: Jail, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me\n")
    (jail.workspace / "link").symlink_to(outside)
    (jail.workspace / "deeper").mkdir()
    (jail.workspace / "deeper" / "up").symlink_to("../..")  # a relative climb out of the workspace
    script = "rm -rf link/precious; rm -f deeper/up/outside/precious; rm -rf link/; echo done"
    result = jail.sh(script, interposer=True)
    assert result.stdout.strip() == "done", result.stderr
    assert (outside / "precious").read_text() == "keep me\n"
    paths = [p for e in _events(jail, "trash") for p in e["paths"]]
    assert all(p.startswith(str(jail.workspace) + "/") for p in paths), paths


def test_hidden_paths_in_the_workspace_are_left_to_the_jail(jail: Jail, tmp_path: Path) -> None:
    (jail.workspace / ".env").write_text("TOKEN=1\n")
    profile = tmp_path / "p.toml"
    profile.write_text('extends = "coding-agent"\n[filesystem]\nhidden = ["{workspace}/.env"]\n')
    result = jail.sh("rm -f .env; echo $?", interposer=True, options=("-p", str(profile)))
    assert result.stdout.strip() == "1", result.stderr  # the real rm, on the masked file: refused
    assert (jail.workspace / ".env").read_text() == "TOKEN=1\n"
    assert _events(jail, "trash") == []


def test_the_cap_purges_caches_in_the_trash_first_then_refuses(jail: Jail, tmp_path: Path) -> None:
    project = jail.workspace / "proj"
    (project / "node_modules" / "pkg").mkdir(parents=True)
    for i in range(30):
        (project / "node_modules" / "pkg" / f"m{i}.js").write_bytes(os.urandom(4096))
    (project / "index.js").write_text("x\n")
    (jail.workspace / "big1").write_bytes(os.urandom(100_000))
    (jail.workspace / "big2").write_bytes(os.urandom(100_000))
    profile = tmp_path / "p.toml"
    profile.write_text('extends = "coding-agent"\n[trash]\nmax_bytes = "180k"\n')
    options = ("-p", str(profile))
    result = jail.sh("rm -r proj && echo a; rm big1 && echo b; rm big2; echo c=$?", interposer=True, options=options)
    assert result.stdout.split() == ["a", "b", "c=1"], result.stderr
    assert "trash is full" in result.stderr and "trash.max_bytes" in result.stderr
    assert (jail.workspace / "big2").exists()  # refused: nothing lost, nothing moved
    purged = _events(jail, "trash-purged")
    assert [e["path"] for e in purged] == ["proj/node_modules"]
    restored = jail.cli("trash", "restore", "proj")
    assert restored.returncode == 0 and (jail.workspace / "proj" / "index.js").exists()
    assert not (jail.workspace / "proj" / "node_modules").exists()


def test_a_trash_in_the_workspace_when_the_state_is_on_another_filesystem(jail: Jail, tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(jail.workspace).st_dev:
        pytest.skip("needs a state directory on another filesystem than the workspace (/dev/shm)")
    state = shm / f"shelljail-test-{os.getpid()}"
    env = jail.env(XDG_STATE_HOME=str(state))
    try:
        _tree(jail)
        result = jail.cli("run", "-w", str(jail.workspace), "--ask", "deny", "--", "/bin/sh", "-c",
                          guarded("rm -r src && ls -A .shelljail-trash | wc -l && touch .shelljail-trash/x"),
                          env=env)
        assert result.stdout.split() == ["0"], result.stderr  # the jail sees it empty, and cannot write it
        trash = jail.workspace / ".shelljail-trash"
        assert (trash / ".gitignore").read_text().endswith("*\n")
        assert list(trash.glob("*/1/files/src/main.rs"))
        status = subprocess.run(["git", "status", "--porcelain"], cwd=jail.workspace, capture_output=True,
                                text=True, env={**os.environ, "GIT_CEILING_DIRECTORIES": str(jail.root)})
        if status.returncode == 0:
            assert ".shelljail-trash" not in status.stdout
        assert jail.cli("trash", "restore", "src", env=env).returncode == 0
        assert (jail.workspace / "src" / "main.rs").exists()
    finally:
        subprocess.run(["rm", "-rf", str(state)], check=False)


def test_one_command_is_one_entry_and_restores_as_one(jail: Jail) -> None:
    for name in ("a", "b", "c"):
        (jail.workspace / name).write_text(name)
    result = jail.sh("rm a b c missing; echo $?", interposer=True)
    assert result.stdout.strip() == "1" and "'missing'" in result.stderr  # rm's status: one operand failed
    [entry] = _events(jail, "trash")
    assert len(entry["paths"]) == 3
    session_entry = entry["undo"].split()[-1]
    restored = jail.cli("trash", "restore", session_entry)
    assert restored.returncode == 0, restored.stderr
    assert sorted(p.name for p in jail.workspace.iterdir()) == ["a", "b", "c"]


def test_find_delete_goes_to_the_trash_too(jail: Jail) -> None:
    logs = jail.workspace / "logs" / "old"
    logs.mkdir(parents=True)
    for i in range(5):
        (logs / f"{i}.log").write_text(f"log {i}\n")
    (jail.workspace / "logs" / "keep.txt").write_text("keep\n")
    result = jail.sh("find logs -name '*.log' -delete; echo $?; find logs/old -depth -delete; echo $?; ls -A logs",
                     interposer=True)
    assert result.stdout.split() == ["0", "0", "keep.txt"], result.stderr
    decisions = [e for e in _events(jail, "decision") if e.get("rewritten")]
    assert decisions and "-exec rm -d -f -- {} +" in decisions[0]["rewritten"]
    moved = sorted(p.rsplit("/logs/", 1)[1] for e in _events(jail, "trash") for p in e["paths"])
    assert moved == ["old", "old/0.log", "old/1.log", "old/2.log", "old/3.log", "old/4.log"]
    assert jail.cli("trash", "restore", "logs/old/3.log").returncode == 0
    assert (logs / "3.log").read_text() == "log 3\n"


def test_scripts_and_build_tools_delete_their_own_files_as_before(jail: Jail) -> None:
    """The trash is for the agent's command lines; configure's conftest files are not worth keeping."""
    configure = jail.workspace / "configure"
    configure.write_text("#!/bin/sh\necho 'int main(){}' > conftest.c\nrm -f conftest.c conftest.o\necho configured\n")
    configure.chmod(0o755)
    (jail.workspace / "notes.txt").write_text("mine\n")
    result = jail.sh("./configure && rm notes.txt && ls -A", interposer=True)
    assert result.stdout.split() == ["configured", "configure"], result.stderr
    [entry] = _events(jail, "trash")  # notes.txt, removed by the command line itself; not conftest.c
    assert [p.rsplit("/", 1)[1] for p in entry["paths"]] == ["notes.txt"]


def test_a_directory_after_what_this_rm_moved_from_it_joins_it_in_the_entry(jail: Jail) -> None:
    """`rm -r a/b a` and `find -depth -delete` (files, then their directory): the directory's place in
    the trash is already made; what is left of it goes in beside, one entry, restored as one."""
    (jail.workspace / "a" / "b").mkdir(parents=True)
    (jail.workspace / "a" / "b" / "f").write_text("f\n")
    (jail.workspace / "a" / "g").write_text("g\n")
    (jail.workspace / "logs" / "old").mkdir(parents=True)
    for i in range(3):
        (jail.workspace / "logs" / "old" / f"{i}.log").write_text(f"{i}\n")
    result = jail.sh("rm -r a/b a; echo $?; find logs -depth -delete; echo $?; ls -A", interposer=True)
    assert result.stdout.split() == ["0", "0"], result.stderr
    entries = _events(jail, "trash")
    assert [len(e["paths"]) for e in entries] == [2, 5]
    for entry in entries:
        restored = jail.cli("trash", "restore", entry["undo"].split()[-1])
        assert restored.returncode == 0, restored.stderr
    assert (jail.workspace / "a" / "b" / "f").read_text() == "f\n" and (jail.workspace / "a" / "g").read_text() == "g\n"
    assert sorted(p.name for p in (jail.workspace / "logs" / "old").iterdir()) == ["0.log", "1.log", "2.log"]
