"""Overlay workspaces: the real workspace stays untouched until a person commits what the agent did."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import Jail


def _workspace(jail: Jail) -> None:
    (jail.workspace / "src").mkdir()
    (jail.workspace / "src" / "a.txt").write_text("one\ntwo\n")
    (jail.workspace / "src" / "b.txt").write_text("bee\n")
    (jail.workspace / "docs").mkdir()
    (jail.workspace / "docs" / "readme").write_text("keep\n")
    (jail.workspace / "data.bin").write_bytes(b"\0\1\2")
    if jail.user is not None:
        for path in [jail.workspace, *jail.workspace.rglob("*")]:
            os.chown(path, jail.user, jail.user)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(root.rglob("*"))}


def _newest(jail: Jail) -> str:
    return json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]


def _overlay_run(jail: Jail, script: str, *options: str) -> str:
    result = jail.sh(script, interposer=True, options=("--workspace-mode", "overlay", *options))
    assert result.returncode == 0, result.stderr
    return _newest(jail)


def test_deleting_everything_leaves_the_real_workspace_until_commit(any_jail: Jail) -> None:
    jail = any_jail
    _workspace(jail)
    before = _snapshot(jail.workspace)
    session = _overlay_run(jail, 'rm -rf src docs data.bin && echo new > fresh.txt && '
                                 '[ -z "$(ls -A | grep -v fresh)" ]')
    assert _snapshot(jail.workspace) == before  # nothing changed for real

    names = jail.cli("diff", session, "--names").stdout.splitlines()
    assert names == ["D data.bin", "D docs/", "D docs/readme", "A fresh.txt", "D src/", "D src/a.txt",
                     "D src/b.txt"]
    subset = jail.cli("commit", session, "src/a.txt", "fresh.txt")
    assert subset.returncode == 0, subset.stderr
    after = _snapshot(jail.workspace)
    assert set(before) - set(after) == {"src/a.txt"} and set(after) - set(before) == {"fresh.txt"}
    assert after["src/b.txt"] == b"bee\n" and after["docs/readme"] == b"keep\n"  # exactly the subset
    rest = jail.cli("diff", session, "--names").stdout.splitlines()
    assert "D src/b.txt" in rest and "A fresh.txt" not in rest and "D src/a.txt" not in rest

    everything = jail.cli("commit", session)
    assert everything.returncode == 0, everything.stderr
    assert sorted(p.name for p in jail.workspace.iterdir()) == ["fresh.txt"]  # what the agent left
    assert jail.cli("commit", session).returncode == 1  # committed: nothing left


def test_diff_shows_text_and_binary_changes(jail: Jail) -> None:
    _workspace(jail)
    session = _overlay_run(jail, "printf 'one\\nTWO\\n' > src/a.txt && printf '\\0\\0' > data.bin && "
                                 "mkdir -p new/deep && echo hi > new/deep/x")
    out = jail.cli("diff", session).stdout
    assert out.splitlines()[:5] == ["M data.bin", "A new/", "A new/deep/", "A new/deep/x", "M src/a.txt"]
    assert "--- a/src/a.txt\n+++ b/src/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n" in out
    assert "Binary files a/data.bin and b/data.bin differ" in out
    assert "--- /dev/null\n+++ b/new/deep/x\n@@ -0,0 +1 @@\n+hi\n" in out


def test_a_commit_that_conflicts_with_an_outside_change_is_refused(jail: Jail) -> None:
    _workspace(jail)
    session = _overlay_run(jail, "echo agent > src/a.txt && echo agent > src/b.txt")
    (jail.workspace / "src" / "a.txt").write_text("the person's edit\n")  # after the session started
    refused = jail.cli("commit", session)
    assert refused.returncode == 1 and "src/a.txt (changed outside the session)" in refused.stderr
    assert (jail.workspace / "src" / "b.txt").read_text() == "bee\n"  # nothing applied
    assert jail.cli("commit", session, "src/b.txt").returncode == 0  # the other path is fine
    assert (jail.workspace / "src" / "b.txt").read_text() == "agent\n"
    assert (jail.workspace / "src" / "a.txt").read_text() == "the person's edit\n"


def test_discard_throws_the_layer_away(jail: Jail) -> None:
    _workspace(jail)
    before = _snapshot(jail.workspace)
    session = _overlay_run(jail, "rm -rf src && echo x > y")
    done = jail.cli("discard", session)
    assert done.returncode == 0, done.stderr
    assert _snapshot(jail.workspace) == before
    again = jail.cli("commit", session)
    assert again.returncode == 1 and "already discarded" in again.stderr
    kinds = [json.loads(line)["event"] for line in jail.cli("log", session, "--json").stdout.splitlines()]
    assert "overlay" in kinds and kinds[-1] == "overlay-discard"


def test_overlay_is_refused_for_a_session_without_one(jail: Jail) -> None:
    jail.sh("true")
    result = jail.cli("diff", _newest(jail))
    assert result.returncode == 1 and "did not use an overlay workspace" in result.stderr


AGENT = """\
import subprocess
steps = [
    "i=0; while head -c 400000 /dev/urandom > target/debug/incremental-$i; do i=$((i+1)); done; echo wrote $i",
    "rm -rf target",
    "mkdir -p target/debug && head -c 400000 /dev/urandom > target/debug/app && echo built > status.txt",
]
for step in steps:
    r = subprocess.run(["/bin/bash", "-c", step], capture_output=True, text=True)
    print(r.returncode, r.stdout.strip(), r.stderr.strip().splitlines()[-1:] if r.stderr else "")
