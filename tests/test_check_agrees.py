"""`shelljail check` says what the jail does: both read the paths bound from the home from the jail's view
(jail/policy/view.py:home_binds), so a toolchain folder the profile names but the machine lacks is the jail's
private home in both, and one that exists is the real home's in both."""

from __future__ import annotations

import json
import os

import pytest
from conftest import Jail

pytestmark = pytest.mark.jail

LINES = ("touch ~/.rustup/made-in-the-jail", "touch ~/.cargo/bin/made-in-the-jail")


def test_check_and_the_jail_judge_the_home_alike(jail: Jail) -> None:
    (jail.home / ".cargo" / "bin").mkdir(parents=True)  # bound from the (test's) home; ~/.rustup is absent
    checked = {}
    for line in LINES:
        result = jail.cli("check", "--json", "-w", str(jail.workspace), line)
        assert result.returncode == 0, result.stderr
        checked[line] = json.loads(result.stdout)["decision"]
    assert checked == {LINES[0]: "allow", LINES[1]: "deny"}  # the private home; the real home's folder

    for line in LINES:
        ran = jail.run("/bin/bash", "-c", line, interposer=True)
        assert (ran.returncode == 126) == (checked[line] == "deny"), (line, ran.stderr)
    assert not os.path.exists(jail.home / ".rustup")  # it was made in the jail's own home, gone with it
    assert not os.path.exists(jail.home / ".cargo" / "bin" / "made-in-the-jail")
