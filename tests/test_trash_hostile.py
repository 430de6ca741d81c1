"""The trash against a hostile jail: what a jail plants in or around the trash never acts on the host.

Each test plants from inside a real jail (behind `guarded()`), then runs the host command a
person would (`rm` through the interposer, `shelljail trash list`, `shelljail trash restore`)
and checks that nothing outside the workspace changed (canary folders the test made), that
nothing hung (every command has a deadline) and that a refusal says why.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Jail, guarded

DEADLINE = 60  # seconds any one shelljail command may take here; a hang fails the test


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes | str | None]]:
    """Every path under `folder` with its mode and content (or link target), not following symlinks."""
    seen: dict[str, tuple[int, bytes | str | None]] = {}
    for path in sorted([folder, *folder.rglob("*")]):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            content: bytes | str | None = os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            content = path.read_bytes()
        else:
            content = None
        seen[str(path.relative_to(folder))] = (info.st_mode, content)
    return seen


def _canary(root: Path, owner: int | None) -> Path:
    """A host folder the jail aims at: a precious file in it, writable by the jail's user (so only
    shelljail's own care keeps the jail's files out of it)."""
    canary = root / "canary"
    (canary / "src").mkdir(parents=True)
    (canary / "precious").write_text("keep me\n")
    (canary / "src" / "main.rs").write_text("the host's file\n")
    if owner is not None:
        for path in (canary, canary / "src", canary / "precious", canary / "src" / "main.rs"):
            os.chown(path, owner, owner)
    return canary


def _sessions(jail: Jail, env: dict[str, str] | None = None) -> list[str]:
    listed = jail.cli("sessions", "--json", env=env, timeout=DEADLINE).stdout.splitlines()
    return [json.loads(line)["session"] for line in listed]


def _modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.lstat().st_mode for p in folder.rglob("*")}


# ---- 1. the mover: a symlink raced back into a directory -------------------------------------

RACER = """
import os, time
deadline = time.monotonic() + 120
while not os.path.exists("stop") and time.monotonic() < deadline:
    try:
        os.rename("dd", "d")  # succeeds the moment `d` (a symlink) was moved into the trash
    except OSError:
        pass
"""


def test_a_symlink_raced_back_into_a_directory_never_leads_rm_out_of_the_workspace(any_jail: Jail) -> None:
    """`rm -f d d/x`: `d` is a symlink to a host folder when rm moves it, a directory holding x a
    moment later. The supervisor must not move x into the trash through the `d` it moved."""
    jail = any_jail
    canary = _canary(jail.root, jail.user)
    before = _snapshot(canary)
    (jail.workspace / "racer.py").write_text(RACER)
    script = f"""
    python3 racer.py &
    i=0
    while [ $i -lt 300 ]; do
      i=$((i + 1))
      ln -sT {canary} d || break
      mkdir t && echo jail > t/x && mv -T t dd
      rm -f d d/x 2>err
      if grep -q 'changed while rm ran' err; then echo "REFUSED $i"; [ -f d/x ] && echo KEPT; break; fi
      if [ -d d ] && [ ! -s err ] && [ ! -e d/x ]; then echo "RACED $i"; break; fi  # x went through d
      mv -T dd older$i 2>/dev/null; mv -T d old$i 2>/dev/null  # dd first: the racer cannot make d after
    done
    : > stop
    wait
    echo done
    """
    result = jail.sh(script, interposer=True, timeout=300)
    assert "done" in result.stdout, result.stderr
    assert _snapshot(canary) == before  # the jail's x never reached the host folder
    # the race was won (d was a directory again when rm came to d/x) and rm refused, saying why
    assert "REFUSED" in result.stdout and "KEPT" in result.stdout, result.stdout + result.stderr
    assert (jail.workspace / "d" / "x").read_text() == "jail\n"  # nothing lost either
    listing = jail.cli("trash", "list", timeout=DEADLINE)
    assert listing.returncode == 0 and str(canary) not in listing.stdout


LINKER = """
import os, time
deadline = time.monotonic() + 120
while not os.path.exists("stop") and time.monotonic() < deadline:
    try:
        os.link("next", "a")  # the moment rm moved `a`, another `a` (never over one: link fails then)
        os.unlink("next")
    except OSError:
        pass
