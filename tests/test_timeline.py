"""The workspace timeline (#24), in real jails: each way a command loses work, then `shelljail undo`
puts the workspace back byte for byte; undo of undo; restore --at of one path; files changed outside
the session are not overwritten without --force; a supervisor killed mid-session leaves a timeline that
restores; an ordinary user's session; hostile trees (setuid bits, sockets, a directory swapped for a
symlink out) are never followed or restored as they were made.

Each session runs a small driver (python3 -c) that starts one `bash -c LINE` per command, as an agent
does: each line is a top-level command, so each gets its checkpoint. Every line is guarded (it refuses
to run outside the jail's namespaces); the host side touches only the test's own folders.
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from conftest import Jail, guarded, host_namespaces

DRIVER = """\
import os, subprocess, sys
if any(os.readlink(f"/proc/self/ns/{name}") == ident for name, ident in %r.items()):
    sys.exit("REFUSED: not jailed")
for item in sys.argv[1:]:
    if item.startswith("py:"):  # the agent's own program at work (an edit tool, a cleanup), no shell
        exec(item[3:])
        continue
    done = subprocess.run(["/bin/bash", "-c", item])
    print("status", done.returncode, flush=True)
"""


def driver() -> str:
    return DRIVER % (host_namespaces(),)


def session(jail: Jail, *items: str, **kwargs) -> subprocess.CompletedProcess[str]:
    """One session running each item in order: a shell line as a top-level command, or (py:CODE) the
    agent's own Python, which changes the workspace with no shell."""
    return jail.run("/usr/bin/python3", "-c", driver(), *(i if i.startswith("py:") else guarded(i) for i in items),
                    interposer=True, **kwargs)


