"""Variables that a command assigns as it runs, which the walk of a line must stop believing it knows.

`X=build; read X < f; rm -rf "$X"` deletes whatever f holds, not build: builtins that assign the variables
they name (read, mapfile, printf -v, getopts, unset ...), `${X:=value}`, arithmetic (`((X=1))`, `let`), a
loop's variable, and builtins that run code in this shell (`eval`, `.`, `source`) leave the walk not knowing
what those variables hold. A name built at run time (`read "$v"`, `printf -v "$v"`, `${!v:=x}`) may be any
variable, IFS included: then nothing is known any more.

Each function answers with the names assigned, or EVERY. EVERY from a name built at run time is more than the
walk can follow (the caller makes the line opaque: `v=HOME; read "$v"` moves what `~` means); from `eval` or
`.` it forgets every variable but HOME, which a sourced file or an eval'd line does not move in practice, and
which rules judge strictly where known (a `~` that became unknown would be judged more leniently).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping, Sequence

from .programs.options import Grammar, flags, operands, value, values
from .words import UNKNOWN_IFS, Word

EVERY = None  # any variable may have been assigned
ALIAS_DEFINED = "defines an alias: what a command word after it runs (eval, a later line) is not followed"
Assigned = frozenset[str] | None

_NONE: frozenset[str] = frozenset()
_READ = Grammar(frozenset({"-a", "-d", "-i", "-n", "-N", "-p", "-t", "-u"}))
_MAPFILE = Grammar(frozenset({"-d", "-n", "-O", "-s", "-u", "-C", "-c"}))
_WAIT = Grammar(frozenset({"-p"}))
_PLAIN = Grammar()
# Runners of a builtin in this shell, with the options each takes (`--` ends them).
_IN_THIS_SHELL = {"builtin": frozenset(), "command": frozenset({"-p"}), "time": frozenset({"-p"})}
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?\+?=")
_DECLARATIONS = frozenset({"declare", "typeset", "local", "export", "readonly"})
_RUNS_CODE_HERE = frozenset({"eval", "source", "."})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATOR = r"(?:[-+*/%&^|]|<<|>>)?=(?!=)"
# `${X:=v}`, `${X=v}`, `${X[1]:=v}`; with `!` the name assigned is the value of X (an indirection).
_DEFAULT_ASSIGNED = re.compile(r"\$\{(!?)([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])(?:\[[^\]}]*\])?:?=")
# In arithmetic: `X=1`, `X+=2`, `a[i]=3`, `X++`, `--X`; and the same with a name that is an expansion.
_ARITHMETIC_ASSIGNED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?\s*" + _OPERATOR)
_ARITHMETIC_STEPPED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\+\+|--)|(?:\+\+|--)\s*([A-Za-z_][A-Za-z0-9_]*)")
_ARITHMETIC_DYNAMIC = re.compile(r"(?:\$[A-Za-z_0-9@*#?!$-]|\$\{[^}]*\})\s*" + _OPERATOR)


def in_this_shell(argv: Sequence[Word]) -> list[Word]:
    """The words of the builtin that argv runs in this shell: `builtin read`, `command -p read`, `command -- cd`
    and `time read` run it all the same (`time X=v` assigns X); [] for `command -v NAME`, a lookup."""
    words = list(argv)
    while words and words[0].literal and words[0].value in _IN_THIS_SHELL:
        allowed = _IN_THIS_SHELL[words.pop(0).value]
        while words and words[0].literal and words[0].value.startswith("-"):
            option = words.pop(0).value
            if option == "--":
                break
            if option not in allowed:
                return []  # command -v NAME, command -V NAME: a lookup, nothing runs (else: an error)
    return words


def by_builtin(argv: Sequence[Word]) -> Assigned:
    """The variables the builtin that argv runs assigns (`builtin`, `command` and `time` run it all the same)."""
    words = in_this_shell(argv)
    found: set[str] = set()
    while words and words[0].literal and (match := _ASSIGNMENT.match(words[0].value)):  # `time X=/etc`
        found.add(match.group(1))
        words.pop(0)
    if not words or not words[0].literal:
        return frozenset(found)
    name, args = words[0].value, words[1:]
    named = _by_name(name, args)
    return named if named is EVERY else named | found


def _by_name(name: str, args: Sequence[Word]) -> Assigned:
    if name in _RUNS_CODE_HERE:
        return EVERY
    if name == "read":
        names = operands(args, _READ) + values(args, ("-a",), _READ)  # `read -ra X`: -a's value is X
        return _names(names or [Word("REPLY", True, False, "REPLY")])
    if name in ("mapfile", "readarray"):
        if values(args, ("-C",), _MAPFILE):
            return EVERY  # `mapfile -C CODE`: the callback runs in this shell, unjudged (the caller: opaque)
        return _names(operands(args, _MAPFILE)[:1] or [Word("MAPFILE", True, False, "MAPFILE")])
    if name == "printf":
        target = value(args, ("-v",))
        return _NONE if target is None else _names([target])
    if name == "getopts":
        return _names([*operands(args)[1:2], Word("OPTARG", True, False, ""), Word("OPTIND", True, False, "")])
    if name == "wait":
        return _names(values(args, ("-p",), _WAIT))  # `wait -np X`
    if name == "alias" and any("=" in word.value or not word.literal for word in operands(args)):
        return EVERY  # a word bash may replace by any text (expand_aliases, POSIX mode): the caller, opaque
    if name == "unset":
        if not any(w.value.startswith("-") for w in args):  # `unset A B`: the common form
            return _names(args)
        return _NONE if "-f" in flags(args) else _names(operands(args))
    if name == "let":
        found: set[str] = set()
        for word in args:
            names = in_arithmetic(word.value) if word.literal else EVERY
            if names is EVERY:
                return EVERY
            found |= names
        return frozenset(found)
    if name in _DECLARATIONS:  # reached with `builtin export X=1`; tree-sitter reads the bare form itself
        names, reference = declared(name, args)
        return EVERY if reference and name in ("declare", "typeset", "local") else names  # `builtin declare -n`
    if name == "coproc" and args and args[0].literal and _NAME.fullmatch(args[0].value):
        return frozenset({args[0].value, f"{args[0].value}_PID", "COPROC", "COPROC_PID"})
    return _NONE


def declared(name: str, args: Sequence[Word]) -> tuple[Assigned, bool]:
    """What `declare`/`local`/`export`... assigns through its operands that are not plain assignments
    (`declare "X=/etc"`, `local "$v"`), and whether it makes a name reference (`declare -n r=X`: from then on
    an assignment to r assigns X, which the walk does not follow)."""
    options = {letter for word in args if word.literal and word.value[:1] in ("-", "+") for letter in word.value[1:]}
    if options & {"p", "f", "F"}:
        return _NONE, False  # prints variables or functions
    found: set[str] = set()
    for word in args:
        if word.literal and word.value[:1] in ("-", "+"):
            continue
        if not word.literal:
            return EVERY, "n" in options
        assigned, equals, _rest = word.value.partition("=")
        assigned = assigned.removesuffix("+").split("[", 1)[0]
        if equals or name not in ("export", "readonly"):  # `local X` is a new, empty X; `export X` keeps it
            if not _NAME.fullmatch(assigned):
                return EVERY, "n" in options
            found.add(assigned)
    return frozenset(found), "n" in options


def may_assign(text: str) -> bool:
    """Whether a text may hold an expansion that assigns (in_text would find one): a cheap look first."""
    return "((" in text or ("${" in text and _DEFAULT_ASSIGNED.search(text) is not None)


def in_text(text: str) -> Assigned:
    """Variables assigned by the expansions in a text (`${X:=v}`, and in `$((X=1))` or `((X++))` arithmetic)."""
    found: set[str] = set()
    if "${" in text and "=" in text:
        for match in _DEFAULT_ASSIGNED.finditer(text):
            if match.group(1):
                return EVERY
            if _NAME.fullmatch(match.group(2)):  # bash cannot assign `${1:=v}`
                found.add(match.group(2))
    if "((" in text:
        names = in_arithmetic(text)
        if names is EVERY:
            return EVERY
        found |= names
    return frozenset(found)


def in_arithmetic(text: str) -> Assigned:
    """The variables an arithmetic expression assigns; EVERY where the name assigned is an expansion."""
    if _ARITHMETIC_DYNAMIC.search(text):
        return EVERY
    found = {m.group(1) for m in _ARITHMETIC_ASSIGNED.finditer(text)}
    found |= {m.group(1) or m.group(2) for m in _ARITHMETIC_STEPPED.finditer(text)}
    return frozenset(found)


def why_unknown(argv: Sequence[Word]) -> str:
    """Why the EVERY a builtin assigns makes the line opaque (see by_builtin)."""
    words = in_this_shell(argv)
    name = words[0].value if words and words[0].literal else ""
    if name == "alias":
        return ALIAS_DEFINED
    if name in ("mapfile", "readarray"):
        return f"{name} -C runs its callback in this shell: what it runs and changes is not followed"
    return "assigns a variable whose name is only known when it runs"


def runs_code_here(argv: Sequence[Word]) -> bool:
    """`eval ...`, `. FILE`, `source FILE` (bare): the EVERY they assign is not a name built at run time."""
    return bool(argv) and argv[0].literal and argv[0].value in _RUNS_CODE_HERE


def forget(env: MutableMapping[str, str], names: Assigned) -> None:
    """What the walk knows after the assignments: those variables unknown (for EVERY all but HOME and a
    function's arguments, which no assignment changes); IFS, which unset would make the default, becomes not
    known."""
    if names is EVERY:
        keep = {k: v for k, v in env.items() if k.isdigit() or k in ("#", "@", "*", "HOME")}
        env.clear()
        env.update(keep)
        env["IFS"] = UNKNOWN_IFS
        return
    for name in names:
        if name == "IFS":
            env["IFS"] = UNKNOWN_IFS
        else:
            env.pop(name, None)


def union(parts: Iterable[Assigned]) -> Assigned:
    found: set[str] = set()
    for part in parts:
        if part is EVERY:
            return EVERY
        found |= part
    return frozenset(found)


def _names(words: Sequence[Word]) -> Assigned:
    """Names as given: one built at run time (`read "$v"`) may be any; bash assigns none that is not a name
    (`read "a b"` fails)."""
    found: set[str] = set()
    for word in words:
        if not word.literal:
            return EVERY
        name = word.value.split("[", 1)[0]
        if _NAME.fullmatch(name):
            found.add(name)
    return frozenset(found)