"""


def test_a_file_raced_back_under_the_same_name_never_replaces_the_one_in_the_trash(jail: Jail) -> None:
    """`rm a a` with another `a` made between the two: the first stays in the trash, the second is
    refused (a rename over the first would have lost it)."""
    (jail.workspace / "racer.py").write_text(LINKER)
    script = """
    python3 racer.py &
    i=0
    while [ $i -lt 300 ]; do
      i=$((i + 1))
      echo "first $i" > a && echo "second $i" > n && mv -T n next
      rm a a 2>err
      if grep -q 'changed while rm ran' err; then echo "REFUSED $i"; break; fi
      if [ ! -e a ] && [ ! -e next ] && [ ! -s err ]; then echo "RACED $i"; break; fi  # one went over the other
      rm -f next a 2>/dev/null
    done
    : > stop
    wait
    """
    result = jail.sh(script, interposer=True, timeout=300)
    assert "REFUSED" in result.stdout, result.stdout + result.stderr
    tries = result.stdout.split()[-1]
    assert (jail.workspace / "a").read_text() == f"second {tries}\n"
    session = _sessions(jail)[0]
    trash = jail.home / ".local" / "state" / "shelljail" / "trash" / session
    kept = sorted(p.read_text() for p in trash.glob("*/files/a"))
    assert f"first {tries}\n" in kept


# ---- 2. the records: a trash in the workspace, rewritten by a later session ------------------

@pytest.fixture
def other_filesystem_state(jail: Jail) -> Iterator[dict[str, str]]:
    """An environment whose state directory is on another filesystem than the workspace, so the
    session's trash is kept in <workspace>/.shelljail-trash (as on a machine with /home apart)."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(jail.workspace).st_dev:
        pytest.skip("needs a state directory on another filesystem than the workspace (/dev/shm)")
    state = shm / f"shelljail-hostile-{os.getpid()}-{jail.root.name}"
    state.mkdir(mode=0o700)
    try:
        yield jail.env(XDG_STATE_HOME=str(state))
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(state)], check=False, timeout=DEADLINE)


def _removed_in_workspace_trash(jail: Jail, env: dict[str, str]) -> tuple[str, Path]:
    """A session that rm'd src/ into the in-workspace trash: (its id, that entry's directory)."""
    (jail.workspace / "src").mkdir()
    (jail.workspace / "src" / "main.rs").write_text("the jail's file\n")
    result = jail.cli("run", "-w", str(jail.workspace), "--interposer", "on", "--ask", "deny", "--", "/bin/sh",
                      "-c", guarded("rm -r src; echo $?"), env=env, timeout=DEADLINE)
    assert result.stdout.split() == ["0"], result.stderr
    session = _sessions(jail, env)[0]
    entry = jail.workspace / ".shelljail-trash" / session / "1"
    assert (entry / "files" / "src" / "main.rs").exists()
    return session, entry


def _later_session(jail: Jail, env: dict[str, str], script: str) -> None:
    """A later session without the interposer (so the in-workspace trash is not hidden from it)."""
    result = jail.cli("run", "-w", str(jail.workspace), "--interposer", "off", "--", "/bin/sh", "-c",
                      guarded(f"set -e\n{script}\necho planted"), env=env, timeout=DEADLINE)
    assert result.stdout.split()[-1:] == ["planted"], result.stdout + result.stderr


