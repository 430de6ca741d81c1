"""Second reading of session 13's walk of a line (9c647fb's variables assigned as it runs, the fast paths):
lines where the walk believed a variable, the directory or a command word held one thing while bash gives
it another, so a destructive command was judged as a harmless one (allowed, or taken for another path).

Each line's bash behaviour was checked with echo in place of rm (`bash -c 'X=build; command -- read X
<<< /etc; echo "$X"'` prints /etc). In the hook's semantics (the host: no trash, no read-only root) every
line below was allowed before this change; now it is asked or denied. The benign twins stay allowed, and one
real jail runs the worst form.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import JUDGE_WORKSPACE, SEMANTICS, Jail, guarded, judged

from interposer.judge import Decision


def deleted(decision: Decision) -> list[str | None]:
    return [p for c in decision.commands if c["argv"] and c["argv"][0] == "rm" for p in c["deletes"]]


# Text bash runs as commands that the walk never judged: `rm -rf ~` itself was allowed.
RUNS_UNJUDGED = [
    "! { rm -rf ~; }",  # tree-sitter-bash: the command `{` with arguments rm -rf ~
    "if ! { rm -rf ~; }; then :; fi",
    "time { rm -rf ~; }",
    "time -p { rm -rf ~; }",
    "time if true; then rm -rf ~; fi",
    "time while true; do rm -rf ~; done",
    "time ! rm -rf ~",
    "coproc rm -rf ~",
    "coproc { rm -rf ~; }",
    "coproc X { rm -rf ~; }",
    "shopt -s expand_aliases; alias ls='rm -rf ~'; eval ls",
    "set -o posix; alias ls='rm -rf ~'; eval ls",
    "BASH_ALIASES[ls]='rm -rf ~'; shopt -s expand_aliases; eval ls",
    "trap 'eval ls' EXIT; alias ls='rm -rf ~'",  # the alias is defined before the action runs
    "PS4='$(rm -rf ~)'; set -x; :",
    "Y='$(rm -rf ~)'; : \"${Y@P}\"",
    "mapfile -C 'rm -rf ~ #' -c 1 A < f",
    'f() { "$@"; }; [ -d y ] && f() { echo "$@"; }; f rm -rf ~',  # no y: the first f runs rm -rf ~
    "cat <<EOF\n$(rm -rf ~)\nEOF",  # an unquoted here-document's body is expanded: its $(...) runs
    "cat <<EOF\n`rm -rf ~`\nEOF",  # tree-sitter-bash reads no backquote there
    "cat <<-EOF\n\t$(rm -rf ~)\nEOF",  # nor anything after a <<- tab
    "command rm -rf -v ~",  # rm's -v was taken for command's lookup option -v: nothing judged to run
    "command -p rm -v -rf ~",
]

# A variable assigned where the walk did not see it: (line, the path the walk wrongly believed rm deletes).
ASSIGNED = [
    ('shopt -s lastpipe; X=build; echo /etc | read X; rm -rf "$X"', "/build"),
    ('X=build; command -- read X < f; rm -rf "$X"', "/build"),
    ('X=build; command -p -- read X < f; rm -rf "$X"', "/build"),
    ('X=build; time read X <<< /etc; rm -rf "$X"', "/build"),
    ('X=build; time X=/etc; rm -rf "$X"', "/build"),
    ('X=build; read -ra X < f; rm -rf "$X"', "/build"),  # -a's value bundled: X was taken for -a's, REPLY read
    ('X=build; mapfile -C "X=/etc #" -c 1 A < f; rm -rf "$X"', "/build"),
    ('X=build; X[0]=/etc; rm -rf "$X"', "/build"),  # "$X" is element 0
    ('X=build; X=(/etc); rm -rf "$X"', "/(/etc)"),  # was taken for the word (/etc)
    ('if [ -d y ]; then f() { X=/etc; }; else f() { :; }; fi; X=build; f; rm -rf "$X"', "/build"),
    ('f() { X=/etc; }; [ -d y ] && f() { :; }; X=build; f; rm -rf "$X"', "/build"),
    ("HOME=/home/user/project/build; eval 'HOME=/etc'; rm -rf ~", "/build"),
    ("HOME=/home/user/project/build; . ./env.sh; rm -rf ~", "/build"),
    ('X=build; case a in a) X=/etc ;& b) rm -rf "$X";; esac', "/build"),  # ;& falls into the next item
    ('X=build; case a in a) X=/etc ;;& *) rm -rf "$X";; esac', "/build"),  # ;;& tests the next patterns
    ('X=build; case a in a) X=/etc ;;& b) :;; *) rm -rf "$X";; esac', "/build"),
    ('X=build; builtin declare -n r=X; r=/etc; rm -rf "$X"', "/build"),
    ('X=build; v=X; declare "$v"=; rm -rf "$X"/*', "/build"),  # X is empty: rm -rf /* (4506e72's fast path)
    ('X=build; v=X; declare -- "$v"=; rm -rf "$X"/*', "/build"),  # was taken for a plain X= done already
    ('X=build; export $(echo X)=; rm -rf "$X"/*', "/build"),
    ('X=build; v=X; declare X=build "$v"=; rm -rf "$X"/*', "/build"),
    ('X=build; for i in 1 2; do rm -rf "$X"; f() { X=/etc; }; f; done', "/build"),  # f is defined the 2nd time
    ('X=build; command declare -n r=X; r=/etc; rm -rf "$X"', "/build"),
    ('X=\ncat <<EOF\n${X:=/etc}\nEOF\nrm -rf "$X"', ""),  # the body assigns X: the walk believed X empty
    ('f1() { f2; }; f2() { f3; }; f3() { f4; }; f4() { f5; }; f5() { X=/etc; }; X=build; f1; rm -rf "$X"',
     "/build"),  # calls deeper than the walk follows: what the last one assigns is not known
]

# The directory moved where the walk did not see it: `rm -rf build` deletes /etc/build.
MOVED = [
    "command cd /etc; rm -rf build",
    "builtin cd /etc; rm -rf build",
    "command -- cd /etc; rm -rf build",
    "time cd /etc; rm -rf build",
    "pushd /etc; rm -rf build",
    'eval "cd /etc"; rm -rf build',
    ". ./env.sh; rm -rf build",
    "CDPATH=/; cd etc; rm -rf build",  # no ./etc: cd goes to /etc
    "mapfile -C 'cd /etc #' -c 1 A < f; rm -rf build",
    "for d in a; do command cd /etc; done; rm -rf build",
    "case a in a) cd /etc ;& b) rm -rf build;; esac",
    "for i in 1 2; do rm -rf build; function f { cd /etc; }; f; done",
    "f1() { f2; }; f2() { f3; }; f3() { f4; }; f4() { f5; }; f5() { cd /etc; }; f1; rm -rf build",
]

# The benign twins: what the walk knows still holds.
KNOWN = [
    ('X=build; echo /etc | grep -q e; rm -rf "$X"', "/home/user/project/build"),
    ('X=build; ls | while read -r f; do echo "$f"; done; rm -rf "$X"', "/home/user/project/build"),
    ('X=build; time make; rm -rf "$X"', "/home/user/project/build"),
    ('X=build; command -v rm; rm -rf "$X"', "/home/user/project/build"),
    ('X=build; IFS=, read -ra parts <<< "a,b"; rm -rf "$X"', "/home/user/project/build"),
    ('X=build; f() { echo "$X"; }; f; rm -rf "$X"', "/home/user/project/build"),
    ("eval 'Y=1'; rm -rf ~/project/build", "/home/user/project/build"),
    # a cd that may fail: what follows it is judged where it went and where it was
    ("cd src; rm -rf build", "/home/user/project/src/build /home/user/project/build"),
    ("CDPATH=/; cd ./src; rm -rf build", "/home/user/project/src/build /home/user/project/build"),
    ("pushd src; rm -rf build", "/home/user/project/src/build /home/user/project/build"),
    ("command cd src && rm -rf build", "/home/user/project/src/build"),
    ('X=build; case a in a) X=/etc ;; b) rm -rf "$X";; esac', "/home/user/project/build"),
    ('export A=1 X=build; rm -rf "$X"', "/home/user/project/build"),
    ('X=build; for i in 1 2; do f() { echo "$X"; }; f; rm -rf "$X"; done', "/home/user/project/build"),
    ('declare -x X=build; rm -rf "$X"', "/home/user/project/build"),
    ("cat <<'EOF'\n$(rm -rf ~)\nEOF\nrm -rf build", "/home/user/project/build"),  # quoted: not expanded
    ("cat <<EOF\n$(date) $((1 + 2)) $HOME\nEOF\nrm -rf build", "/home/user/project/build"),
]


@pytest.mark.parametrize("semantics", sorted(SEMANTICS))
@pytest.mark.parametrize("line", RUNS_UNJUDGED)
def test_text_bash_runs_as_commands_is_not_allowed_unread(semantics: str, line: str) -> None:
    decision = judged(line, semantics)
    assert decision.decision in ("ask", "deny"), (line, decision.reason)


@pytest.mark.parametrize("semantics", sorted(SEMANTICS))
@pytest.mark.parametrize(("line", "believed"), ASSIGNED)
def test_a_variable_assigned_unseen_is_not_believed(semantics: str, line: str, believed: str) -> None:
    decision = judged(line, semantics)
    if semantics == "hook":
        assert decision.decision in ("ask", "deny"), (line, decision.reason)
    wrong = JUDGE_WORKSPACE + believed  # or the line is opaque: asked in the jail as well
    assert decision.opaque or all(p is None or p.rstrip("/") != wrong for p in deleted(decision)), \
        (line, deleted(decision))


@pytest.mark.parametrize("semantics", sorted(SEMANTICS))
@pytest.mark.parametrize("line", MOVED)
def test_a_directory_moved_unseen_is_not_believed(semantics: str, line: str) -> None:
    decision = judged(line, semantics)
    if semantics == "hook":
        assert decision.decision in ("ask", "deny"), (line, decision.reason)
    # seen: the line is judged where the cd went (or in a directory not known), not only where it was (a cd
    # may fail, so there too: parse._State.others)
    assert decision.opaque or any(p is None or p.startswith("/etc/") for p in deleted(decision)), \
        (line, deleted(decision))


@pytest.mark.parametrize("semantics", sorted(SEMANTICS))
@pytest.mark.parametrize(("line", "path"), KNOWN)
def test_what_is_still_known_stays_known(semantics: str, line: str, path: str) -> None:
    decision = judged(line, semantics)
    assert not decision.opaque, (line, decision.opaque_reasons)
    assert set(deleted(decision)) == set(path.split()), (line, deleted(decision))


@pytest.mark.parametrize("semantics", sorted(SEMANTICS))
@pytest.mark.parametrize("line", ["alias ls='ls -lrta'", "alias a=b; alias c='d e'", "time make", "command -v rm",
                                  "command -pV rm"])
def test_alias_definitions_alone_time_and_lookups_stay_allowed(semantics: str, line: str) -> None:
    """An alias changes only what is read after it: a line that defines aliases and runs nothing is allowed."""
    decision = judged(line, semantics)
    assert decision.decision == "allow" and not decision.opaque, (line, decision.reason)


@pytest.mark.parametrize("semantics", sorted(SEMANTICS))
@pytest.mark.parametrize("line", ["trap 'cd /etc' USR1; kill -USR1 $$; rm -rf build",
                                  "trap 'X=/etc' USR1; X=build; kill -USR1 $$; rm -rf \"$X\"",
                                  "trap f USR1; f() { cd /etc; }; kill -USR1 $$; rm -rf build"])
def test_a_signal_trap_that_moves_the_line_or_assigns_makes_it_opaque(semantics: str, line: str) -> None:
    """The action runs when the signal comes, which the line can send itself: what it changes is not followed."""
    decision = judged(line, semantics)
    assert decision.decision in ("ask", "deny") and decision.opaque, (line, decision.reason)


@pytest.mark.parametrize("line", ["trap 'echo stopped' INT TERM; rm -rf build", "trap - USR1; rm -rf build",
                                  "trap 'cd /' EXIT; rm -rf build"])
def test_a_trap_that_changes_nothing_the_line_uses_stays_allowed(line: str) -> None:
    decision = judged(line, "jail")
    assert not decision.opaque and deleted(decision) == [f"{JUDGE_WORKSPACE}/build"], (line, decision.reason)


@pytest.mark.jail
def test_a_reserved_word_misread_runs_nothing_unchecked_in_a_real_jail(tmp_path: Path) -> None:
    """The jail with --ask deny: `time { rm -rf ./keep; }` is refused, not run as the command `{`."""
    jail = Jail(tmp_path)
    (jail.workspace / "keep").mkdir()
    result = jail.run("/bin/bash", "-c", guarded("time { rm -rf ./keep; }"), interposer=True)
    assert result.returncode == 126, (result.returncode, result.stderr)
    assert "reserved word" in result.stderr, result.stderr
    assert (jail.workspace / "keep").exists()


@pytest.mark.parametrize("line", ['cd "$D"; cd ..; rm -rf build', 'cd "$(cat f)"; cd ../..; rm -rf build'])
def test_a_relative_cd_from_an_unknown_directory_stays_unknown(line: str) -> None:
    """`cd ..` from a directory only known when it runs is not known either: the walk made `${PWD}/..` the
    relative directory `.` and judged `rm -rf build` as deleting the relative path build."""
    decision = judged(line, "hook")  # None: where cd went; the workspace: where it was, if the cd failed
    assert None in deleted(decision) and all(p is None or p.startswith("/") for p in deleted(decision)), \
        (line, deleted(decision))
