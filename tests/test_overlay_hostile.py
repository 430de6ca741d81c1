"""Overlay layers as hostile input: what a program in the jail plants there cannot hang, fill or
reach the host when a person runs `diff`, `commit` or the dashboard on it afterwards.

Each jailed script plants its data behind the namespace guard (`jail.sh`); the host side runs
the real CLI with deadlines, and touches only the folders each test made.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Jail

pytestmark = pytest.mark.jail

DEADLINE = 60  # seconds any host-side command may take; a hang fails the test with TimeoutExpired
CAP = 16 << 20


def _profile(jail: Jail, disk: str | None) -> tuple[str, ...]:
    """Options for an overlay run, with the layer on a tmpfs of `disk` when given."""
    if disk is None:
        return ("--workspace-mode", "overlay")
    path = jail.root / f"overlay-{disk}.toml"
    path.write_text(f'extends = "coding-agent"\n[filesystem]\nworkspace = "overlay"\n[limits]\ndisk = "{disk}"\n')
    return ("-p", str(path))


def _plant(jail: Jail, script: str, disk: str | None = None) -> tuple[str, str]:
    """Run `script` in an overlay jail; (the session id, what the script printed)."""
    result = jail.sh(script, options=_profile(jail, disk), timeout=DEADLINE)
    assert result.returncode == 0, result.stderr
    session = json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
    return session, result.stdout


def _upper(jail: Jail, session: str) -> Path:
    return jail.home / ".local" / "state" / "shelljail" / "sessions" / session / "overlay" / "upper"


def _tree(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every path beneath root: (type and mode, size, inode, symlink target), nothing followed."""
    found = {}
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            target = os.readlink(path) if stat.S_ISLNK(info.st_mode) else ""
            found[os.path.relpath(path, root)] = (info.st_mode, info.st_size, info.st_ino, target)
    return found


def _allocated(root: Path) -> int:
    """Bytes the files beneath root take on the disk (st_blocks), each inode once."""
    seen, total = set(), 0
    for directory, _subdirectories, files in os.walk(root):
        for name in files:
            info = os.lstat(os.path.join(directory, name))
            if info.st_ino not in seen:
                seen.add(info.st_ino)
                total += info.st_blocks * 512
    return total


def _no_leftovers(workspace: Path) -> None:
    """Nothing a commit should ever leave: temporary files, FIFOs, sockets, devices, setid bits."""
    for path, (mode, _size, _inode, _target) in _tree(workspace).items():
        assert ".shelljail-" not in path, f"temporary file left: {path}"
        assert stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode), f"special file made: {path}"
        assert not mode & (stat.S_ISUID | stat.S_ISGID), f"setid bit on {path}: {oct(mode)}"


def _canary(tmp_path: Path) -> tuple[Path, dict[str, tuple[int, int, int, str]]]:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_text("the host's\n")
    return canary, _tree(canary)


# ---- item 7: what the export writes to the host is bounded by the disk cap ---------------------