def test_a_forged_entry_never_names_where_restore_writes(jail: Jail, other_filesystem_state: dict[str, str]) -> None:
    env = other_filesystem_state
    canary = _canary(jail.root, None)
    before = _snapshot(canary)
    session, entry = _removed_in_workspace_trash(jail, env)
    forged = {"id": "1", "workspace": str(canary), "paths": ["src"], "time": 4e9, "bytes": 1, "files": 1,
              "argv": ["rm", "-r", "src"], "store": "workspace"}
    invented = {**forged, "id": "2", "workspace": str(jail.workspace), "paths": ["../canary/precious"]}
    trash = f".shelljail-trash/{session}"
    _later_session(jail, env, f"""
    printf '%s' '{json.dumps(forged)}' > {trash}/1/entry.json
    mkdir -p {trash}/2/files/src && echo invented > {trash}/2/files/src/main.rs
    printf '%s' '{json.dumps(invented)}' > {trash}/2/entry.json
    """)
    listing = jail.cli("trash", "list", env=env, timeout=DEADLINE)
    assert listing.returncode == 0, listing.stderr
    assert str(canary) not in listing.stdout and f"{session}/2" not in listing.stdout
    assert str(jail.workspace / "src") in listing.stdout  # the supervisor's own record, unchanged
    invented_restore = jail.cli("trash", "restore", f"{session}/2", env=env, timeout=DEADLINE)
    assert invented_restore.returncode == 1 and "nothing in the trash matches" in invented_restore.stderr
    restored = jail.cli("trash", "restore", f"{session}/1", env=env, timeout=DEADLINE)
    assert restored.returncode == 0, restored.stderr
    assert (jail.workspace / "src" / "main.rs").read_text() == "the jail's file\n"  # where rm took it from
    assert _snapshot(canary) == before


def test_a_record_forged_from_inside_the_same_session_is_not_read(jail: Jail,
                                                                   other_filesystem_state: dict[str, str]) -> None:
    """A process that kept its cwd in a directory rm moved climbs, with `..`, out of it into the hidden
    in-workspace trash during the session itself: the records must not be there to forge."""
    env = other_filesystem_state
    canary = _canary(jail.root, None)
    before = _snapshot(canary)
    forged = {"id": "1", "workspace": str(canary), "paths": ["w"], "time": 4e9, "bytes": 1, "files": 1,
              "argv": ["rm", "-r", "w"], "store": "workspace"}
    script = f"""
    mkdir w && cd w && rm -r ../w
    echo mine > kept
    cd -P ../.. && printf '%s' '{json.dumps(forged)}' > entry.json && echo CLIMBED
    """
    result = jail.cli("run", "-w", str(jail.workspace), "--interposer", "on", "--ask", "deny", "--", "/bin/sh",
                      "-c", guarded(script), env=env, timeout=DEADLINE)
    assert "CLIMBED" in result.stdout, result.stderr  # the kernel lets it: the records live elsewhere
    session = _sessions(jail, env)[0]
    restored = jail.cli("trash", "restore", f"{session}/1", env=env, timeout=DEADLINE)
    assert restored.returncode == 0, restored.stderr
    assert (jail.workspace / "w" / "kept").read_text() == "mine\n"
    assert _snapshot(canary) == before


@pytest.mark.parametrize("plant", ["files", "files/src", "forged-tree"])
def test_a_symlink_or_a_new_tree_in_the_trash_is_refused_not_followed(jail: Jail, plant: str,
                                                                      other_filesystem_state: dict[str, str]) -> None:
    """files/ (or a directory in it) made a symlink to a host folder: restore would move the host's
    files into the workspace. files/ replaced by a tree the jail made: not the supervisor's entry."""
    env = other_filesystem_state
    canary = _canary(jail.root, None)
    before = _snapshot(canary)
    session, entry = _removed_in_workspace_trash(jail, env)
    inside = f".shelljail-trash/{session}/1"
    if plant == "files":
        script = f"mv {inside}/files {inside}/aside && ln -s {canary} {inside}/files"
    elif plant == "files/src":
        script = f"mv {inside}/files/src {inside}/aside && ln -s {canary}/src {inside}/files/src"
    else:
        script = (f"mv {inside}/files {inside}/aside && mkdir -p {inside}/files/src && "
                  f"echo forged > {inside}/files/src/main.rs")
    _later_session(jail, env, script)
    for reference in ("src/main.rs", f"{session}/1"):
        refused = jail.cli("trash", "restore", reference, env=env, timeout=DEADLINE)
        if plant == "files/src" and reference == f"{session}/1":
            # the entry is src itself: a symlink now, restored as the symlink it is, never followed
            assert refused.returncode == 0, refused.stderr
            assert os.readlink(jail.workspace / "src") == f"{canary}/src"
            continue
        assert refused.returncode == 1, refused.stdout
        assert "cannot restore" in refused.stderr and "nothing was restored" in refused.stderr, refused.stderr
        assert not (jail.workspace / "src").exists()
    assert _snapshot(canary) == before


