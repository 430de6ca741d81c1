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
