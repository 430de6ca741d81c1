"""The timeline of an overlay workspace (#24), in real jails: each checkpoint reads the workspace as the
jail sees it (the merged view), undo writes the session's layer, and the real workspace stays as it was
until `shelljail commit`, which then applies exactly the state undo put back. Every jailed line is guarded
(it refuses to run outside the jail's namespaces); the host side touches only the test's own folders."""

import json

import pytest
from conftest import Jail
from test_timeline import plant, session, tree

OVERLAY = ("--workspace-mode", "overlay")
LOSSES = {
    "truncate": (": > src/main.rs",),
    "move-to-tmp": ("mv src /tmp/",),
    "python-rmtree": ("ls", "py:import shutil; shutil.rmtree('src')"),
}


def _newest(jail: Jail) -> str:
    return json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_a_loss_in_an_overlay_is_undone_in_the_layer_and_the_real_workspace_waits_for_commit(
        any_jail: Jail, loss: str) -> None:
    jail = any_jail
    plant(jail.workspace)
    if jail.user is not None:
        import os

        for path in [jail.workspace, *jail.workspace.rglob("*")]:
            os.chown(path, jail.user, jail.user, follow_symlinks=False)
    before = tree(jail.workspace)
    result = session(jail, *LOSSES[loss], options=OVERLAY)
    assert "status 0" in result.stdout, (result.stdout, result.stderr)
    assert tree(jail.workspace) == before  # the layer took it
    name = _newest(jail)
    assert jail.cli("diff", name, "--names").stdout.strip(), "the command changed nothing: the test shows nothing"
    shown = jail.cli("timeline", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)["commands"]
    assert rows[-1]["changes"]["changed"] or rows[-1]["changes"]["deleted"], rows

    undone = jail.cli("undo")
    assert undone.returncode == 0, (undone.stdout, undone.stderr)
    assert tree(jail.workspace) == before  # undo wrote the layer, not the real workspace
    events = [json.loads(line)["event"] for line in jail.cli("log", name, "--json").stdout.splitlines()]
    assert "overlay-undo" in events
    # The merged view is the state before the command, byte for byte: the layer now differs from the real
    # workspace in nothing (type, mode, content, symlink target), so there is nothing to commit.
    assert "changed nothing" in jail.cli("diff", name, "--names").stdout
    assert "nothing to commit" in jail.cli("commit", name).stderr
    assert tree(jail.workspace) == before


def test_undo_in_an_overlay_committed_whole_puts_the_real_workspace_back(jail: Jail) -> None:
    """Committed whole: the changes are the real workspace's and the layer is empty, so undo works on the
    real workspace, as for a read-write session."""
    plant(jail.workspace)
    before = tree(jail.workspace)
    result = session(jail, "echo changed > src/main.rs && rm run.sh", options=OVERLAY)
    assert "status 0" in result.stdout, (result.stdout, result.stderr)
    name = _newest(jail)
    assert jail.cli("commit", name).returncode == 0
    assert (jail.workspace / "src" / "main.rs").read_text() == "changed\n" and not (jail.workspace / "run.sh").exists()
    undone = jail.cli("undo")
    assert undone.returncode == 0, undone.stderr
    assert tree(jail.workspace) == before


def test_undo_of_a_discarded_overlay_changes_nothing(jail: Jail) -> None:
    plant(jail.workspace)
    before = tree(jail.workspace)
    result = session(jail, "rm -rf src", options=OVERLAY)
    assert "status 0" in result.stdout, (result.stdout, result.stderr)
    assert jail.cli("discard", _newest(jail)).returncode == 0
    undone = jail.cli("undo")
    assert undone.returncode == 1 and "discarded" in undone.stderr, undone.stderr
    assert tree(jail.workspace) == before


def test_a_size_capped_overlay_has_a_timeline_too(jail: Jail) -> None:
    """limits.disk: the layer lives on a tmpfs only the jail sees, copied out at the end; the checkpoints
    read the jail's view all the same, the last one after the jail is gone, and undo writes the copy."""
    plant(jail.workspace)
    before = tree(jail.workspace)
    capped = jail.root / "capped.toml"
    capped.write_text('extends = "coding-agent"\n[filesystem]\nworkspace = "overlay"\n[limits]\ndisk = "6M"\n')
    result = session(jail, "rm -rf src && echo new > fresh.txt", "echo more >> fresh.txt", options=("-p", str(capped)))
    assert result.stdout.count("status 0") == 2, (result.stdout, result.stderr)
    rows = json.loads(jail.cli("timeline", "--json").stdout)["commands"]
    assert rows[1]["changes"]["changed"] == ["fresh.txt"], rows  # the last point, read after the jail ended
    assert jail.cli("undo", "--to", str(rows[0]["point"])).returncode == 0
    assert "changed nothing" in jail.cli("diff", _newest(jail), "--names").stdout
    assert tree(jail.workspace) == before


def test_restore_at_in_an_overlay_puts_back_one_path_in_the_layer(jail: Jail) -> None:
    plant(jail.workspace)
    before = tree(jail.workspace)
    result = session(jail, ": > src/main.rs && rm run.sh", options=OVERLAY)
    assert "status 0" in result.stdout, (result.stdout, result.stderr)
    rows = json.loads(jail.cli("timeline", "--json").stdout)["commands"]
    restored = jail.cli("restore", "--at", str(rows[0]["point"]), "src/main.rs")
    assert restored.returncode == 0, restored.stderr
    assert jail.cli("diff", _newest(jail), "--names").stdout.splitlines() == ["D run.sh"]  # the rest still there
    assert tree(jail.workspace) == before