def test_fifos_in_the_trash_never_hang_list_or_restore(jail: Jail, other_filesystem_state: dict[str, str]) -> None:
    env = other_filesystem_state
    session, entry = _removed_in_workspace_trash(jail, env)
    trash = f".shelljail-trash/{session}"
    _later_session(jail, env, f"""
    rm -f {trash}/1/entry.json && mkfifo {trash}/1/entry.json
    mkdir -p {trash}/7/files && mkfifo {trash}/7/entry.json
    rm {trash}/1/files/src/main.rs && mkfifo {trash}/1/files/src/main.rs
    """)
    listing = jail.cli("trash", "list", env=env, timeout=DEADLINE)  # TimeoutExpired fails the test
    assert listing.returncode == 0 and str(jail.workspace / "src") in listing.stdout, listing.stderr
    restored = jail.cli("trash", "restore", "src", env=env, timeout=DEADLINE)
    assert restored.returncode == 0, restored.stderr
    assert stat.S_ISFIFO((jail.workspace / "src" / "main.rs").lstat().st_mode)  # moved as it was, never opened


@pytest.mark.parametrize("plant", ["trash", "gitignore"])
def test_a_symlink_planted_where_the_trash_is_made_is_never_written_through(
        jail: Jail, plant: str, other_filesystem_state: dict[str, str]) -> None:
    """Before the next interposed session: .shelljail-trash made a symlink to a host folder (the run
    stops, saying why), or its .gitignore a dangling symlink into one (left alone, never created)."""
    env = other_filesystem_state
    canary = _canary(jail.root, None)
    before = _snapshot(canary)
    (jail.workspace / "notes.txt").write_text("mine\n")
    if plant == "trash":
        _later_session(jail, env, f"rm -rf .shelljail-trash && ln -s {canary} .shelljail-trash")
    else:
        _later_session(jail, env, f"mkdir -p .shelljail-trash && ln -s {canary}/planted .shelljail-trash/.gitignore")
    result = jail.cli("run", "-w", str(jail.workspace), "--interposer", "on", "--ask", "deny", "--", "/bin/sh",
                      "-c", guarded("rm notes.txt; echo ran=$?"), env=env, timeout=DEADLINE)
    if plant == "trash":
        assert result.returncode == 125 and "ran" not in result.stdout, result.stdout + result.stderr
        assert "cannot keep the trash in" in result.stderr and "move" in result.stderr
        assert (jail.workspace / "notes.txt").read_text() == "mine\n"
        newest = json.loads(jail.cli("sessions", "--json", env=env, timeout=DEADLINE).stdout.splitlines()[0])
        assert newest["state"] == "failed" and newest["exit_status"] == 125  # recorded, not left running
    else:
        assert result.stdout.split() == ["ran=0"], result.stderr
        assert not (jail.workspace / "notes.txt").exists()
        assert os.readlink(jail.workspace / ".shelljail-trash" / ".gitignore") == f"{canary}/planted"
    assert _snapshot(canary) == before


# ---- 3. what restore puts back: no setuid bits, symlinks and FIFOs as they are ---------------

