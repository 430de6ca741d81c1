"""Variables the walk of a line must stop believing it knows (interposer/assigned.py, parse._Walker).

Each line below deletes (or may delete) something other than what the walk believed: in bash,
`X=build; read X < f; rm -rf "$X"` deletes what f holds, `X=/etc; [ -d y ] && X=build; rm -rf "$X"` deletes
/etc when there is no y. Before this change every one of them was allowed in the hook's semantics (the host:
no trash, no read-only root) as `rm -rf build`. Each has a benign twin that stays allowed, so the fix is
not "ask about everything". One real jail runs the worst form: nothing outside the guarded workspace
may go.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SEMANTICS, Jail, guarded, judged

# Assigned by a builtin, an expansion, arithmetic or a loop: the old value is not what rm gets.
ASSIGNED = [
    'X=build; read X < f; rm -rf "$X"',
    'X=build; read -r X Y < f; rm -rf "$X"',
    'X=build; IFS=/ read -r X < f; rm -rf "$X"',
    'X=build; builtin read X < f; rm -rf "$X"',
    'X=build; read -a X < f; rm -rf "$X"',
    'X=build; mapfile -t X < f; rm -rf "$X"',
    'X=build; readarray X < f; rm -rf "$X"',
    'X=build; printf -v X /etc; rm -rf "$X"',
    'X=build; command printf -v X %s /etc; rm -rf "$X"',
    'X=build; getopts ab X; rm -rf "$X"',
    'X=build; declare "X=/etc"; rm -rf "$X"',
    'X=build; declare -l X=BUILD; rm -rf "$X"',
    'X=build; eval "X=/etc"; rm -rf "$X"',
    'X=build; . ./env.sh; rm -rf "$X"',
    'X=build; source ./env.sh; rm -rf "$X"',
    'X=; : ${X:=/etc}; rm -rf "$X"',
    'X=; Y="${X:=/etc}"; rm -rf "$X"',
    'X=build; (( X = 0 )); rm -rf "/$X"',
    'X=build; echo $((X=1)); rm -rf "/$X"',
    'X=build; let X=1; rm -rf "/$X"',
    'X=build; for X in /etc; do :; done; rm -rf "$X"',
    'X=build; for X in /etc; do rm -rf "$X"; done',
    'X=build; select X in /etc; do rm -rf "$X"; done',
    'X=build; for ((i=0; i<3; i++)); do rm -rf "$X$i"; done',
    'X=build; coproc X { cat; }; rm -rf "$X"',
    'X=build; v=X; read "$v" <<< /etc; rm -rf "$X"',  # v is known: read assigns X, so X is not known
    'X=build; v=X; printf -v "$v" /etc; rm -rf "$X"',
    'X=build; v=X; declare "$v=/etc"; rm -rf "$X"',
]

# Assigned where the walk cannot know the name: the line is opaque (asked), in the jail as well.
NAMED_AT_RUN_TIME = [
    'X=build; read "$(cat name)" <<< /etc; rm -rf "$X"',
    'X=build; v=$(cat name); read "$v" <<< /etc; rm -rf "$X"',
    'X=build; read -r "$1" <<< /etc; rm -rf "$X"',
    'X=build; printf -v "$1" /etc; rm -rf "$X"',
    'X=build; declare "$1=/etc"; rm -rf "$X"',
    'X=build; export "$1=/etc"; rm -rf "$X"',
    'X=build; local "$1"=/etc; rm -rf "$X"',
    'X=build; : ${!1:=/etc}; rm -rf "$X"',
    'X=build; ((${1}=3)); rm -rf "$X"',
    'read "$(cat name)" <<< x; X="rm -rf /etc"; $X',
    'X=build; declare -n r=X; r=/etc; rm -rf "$X"',
]

# Assigned on one way through and not another: after it, the value is either.
CONDITIONAL = [
    'X=/etc; [ -d y ] && X=build; rm -rf "$X"',
    'X=/etc; false || X=build; rm -rf "$X"',
    'X=/etc; if [ -d y ]; then X=build; fi; rm -rf "$X"',
    'X=/etc; if [ -d y ]; then X=build; elif [ -d z ]; then X=dist; fi; rm -rf "$X"',
    'X=/etc; case "$1" in b) X=build;; esac; rm -rf "$X"',
    'X=/etc; while [ -d y ]; do X=build; done; rm -rf "$X"',
    'X=build; while [ -d y ]; do rm -rf "$X"; X=/etc; done',
    'X=build; while [ -d y ]; do rm -rf "$X"; read X; done',
    'f() { X=/etc; }; X=build; while [ -d y ]; do rm -rf "$X"; f; done',
    'X=~; [ -d y ] && X=build; rm -rf "$X"',
    '[ -d y ] && cd /; rm -rf ./*',
]

# The benign twins: what the walk knows still holds.
KNOWN = [
    'X=build; rm -rf "$X"',
    'X=build; export X; rm -rf "$X"',
    'X=build; declare -p X; rm -rf "$X"',
    'X=build; echo "$X"; rm -rf "$X"',
    'X=build; [ -d y ] && echo yes; rm -rf "$X"',
    'X=build; for f in a b; do echo "$f"; done; rm -rf "$X"',
    'X=build; if [ -d y ]; then X=build; fi; rm -rf "$X"',
    'X=build; [ -d y ] && X=dist && rm -rf "$X"',
    'X=build; while read -r line; do echo "$line"; done < f; rm -rf "$X"',
    'X=build; echo $((1 + 2)); rm -rf "$X"',
    "X=build; echo 'if ((1)) { $p = 9; ${q:=1} }'; rm -rf \"$X\"",
    'X=build; export -n X; rm -rf "$X"',
    'cd build && rm -rf ./*',
]


@pytest.mark.parametrize("semantics", sorted(SEMANTICS))
@pytest.mark.parametrize("line", ASSIGNED + CONDITIONAL)
def test_an_assigned_variable_is_not_believed_on_the_host(semantics: str, line: str) -> None:
    decision = judged(line, semantics)
    if semantics == "hook":  # no trash on the host: an rm of a path only known when it runs is asked
        assert decision.decision in ("ask", "deny"), (line, decision.reason)
    else:  # in the jail the trash makes rm recoverable: what matters is that build is not what it deletes
        deleted = [p for c in decision.commands if c["argv"][0] == "rm" for p in c["deletes"]]
        assert not any(p is not None and p.rstrip("/").endswith("/build") for p in deleted), (line, deleted)


@pytest.mark.parametrize("semantics", sorted(SEMANTICS))
@pytest.mark.parametrize("line", NAMED_AT_RUN_TIME)
def test_a_name_built_at_run_time_makes_the_line_opaque(semantics: str, line: str) -> None:
    decision = judged(line, semantics)
    assert decision.decision in ("ask", "deny"), (line, decision.reason)
    assert decision.opaque, (line, decision.reason)


@pytest.mark.parametrize("semantics", sorted(SEMANTICS))
@pytest.mark.parametrize("line", KNOWN)
def test_what_is_still_known_stays_known(semantics: str, line: str) -> None:
    decision = judged(line, semantics)
    assert not decision.opaque, (line, decision.opaque_reasons)
    deleted = [p for c in decision.commands if c["argv"][0] == "rm" for p in c["deletes"]]
    assert deleted and all(p is not None for p in deleted), (line, deleted)


def test_append_to_a_known_value_is_followed() -> None:
    """`X=/; X+=etc` is /etc (it was read as `etc`, a path inside the workspace)."""
    decision = judged('X=/; X+=etc; rm -rf "$X"', "hook")
    assert decision.decision == "deny" and "/etc" in decision.reason, decision.reason


@pytest.mark.jail
def test_a_read_variable_deletes_nothing_it_was_not_judged_for_in_a_real_jail(tmp_path: Path) -> None:
    """The jail with --ask deny: the line that read a new value into X does not run its rm as `rm build`."""
    jail = Jail(tmp_path)
    (jail.workspace / "build").mkdir()
    (jail.workspace / "keep").write_text("x")
    line = 'X=build; read "$(printf X)" <<< keep; rm -rf "./$X"'
    result = jail.run("/bin/bash", "-c", guarded(line), interposer=True)
    assert result.returncode == 126, (result.returncode, result.stderr)
    assert "only known when it runs" in result.stderr, result.stderr
    assert (jail.workspace / "keep").exists() and (jail.workspace / "build").exists()


# A trap's action runs in this shell when its signal comes, at the latest at exit: it was not judged at all
# (`trap 'rm -rf ~' EXIT; ls` was allowed in both semantics). Now it is a line, judged where the line will be by
# then (unknown: relative paths are unknown); one on DEBUG, RETURN or ERR runs between commands: opaque.
TRAPS = {
    "trap 'rm -rf ~' EXIT; ls": "deny",
    "trap -- 'rm -rf ~' EXIT INT": "deny",
    'trap "rm -rf $HOME" 0': "deny",
    "X=build; trap 'X=/etc' DEBUG; rm -rf \"$X\"": "ask",
    'trap "$CMD" EXIT': "ask",
}
HARMLESS_TRAPS = ["trap - EXIT", "trap -p", "trap 'echo bye' EXIT", "trap '' INT"]


def test_a_trap_action_relative_path_is_unknown_on_the_host() -> None:
    """`trap 'rm -rf build' EXIT; cd /`: at exit the shell is in /; judged here it would be the workspace's."""
    decision = judged("trap 'rm -rf build' EXIT; cd /", "hook")
    assert decision.decision == "ask", decision.reason


