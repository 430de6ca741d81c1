"""Red team, filesystem side of issue #22: a program in the jail plants data, then the host-side
command a person would run handles it. Each attack that the defences hold is kept here only where
no other test tries it; one that gets through is marked xfail(strict) with what a fix needs.

Every plant runs inside a real jail behind the namespace guard (`jail.sh`); host-side steps touch
only folders the test made (tmp_path) and every host command has a deadline.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import Jail

DEADLINE = 60  # seconds any host-side command may take; a hang fails the test with TimeoutExpired
SETID = stat.S_ISUID | stat.S_ISGID


# ---- setid: ways to a setuid/setgid file seen from the host that the seccomp guard does not see ----

I386_CHMOD = r"""
#include <stdio.h>
static char path[] = "target";  /* in a non-PIE static binary: below 4 GiB, as i386 calls need */
int main(void) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(15L), "b"((long)path), "c"(04755L) : "memory");  /* chmod */
    printf("chmod %ld\n", ret);
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(306L), "b"(-100L), "c"((long)path), "d"(02755L) : "memory");
    printf("fchmodat %ld\n", ret);  /* not reached: the first call kills the process */
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the i386-call program")
def test_the_i386_syscall_table_cannot_set_a_setid_bit(any_jail: Jail, tmp_path: Path) -> None:
    """The guard's rules are on x86_64's numbers; `int $0x80` from a 64-bit program reaches the
    i386 table (chmod is 15 there), which the guard's rules never name. The filter kills any
    other ABI (ACT_BADARCH): the call never runs and the target keeps its mode."""
    source = tmp_path / "i386.c"
    source.write_text(I386_CHMOD)
    program = any_jail.workspace / "i386"
    built = subprocess.run(["gcc", "-static", "-no-pie", "-O0", "-o", str(program), str(source)],
                           capture_output=True, text=True, timeout=DEADLINE)
    if built.returncode != 0:
        pytest.skip(f"cannot build a static program here: {built.stderr[-300:]}")
    target = any_jail.workspace / "target"
    target.write_bytes(b"#!/bin/sh\nid\n")
    target.chmod(0o755)
    if any_jail.user is not None:
        for path in (program, target):
            os.chown(path, any_jail.user, any_jail.user)
    result = any_jail.sh(f"cd {any_jail.workspace} && ./i386; echo status=$?", timeout=DEADLINE)
    assert "status=159" in result.stdout, result.stdout + result.stderr  # 128 + SIGSYS: killed at the call
    assert "chmod" not in result.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


MMAP_REWRITE = """
import mmap, os
fd = os.open("tool", os.O_RDWR)
with mmap.mmap(fd, 0) as mapped:
    mapped[:len(b"#!/bin/sh\\nid\\n")] = b"#!/bin/sh\\nid\\n"
    mapped.flush()
print(oct(os.fstat(fd).st_mode))
"""


@pytest.mark.xfail(strict=True, reason=(
    "the kernel drops S_ISUID/S_ISGID on write(2) and truncate, not on a store through a shared "
    "writable mmap: a jail that can write a setid file already in the workspace (root's jail: any "
    "root-owned 4755 file, e.g. usr/bin/su of a root file system being worked on) rewrites its "
    "content and keeps the bit, a setuid-root program of the jail's on the host. seccomp cannot "
    "tell that mmap from any other; a fix needs the run to find the workspace's setid files first "
    "(bind them read-only in the jail, or refuse the run naming them): jail/sandbox/mounts.py"))
def test_a_setid_file_of_the_workspace_cannot_be_rewritten_through_mmap(any_jail: Jail) -> None:
    """A setuid file of the host's in the workspace (a canary only its owner may run), rewritten
    by the jail through MAP_SHARED: it must not end up both changed and still setid."""
    tool = any_jail.workspace / "tool"
    original = Path("/bin/true").read_bytes()
    tool.write_bytes(original)
    if any_jail.user is not None:
        os.chown(tool, any_jail.user, any_jail.user)
    os.chmod(tool, 0o4700)
    (any_jail.workspace / "rewrite.py").write_text(MMAP_REWRITE)
    result = any_jail.sh(f"cd {any_jail.workspace} && /usr/bin/python3 rewrite.py", timeout=DEADLINE)
    assert result.returncode == 0, result.stderr
    changed = tool.read_bytes() != original
    assert not (changed and tool.stat().st_mode & SETID), f"{oct(tool.stat().st_mode)}, content the jail's"


