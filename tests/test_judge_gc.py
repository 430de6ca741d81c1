"""judge.decide pauses Python's cycle collector while it decides (#23: linear cost on long lines) and leaves
it as it found it, on and off, also when the line cannot be decided."""

import gc
from collections.abc import Iterator, KeysView, Mapping

import pytest

from interposer.judge import Policy, decide
from jail.policy import environment, profile


@pytest.fixture(scope="module")
def policy() -> Policy:
    loaded = profile.load("coding-agent")
    env = environment.build(loaded.environment, {}, {"workspace": "/w/p", "home": "/home/u", "user": "u"})
    return Policy(loaded.interposer, "/w/p", "/home/u", env)


class Watching(Mapping[str, str]):
    """An environment that records whether the collector ran while the judge read it, and can fail."""

    def __init__(self, values: dict[str, str], fail: bool = False) -> None:
        self.values = values
        self.enabled_while_read: list[bool] = []
        self.fail = fail

    def keys(self) -> KeysView[str]:  # {**env, ...} reads the keys first
        self.enabled_while_read.append(gc.isenabled())
        if self.fail:
            raise RuntimeError("a failure inside the decision")
        return self.values.keys()

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_paused_during_and_restored_after(policy: Policy, enabled: bool) -> None:
    env = Watching(dict(policy.env))
    (gc.enable if enabled else gc.disable)()
    try:
        decision = decide("rm -rf ~ && echo x > f", "/w/p", policy._replace(env=env))
        assert gc.isenabled() is enabled
    finally:
        gc.enable()
    assert decision.decision == "deny"
    assert env.enabled_while_read == [False]


def test_collector_restored_when_the_decision_fails(policy: Policy) -> None:
    env = Watching(dict(policy.env), fail=True)
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        decide("ls", "/w/p", policy._replace(env=env))
    assert gc.isenabled()