# An alias is expanded on later lines with `shopt -s expand_aliases` (checked in bash: alias ls="echo X" on
# one line, `ls` on the next, prints X); its text was never read: `alias ls='rm -rf ~'` was allowed. Without
# expand_aliases a shell that is not interactive expands none: the alias is inert there.
# CDPATH: `CDPATH=/ cd etc` goes to /etc even where ./etc exists (checked in bash); the walk went to ./etc.
# pushd went nowhere in the walk, popd too.
MOVED_OR_ALIASED = {
    "shopt -s expand_aliases\nalias ls='rm -rf ~'\nls": "deny",
    'shopt -s expand_aliases\nalias "g=$CMD"': "ask",
    "CDPATH=/ cd etc && rm -rf ./x": "ask",
    "CDPATH=/; cd etc && rm -rf ./x": "ask",
    "pushd / && rm -rf etc": "deny",
    "popd && rm -rf x": "ask",
}
NOT_MOVED = ["alias ll='ls -la'", "alias", "alias ls='rm -rf ~'", "shopt -s expand_aliases\nalias ll='ls -la'\nll",
             "cd ./etc && ls", "pushd src && ls && popd"]


# `parallel CMD ::: ARGS` runs CMD once per argument (appended, or put for {}): its own option filter dropped the
# command's options and ignored the arguments, so `parallel rm -rf ::: ~` was judged as a bare `rm` (allowed);
# `... | parallel 'rm -rf {}'` put x for {}. And `sh -c 'rm -rf "$1"' _ ~`: the words after the script are its
# $0, $1 ...; the sub-line was judged with them unknown (asked on the host, allowed in the jail).
HANDED = {
    "parallel rm -rf ::: ~": "deny",
    "parallel -j4 rm -rf {} ::: build ~": "deny",
    "parallel 'rm -rf {}' ::: ~": "deny",
    "find ~ | parallel 'rm -rf {}'": "ask",
    "find . | parallel rm": "ask",
    "sh -c 'rm -rf \"$1\"' _ ~": "deny",
    "bash -c 'rm -rf \"$0\"' ~": "deny",
}
HANDED_HARMLESS = ["parallel gzip ::: a.log b.log", "parallel 'gzip {}' ::: *.log", "parallel -j 2 echo ::: a b",
                   "find . -name '*.c' | parallel 'wc -l {}'", "bash -c 'echo \"$1\"' _ hi"]