# ---- races: a second jail on the same workspace swaps a directory for a symlink to a host folder ----

SWAPPER = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs("d", exist_ok=True)
os.symlink(sys.argv[1], "swap")
open("racing", "w").close()
swaps, deadline = 0, time.monotonic() + 120
while not os.path.exists("stop") and time.monotonic() < deadline:
    swaps += libc.syscall(316, -100, b"d", -100, b"swap", 2) == 0  # renameat2 RENAME_EXCHANGE
if os.path.islink("d"):
    libc.syscall(316, -100, b"d", -100, b"swap", 2)
print("swaps", swaps)
"""


class Swapper:
    """A jail (interposer off, the same workspace) swapping `d` and a symlink to `target` as fast
    as it can until the host makes `stop`: every path through `d` is a symlink half the time."""

    def __init__(self, jail: Jail, target: Path) -> None:
        from conftest import guarded

        (jail.workspace / "swapper.py").write_text(SWAPPER)
        self.jail = jail
        self.process = subprocess.Popen(
            [*jail.command, "run", "-w", str(jail.workspace), "--interposer", "off", "--", "/bin/sh", "-c",
             guarded(f"cd {jail.workspace} && exec /usr/bin/python3 swapper.py {target}")],
            env=jail.env(), cwd=jail.workspace, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, user=jail.user, group=jail.user,
            extra_groups=[] if jail.user is not None else None)
        import time
        deadline = time.monotonic() + DEADLINE
        while not (jail.workspace / "racing").exists():
            assert self.process.poll() is None and time.monotonic() < deadline, self.process.communicate()
            time.sleep(0.05)

    def stop(self) -> int:
        (self.jail.workspace / "stop").touch()
        out, err = self.process.communicate(timeout=DEADLINE)
        assert self.process.returncode == 0, err
        for name in ("stop", "racing", "swap", "swapper.py"):
            (self.jail.workspace / name).unlink()
        return int(out.split()[-1])


def _canary(root: Path, owner: int | None) -> tuple[Path, dict[str, tuple[int, bytes | None]]]:
    """A host folder writable by the jail's user (only shelljail's care keeps it out), and its state."""
    canary = root / "canary"
    canary.mkdir()
    (canary / "f1").write_text("the host's\n")
    if owner is not None:
        for path in (canary, canary / "f1"):
            os.chown(path, owner, owner)
    return canary, _state(canary)


def _state(folder: Path) -> dict[str, tuple[int, bytes | None]]:
    return {str(p.relative_to(folder)): (p.lstat().st_mode, p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def _outside(workspace: Path) -> list[str]:
    """Temporary files a stopped command left (each must land by a rename, or not at all)."""
    return [str(p) for p in workspace.rglob(".shelljail-*") if p.name != ".shelljail-trash"]


def test_a_commit_raced_by_a_directory_swapped_for_a_symlink_never_writes_through_it(any_jail: Jail) -> None:
    """200 files of an overlay session go into `d`, which another jail swaps with a symlink to a
    host folder (renameat2 RENAME_EXCHANGE) all through the commit: nothing lands in the folder,
    and a commit that meets the symlink stops in one line, leaving no temporary file."""
    jail = any_jail
    canary, before = _canary(jail.root, jail.user)
    (jail.workspace / "d").mkdir()
    if jail.user is not None:
        os.chown(jail.workspace / "d", jail.user, jail.user)
    planted = jail.sh("i=0; while [ $i -lt 200 ]; do i=$((i + 1)); echo jail > d/f$i; done",
                      options=("--workspace-mode", "overlay"), timeout=DEADLINE)
    assert planted.returncode == 0, planted.stderr
    import json
    session = json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
    swapper = Swapper(jail, canary)
    outcomes = []
    for _ in range(5):
        done = jail.cli("commit", session, timeout=DEADLINE)
        outcomes.append((done.returncode, done.stderr))
        if done.returncode == 0:
            break
    swaps = swapper.stop()
    assert swaps > 0
    assert _state(canary) == before, outcomes
    for status, err in outcomes:
        assert status in (0, 1) and (status == 0 or len(err.strip().splitlines()) == 1), (status, err)
    assert _outside(jail.workspace) == []
    assert all(p.read_text() == "jail\n" for p in (jail.workspace / "d").iterdir())


def test_a_restore_raced_by_a_directory_swapped_for_a_symlink_never_writes_through_it(any_jail: Jail) -> None:
    """rm -r d (200 files) goes to the trash; another jail makes a new `d` and swaps it with a
    symlink to a host folder while `trash restore` merges into it: nothing lands in the folder,
    nothing is lost (each file is in the workspace or still in the trash)."""
    jail = any_jail
    canary, before = _canary(jail.root, jail.user)
    planted = jail.sh("mkdir d && i=0; while [ $i -lt 200 ]; do i=$((i + 1)); echo jail > d/f$i; done; rm -r d",
                      interposer=True, timeout=DEADLINE)
    assert planted.returncode == 0, planted.stderr
    assert not (jail.workspace / "d").exists()
    swapper = Swapper(jail, canary)  # makes d again, then swaps it
    outcomes = []
    for _ in range(5):
        done = jail.cli("trash", "restore", "d", timeout=DEADLINE)
        outcomes.append((done.returncode, done.stderr))
        if done.returncode == 0:
            break
    swaps = swapper.stop()
    assert swaps > 0
    assert _state(canary) == before, outcomes
    for status, err in outcomes:
        assert status in (0, 1) and (status == 0 or len(err.strip().splitlines()) == 1), (status, err)
    restored = {p.name for p in (jail.workspace / "d").iterdir()}
    listing = jail.cli("trash", "list", timeout=DEADLINE)
    assert listing.returncode == 0, listing.stderr
    assert len(restored) == 200 or "d" in listing.stdout, (sorted(restored)[:5], listing.stdout, outcomes)


@pytest.mark.parametrize("names", [False, True], ids=["diff", "diff --names"])
def test_a_review_raced_by_a_directory_swapped_for_a_symlink_never_reads_through_it(jail: Jail, names: bool) -> None:
    """`shelljail diff` compares the layer's d/f* with the workspace's, while another jail swaps
    the workspace's `d` with a symlink to a host folder holding the same names: the review never
    shows the host folder's text, and ends with a diff or one line, never a traceback."""
    canary, before = _canary(jail.root, jail.user)
    (jail.workspace / "d").mkdir()
    for i in range(1, 201):
        (jail.workspace / "d" / f"f{i}").write_text("workspace\n")
        (canary / f"f{i}").write_text("HOST SECRET\n")
    before = _state(canary)
    planted = jail.sh("i=0; while [ $i -lt 200 ]; do i=$((i + 1)); echo jail > d/f$i; done",
                      options=("--workspace-mode", "overlay"), timeout=DEADLINE)
    assert planted.returncode == 0, planted.stderr
    import json
    session = json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
    swapper = Swapper(jail, canary)
    outcomes = [jail.cli("diff", *(["--names"] if names else []), session, timeout=DEADLINE) for _ in range(5)]
    assert swapper.stop() > 0
    assert _state(canary) == before
    assert names or any("-workspace" in done.stdout for done in outcomes)  # the files were compared
    for done in outcomes:
        assert "HOST SECRET" not in done.stdout + done.stderr
        one_line = done.returncode == 0 or len(done.stderr.strip().splitlines()) == 1
        assert "Traceback" not in done.stderr and one_line, (done.returncode, done.stderr[-2000:])


def test_rm_raced_by_a_directory_swapped_for_a_symlink_never_moves_a_host_file(jail: Jail) -> None:
    """rm -r d/sub through the trash, 200 times, while another jail swaps `d` with a symlink to a
    host folder holding sub/x: the supervisor moves only what is in the workspace, never the
    host folder's sub (judged through d as a directory, moved when d is the symlink)."""
    canary, _ = _canary(jail.root, jail.user)
    (canary / "sub").mkdir()
    (canary / "sub" / "x").write_text("the host's\n")
    before = _state(canary)
    swapper = Swapper(jail, canary)
    result = jail.sh("i=0; while [ $i -lt 200 ]; do i=$((i + 1)); mkdir -p d/sub 2>/dev/null && "
                     "echo jail > d/sub/x 2>/dev/null; rm -rf d/sub 2>>errors; done; echo done",
                     interposer=True, timeout=300)
    assert swapper.stop() > 0
    assert "done" in result.stdout, result.stderr
    assert _state(canary) == before
    listing = jail.cli("trash", "list", timeout=DEADLINE)
    assert listing.returncode == 0 and str(canary) not in listing.stdout
    assert "Traceback" not in (jail.workspace / "errors").read_text()
