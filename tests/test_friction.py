"""False positives of issue #23 seen with real agents, each with its destructive twin, judged in jail semantics
(`shelljail check`: the jail's own home) and in hook semantics (the real home, home_binds None).

Pure: strings judged, nothing run; but for the system script of item 1, which only a jail's decision service
sees (marked `jail`)."""

from __future__ import annotations

import pytest
from conftest import JUDGE_HOME, JUDGE_WORKSPACE, judge_policy

from interposer.judge import Decision, decide

STOPPED = ("deny", "ask")
SEMANTICS = {"jail": (JUDGE_HOME,), "hook": None}  # home_binds: the jail binds something of the home; the hook none


def judged(line: str, semantics: str) -> Decision:
    policy = judge_policy(home_binds=SEMANTICS[semantics])
    return decide(line, JUDGE_WORKSPACE, policy)  # type: ignore[arg-type]


both = pytest.mark.parametrize("semantics", sorted(SEMANTICS))


# -- 2. a function that runs its arguments ("$@"): Codex's shell snapshot ------------------------------------

FUNCTIONS = [
    ('f() { "$@"; }; f git status', 'f() { "$@"; }; f rm -rf ~'),
    ('run() { echo "+ $*"; "$@"; }; run ls -la', 'run() { echo "+ $*"; "$@"; }; run rm -rf /etc'),
    ('g() { "$@"; }; f() { g "$@"; }; f git log', 'g() { "$@"; }; f() { g "$@"; }; f rm -rf ~'),
    ('f() { $@; }; f git diff', 'f() { $@; }; f "rm -rf" ~'),
    ('quiet() { "$@" > /dev/null 2>&1; }; quiet make', 'quiet() { "$@" > /dev/null 2>&1; }; quiet rm -rf ~'),
]


@both
@pytest.mark.parametrize("benign, destructive", FUNCTIONS, ids=[b for b, _ in FUNCTIONS])
def test_a_function_running_its_arguments_is_judged_at_each_call(semantics: str, benign: str,
                                                                 destructive: str) -> None:
    assert judged(benign, semantics).decision == "allow", benign
    decision = judged(destructive, semantics)
    assert decision.decision == "deny" and decision.rule.startswith("delete-"), (destructive, decision)


@both
@pytest.mark.parametrize("line", [
    'f() { "$@"; }',  # never called here: what it runs is unknown
    'f() { "$@"; }; f git status; eval "f rm -rf ~"',  # a call this walk does not see the arguments of
    "f() { \"$@\"; }; f git status; eval $'\\x66 rm -rf ~'",  # ... however the name is spelt
    'f() { "$@"; }; trap f EXIT; f ls',
    'f() { "$@"; }; export -f f; f ls; bash -c "f rm -rf ~"',
    'f() { "$@"; }; f $CMD',
])
def test_a_function_called_where_its_arguments_are_unseen_stays_opaque(semantics: str, line: str) -> None:
    decision = judged(line, semantics)
    assert decision.decision in STOPPED, (line, decision)
