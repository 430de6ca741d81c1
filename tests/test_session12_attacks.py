"""Attacks on this session's changes, by its second reader (each a real problem found, or a check that it holds).

Every destructive line runs inside a real jail, behind `guarded` (the script refuses to run unless its user,
mount and pid namespaces differ from the host's); host-side steps touch only the test's own tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import JUDGE_HOME, JUDGE_WORKSPACE, Jail, guarded, judge_policy

from interposer.judge import Decision, decide

SEMANTICS = {"jail": (JUDGE_HOME,), "hook": None}
both = pytest.mark.parametrize("semantics", sorted(SEMANTICS))


def judged(line: str, semantics: str) -> Decision:
    return decide(line, JUDGE_WORKSPACE, judge_policy(home_binds=SEMANTICS[semantics]))  # type: ignore[arg-type]


# -- a function that runs its arguments, after they were moved -----------------------------------------------
# The walker follows `f() { "$@"; }` into each call with the call's arguments, and forgets them after a
# plain `shift` or `set -- ...`. But bash runs those builtins the same behind `command`, `builtin` or the
# `time` keyword (checked: `f() { command shift; echo "$@"; }; f a b c` prints "b c"), and the walker does
# not see them there: it judges `"$@"` as the call's arguments before the shift (`true rm -rf ~`: allowed)
# while bash runs what is after it (`rm -rf ~`).

MOVED = [
    'f() { command shift; "$@"; }; f true rm -rf ~',
    'f() { builtin shift; "$@"; }; f true rm -rf ~',
    'f() { time shift; "$@"; }; f true rm -rf ~',
    'f() { command -- shift; "$@"; }; f true rm -rf ~',
    'f() { command command shift; "$@"; }; f true rm -rf ~',
    'f() { command set -- rm -rf ~; "$@"; }; f true',
    'f() { time -p set -- rm -rf ~; "$@"; }; f true',
]


SHIFT_BEHIND_BUILTIN = ("interposer/parse.py: _Walker forgets a call's arguments after `shift`/`set --` only when "
                        "the builtin is the command's name (argv[0]); behind command/builtin/time it keeps them")


@both
@pytest.mark.parametrize("line", MOVED)
@pytest.mark.xfail(strict=True, reason=SHIFT_BEHIND_BUILTIN)
def test_shift_behind_a_builtin_leaves_the_arguments_unknown(semantics: str, line: str) -> None:
    assert judged(line, semantics).decision in ("deny", "ask"), line


@pytest.mark.jail
@pytest.mark.xfail(strict=True, reason=SHIFT_BEHIND_BUILTIN)
def test_shift_behind_command_deletes_nothing_in_a_real_jail(tmp_path: Path) -> None:
    jail = Jail(tmp_path)
    (jail.workspace / "keep").write_text("x")
    result = jail.run("/bin/bash", "-c", guarded('f() { command shift; "$@"; }; f true rm -rf ./keep /etc'),
                      interposer=True)
    assert (jail.workspace / "keep").exists(), (result.returncode, result.stderr)