def _setid_in_trash(jail: Jail, names: list[str]) -> dict[str, int]:
    """Make sure the files rm moved carry setuid/setgid bits, as the jail asked; where the jail may
    not make such bits at all (seccomp), the test sets them on its own copies in the trash. The
    permission bits each should have once restored."""
    trash = jail.home / ".local" / "state" / "shelljail" / "trash"
    expected = {}
    for name in names:
        [path] = list(trash.glob(f"*/1/files/{name}"))
        mode = path.lstat().st_mode
        if not mode & (stat.S_ISUID | stat.S_ISGID):
            os.chmod(path, stat.S_IMODE(mode) | stat.S_ISUID | stat.S_ISGID)
        expected[name] = stat.S_IMODE(mode) & 0o1777
    return expected


def test_restored_files_never_carry_setuid_or_setgid_bits(any_jail: Jail) -> None:
    jail = any_jail
    script = """
    printf 'data\\n' > s && chmod 6755 s
    mkdir -p tree/in && printf 'data\\n' > tree/in/t && chmod 4755 tree/in/t && chmod 2755 tree
    rm -r s tree; echo $?
    """
    result = jail.sh(script, interposer=True, timeout=DEADLINE)
    assert result.stdout.split() == ["0"], result.stderr
    expected = _setid_in_trash(jail, ["s", "tree", "tree/in/t"])
    session = _sessions(jail)[0]
    restored = jail.cli("trash", "restore", f"{session}/1", timeout=DEADLINE)
    assert restored.returncode == 0, restored.stderr
    for name in ("s", "tree", "tree/in", "tree/in/t"):
        mode = (jail.workspace / name).lstat().st_mode
        assert not mode & (stat.S_ISUID | stat.S_ISGID), (name, oct(mode))
    assert (jail.workspace / "tree" / "in" / "t").read_text() == "data\n"
    for name, bits in expected.items():  # the rest of the mode kept
        assert stat.S_IMODE((jail.workspace / name).lstat().st_mode) == bits, name


def test_what_a_jail_puts_in_a_moved_directory_is_restored_as_it_is(any_jail: Jail) -> None:
    """A process that kept its cwd in a directory rm moved writes there (the state directory's
    trash): a FIFO, a symlink to a host folder, a setuid file. Restore never opens, follows or keeps
    them setuid; `..` out of the moved directory into the records is refused by the kernel."""
    jail = any_jail
    canary = _canary(jail.root, jail.user)
    before = _snapshot(canary)
    script = f"""
    mkdir w && cd w && rm -r ../w && echo "rm:$?"
    mkfifo fifo && ln -s {canary} out && ln -s {canary}/precious precious
    printf 'data\\n' > s && chmod 4755 s
    if cd -P .. 2>/dev/null; then echo CLIMBED; fi
    """
    result = jail.sh(script, interposer=True, timeout=DEADLINE)
    assert "rm:0" in result.stdout, result.stderr
    assert "CLIMBED" not in result.stdout  # the moved directory is disconnected from the jail's mount
    _setid_in_trash(jail, ["w/s"])
    restored = jail.cli("trash", "restore", "w", timeout=DEADLINE)
    assert restored.returncode == 0, restored.stderr
    w = jail.workspace / "w"
    assert stat.S_ISFIFO((w / "fifo").lstat().st_mode)
    assert os.readlink(w / "out") == str(canary) and os.readlink(w / "precious") == f"{canary}/precious"
    assert not (w / "s").lstat().st_mode & (stat.S_ISUID | stat.S_ISGID)
    assert _snapshot(canary) == before


def test_a_symlink_planted_in_the_workspace_where_restore_writes_is_refused(jail: Jail) -> None:
    """After rm -r src, the jail puts a symlink to a host folder in its place: restore goes through
    neither it nor anything in it. (A guard: the code before this change refused it too.)"""
    canary = _canary(jail.root, None)
    before = _snapshot(canary)
    (jail.workspace / "src").mkdir()
    (jail.workspace / "src" / "main.rs").write_text("the jail's file\n")
    result = jail.sh(f"rm -r src && ln -s {canary}/src src && echo planted", interposer=True, timeout=DEADLINE)
    assert result.stdout.split() == ["planted"], result.stderr
    session = _sessions(jail)[0]
    through = jail.cli("trash", "restore", "src/main.rs", timeout=DEADLINE)
    assert through.returncode == 1 and "symlink" in through.stderr, through.stderr
    over = jail.cli("trash", "restore", f"{session}/1", timeout=DEADLINE)
    assert over.returncode == 1 and "exists again" in over.stderr, over.stderr
    assert os.readlink(jail.workspace / "src") == f"{canary}/src"
    assert _snapshot(canary) == before


