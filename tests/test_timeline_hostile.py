"""The workspace timeline (#24) against a hostile jail: a program inside controls every file of the
workspace and may race; host-side timeline code (the supervisor's checkpoint, a later `shelljail undo`,
`shelljail timeline`, the dashboard) must neither be turned against the person nor let a change slip past.

Jail-side steps run through tests/test_timeline.py's driver (each line guarded: it refuses to run
outside the jail's namespaces); the host side touches only the test's own folders.
"""

import json
import stat
import subprocess

from conftest import Jail
from test_timeline import plant, session


def test_a_timeline_the_jail_turned_off_lets_no_unasked_destruction_run(jail: Jail) -> None:
    # 300 nested directories: past the walk's depth limit, the checkpoint fails. A line allowed
    # unasked only because the timeline would undo it (truncate) must then not run undoably-unrecorded.
    plant(jail.workspace)
    original = (jail.workspace / "src" / "main.rs").read_bytes()
    result = session(jail, "mkdir -p \"$(printf 'd/%.0s' $(seq 300))\"", "truncate -s 0 src/main.rs")
    assert "REFUSED" not in result.stdout + result.stderr, result.stderr
    assert "status 0\nstatus 126" in result.stdout and "the timeline is off" in result.stderr, result.stderr
    jail.cli("undo", "--force")
    assert (jail.workspace / "src" / "main.rs").read_bytes() == original, (result.stdout, result.stderr)


def test_a_command_that_adds_many_files_does_not_hang_the_timeline(jail: Jail) -> None:
    # One command adding 150,000 files (the walk's limit is 200,000): `shelljail timeline` reads the
    # point back and counts each command's bytes. That count was quadratic in the files a command
    # changed (about 4 minutes here): the dashboard, which reads it on every refresh, hung as long.
    many = 150_000
    result = session(jail, f"mkdir junk && cd junk && seq {many} | xargs touch")
    assert "status 0" in result.stdout, (result.stdout, result.stderr)
    shown = jail.cli("timeline", "--json", timeout=120)  # a hang fails here, by the timeout
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)["commands"]
    assert len(rows[0]["changes"]["added"]) == many + 1


def test_reading_a_long_timeline_of_a_large_workspace_stays_in_bounded_memory(jail: Jail) -> None:
    # 80,000 files and 300 commands: a plain session of an agent in a big repository. Reading the
    # timeline back rebuilt the workspace's state at every point, each a dict of every file (about
    # 2 MB each here, 600 MB in all, and more for each command): `shelljail timeline`, undo and the
    # dashboard ran out of memory. Under a 512 MiB address space it must still answer.
    import resource

    files, commands = 80_000, 300
    result = session(jail, f"mkdir many && cd many && seq {files} | xargs touch", *["true"] * commands)
    assert result.stdout.count("status 0") == commands + 1, (result.stdout[-500:], result.stderr[-2000:])

    def small() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 29, 1 << 29))

    shown = subprocess.run([*jail.command, "timeline", "--json"], capture_output=True, text=True, timeout=300,
                           env=jail.env(), cwd=jail.workspace, stdin=subprocess.DEVNULL, preexec_fn=small)
    assert shown.returncode == 0, shown.stderr[-2000:]
    rows = json.loads(shown.stdout)["commands"]
    assert len(rows) == commands + 1 and len(rows[0]["changes"]["added"]) == files + 1


def test_a_long_multibyte_name_is_restored(jail: Jail) -> None:
    # A 250-byte name of two-byte characters: the restore's temporary name was the name with a prefix,
    # cut at 255 characters, not bytes, so it was too long for the kernel and the file not restored.
    name = "é" * 125
    (jail.workspace / name).write_text("keep me\n")
    result = session(jail, "rm -f ./é*")
    assert "status 0" in result.stdout, (result.stdout, result.stderr)
    assert not (jail.workspace / name).exists()
    undone = jail.cli("undo")
    assert undone.returncode == 0, undone.stderr
    assert (jail.workspace / name).read_text() == "keep me\n"


def test_a_read_only_directory_is_restored_with_its_files_for_an_ordinary_user(nobody_jail: Jail) -> None:
    # A directory recorded read-only (0555) got its mode back before its files were written into it:
    # for an ordinary user (no CAP_DAC_OVERRIDE) every file under it was then not restored.
    jail = nobody_jail
    result = session(jail, "mkdir -p ro/sub && echo built > ro/sub/out.js && chmod -R a-w ro",
                     "chmod -R u+w ro && rm -rf ro")
    assert result.stdout.count("status 0") == 2, (result.stdout, result.stderr)
    rows = json.loads(jail.cli("timeline", "--json").stdout)["commands"]
    undone = jail.cli("undo", "--to", str(rows[1]["point"]))
    assert undone.returncode == 0, undone.stderr
    assert (jail.workspace / "ro" / "sub" / "out.js").exists(), ([r["changes"] for r in rows], undone.stdout)
    assert (jail.workspace / "ro" / "sub" / "out.js").read_text() == "built\n"
    assert stat.S_IMODE((jail.workspace / "ro" / "sub").stat().st_mode) == 0o555
    assert stat.S_IMODE((jail.workspace / "ro").stat().st_mode) == 0o555
    for directory in (jail.workspace / "ro", jail.workspace / "ro" / "sub"):  # for the fixture's cleanup
        directory.chmod(0o755)



def test_undo_reads_no_file_past_the_timelines_file_limit(jail: Jail) -> None:
    # Points keep files up to timeline.max_file_bytes; undo, recording what is there first, read every
    # file it had no point for whole, with no limit. The jail turns the timeline off (a tree too deep:
    # no more points, not even the last), then in the background swaps the tree for a sparse 15 GB file
    # (it costs no disk): `shelljail undo` (or the dashboard) read it all into memory.
    import resource

    deep = "d/" * 300
    result = session(jail, f"mkdir -p {deep}; (sleep 2; rm -rf d; truncate -s 15G big) >/dev/null 2>&1 &",
                     "true", "py:import time, os\nwhile not os.path.exists('big'): time.sleep(0.1)")
    assert result.stdout.count("status 0") == 2, (result.stdout, result.stderr)
    assert (jail.workspace / "big").stat().st_size == 15 << 30

    def small() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    undone = subprocess.run([*jail.command, "undo"], capture_output=True, text=True, timeout=300, env=jail.env(),
                            cwd=jail.workspace, stdin=subprocess.DEVNULL, preexec_fn=small)
    assert undone.returncode == 1 and "nothing was changed (--force overwrites)" in undone.stderr, \
        undone.stderr[-2000:]