def test_sparse_files_cost_the_host_what_the_layer_held(any_jail: Jail) -> None:
    """Three sparse 32 MiB files under a 16 MiB cap: copied out with their holes, not 96 MiB dense."""
    jail = any_jail
    session, _ = _plant(jail, "for i in 1 2 3; do truncate -s 32M sparse$i && printf data >> sparse$i; done && "
                              "dd if=/dev/urandom of=sparse2 bs=4096 count=4 seek=100 conv=notrunc 2>/dev/null",
                        disk="16M")
    upper = _upper(jail, session)
    sizes = {p.name: p.stat().st_size for p in upper.iterdir()}
    assert sizes == {f"sparse{i}": 32 * 1024 * 1024 + 4 for i in (1, 2, 3)}  # the files as the agent left them
    assert _allocated(upper) < CAP  # on the host disk: the data, not the holes

    names = jail.cli("diff", session, timeout=DEADLINE)
    assert names.returncode == 0 and "Large file b/sparse1 (33554436 bytes), not shown" in names.stdout
    done = jail.cli("commit", session, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    assert {p.name: p.stat().st_size for p in jail.workspace.iterdir()} == sizes
    assert _allocated(jail.workspace) < CAP  # the commit keeps the holes too
    assert (jail.workspace / "sparse2").read_bytes()[100 * 4096:][:4] != b"\0\0\0\0"  # and the data
    _no_leftovers(jail.workspace)


def test_a_file_linked_many_times_is_copied_once(jail: Jail) -> None:
    """One 4 MiB file under 40 names: 4 MiB on the host (export and commit), not 160."""
    session, _ = _plant(jail, "head -c 4194304 /dev/urandom > big && i=0; "
                              "while [ $i -lt 39 ]; do ln big link$i || exit 1; i=$((i+1)); done", disk="16M")
    upper = _upper(jail, session)
    assert len(list(upper.iterdir())) == 40
    assert len({p.stat().st_ino for p in upper.iterdir()}) == 1  # one inode in the exported layer
    assert sum(p.stat().st_blocks * 512 for p in upper.iterdir()) >= 40 * 4 << 20  # (40 names, counted each)
    assert _allocated(upper) < 5 << 20
    done = jail.cli("commit", session, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    assert _allocated(jail.workspace) < 5 << 20  # linked in the workspace too, not copied 40 times
    content = (jail.workspace / "big").read_bytes()
    assert len(content) == 4 << 20 and (jail.workspace / "link38").read_bytes() == content
    _no_leftovers(jail.workspace)


def test_empty_files_are_bounded_by_the_cap_too(jail: Jail) -> None:
    """Empty files cost the tmpfs no bytes; the layer is capped in entries as well (one per 4 KiB)."""
    session, out = _plant(jail, "i=0; while [ $i -lt 20000 ] && true > f$i 2>/dev/null; do i=$((i+1)); done; "
                                "echo made $i", disk="16M")
    made = int(out.split()[-1])
    assert made < 20000  # the jail met the cap (ENOSPC) ...
    entries = len(list(_upper(jail, session).iterdir()))
    assert entries == made and entries <= CAP // 4096  # ... and the host got no more than it


# ---- item 10: FIFOs, sockets and huge files in the layer ---------------------------------------

PLANT_SPECIALS = """\
mkdir -p src && echo mine > src/a.txt && echo new > plain.txt &&
mkfifo pipe && rm src/b.txt && mkfifo src/b.txt &&
python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("sock")' &&
truncate -s 2G huge &&
ln -s {canary}/keep link && ln -s ../../.. up
"""


@pytest.mark.parametrize("disk", [None, "16M"], ids=["uncapped", "capped"])
def test_fifos_and_sockets_in_the_layer_hang_nothing_and_are_not_committed(jail: Jail, tmp_path: Path,
                                                                           disk: str | None) -> None:
    canary, canary_before = _canary(tmp_path)
    (jail.workspace / "src").mkdir()
    (jail.workspace / "src" / "a.txt").write_text("theirs\n")
    (jail.workspace / "src" / "b.txt").write_text("a file, then a fifo\n")
    session, _ = _plant(jail, PLANT_SPECIALS.format(canary=canary), disk=disk)

    names = jail.cli("diff", session, "--names", timeout=DEADLINE)
    assert names.returncode == 0, names.stderr
    assert {"A pipe (fifo, not copied)", "A sock (socket, not copied)", "M src/b.txt (fifo, not copied)", "A huge",
            "A link", "A plain.txt"} <= set(names.stdout.splitlines())
    shown = jail.cli("diff", session, timeout=DEADLINE)  # reads no FIFO, does not read 2 GB
    assert shown.returncode == 0, shown.stderr
    assert "Special file b/pipe (fifo, not copied)" in shown.stdout
    assert "Special file b/sock (socket, not copied)" in shown.stdout
    assert "Special file b/src/b.txt (fifo, not copied)" in shown.stdout
    assert "Large file b/huge (2147483648 bytes), not shown" in shown.stdout
    assert f"+(symlink to {canary}/keep)" in shown.stdout
    assert "-theirs\n+mine\n" in shown.stdout

    page = subprocess.run([sys.executable, "-c", "import sys; from jail.ui import dashboard; "
                           "print(len(dashboard.overlay_of(sys.argv[1])[1]))", session],
                          capture_output=True, text=True, timeout=DEADLINE, env=jail.env())
    assert page.returncode == 0 and int(page.stdout) >= 6, page.stderr  # the dashboard's session page too

    done = jail.cli("commit", session, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    assert "skipped pipe (fifo, not copied" in done.stderr and "skipped sock (socket, not copied" in done.stderr
    assert "skipped src/b.txt (fifo, not copied" in done.stderr
    ws = jail.workspace
    assert not os.path.lexists(ws / "pipe") and not os.path.lexists(ws / "sock")
    assert (ws / "src" / "b.txt").read_text() == "a file, then a fifo\n"  # the fifo did not replace it
    assert (ws / "src" / "a.txt").read_text() == "mine\n" and (ws / "plain.txt").read_text() == "new\n"
    assert os.readlink(ws / "link") == f"{canary}/keep" and os.readlink(ws / "up") == "../../.."  # as symlinks
    assert (ws / "huge").stat().st_size == 2 << 30 and (ws / "huge").stat().st_blocks == 0
    assert _tree(canary) == canary_before
    _no_leftovers(ws)
    events = [json.loads(line) for line in jail.cli("log", session, "--json").stdout.splitlines()]
    [skip] = [e for e in events if e["event"] == "overlay-skip"]
    assert len(skip["paths"]) == 3
    again = jail.cli("diff", session, "--names", timeout=DEADLINE)  # what was skipped left the layer too
    assert again.returncode == 1 and "already committed" in again.stderr


# ---- symlinks: a layer's are placed as symlinks; one planted in the workspace since stops the commit

def test_a_symlink_planted_in_the_workspace_since_cannot_redirect_the_commit(jail: Jail, tmp_path: Path) -> None:
    canary, canary_before = _canary(tmp_path)
    (jail.workspace / "sub").mkdir()
    (jail.workspace / "sub" / "file").write_text("before\n")
    session, _ = _plant(jail, "echo agent > sub/file && mkdir -p fresh/deep && echo agent > fresh/deep/x")
    os.rename(jail.workspace / "sub", tmp_path / "moved")  # since the session: sub and fresh become symlinks
    (jail.workspace / "sub").symlink_to(canary)
    (jail.workspace / "fresh").symlink_to(canary)
    refused = jail.cli("commit", session, timeout=DEADLINE)
    assert refused.returncode == 1
    assert "sub/file (a symlink on the way, made outside the session)" in refused.stderr
    assert "fresh/deep/x (a symlink on the way, made outside the session)" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert _tree(canary) == canary_before
    _no_leftovers(jail.workspace)


def test_a_symlink_in_the_layer_where_a_directory_was_is_placed_not_followed(jail: Jail, tmp_path: Path) -> None:
    canary, canary_before = _canary(tmp_path)
    (jail.workspace / "src").mkdir()
    (jail.workspace / "src" / "a.txt").write_text("a\n")
    session, _ = _plant(jail, f"rm -rf src && ln -s {canary} src && mkdir -p out && ln -s {canary}/keep out/k")
    names = jail.cli("diff", session, "--names", timeout=DEADLINE).stdout.splitlines()
    assert "D src/a.txt" in names and "M src" in names
    done = jail.cli("commit", session, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    assert os.readlink(jail.workspace / "src") == str(canary) and os.readlink(jail.workspace / "out" / "k")
    assert _tree(canary) == canary_before
    _no_leftovers(jail.workspace)


# ---- item 4: no setuid or setgid bit leaves an overlay -----------------------------------------

SETID = """\
cp /bin/true own && chmod 6755 own; cp -p "$(command -v su)" su-copy; chmod 6755 su-copy;
ln tool tool-link && touch tool;
stat -c '%n %a %u' own su-copy tool-link
"""


@pytest.mark.parametrize("disk", [None, "16M"], ids=["uncapped", "capped"])
def test_setid_bits_never_reach_the_host(jail: Jail, disk: str | None) -> None:
    """chmod 6755 in the layer, a copy of a setuid-root binary, and a link to a setid file of the
    workspace (copied up with its bits, no chmod needed): none lands on the host with S_ISUID/S_ISGID."""
    tool = jail.workspace / "tool"
    tool.write_bytes(Path("/bin/true").read_bytes())
    os.chmod(tool, 0o6700)  # a canary of the test's own: only its owner may run it
    session, out = _plant(jail, SETID, disk=disk)
    assert stat.S_IMODE(tool.stat().st_mode) == 0o6700  # the real workspace, untouched until the commit
    inside = {line.split()[0]: int(line.split()[1], 8) for line in out.splitlines() if line.count(" ") == 2}
    assert inside["tool-link"] & stat.S_ISUID  # in the jail the layer held a setid file...
    for path, (mode, *_rest) in _tree(_upper(jail, session)).items():
        assert not mode & (stat.S_ISUID | stat.S_ISGID), f"{path} {oct(mode)} in the layer on the host"
    assert "Mode of b/tool: 6700 -> 700" in jail.cli("diff", session, timeout=DEADLINE).stdout
    done = jail.cli("commit", session, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    for name in inside:
        mode = os.lstat(jail.workspace / name).st_mode
        assert not mode & (stat.S_ISUID | stat.S_ISGID) and mode & 0o111, f"{name}: {oct(mode)}"
    assert stat.S_IMODE(tool.stat().st_mode) == 0o700  # the layer's copy of it, committed without its bits
    _no_leftovers(jail.workspace)


# ---- time and depth: a crafted layer cannot make a review take forever or crash it -------------

def test_a_diff_crafted_to_be_slow_is_computed_in_bounded_time(jail: Jail) -> None:
    """60,000 lines of 599 repeated values, reordered: difflib takes minutes on it (quadratic in the
    matching lines); the review hands such a pair to GNU diff within a deadline, or names it."""
    (jail.workspace / "big.txt").write_text("".join(f"{i % 599}\n" for i in range(60000)))
    session, _ = _plant(jail, "python3 -c 'import sys; sys.stdout.write(\"\".join(f\"{(i * 7) % 599}\\n\" "
                              "for i in range(60000)))' > big.txt")
    shown = jail.cli("diff", session, timeout=DEADLINE)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("M big.txt\n--- a/big.txt\n+++ b/big.txt\n@@ ") or \
        "Long file b/big.txt (60000 lines before, 60000 after), diff not shown" in shown.stdout


def test_a_layer_nested_past_path_max_is_refused_in_one_line(jail: Jail) -> None:
    """17 directories of 255-byte names: past PATH_MAX. Reviewing refuses it in one line; the setid
    bits of a file at the bottom (a link to a setid file of the workspace) are dropped all the same."""
    tool = jail.workspace / "tool"
    tool.write_bytes(b"#!/bin/sh\n")
    os.chmod(tool, 0o6700)  # a canary of the test's own: only its owner may run it
    session, _ = _plant(jail, "python3 -c 'import os\ntop = os.open(\".\", os.O_RDONLY)\n"
                              "for _ in range(17): os.mkdir(\"d\" * 255); os.chdir(\"d\" * 255)\n"
                              "os.link(\"tool\", \"deep-tool\", src_dir_fd=top)\n"
                              "print(oct(os.stat(\"deep-tool\").st_mode))'")
    deep = []
    for _directory, _subdirectories, files, fd in os.fwalk(_upper(jail, session)):  # by fds: past PATH_MAX
        deep += [os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode for name in files if name == "deep-tool"]
    assert len(deep) == 1 and not deep[0] & (stat.S_ISUID | stat.S_ISGID), [oct(m) for m in deep]
    for command in (("diff", session), ("diff", session, "--names"), ("commit", session)):
        result = jail.cli(*command, timeout=DEADLINE)
        assert result.returncode != 0 and result.stderr.startswith("shelljail: directories nested deeper than")
        assert len(result.stderr.splitlines()) == 1, result.stderr  # no traceback
    assert jail.cli("discard", session, timeout=DEADLINE).returncode == 0
    assert [p.name for p in jail.workspace.iterdir()] == ["tool"]


def test_a_file_replaced_by_a_directory_commits(jail: Jail) -> None:
    (jail.workspace / "x").write_text("a file\n")
    session, _ = _plant(jail, "rm x && mkdir x && echo hi > x/f")
    assert jail.cli("diff", session, "--names").stdout.splitlines() == ["D x", "A x/", "A x/f"]
    done = jail.cli("commit", session, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr
    assert (jail.workspace / "x" / "f").read_text() == "hi\n"
    _no_leftovers(jail.workspace)


def test_a_commit_that_fails_halfway_says_so_logs_it_and_leaves_no_temporary_file(nobody_jail: Jail) -> None:
    jail = nobody_jail
    (jail.workspace / "a.txt").write_text("a\n")
    (jail.workspace / "sub").mkdir()
    for path in (jail.workspace / "a.txt", jail.workspace / "sub"):
        os.chown(path, jail.user, jail.user)
    session, _ = _plant(jail, "echo A > a.txt && echo new > sub/new")
    os.chmod(jail.workspace / "sub", 0o555)  # the test's own folder: the commit cannot write there now
    stopped = jail.cli("commit", session, timeout=DEADLINE)
    assert stopped.returncode != 0 and len(stopped.stderr.splitlines()) == 1, stopped.stderr
    assert "commit stopped at sub/new: Permission denied" in stopped.stderr
    assert "1 of 2 change(s) applied" in stopped.stderr
    assert (jail.workspace / "a.txt").read_text() == "A\n"
    _no_leftovers(jail.workspace)
    events = [json.loads(line) for line in jail.cli("log", session, "--json").stdout.splitlines()]
    [partial] = [e for e in events if e["event"] == "overlay-commit"]
    assert partial["paths"] == ["M a.txt"] and partial["stopped"].startswith("A sub/new")
    assert jail.cli("diff", session, "--names").stdout.splitlines() == ["A sub/new"]  # the rest, still there
    os.chmod(jail.workspace / "sub", 0o755)
    assert jail.cli("commit", session, timeout=DEADLINE).returncode == 0
    assert (jail.workspace / "sub" / "new").read_text() == "new\n"


def test_an_export_that_fails_leaves_nothing_half_copied(tmp_path: Path) -> None:
    """overlay.export (run by the jail's pid 1) on a layer nested past its bound: an error, and the
    host's upper directory is left empty rather than holding part of the changes."""
    from jail.recovery import overlay

    layer, upper = tmp_path / "layer", tmp_path / "upper"
    (layer / "early").mkdir(parents=True)
    (layer / "early" / "f").write_text("x\n")
    deep = layer / "late"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(overlay.MAX_DEPTH + 5):
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    upper.mkdir()
    source, destination = os.open(layer, os.O_RDONLY | os.O_DIRECTORY), os.open(upper, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(ValueError, match="nothing was saved"):
            overlay.export(source, destination)
    finally:
        os.close(source)
        os.close(destination)
    assert list(upper.iterdir()) == []
