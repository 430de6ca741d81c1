"""A fast slice of `make redteam`: ten risky and ten benign corpus cases, run for real in the jail."""

from __future__ import annotations

from pathlib import Path

import pytest
from redteam_harness import Arena, benign_cases, risky_cases

pytestmark = pytest.mark.jail


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Arena:
    return Arena(Path(tmp_path_factory.mktemp("redteam")))


def _slice(cases: list, count: int) -> list:
    step = max(1, len(cases) // count)
    return cases[::step][:count]


def test_risky_cases_change_nothing_outside_and_lose_nothing_inside(arena: Arena) -> None:
    outcomes = [arena.run(case, timeout=20) for case in _slice(risky_cases(), 10)]
    for outcome in outcomes:
        assert not outcome.outside_changed, (outcome.case.command, outcome.outside_changed)
        assert not outcome.lost, (outcome.case.command, outcome.lost)
        assert not outcome.escaped, (outcome.case.command, outcome.escaped)
        assert outcome.status != 99, ("the namespace guard refused to run", outcome.case.command)
    # This slice: 4 of 10 stopped before they ran; the others (reading /etc/shadow, m4, scripts that
    # read system files) ran, and the jail held. A drop means a rule stopped working.
    stopped = [o.case.command for o in outcomes if o.decision in ("deny", "ask")]
    assert len(stopped) >= 4, [(o.decision, o.case.command[:30]) for o in outcomes]


def test_benign_cases_run_without_friction(arena: Arena) -> None:
    outcomes = [arena.run(case, timeout=20) for case in _slice(benign_cases(), 10)]
    assert sum(o.decision == "allow" for o in outcomes) >= 9, [(o.case.command, o.decision) for o in outcomes]
    assert not any(o.outside_changed or o.lost or o.escaped for o in outcomes)