def test_a_relative_cd_from_an_unknown_directory_stays_unknown() -> None:
    """`cd "$(cat d)"; cd ..; rm -rf x`: the walk joined ".." to its "${PWD}" and normpath left "." (x was a
    path relative to nothing, judged outside the workspace); and "${PWD}/../.." became "..": a write judged as
    outside what is in fact scratch (tests/test_trash_hostile.py's climb out of the workspace into /tmp)."""
    decision = judged('cd "$(cat d)"; cd ..; rm -rf x', "hook")
    assert decision.decision == "ask" and "only known when it runs" in decision.reason, decision.reason
    deleted = [p for c in decision.commands if c["argv"][0] == "rm" for p in c["deletes"]]
    assert None in deleted and all(p is None or p.startswith("/") for p in deleted), deleted  # never relative


# A package.json (composer.json) the line writes and then hands npm (composer): its "scripts" run with sh -c,
# children of this shell that are not judged again, and the hook sees nothing else: judged as lines. They were
# only searched for a command that starts a shell ('... "x":"rm -rf ~" ... > package.json; npm run x' ran).
MANIFESTS = {
    """echo '{"scripts":{"x":"rm -rf ~"}}' > package.json; npm run x""": "deny",
    """echo '{"scripts":{"postinstall":"rm -rf ~"}}' > package.json && npm install""": "deny",
    """echo '{"scripts":{"x":["rm -rf ~"]}}' > composer.json; composer run x""": "deny",
    """echo '{"scripts":{"x":"rm -rf ~"' > package.json; npm run x""": "ask",
}
MANIFESTS_HARMLESS = ["""echo '{"scripts":{"test":"pytest -q"}}' > package.json; npm test""",
                      """echo '{"name":"a"}' > package.json; npm install"""]