def tree(root: Path) -> dict[str, tuple]:
    """The test's workspace as (type, mode, content or target) per path: symlinks never followed."""
    found = {}
    for directory, names, files in os.walk(root):
        for name in names + files:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[relative] = ("symlink", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[relative] = ("dir", stat.S_IMODE(st.st_mode))
            elif stat.S_ISREG(st.st_mode):
                found[relative] = ("file", stat.S_IMODE(st.st_mode), Path(path).read_bytes())
            else:
                found[relative] = ("other",)
    return found


def plant(workspace: Path) -> None:
    (workspace / "src").mkdir()
    (workspace / "src" / "main.rs").write_text("fn main() { println!(\"hi\"); }\n")
    (workspace / "src" / "lib.rs").write_bytes(bytes(range(256)) * 40)
    (workspace / "run.sh").write_text("#!/bin/sh\necho run\n")
    (workspace / "run.sh").chmod(0o750)
    (workspace / "link").symlink_to("src/main.rs")
    (workspace / "empty").mkdir(mode=0o711)
    (workspace / "empty").chmod(0o711)


LOSSES = {
    "truncate": ": > src/main.rs",
    "cp-dev-null": "cp /dev/null src/lib.rs",
    "dd": "dd if=/dev/zero of=src/main.rs bs=10 count=1 status=none",
    "sed-i": "sed -i 's/.*//' src/main.rs",
    "move-to-tmp": "mv src /tmp/",
    "tar-over": "mkdir -p /tmp/t/src && echo tarred > /tmp/t/src/main.rs && tar -C /tmp/t -cf /tmp/t.tar src && "
                "tar -xf /tmp/t.tar",
    "ln-sf-over": "ln -sf /etc/hostname run.sh",
    "python-rmtree": ("ls", "py:import shutil; shutil.rmtree('src')"),
    "script": "printf 'rm -rf src empty\\nchmod 600 run.sh\\necho new > added.txt\\n' > clean.sh && sh clean.sh",
    "formatter": ("true", "py:import pathlib; [p.write_bytes(p.read_bytes().upper()) "
                          "for p in pathlib.Path('.').rglob('*.rs')]"),
}


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_each_loss_is_undone_byte_for_byte(jail: Jail, loss: str) -> None:
    plant(jail.workspace)
    before = tree(jail.workspace)
    items = LOSSES[loss]
    result = session(jail, *(items if isinstance(items, tuple) else (items,)))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "status 0" in result.stdout, (result.stdout, result.stderr)
    assert tree(jail.workspace) != before, "the command changed nothing: the test shows nothing"

    undone = jail.cli("undo")
    assert undone.returncode == 0, (undone.stdout, undone.stderr)
    assert tree(jail.workspace) == before


def test_undo_of_undo_and_to_a_named_point(jail: Jail) -> None:
    plant(jail.workspace)
    first = tree(jail.workspace)
    result = session(jail, "echo one > a.txt", "echo two >> a.txt && rm link", "rm -rf src")
    assert result.stdout.count("status 0") == 3, (result.stdout, result.stderr)
    after = tree(jail.workspace)
    rows = json.loads(jail.cli("timeline", "--json").stdout)["commands"]
    assert [r["command"].rsplit("\n", 1)[-1] for r in rows] == ["echo one > a.txt", "echo two >> a.txt && rm link",
                                                                 "rm -rf src"]
    assert rows[0]["changes"]["added"] == ["a.txt"]
    assert rows[1]["changes"]["changed"] == ["a.txt"] and rows[1]["changes"]["deleted"] == ["link"]
    assert set(rows[2]["changes"]["deleted"]) == {"src", "src/main.rs", "src/lib.rs"}

    assert jail.cli("undo", "--to", str(rows[0]["point"])).returncode == 0
    assert tree(jail.workspace) == first  # before the first command: a.txt gone again, src and link back
    undone = jail.cli("undo")  # the undo itself is the last command now
    assert undone.returncode == 0, undone.stderr
    assert tree(jail.workspace) == after


def test_restore_at_puts_back_one_path_only(jail: Jail) -> None:
    plant(jail.workspace)
    original = (jail.workspace / "src" / "main.rs").read_bytes()
    result = session(jail, "echo broken > src/main.rs && echo also > src/lib.rs")
    assert "status 0" in result.stdout, result.stderr
    point = json.loads(jail.cli("timeline", "--json").stdout)["commands"][0]["point"]
    restored = jail.cli("restore", "--at", str(point), "src/main.rs")
    assert restored.returncode == 0, restored.stderr
    assert (jail.workspace / "src" / "main.rs").read_bytes() == original
    assert (jail.workspace / "src" / "lib.rs").read_text() == "also\n"
    outside = jail.cli("restore", "--at", str(point), str(jail.root))
    assert outside.returncode == 1 and "is not inside the session's workspace" in outside.stderr


def test_a_file_changed_after_the_session_is_not_overwritten_without_force(jail: Jail) -> None:
    plant(jail.workspace)
    result = session(jail, "echo agent > src/main.rs")
    assert "status 0" in result.stdout, result.stderr
    (jail.workspace / "src" / "main.rs").write_text("the person's own edit\n")  # after the session
    refused = jail.cli("undo")
    assert refused.returncode == 1
    assert "changed since the session's last point: src/main.rs" in refused.stderr
    assert "nothing was changed (--force overwrites)" in refused.stderr
    assert (jail.workspace / "src" / "main.rs").read_text() == "the person's own edit\n"
    forced = jail.cli("undo", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (jail.workspace / "src" / "main.rs").read_text().startswith("fn main()")


def test_a_killed_supervisor_leaves_a_timeline_that_restores(jail: Jail) -> None:
    plant(jail.workspace)
    before = tree(jail.workspace)
    lines = [guarded(line) for line in ("rm -rf src", "echo x > added", "touch ready && sleep 3607")]
    process = subprocess.Popen([*jail.command, "run", "-w", str(jail.workspace), "--interposer", "on", "--ask",
                                "deny", "--", "/usr/bin/python3", "-c", driver(), *lines], env=jail.env(),
                               cwd=jail.workspace, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (jail.workspace / "ready").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # the supervisor: no final point, no session end
    process.communicate(timeout=60)
    _wait_for_jail_gone()
    rows = json.loads(jail.cli("timeline", "--json").stdout)["commands"]
    assert len(rows) == 3 and rows[2]["changes"] is None
    undone = jail.cli("undo", "--to", str(rows[0]["point"]))
    # The last command's own changes (ready) cannot be told from a change made outside the session.
    assert undone.returncode == 1 and "the session ended without a final one" in undone.stderr
    forced = jail.cli("undo", "--to", str(rows[0]["point"]), "--force")
    assert forced.returncode == 0, forced.stderr
    assert tree(jail.workspace) == before


def _wait_for_jail_gone() -> None:
    from conftest import sleepers

    deadline = time.monotonic() + 30
    while sleepers("3607") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sleepers("3607") == []


def test_an_ordinary_users_session_is_undone(nobody_jail: Jail) -> None:
    jail = nobody_jail
    (jail.workspace / "notes.txt").write_text("keep me\n")
    os.chown(jail.workspace / "notes.txt", jail.user, jail.user)
    result = session(jail, ": > notes.txt")
    assert "status 0" in result.stdout, (result.stdout, result.stderr)
    assert (jail.workspace / "notes.txt").read_text() == ""
    undone = jail.cli("undo")
    assert undone.returncode == 0, undone.stderr
    assert (jail.workspace / "notes.txt").read_text() == "keep me\n"
    assert (jail.workspace / "notes.txt").stat().st_uid == jail.user


def test_a_setuid_bit_is_never_restored(jail: Jail) -> None:
    # Host side, in the test's own workspace: a setuid file there before the session (root's jail
    # could never make one: the setid guard denies it).
    program = jail.workspace / "program"
    program.write_bytes(b"\x7fELF not really\n")
    program.chmod(0o4755)
    result = session(jail, "rm -f program")
    assert "status 0" in result.stdout, result.stderr
    assert jail.cli("undo").returncode == 0
    assert program.read_bytes() == b"\x7fELF not really\n"
    assert stat.S_IMODE(program.stat().st_mode) == 0o755


def test_a_directory_swapped_for_a_symlink_out_is_never_written_through(jail: Jail) -> None:
    plant(jail.workspace)
    canary = jail.root / "canary"
    canary.mkdir()
    (canary / "main.rs").write_text("the canary's own\n")
    result = session(jail, f"rm -rf src && ln -s {canary} src")
    assert "status 0" in result.stdout, result.stderr
    assert jail.cli("undo").returncode == 0
    assert (jail.workspace / "src").is_dir() and not (jail.workspace / "src").is_symlink()
    assert (jail.workspace / "src" / "main.rs").read_text().startswith("fn main()")
    assert sorted(os.listdir(canary)) == ["main.rs"] and (canary / "main.rs").read_text() == "the canary's own\n"


def test_sockets_and_symlinks_out_are_recorded_never_opened(jail: Jail) -> None:
    plant(jail.workspace)
    result = session(jail, "true", "py:import socket; socket.socket(socket.AF_UNIX).bind('sock')",
                     "ln -s /etc/shadow secret && echo after > after.txt", "rm -f sock secret after.txt")
    assert result.stdout.count("status 0") == 3, (result.stdout, result.stderr)
    rows = json.loads(jail.cli("timeline", "--json").stdout)["commands"]
    assert rows[0]["changes"]["added"] == ["sock"] and set(rows[1]["changes"]["added"]) == {"secret", "after.txt"}
    undone = jail.cli("undo")  # before the rm
    assert undone.returncode == 1  # the socket is named, not recreated
    assert "not restored: sock: a socket is not recreated" in undone.stderr
    assert os.readlink(jail.workspace / "secret") == "/etc/shadow"
    assert (jail.workspace / "after.txt").read_text() == "after\n"


def test_caches_are_left_out(jail: Jail) -> None:
    plant(jail.workspace)
    result = session(jail, "mkdir -p target/debug && head -c 100000 /dev/urandom > target/debug/big && echo a > a")
    assert "status 0" in result.stdout, result.stderr
    rows = json.loads(jail.cli("timeline", "--json").stdout)["commands"]
    assert rows[0]["changes"]["added"] == ["a"]


@pytest.mark.parametrize("seed", range(6))
def test_the_inotify_rescan_sees_what_a_full_walk_sees(tmp_path: Path, seed: int) -> None:
    """Pure (a folder of the test's own): after each burst of random changes, the checkpoint's state
    (most of them from the directories inotify named) equals a fresh walk of everything."""
    import random

    from jail.recovery.timeline import Timeline, Walk, read_points, states_of

    rng = random.Random(seed)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    timeline = Timeline(str(tmp_path / "timeline"), str(workspace), (), 1 << 30, 1 << 20)
    timeline.start()
    for step in range(40):
        for _ in range(rng.randint(1, 6)):
            dirs = [workspace, *(p for p in workspace.rglob("*") if p.is_dir() and not p.is_symlink())]
            files = [p for p in workspace.rglob("*") if p.is_file() and not p.is_symlink()]
            where = rng.choice(dirs)
            action = rng.choice(["write", "write", "append", "delete", "mkdir", "rmtree", "rename-dir", "symlink",
                                 "chmod", "rename-file", "link"])
            if action == "write":
                (where / f"f{rng.randint(0, 9)}").write_bytes(rng.randbytes(rng.randint(0, 300)))
            elif action == "append" and files:
                with open(rng.choice(files), "ab") as f:
                    f.write(b"x")
            elif action == "delete" and files:
                rng.choice(files).unlink()
            elif action == "mkdir":
                (where / f"d{rng.randint(0, 4)}").mkdir(exist_ok=True)
            elif action == "rmtree" and where != workspace:
                shutil.rmtree(where)
            elif action == "rename-dir" and where != workspace:
                target = workspace / f"moved{step}"
                if not target.exists():
                    where.rename(target)
            elif action == "symlink":
                link = where / f"l{rng.randint(0, 3)}"
                if not link.exists() and not link.is_symlink():
                    link.symlink_to("elsewhere")
            elif action == "chmod" and files:
                rng.choice(files).chmod(rng.choice([0o600, 0o644, 0o755]))
            elif action == "rename-file" and files:
                rng.choice(files).rename(where / f"r{step}")
            elif action == "link" and files and not (where / f"h{step}").exists():  # both names' ctime change
                os.link(rng.choice(files), where / f"h{step}")
        timeline.checkpoint(f"step {step}")
        root = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fresh = Walk(root, None, {}, timeline.skip, 1 << 20).run()
        finally:
            os.close(root)
        assert {p: e["id"] for p, e in timeline.state.items()} == {p: e["id"] for p, e in fresh.items()}, step
        recorded = states_of(read_points(str(tmp_path / "timeline")))[-1]  # what undo would rebuild
        assert {p: e["id"] for p, e in recorded.items()} == {p: e["id"] for p, e in fresh.items()}, step
    timeline.finish()


@pytest.mark.parametrize("line, with_timeline, without", [
    ("truncate -s 0 src/main.rs", "allow", "ask"),
    ("shred src/main.rs", "allow", "ask"),
    ("chmod -R 700 .", "allow", "ask"),
    ("chown -R 1000 .", "ask", "ask"),  # owners are not what undo puts back
    ("truncate -s 0 src/main.rs /home/user/.bashrc", "deny", "deny"),  # outside: denied either way
    ("truncate -s 0 $FILE", "ask", "ask"),  # where it writes is only known when it runs
    ("rm -rf \"$BUILD\"/*", "allow", "ask"),  # only the workspace lasts: an unknown delete is undoable
])
def test_with_the_timeline_undoable_changes_inside_the_workspace_need_no_person(line: str, with_timeline: str,
                                                                              without: str) -> None:
    from conftest import judge_policy

    from interposer.judge import decide

    policy = judge_policy(home_binds=())
    assert decide(line, "/home/user/project", policy._replace(timeline=True)).decision == with_timeline
    assert decide(line, "/home/user/project", policy).decision == without


def test_a_truncation_runs_unasked_with_the_timeline_and_is_undone(jail: Jail) -> None:
    plant(jail.workspace)
    before = tree(jail.workspace)
    off = jail.root / "no-timeline.toml"
    off.write_text('extends = "coding-agent"\n[timeline]\nenabled = false\n')
    asked = session(jail, "truncate -s 0 src/main.rs", options=("-p", str(off)))
    assert "status 126" in asked.stdout and "destroys file contents" in asked.stderr, asked.stderr
    result = session(jail, "truncate -s 0 src/main.rs")
    assert "status 0" in result.stdout, result.stderr
    assert (jail.workspace / "src" / "main.rs").read_bytes() == b""
    assert jail.cli("undo").returncode == 0
    assert tree(jail.workspace) == before


def test_past_its_cap_the_oldest_points_are_merged_and_the_newest_still_undo(jail: Jail) -> None:
    capped = jail.root / "capped.toml"
    capped.write_text('extends = "coding-agent"\n[timeline]\nmax_bytes = "300K"\n')
    lines = [f"head -c 60000 /dev/urandom > big && echo {n} > version" for n in range(12)]
    result = session(jail, *lines, options=("-p", str(capped)))
    assert result.stdout.count("status 0") == 12, (result.stdout, result.stderr)
    final = (jail.workspace / "big").read_bytes()
    session_id = json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
    events = [json.loads(line) for line in jail.cli("log", session_id, "--json").stdout.splitlines()]
    merges = [e for e in events if e["event"] == "timeline-merged"]
    assert merges and not any(e["event"] == "timeline-off" for e in events), [e["event"] for e in events]
    store = jail.home / ".local" / "state" / "shelljail" / "sessions" / session_id / "timeline" / "packs"
    assert sum(p.stat().st_size for p in store.iterdir()) <= 300 * 1024
    rows = json.loads(jail.cli("timeline", "--json").stdout)["commands"]
    assert 1 < len(rows) < 12 and rows[-1]["command"].endswith(lines[-1])  # the oldest merged away
    undone = jail.cli("undo", "--to", str(rows[0]["point"]))  # the oldest point left
    assert undone.returncode == 0, undone.stderr
    kept = 12 - len(rows)
    assert (jail.workspace / "version").read_text() == f"{kept - 1}\n"
    assert jail.cli("undo").returncode == 0  # and back
    assert (jail.workspace / "big").read_bytes() == final


def test_an_unknown_delete_is_asked_where_the_jail_writes_something_lasting_outside(jail: Jail) -> None:
    plant(jail.workspace)
    kept = jail.root / "kept"
    kept.mkdir()
    (kept / "data").write_text("the person's\n")
    writable = jail.root / "writable.toml"
    writable.write_text(f'extends = "coding-agent"\n[filesystem]\nread_write = ["{kept}"]\n')
    (jail.workspace / "where").write_text(str(kept))
    asked = session(jail, 'rm -rf "$(cat where)"/*', options=("-p", str(writable)))
    assert "status 126" in asked.stdout and "only known when it runs" in asked.stderr, asked.stderr
    assert (kept / "data").exists()
    check = jail.cli("check", "-p", str(writable), "--json", 'rm -rf "$D"/*')
    assert json.loads(check.stdout)["decision"] == "ask"
    (jail.workspace / "where").write_text("src")
    result = session(jail, 'rm -rf "$(cat where)"/*')  # the default jail: only the workspace lasts
    assert "status 0" in result.stdout, result.stderr
    assert not (jail.workspace / "src" / "main.rs").exists()
    assert jail.cli("undo").returncode == 0
    assert (jail.workspace / "src" / "main.rs").read_text().startswith("fn main()")


def test_a_read_write_folder_under_tmp_is_not_the_jails_scratch(jail: Jail) -> None:
    """A profile's read_write folder under /tmp outlives the jail: deleting in it is outside the workspace."""
    kept = jail.root / "kept"  # the test's tmp_path is under /tmp
    kept.mkdir()
    (kept / "data").write_text("the person's\n")
    writable = jail.root / "writable.toml"
    writable.write_text(f'extends = "coding-agent"\n[filesystem]\nread_write = ["{kept}"]\n')
    denied = session(jail, f"rm -rf {kept}/data", options=("-p", str(writable)))
    assert "status 126" in denied.stdout and "outside the workspace" in denied.stderr, denied.stderr
    assert (kept / "data").exists()
    check = json.loads(jail.cli("check", "-p", str(writable), "--json", "rm -rf /tmp/scratch").stdout)
    assert check["decision"] == "allow"  # the jail's own /tmp is still scratch


def test_once_the_timeline_stopped_lines_that_need_no_undo_still_run(jail: Jail) -> None:
    """A tree past the walk's depth stops the timeline: truncate is then asked (denied here, --ask deny)
    like without a timeline, and an ordinary write runs as before."""
    plant(jail.workspace)
    result = session(jail, "mkdir -p \"$(printf 'd/%.0s' $(seq 300))\"", "truncate -s 0 src/main.rs",
                     "echo still > works.txt")
    assert result.stdout.split() == ["status", "0", "status", "126", "status", "0"], (result.stdout, result.stderr)
    assert "destroys file contents" in result.stderr and "the timeline is off" in result.stderr
    assert (jail.workspace / "works.txt").read_text() == "still\n"
    assert (jail.workspace / "src" / "main.rs").read_text().startswith("fn main()")


def test_the_cap_counts_the_points_lines_too(jail: Jail) -> None:
    """touch of many files stores no content, only a line of metadata per command: the cap holds all the
    same (merged, then stopped), where before the lines grew without bound."""
    many = jail.workspace / "many"
    many.mkdir()
    for index in range(3000):
        (many / f"f{index:05d}").write_text("x")
    capped = jail.root / "capped.toml"
    capped.write_text('extends = "coding-agent"\n[timeline]\nmax_bytes = "300K"\n')
    lines = [f"touch -d @{1_000_000 + n} many/*" for n in range(20)]
    result = session(jail, *lines, options=("-p", str(capped)))
    assert result.stdout.count("status 0") == 20, (result.stdout, result.stderr)
    session_id = json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
    timeline = jail.home / ".local" / "state" / "shelljail" / "sessions" / session_id / "timeline"
    used = sum(p.stat().st_size for p in timeline.rglob("*") if p.is_file())
    line = max(len(x) for x in (timeline / "points.jsonl").read_bytes().splitlines())
    assert used <= 300 * 1024 + line, (used, line)


def test_a_write_through_a_second_link_in_a_cache_is_seen(jail: Jail) -> None:
    """A hard link in a cache folder (left out, unwatched): a write through it changes a workspace file with
    no inotify event where the timeline watches; the checkpoint lists the linked file's folder anyway."""
    result = session(jail, "mkdir node_modules && echo one > a.txt && ln a.txt node_modules/x",
                     "echo two > node_modules/x", "echo three > a.txt")
    assert result.stdout.count("status 0") == 3, (result.stdout, result.stderr)
    assert jail.cli("undo").returncode == 0  # before the last command
    assert (jail.workspace / "a.txt").read_text() == "two\n"


def test_a_link_made_since_the_last_full_walk_then_written_through_is_undone(jail: Jail) -> None:
    """ln tells no watch of the first name's folder: the checkpoint after it finds the first name by its
    inode, so a write through the new name is the next command's change, not the one after it."""
    (jail.workspace / "one").mkdir()
    (jail.workspace / "two").mkdir()
    (jail.workspace / "one" / "a").write_text("old\n")
    result = session(jail, "ln one/a two/b", "echo new > two/b", "true")
    assert result.stdout.count("status 0") == 3, (result.stdout, result.stderr)
    rows = json.loads(jail.cli("timeline", "--json").stdout)["commands"]
    assert rows[1]["changes"]["changed"] == ["one/a", "two/b"], rows[1]
    assert rows[2]["changes"]["changed"] == [], rows[2]
    assert jail.cli("undo").returncode == 0  # of `true`: nothing to put back
    assert (jail.workspace / "one" / "a").read_text() == "new\n"
    undone = jail.cli("undo", "--to", str(rows[1]["point"]))
    assert undone.returncode == 0, undone.stderr
    assert (jail.workspace / "one" / "a").read_text() == "old\n"
    assert (jail.workspace / "two" / "b").read_text() == "old\n"


def test_an_agents_configuration_copy_keeps_the_undoable_lines_unasked(jail: Jail) -> None:
    """agent.config = "copy" binds the copy read-write into the jail's home: it outlives the jail but is the
    jail's own (never written back, and the agent's own tools write it unjudged), so the lines undo puts
    back still run unasked; a profile's read_write folder still makes them asked."""
    plant(jail.workspace)
    (jail.home / ".claude").mkdir()
    (jail.home / ".claude" / "settings.json").write_text("{}\n")
    agent = jail.workspace / "claude"  # a stand-in named as the agent is: the claude-code profile, config copied
    agent.write_text("#!/usr/bin/python3\n" + driver())
    agent.chmod(0o755)
    before = tree(jail.workspace)
    (jail.workspace / "where").write_text("src")
    lines = ("truncate -s 0 run.sh", 'rm -rf "$(cat where)"/*', "chmod -R 700 empty")
    result = jail.run("./claude", *map(guarded, lines), interposer=True)
    assert "using profile claude-code" in result.stderr, result.stderr
    assert result.stdout.split() == ["status", "0"] * 3, (result.stdout, result.stderr)
    assert not (jail.workspace / "src" / "main.rs").exists()
    session_id = json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
    start = next(e for e in map(json.loads, jail.cli("log", session_id, "--json").stdout.splitlines())
                 if e["event"] == "session-start")
    assert start["agent_config"]["mode"] == "copy", start
    undone = jail.cli("undo", "--to", str(json.loads(jail.cli("timeline", "--json").stdout)["commands"][0]["point"]))
    assert undone.returncode == 0, undone.stderr
    (jail.workspace / "where").unlink()
    assert tree(jail.workspace) == before
    check = jail.cli("check", "-p", "claude-code", "--json", 'rm -rf "$D"/*')
    assert json.loads(check.stdout)["decision"] == "allow", check.stdout