# ---- 4. records that are garbage (the state directory itself damaged) ------------------------

def test_garbage_records_are_skipped_and_never_restored(jail: Jail, tmp_path: Path) -> None:
    """The records are the supervisor's, in the state directory; a damaged one (a crash, a disk
    error, a hand edit) is left out of `trash list`, never followed or waited on."""
    canary = _canary(jail.root, None)
    before = _snapshot(canary)
    (jail.workspace / "a").write_text("a\n")
    assert jail.sh("rm a; echo $?", interposer=True, timeout=DEADLINE).stdout.split() == ["0"]
    session = _sessions(jail)[0]
    records = jail.home / ".local" / "state" / "shelljail" / "trash" / session
    good = json.loads((records / "1" / "entry.json").read_text())
    bad = {
        "2": b"not json", "3": b"[" * 100_000, "4": json.dumps({**good, "id": "4", "paths": ["../canary"]}).encode(),
        "5": json.dumps({**good, "id": "5", "paths": [str(canary)]}).encode(),
        "6": json.dumps({**good, "id": "6", "paths": [""]}).encode(),
        "7": json.dumps({**good, "id": "1"}).encode(),  # a copy under another number
        "8": b" " * (5 << 20),
    }
    for number, data in bad.items():
        (records / number / "files").mkdir(parents=True)
        (records / number / "entry.json").write_bytes(data)
    (records / "9").mkdir()
    os.mkfifo(records / "9" / "entry.json")
    (records / "10").mkdir()
    (records / "10" / "entry.json").symlink_to(records / "1" / "entry.json")
    listing = jail.cli("trash", "list", "--json", timeout=DEADLINE)
    assert listing.returncode == 0, listing.stderr
    assert [json.loads(line)["id"] for line in listing.stdout.splitlines()] == ["1"]
    for number in [*bad, "9", "10"]:
        refused = jail.cli("trash", "restore", f"{session}/{number}", timeout=DEADLINE)
        assert refused.returncode == 1 and "nothing in the trash matches" in refused.stderr, (number, refused)
    assert jail.cli("trash", "restore", f"{session}/1", timeout=DEADLINE).returncode == 0
    assert (jail.workspace / "a").read_text() == "a\n"
    assert _snapshot(canary) == before


def test_trash_list_reads_a_bounded_number_of_records(jail: Jail) -> None:
    """At most ENTRIES_LIMIT records per session, the newest: a session with more still lists."""
    from jail.recovery.trash import ENTRIES_LIMIT

    (jail.workspace / "a").write_text("a\n")
    assert jail.sh("rm a; echo $?", interposer=True, timeout=DEADLINE).stdout.split() == ["0"]
    session = _sessions(jail)[0]
    records = jail.home / ".local" / "state" / "shelljail" / "trash" / session
    good = json.loads((records / "1" / "entry.json").read_text())
    for number in range(2, ENTRIES_LIMIT + 3):
        (records / str(number)).mkdir()
        (records / str(number) / "entry.json").write_text(json.dumps({**good, "id": str(number)}))
    listing = jail.cli("trash", "list", "--json", timeout=DEADLINE)
    assert listing.returncode == 0, listing.stderr
    listed = {json.loads(line)["id"] for line in listing.stdout.splitlines()}
    assert len(listed) == ENTRIES_LIMIT and "1" not in listed and "2" not in listed and str(ENTRIES_LIMIT + 2) in listed
