"""The one option reader (interposer/programs/options.py) with the catalogue's grammars, where the resolver
and the trash read options: each case is a line the old hand-written readers misread (#23)."""

from __future__ import annotations

from pathlib import Path

import pytest

from interposer.check import policy_for
from interposer.judge import decide
from interposer.programs.options import Grammar, command_start, given, values
from interposer.words import Word
from jail.policy import profile

STOPPED = ("deny", "ask")


def words(*texts: str) -> list[Word]:
    return [Word(t, True, False, t) for t in texts]


def test_given_reads_bundles_values_and_stops_at_the_double_dash() -> None:
    rules = Grammar(frozenset({"-u", "--user"}))
    found = [(o, v.value if v else None) for o, v in given(words("-Eu", "root", "-uadm", "x", "--user=a", "--user",
                                                                    "b", "-v", "--", "-r"), rules)]
    assert found == [("-E", None), ("-u", "root"), ("-u", "adm"), ("--user", "a"), ("--user", "b"), ("-v", None)]


def test_values_takes_the_names_as_value_options_and_command_start_skips_them() -> None:
    assert [w.value for w in values(words("-f", "a", "-fb", "--file=c", "x"), ("-f", "--file"))] == ["a", "b", "c"]
    assert command_start(words("-0n", "1", "rm", "-rf"), Grammar(frozenset({"-n"}))) == 2
    assert command_start(words("-x", "--", "-rm"), Grammar()) == 2


@pytest.fixture
def policy(tmp_path: Path):
    return policy_for(profile.load("coding-agent"), str(tmp_path), True)


@pytest.mark.parametrize("line", [
    "xargs -0n 1 rm -rf ~",  # -n's value ends the bundle: rm is the command, not `1`
    "xargs -l rm -rf ~",  # -l and -e take a value only attached (-l1): rm is the command
    "xargs -e rm -rf ~",
    "env -S'rm -rf ~'",  # -S with its string attached
    "env -iC / rm -rf etc",  # -C in a bundle: etc is /etc
    "sed -ne '1e rm -rf ~' notes.txt",  # the script given in a bundle ending in -e
])
def test_lines_the_old_readers_misread_are_stopped(policy, tmp_path: Path, line: str) -> None:
    assert decide(line, str(tmp_path), policy).decision in STOPPED, line


@pytest.mark.parametrize("line", ["xargs -0n 1 echo", "xargs -l echo", "env -iC . ls", "sed -ne 's/a/b/p' notes.txt",
                                  "watch -n 1 ls", "make -C sub -f build.mk all"])
def test_their_benign_twins_are_allowed(policy, tmp_path: Path, line: str) -> None:
    assert decide(line, str(tmp_path), policy).decision == "allow", line


def test_env_reads_only_its_own_options_not_the_commands(policy, tmp_path: Path) -> None:
    """`env grep -S x f`: -S is grep's, not env's split string."""
    decision = decide("env grep -S pattern notes.txt", str(tmp_path), policy)
    assert decision.decision == "allow" and [c["argv"][0] for c in decision.commands] == ["grep"]