# A cd that fails leaves the shell where it was, and a `;` goes on there: `cd build; rm -rf ./*` empties the
# directory it started in when there is no build (the classic). The walk judged only `build/*` (allowed). Now
# what follows a cd is judged in both places (parse._State.others), and so is what follows a branch that moved
# (`[ -d y ] && cd ~/.ssh; echo k >> authorized_keys` writes ~/.ssh/... or ./...). `&&` goes on only where the
# cd succeeded; `cd x || exit` ends the other way; `set -e` ends the shell on a failing cd. Taking the
# directory for unknown instead was tried: unknown writes are judged leniently, so it allowed denied lines.
MAY_HAVE_FAILED = {
    "cd /tmp/scratch; rm -rf ./*": "deny",
    "cd build; rm -rf ./*": "deny",
    "cd /tmp/scratch\nrm -rf ./*": "deny",
    'cd "$D"; rm -rf ./*': "deny",
    "[ -d y ] && cd ~/.ssh; echo key >> authorized_keys": "deny",
    "if [ -d y ]; then cd ~/.ssh; fi; echo key >> authorized_keys": "deny",
    "cd src; rm -rf x": "rewrite",  # to the trash, once: the rewritten rm runs wherever the shell is
}
WENT = ["cd /tmp/scratch && rm -rf ./*", "cd /tmp/x || exit 1; rm -rf ./*", "set -e; cd /tmp/s; rm -rf ./*",
        "set -eu\ncd /tmp/s\nrm -rf ./*", "cd src; git status", "cd src; ls -la"]


def test_a_command_judged_in_two_directories_is_rewritten_once() -> None:
    """`cd src; rm -rf x` judged in src and in the workspace: in the hook one rewrite of the line's rm, which
    runs wherever the shell is (parse keeps the copy's place in the line; rewrite.apply makes it once)."""
    decision = judged("cd src && rm -rf x; cd lib; git checkout -- a.py", "hook")
    assert decision.decision == "rewrite", decision.reason
    assert decision.rewritten is not None and decision.rewritten.count("shelljail snapshot before") == 1, \
        decision.rewritten
    assert decision.rewritten.count("shelljail trash put") == 1, decision.rewritten


# Every table above, with its semantics: the destructive lines in the hook (the host: no trash, no read-only
# root) or in both, their harmless twins allowed in both.
DECISIONS = [
    *((line, semantics, decision) for table in (TRAPS, MANIFESTS) for line, decision in sorted(table.items())
      for semantics in sorted(SEMANTICS)),
    *((line, "hook", decision) for table in (MOVED_OR_ALIASED, HANDED, MAY_HAVE_FAILED)
      for line, decision in sorted(table.items())),
    *((line, semantics, "allow") for lines in (HARMLESS_TRAPS, NOT_MOVED, HANDED_HARMLESS, MANIFESTS_HARMLESS, WENT)
      for line in lines for semantics in sorted(SEMANTICS)),
]


@pytest.mark.parametrize(("line", "semantics", "expected"), DECISIONS)
def test_each_line_is_judged_as_bash_runs_it(line: str, semantics: str, expected: str) -> None:
    decision = judged(line, semantics)
    assert decision.decision == expected, (line, decision.reason)