"""


def test_the_incident_a_full_disk_then_rm_rf_target_then_the_work_goes_on(any_jail: Jail, tmp_path: Path) -> None:
    """An agent fills its disk cap with a build cache, removes the cache, and finishes; nothing else is lost."""
    jail = any_jail
    debug = jail.workspace / "target" / "debug"
    debug.mkdir(parents=True)
    for i in range(300):
        (debug / f"dep-{i}.rlib").write_bytes(b"x" * 2000)
    (jail.workspace / "src").mkdir()
    (jail.workspace / "src" / "main.rs").write_text("fn main() {}\n")
    (jail.workspace / "agent.py").write_text(AGENT)
    if jail.user is not None:
        for path in [jail.workspace, *jail.workspace.rglob("*")]:
            os.chown(path, jail.user, jail.user)
    profile = jail.root / "capped.toml"
    profile.write_text('extends = "coding-agent"\n[filesystem]\nworkspace = "overlay"\n[limits]\ndisk = "6M"\n')
    result = jail.cli("run", "-p", str(profile), "-w", str(jail.workspace), "--ask", "deny", "--",
                      "/usr/bin/python3", "agent.py")
    assert result.returncode == 0, result.stderr
    fill, remove, carry_on = result.stdout.splitlines()
    assert fill.startswith("0 wrote ") and "No space left on device" in fill  # the cap, not the host's disk
    assert remove.startswith("0")  # rm -rf target freed the layer...
    assert carry_on.startswith("0")  # ...and the work went on
    session = _newest(jail)
    events = [json.loads(line) for line in jail.cli("log", session, "--json").stdout.splitlines()]
    decisions = [(e.get("command"), e["decision"], e.get("rule")) for e in events if e["event"] == "decision"]
    assert decisions[1] == ("rm -rf target", "allow", "delete-cache")  # the story, step by step
    assert events[0]["limits"]["disk"] == 6 << 20
    [summary] = [e for e in events if e["event"] == "overlay-changes"]
    assert summary["deleted"] >= 300 and summary["added"] >= 2 and summary["review"] == f"shelljail diff {session}"
    # The real workspace: untouched until the person commits; then exactly what the agent left.
    assert len(list(debug.iterdir())) == 300 and (jail.workspace / "src" / "main.rs").exists()
    assert jail.cli("commit", session).returncode == 0
    assert sorted(p.name for p in debug.iterdir()) == ["app"]
    assert (jail.workspace / "status.txt").read_text() == "built\n"
    assert (jail.workspace / "src" / "main.rs").read_text() == "fn main() {}\n"


def test_a_disk_cap_needs_an_overlay_workspace(jail: Jail, tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text('extends = "coding-agent"\n[limits]\ndisk = "6M"\n')
    result = jail.cli("run", "-p", str(profile), "-w", str(jail.workspace), "--", "/bin/true")
    assert result.returncode == 125 and "limits.disk" in result.stderr and "--workspace-mode overlay" in result.stderr
