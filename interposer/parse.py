"""Parse a command line into the IR: tree-sitter-bash first, bashlex as the second opinion.

tree-sitter-bash reads nearly all of bash (`[[ ]]`, arithmetic, arrays,
`case`, here-docs) and is fast; where it reports an error, bashlex gets a
try. When neither can read the line, the result says so (`parser="none"`)
and carries whatever commands tree-sitter still recognised, so a judge can
deny an obvious `rm -rf ~` inside a broken line, and must not allow it.
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from . import assigned
from .ir import Command, Parsed, Redirect
from .words import UNKNOWN_IFS, Expander, Word, plain
from .written import literal_output

Node = Any
_PARSER = None
_SUBSTITUTIONS = ("command_substitution", "process_substitution")
_COMPOUND = ("subshell", "compound_statement", "while_statement", "for_statement", "c_style_for_statement",
             "if_statement", "case_statement")
_CALL_DEPTH = 4  # functions calling functions, walked for their arguments this deep
_SKIP = frozenset({"comment", "heredoc_body", "heredoc_start", "heredoc_end", "file_descriptor"})
# The deepest syntax tree walked (the walk recurses once or twice per level): the deepest line of 40,000 in
# the corpora has 14 levels, a `$(` nested 32 deep about 100; deeper lines are opaque, not walked.
MAX_NESTING = 100
_TOO_DEEP = f"the line nests more than {MAX_NESTING} levels deep"
# The words that stand for all of a function's arguments: "$@" is each of them, "$*" all of them in one.
_ALL_ARGUMENTS = {'"$@"': "each", '"${@}"': "each", "$@": "split", "${@}": "split", "$*": "split",
                  "${*}": "split", '"$*"': "joined", '"${*}"': "joined"}
# A command named by a function's argument ("$@", "$1", "${@:2}"...): in the body as written, its name is unknown.
_POSITIONAL_HEAD = re.compile(r'"?\$(?:[@*1-9]|\{(?:[@*]|[1-9][0-9]*|@:[0-9]+(?::[0-9]+)?)\})"?')
# "${@:2}", "${@:2:3}": a slice of a function's arguments (from the 2nd; 3 of them).
_ARGUMENT_SLICE = re.compile(r'("?)\$\{@:([0-9]+)(?::([0-9]+))?\}("?)')
# Builtins that run their first operand as a command in the calling shell's place: `command "$@"`, `exec "$@"`.
_RUNNERS = frozenset({"command", "builtin", "exec", "env", "nohup", "time", "nice", "setsid", "stdbuf", "timeout"})
# The characters a function name that can be counted is made of (see _Walker.covered).
_NAME_CHARS = re.compile(r"[\w.:+@%-]+")
_NAME_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Directories one point of a line may be in that are followed (a cd in a branch, a cd that may fail ...).
MAX_PLACES = 4
_NAME_OR_OPTION = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*|[-+][A-Za-z]+")
_NOTHING: frozenset[str] = frozenset()
# Word-like children of a compound command: their substitutions run, they are not commands.
_WORDS = frozenset({"word", "string", "raw_string", "concatenation", "simple_expansion", "expansion", "number",
                    "variable_name", "ansi_c_string"})
# Builtins that may assign variables (assigned.by_builtin reads which), seen in a loop before it is walked.
_MAY_ASSIGN = frozenset({"read", "mapfile", "readarray", "getopts", "let", "unset", "eval", "source", ".", "coproc",
                         "wait", "builtin", "command", "declare", "typeset", "local", "export", "readonly",
                         "time", "alias"})
# `${X@P}` expands X as a prompt: its `$(...)` run, its `${Y:=v}` assign. PS4 likewise before each traced
# command (set -x); BASH_ALIASES defines aliases. The text they run is not judged: a line naming them is opaque.
_PROMPT = re.compile(r"\$\{[^}]*@P\}")
_RUNS_LATER = "PS4, BASH_ALIASES or ${X@P} run text as commands later in this shell: what they run is not followed"
# Reserved words tree-sitter-bash reads as a command name after `!`, `time` and `coproc`: `! { rm -rf ~; }` is
# the command `{`, `time if ...` the command `if`; bash runs what they hold. coproc itself: the same misreading.
_RESERVED = frozenset({"!", "{", "}", "if", "then", "elif", "else", "fi", "do", "done", "while", "until", "for",
                       "case", "esac", "select", "function", "[[", "]]", "coproc"})
_MISREAD = "is a reserved word there, which tree-sitter-bash took for a command name: what runs is not checked"
_MOVES = frozenset({"cd", "pushd", "popd"})  # builtins that change the directory


class _Calls:
    """What the walks of one line know of its functions, shared with the walks of its substitutions."""

    def __init__(self) -> None:
        self.walked: collections.Counter[str] = collections.Counter()  # commands walked as a call of NAME
        self.skipped: dict[str, str] = {}  # functions a call of which was not walked: name -> why (recursion, depth)
        self.sites: dict[str, set[int]] = collections.defaultdict(set)  # where the calls and definitions are


def _tree_sitter() -> Any:
    global _PARSER
    if _PARSER is None:
        import tree_sitter
        import tree_sitter_bash

        _PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))
    return _PARSER


class _State:
    """What is known at a point of the line: directory and variables (copied into subshells)."""

    def __init__(self, cwd: str, env: dict[str, str], others: tuple[str, ...] = (), ended: bool = False) -> None:
        self.cwd = cwd
        self.env = env
        # Other directories the shell may be in here (`[ -d y ] && cd /etc; ...`, a `cd` that may fail): each
        # command is judged in every one of them. "${PWD}" is one that is not known.
        self.others = others
        self.ended = ended  # this way through ends the shell (`cd x || exit 1`): nothing after it runs on it

    def copy(self) -> _State:
        return _State(self.cwd, dict(self.env), self.others, self.ended)

    def places(self) -> tuple[str, ...]:
        return (self.cwd, *self.others)

    def set_places(self, places: tuple[str, ...]) -> None:
        """The directories the shell may be in, the first the one $PWD names; past MAX_PLACES, the last of
        them is one not known."""
        unique = tuple(dict.fromkeys(places))
        if len(unique) > MAX_PLACES:
            unique = (*unique[:MAX_PLACES - 1], "${PWD}")
        self.cwd, self.others = unique[0], unique[1:]

    def may_be_elsewhere(self) -> None:
        """The shell may also be in a directory not known (`eval "cd ..."`, a loop that changes directory)."""
        self.set_places((*self.places(), "${PWD}"))

    def join(self, other: _State) -> None:
        """What holds after this way through or the other (a branch that may not have run): the shell may be
        in the directories of either; a value the two do not share is not known; an IFS they do not share is
        not the default either. A way that ended the shell adds nothing."""
        if other.ended:
            return
        if self.ended:
            self.cwd, self.env, self.others, self.ended = other.cwd, dict(other.env), other.others, False
            return
        if other.cwd != self.cwd or other.others != self.others:
            self.set_places((*self.places(), *other.places()))
        if other.env == self.env:
            return
        ifs = self.env.get("IFS")
        for key in [k for k, v in self.env.items() if other.env.get(k) != v]:
            del self.env[key]
        if ifs != other.env.get("IFS"):
            self.env["IFS"] = UNKNOWN_IFS


class _Walker:
    def __init__(self, context: tuple[str, ...], functions: dict[str, Node] | None = None) -> None:
        self.commands: list[Command] = []
        self.opaque: list[str] = []
        self.hazards: list[str] = []
        self.context = context
        self.functions: dict[str, Node] = {} if functions is None else functions  # defined so far: name -> body
        self.calling: tuple[str, ...] = ()  # the functions being walked for a call, innermost last
        self.arguments: tuple[Word, ...] | None = None  # the call's arguments, while a body is walked for one
        self.defining: str | None = None  # the function whose body is walked as written (arguments unknown)
        self.calls = _Calls()
        self.cdpath = False  # the line names CDPATH: where a relative `cd` goes is not known
        self.moved: tuple[int, tuple[str, ...], str | None, _State] | None = None  # the last cd, where it went
        self.errexit = False  # `set -e`: a cd that fails ends the shell, so after it the shell is where it went
        self.elsewhere: dict[int, tuple[str, ...]] = {}  # command -> the other directories it may run in
        self.start_home: str | None = None  # HOME as the line starts (parse), which eval and . are taken to keep
        self.traps: list[tuple[str, Node]] = []  # trap actions on signals the line may send itself: (why, tree)
        # Commands of a body as written named by an argument (`"$@"`, `command "$@"`), by function: dropped
        # when every mention of the function is a call that was walked with its arguments (see covered()).
        self.named_by_argument: list[tuple[str, int]] = []

    # -- structure ---------------------------------------------------------

    def walk(self, node: Node, state: _State, piped_from: tuple[str, ...] = (),
             piped_text: str | None = None) -> list[int]:
        """Walk a node; the indexes of the commands it produced at this level."""
        kind = node.type
        if kind in _SKIP:
            return []
        if kind == "command":
            return [self._command(node, state, piped_from, piped_text)]
        if kind == "pipeline":
            return self._pipeline(node, state, piped_from)
        if kind == "redirected_statement":
            return self._redirected(node, state, piped_from)
        if kind in ("variable_assignment", "variable_assignments"):
            self._assign(node, state)
            return []
        if kind == "declaration_command":
            self._declaration(node, state)
            return []
        if kind == "list":
            return self._list(node, state, piped_from)
        if kind == "subshell":
            return self._children(node, state.copy(), piped_from)
        if kind == "ERROR":
            self.opaque.append(f"cannot parse {_snippet(node)!r}")
        if kind == "function_definition":
            body = node.child_by_field_name("body")
            if body is None:
                return []
            name_node = node.child_by_field_name("name")
            name = name_node.text.decode(errors="replace") if name_node is not None else ""
            before = self.functions.get(name)
            if before is not None and (before.start_byte, before.end_byte) != (body.start_byte, body.end_byte):
                self.opaque.append(f"the function {name} is defined twice: which body a call runs (a definition "
                                   "in a branch may not have run) is not followed")
            first = len(self.commands)
            self.calls.sites[name].add(node.start_byte)
            written = state.copy()
            for key in [k for k in written.env if k.isdigit() or k in ("#", "@", "*")]:
                del written.env[key]  # as written: its arguments unknown (not the caller's)
            saved = self.arguments, self.defining
            self.arguments, self.defining = None, name
            try:
                produced = self._children(body, written, ())
            finally:
                self.arguments, self.defining = saved
            self.functions[name] = body
            calls_itself = any(c.argv and c.argv[0].value == name for c in self.commands[first:])
            if calls_itself and _spawns(body):
                self.hazards.append(f"the function {name} starts copies of itself (a fork bomb)")
            return produced
        if kind in _SUBSTITUTIONS:
            return self._substitution(node, state)
        if kind in ("if_statement", "case_statement"):
            return self._branches(node, state, piped_from)
        if kind in ("while_statement", "for_statement", "c_style_for_statement"):
            return self._loop(node, state, piped_from)
        if kind == "compound_statement" and node.text.startswith(b"(("):  # ((X = 1))
            found = assigned.in_arithmetic(node.text.decode(errors="replace"))
            if found is assigned.EVERY:
                self.opaque.append(f"{_snippet(node)!r} assigns a variable whose name is only known when it runs")
            assigned.forget(state.env, found)
        return self._parts(node, state, piped_from)

    def _parts(self, node: Node, state: _State, piped_from: tuple[str, ...]) -> list[int]:
        produced: list[int] = []
        for child in node.named_children:
            if child.type in _WORDS:
                self._substitutions(child, state)  # for x in $(ls); case $(cmd) in
                continue
            produced += self.walk(child, state, piped_from)
        return produced

    def _branches(self, node: Node, state: _State, piped_from: tuple[str, ...]) -> list[int]:
        """if/elif/else and case: each branch is walked with what holds when it starts; as a branch may not
        run, afterwards the walk knows only what holds on every way through (`X=/etc; if c; then X=build;
        fi; rm -rf "$X"` may delete /etc)."""
        produced: list[int] = []
        outcomes: list[_State] = []
        branch: _State | None = None  # the `then` part being walked; None in the `if` condition
        carried: _State | None = None  # what holds after case items ending in `;&` or `;;&`
        for child in node.children:
            kind = child.type
            if kind == "then":
                branch = state.copy()
                outcomes.append(branch)
            elif kind in ("elif_clause", "else_clause", "case_item"):
                walked = state.copy()  # an elif's condition runs after the if's failed: from the same state
                if carried is not None:
                    walked.join(carried)
                produced += self._parts(child, walked, piped_from)
                outcomes.append(walked)
                if kind == "case_item" and any(c.type in (";&", ";;&") for c in child.children):
                    # `a) X=/etc ;& b) rm -rf "$X"`: a later item may run after this one, with what it assigned
                    carried = walked.copy() if carried is None else _joined(carried, walked)
            elif child.is_named:
                if child.type in _WORDS:
                    self._substitutions(child, state)  # case $(cmd) in
                else:
                    produced += self.walk(child, state if branch is None else branch, piped_from)
        for outcome in outcomes:  # state itself is one way through (no else, no case matched); with an else
            state.join(outcome)  # it is not, and counting it only leaves more unknown
        return produced

    def _loop(self, node: Node, state: _State, piped_from: tuple[str, ...]) -> list[int]:
        """while/until/for: the body runs any number of times and its condition once more. What they assign
        is not known in them (the second time round it may hold another value) nor after (the first time may
        not have come); a directory changed in them likewise."""
        names, moves = self._assigned_in(node)
        assigned.forget(state.env, names)
        if moves:  # the second time round the body starts where the first left it
            state.may_be_elsewhere()
        entry = state.copy()
        produced: list[int] = []
        for child in node.named_children:
            if child.type in _WORDS:
                self._substitutions(child, state)  # for x in $(ls)
                continue
            if child.type in ("do_group", "compound_statement"):  # the body: after `i=0` of `for ((i=0; ...))`
                assigned.forget(state.env, names)
            produced += self.walk(child, state, piped_from)
        assigned.forget(state.env, names)
        state.join(entry)  # the body may not have run at all
        return produced

    def _assigned_in(self, node: Node, seen: frozenset[str] = frozenset()) -> tuple[assigned.Assigned, bool]:
        """The variables a part of the line may assign, read from its syntax before it is walked (a loop's),
        and whether it may change directory; a function it calls, by that function's body. Generous: a word
        that is not plain text where a builtin takes a name may name any variable."""
        names: set[str] = set()
        moves = False
        # a function the part defines may be called in it (in a loop, the second time round): by that body too
        defined = _functions_defined(node)
        stack = [node]
        while stack:
            current = stack.pop()
            kind = current.type
            if kind == "function_definition":
                continue  # defining runs nothing
            if kind == "variable_assignment" or kind == "for_statement":
                name = current.child_by_field_name("name" if kind == "variable_assignment" else "variable")
                if name is not None:
                    names.add(name.text.decode(errors="replace"))
            elif kind in ("expansion", "arithmetic_expansion"):
                found = assigned.in_text(current.text.decode(errors="replace"))
                if found is assigned.EVERY:
                    return found, True
                names |= found
            elif kind == "declaration_command":
                for child in current.named_children:
                    if child.type == "word" and _NAME_WORD.fullmatch(child.text.decode(errors="replace")):
                        names.add(child.text.decode(errors="replace"))
                    elif child.type != "variable_assignment" and not child.text.startswith(b"-"):
                        return assigned.EVERY, True
            elif kind == "command":
                head = current.child_by_field_name("name")
                word = head.text.decode(errors="replace") if head is not None else ""
                if word in _MAY_ASSIGN and word in ("builtin", "command", "time"):
                    run = assigned.in_this_shell(_as_written(current))
                    moves = moves or bool(run) and run[0].value in _MOVES
                moves = moves or word in _MOVES
                bodies = [b for b in (self.functions.get(word), defined.get(word)) if b is not None]
                if bodies and word not in seen:
                    for body in bodies:
                        inner, inner_moves = self._assigned_in(body, seen | {word})
                        if inner is assigned.EVERY:
                            return inner, True
                        names |= inner
                        moves = moves or inner_moves
                elif word in _MAY_ASSIGN or word == "printf":
                    found = assigned.by_builtin(_as_written(current))
                    if found is assigned.EVERY:
                        return found, True
                    names |= found
            stack.extend(current.named_children)
        return frozenset(names), moves

    def _children(self, node: Node, state: _State, piped_from: tuple[str, ...]) -> list[int]:
        produced: list[int] = []
        for child in node.named_children:
            produced += self.walk(child, state, piped_from)
        return produced

    def _list(self, node: Node, state: _State, piped_from: tuple[str, ...]) -> list[int]:
        """`a && b || c`: b runs with what holds when a succeeded, c when a or b failed, and after the list
        any of them may not have run (`[ -d x ] && X=build; rm -rf "$X"`). tree-sitter nests a list in its
        first item, one level per operator, so a generated chain of thousands is walked item by item here,
        not by recursion."""
        steps = list_steps(node)
        produced = self.walk(steps[0][1], state, piped_from)
        succeeded, failed = state, state.copy()  # what holds if the list so far succeeded, or failed
        self._settle(produced, succeeded, failed)
        for operator, item in steps[1:]:
            indexes = self.walk(item, failed if operator == "||" else succeeded, piped_from)
            produced += indexes
            if operator == "||":
                self._settle(indexes, failed, None)
                succeeded.join(failed)
            else:
                self._settle(indexes, succeeded, failed)
                failed.join(succeeded)
        succeeded.join(failed)
        return produced

    def _settle(self, indexes: list[int], succeeded: _State, failed: _State | None) -> None:
        """After one item of a list, one simple command: a `cd` is where it went on the way it succeeded and
        where it was on the way it failed; `exit` or `return` ends the way it ran on."""
        if len(indexes) != 1:
            return
        command = self.commands[indexes[0]]
        name = command.argv[0].value if command.argv and command.argv[0].literal else ""
        if name in ("exit", "return"):
            succeeded.ended = True
            if failed is not None:
                failed.ended = True
        elif self.moved is not None and self.moved[0] == indexes[0]:
            _index, places, oldpwd, before = self.moved
            succeeded.set_places(places)
            if oldpwd is not None:
                succeeded.env["OLDPWD"] = oldpwd
            if failed is not None:
                failed.set_places(before.places())
                if "OLDPWD" in before.env:
                    failed.env["OLDPWD"] = before.env["OLDPWD"]

    def _pipeline(self, node: Node, state: _State, piped_from: tuple[str, ...]) -> list[int]:
        produced: list[int] = []
        previous = piped_from
        text: str | None = None
        stages = list(node.named_children)
        redirects: list[Node] = []
        # tree-sitter reads `a && b | c` as `(a && b) | c` (also with a redirect on b); bash
        # as `a && (b | c)`: the list's leading commands run in this shell, so their `cd` counts.
        while stages:
            first = stages[0]
            body = first.child_by_field_name("body") if first.type == "redirected_statement" else first
            if body is None or body.type != "list":
                break
            if first.type == "redirected_statement":
                redirects = [c for c in first.children if c.type.endswith("redirect")] + redirects
            head = body.named_children
            for child in head[:-1]:
                produced += self.walk(child, state, piped_from)
            stages[0:1] = head[-1:]
        stage_state = state
        for index, stage in enumerate(stages):
            stage_state = state.copy()  # each stage runs in a subshell
            indexes = self.walk(stage, stage_state, previous, text)
            if index == 0 and redirects and indexes:
                extra = tuple(self._redirect(r, state) for r in redirects)
                self.commands[indexes[-1]] = _with_redirects(self.commands[indexes[-1]], extra)
            produced += indexes
            previous = tuple(_name(self.commands[i]) for i in indexes) or ("?",)
            text = literal_output(self.commands[indexes[0]]) if len(indexes) == 1 else None
        if len(stages) > 1:  # but the last with `shopt -s lastpipe`: `echo /etc | read X` may set X here
            state.join(stage_state)
        return produced

    def _redirected(self, node: Node, state: _State, piped_from: tuple[str, ...]) -> list[int]:
        body = node.child_by_field_name("body")
        written = [child for child in node.children if child.type.endswith("redirect")]
        redirects = tuple(self._redirect(child, state) for child in written)
        if body is not None and body.type == "command":  # most: the command is made with its redirects
            produced = [self._command(body, state, piped_from, None, redirects)]
        else:
            produced = self.walk(body, state, piped_from) if body is not None else []
        assigned.forget(state.env, assigned.union(_assigned_by_expansions(child) for child in written))
        if body is None and redirects:  # `> ~/.bashrc`: a bare redirect truncates as `: > ~/.bashrc` does
            self.commands.append(Command((), (), redirects, state.cwd, piped_from, self.context,
                                         node.text.decode(errors="replace")))
            if state.others:
                self.elsewhere[len(self.commands) - 1] = state.others
            return [len(self.commands) - 1]
        if not produced or body.type == "command":
            return produced
        # tree-sitter attaches the trailing redirect of `a && b | c >f` to the whole list:
        # in bash it belongs to the last simple command, except for a compound command.
        targets = produced if body.type in _COMPOUND else produced[-1:]
        for index in targets:
            self.commands[index] = _with_redirects(self.commands[index], redirects)
        return produced

    # -- simple commands -----------------------------------------------------

    def _command(self, node: Node, state: _State, piped_from: tuple[str, ...],
                 piped_text: str | None = None, redirected: tuple[Redirect, ...] = ()) -> int:
        """One simple command; `redirected`: the redirects written after it (`cmd > f`), added to its own."""
        expander = Expander(state.env, state.cwd)  # the live state, not a copy: only a here-document changes it
        argv: list[Word] = []
        assignments: list[tuple[str, Word]] = []
        redirects: list[Redirect] = []
        word_spans: list[tuple[int, int, str]] = []
        top = not self.context
        # A leaf word that is plain text (words.plain) holds no substitution and is its own value; in a body
        # walked for a call "$@" and the like are that call's (_words), so there every word takes the long way.
        direct = self.arguments is None
        for child in node.children:
            kind = child.type  # each read of a node's field makes a new str
            if kind == "variable_assignment":
                name, value = self._assignment(child, expander)
                assignments.append((name, value))
                self._substitutions(child, state)
            elif kind.endswith("redirect"):
                if kind == "heredoc_redirect":  # its body may forget variables (_heredoc): the words after it
                    expander = Expander(dict(state.env), state.cwd)  # are read with what held before
                redirects.append(self._redirect(child, state))
            elif kind == "command_name":
                named = child.named_children
                word = None
                if direct and len(named) == 1 and not named[0].named_child_count:
                    word = plain(named[0].type, named[0].text.decode(errors="replace"))
                if word is not None:
                    argv.append(word)
                else:
                    self._substitutions(child, state)
                    argv += self._words(named[0], expander) if named else []
                if top:
                    word_spans.append((child.start_byte, child.end_byte, child.text.decode(errors="replace")))
            elif kind not in _SKIP and child.is_named:
                source = child.text.decode(errors="replace")
                word = plain(kind, source) if direct and not child.named_child_count else None
                if word is not None:
                    argv.append(word)
                else:
                    self._substitutions(child, state)
                    argv += self._words(child, expander)
                if top:
                    word_spans.append((child.start_byte, child.end_byte, source))
        text = node.text.decode(errors="replace")
        command = Command(tuple(argv), tuple(assignments), (*redirects, *redirected), state.cwd, piped_from,
                          self.context, text, piped_text,
                          (node.start_byte, node.end_byte) if top else None, tuple(word_spans) if top else ())
        self.commands.append(command)
        index = len(self.commands) - 1
        if state.others:
            self.elsewhere[index] = state.others
        run = assigned.in_this_shell(argv)  # `command cd /etc`, `builtin cd`, `time cd` move this shell as cd does
        if run and run[0].literal and run[0].source == run[0].value and run[0].value in _RESERVED:
            self.opaque.append(f"{_snippet(node)!r}: {run[0].value} {_MISREAD}")
        if run and run[0].literal and run[0].value == "trap":
            self._trap(run[1:])
        if run and run[0].literal and run[0].value in _MOVES:
            searched = self.cdpath or any(name == "CDPATH" for name, _value in assignments)
            before = state.copy()
            _change_directory(state, run[0].value, run[1:], searched)
            if before.others:  # moved from each place it may have been in: not followed one by one
                state.others = ("${PWD}",)
            self.moved = (index, state.places(), state.env.get("OLDPWD"), before)
            if not self.errexit:
                # A cd that fails leaves the shell where it was, and what follows runs there: `cd build; rm -rf
                # ./*` empties the workspace when there is no build. So both (but where a list goes on only if
                # it succeeded, `cd build && ...`, see _settle).
                state.set_places((*state.places(), *before.places()))
                if state.env.get("OLDPWD") != before.env.get("OLDPWD"):
                    state.env.pop("OLDPWD", None)
        elif argv and argv[0].literal and argv[0].value in self.functions:
            why = self._call(argv[0].value, argv[1:], state) if all(n != "IFS" for n, _v in assignments) else \
                f"IFS is set for the call of {argv[0].value}: how its arguments split is not followed"
            if why is None:
                self.calls.walked[argv[0].value] += 1
                self.calls.sites[argv[0].value].add(node.start_byte)
            else:
                self.calls.skipped.setdefault(argv[0].value, why)
                names, moves = self._assigned_in(self.functions[argv[0].value])  # not walked: what it may change
                assigned.forget(state.env, names)
                if moves:
                    state.may_be_elsewhere()
        elif argv and _moves_arguments(argv):
            self._arguments_unknown(state)
        if run and run[0].literal and run[0].value == "set":
            self.errexit = _errexit(run[1:], self.errexit)
        if self.defining is not None and argv and _named_by_argument(argv):
            self.named_by_argument.append((self.defining, index))
        # `read X`, `printf -v X`, `${X:=v}`, `((X++))`, `. ./env`: what X holds from here on is not known
        found = assigned.union((assigned.by_builtin(argv), _assigned_by_expansions(node, text)))
        home = state.env.get("HOME")
        if found is assigned.EVERY and assigned.runs_code_here(argv):
            # `eval "cd /etc"`, `. ./env.sh` may move the line as well: where it is, not known (not "here and
            # maybe elsewhere": every command after a Codex wrapper's `. snapshot` would be judged twice)
            state.set_places(("${PWD}", *state.others))
        elif found is assigned.EVERY:
            self.opaque.append(f"{_snippet(node)!r} {assigned.why_unknown(argv)}")
        assigned.forget(state.env, found)
        if found is assigned.EVERY and home != self.start_home:  # `HOME=build; eval HOME=/etc`: not the start's
            state.env.pop("HOME", None)
        return index

    def _trap(self, args: list[Word]) -> None:
        """`trap 'cd /etc' USR1`: the action runs whenever the signal comes, which the line can send itself
        (`kill -USR1 $$`), so what it assigns or where it moves is not followed after it; resolve judges the
        action itself, and DEBUG, RETURN, ERR. Kept to be read when the walk ends, with every function known."""
        words = [w for w in args if w.value not in ("--", "-p", "-P", "-l")]
        if len(words) < 2 or not words[0].literal or words[0].value in ("", "-"):
            return
        signals = {w.value.upper().removeprefix("SIG") for w in words[1:]}
        if signals <= {"EXIT", "0"}:
            return  # runs as the shell exits, after every command of the line
        tree = _tree_sitter().parse(words[0].value.encode("utf-8", "surrogateescape"))
        self.traps.append((f"a trap on {' '.join(sorted(signals))} runs when the signal comes (kill -s SIG $$): what "
                           "its action changes is not followed", tree.root_node))

    def trapped(self) -> list[str]:
        """Why the line's signal traps make it opaque: each whose action may assign or change directory."""
        reasons = []
        for why, root in self.traps:
            names, moves = self._assigned_in(root)
            if names is assigned.EVERY or names or moves:
                reasons.append(why)
        return reasons

    def _arguments_unknown(self, state: _State) -> None:
        """After `shift` or `set -- ...` the arguments are not the call's any more: "$@" and "$1" are unknown
        from here on in this body (a shift in one branch of an `if` moves them for the rest)."""
        for key in [k for k in state.env if k.isdigit() or k in ("#", "@", "*")]:
            del state.env[key]
        if self.arguments is not None:
            self.arguments = (Word("${@}", False, False, '"$@"'),)

    def _words(self, node: Node, expander: Expander) -> list[Word]:
        """A word's arguments; in a body walked for a call, "$@" and "$*" are that call's arguments."""
        if self.arguments is None:
            return expander.words(node)
        source = node.text.decode(errors="replace")
        arguments = self.arguments
        form = _ALL_ARGUMENTS.get(source)
        piece = _ARGUMENT_SLICE.fullmatch(source)
        if form is None and piece is not None and piece.group(1) == piece.group(4) and int(piece.group(2)) > 0:
            start = int(piece.group(2)) - 1  # ${@:0} starts with $0, the shell's name: left to the expander
            end = None if piece.group(3) is None else start + int(piece.group(3))
            form, arguments = ("each" if piece.group(1) else "split"), arguments[start:end]
            if any(not w.literal or w.glob for w in self.arguments[:start]):
                return [Word("${@}", False, False, source)]  # where the slice starts is not known
        if form is None:
            return expander.words(node)
        if form == "joined":
            return [Word(" ".join(w.value for w in arguments), all(w.literal for w in arguments),
                         False, source)]
        if form == "each":
            return list(arguments)
        ifs = expander.env.get("IFS", " \t\n")  # assigned on the line: where a word splits is not worked out
        if ifs not in (" \t\n", "") and (UNKNOWN_IFS in ifs or any(not w.value or any(c in ifs for c in w.value)
                                                                    for w in arguments)):
            return [Word("${@}", False, False, source)]
        words: list[Word] = []  # unquoted: each argument split at blanks, as with the default IFS
        for word in arguments:
            if not word.literal or ifs != " \t\n":
                words.append(word)
            else:
                words += [Word(part, True, word.glob, word.source) for part in word.value.split()]
        return words

    def _call(self, name: str, args: list[Word], state: _State) -> str | None:
        """A function is a wrapper: its body is walked again with this call's arguments as $1, $2...

        The definition's own walk saw unknown arguments; this one sees `f ~` as `rm -rf ~`. A function
        runs in the calling shell: its `cd` moves the caller, and what it assigns is unknown after it.
        None when the body was walked; else why not (the definition's walk and the fork-bomb check cover it).
        """
        if name in self.calling:
            return f"the function {name} calls itself: what its inner calls run is not followed"
        if len(self.calling) >= _CALL_DEPTH:
            return f"functions call functions more than {_CALL_DEPTH} deep: what {name} runs there is not followed"
        inner = state.copy()
        for key in [k for k in inner.env if k.isdigit() or k in ("#", "@", "*")]:
            del inner.env[key]
        for number, word in enumerate(args, 1):
            if not word.literal or word.glob:
                break  # `f $X rm ~`, `f * rm ~`: how many arguments this one is, and so which is $2, is unknown
            inner.env[str(number)] = word.value
        else:
            inner.env["#"] = str(len(args))
        saved = self.context, self.calling, self.arguments
        self.context, self.calling, self.arguments = (*self.context, f"{name}()"), (*self.calling, name), tuple(args)
        try:
            self._children(self.functions[name], inner, ())
        finally:
            self.context, self.calling, self.arguments = saved
        if self.functions[name].type != "subshell":  # f() ( ... ) runs in a subshell of its own
            state.cwd, state.others = inner.cwd, inner.others
        for key in list(state.env):
            if inner.env.get(key) != state.env[key]:
                del state.env[key]  # changed by the function, or by its `local`: not known here any more
        if inner.env.get("IFS") != state.env.get("IFS"):
            state.env["IFS"] = UNKNOWN_IFS  # gone would mean the default
        return None

    def _assignment(self, node: Node, expander: Expander) -> tuple[str, Word]:
        name_node = node.child_by_field_name("name")
        value_node = node.child_by_field_name("value")
        name = name_node.text.decode(errors="replace") if name_node is not None else "?"
        value = expander.word(value_node) if value_node is not None else Word("", True, False, "")
        return name, value

    def _assign(self, node: Node, state: _State) -> None:
        nodes = [node] if node.type == "variable_assignment" else node.named_children
        for item in nodes:
            name, value = self._assignment(item, Expander(state.env, state.cwd))  # read before it changes
            self._substitutions(item, state)
            assigned.forget(state.env, _assigned_by_expansions(item))  # X=${Y:=v} assigns Y as well
            value_node = item.child_by_field_name("value")
            if "[" in name or (value_node is not None and value_node.type == "array"):
                state.env.pop(name.split("[", 1)[0], None)  # X[0]=v, X=(v): "$X" is element 0, not followed
                continue
            if any(child.type == "+=" for child in item.children):  # X+=v appends (to an array: not followed)
                before = state.env.get(name)
                appended = value.literal and before is not None and not item.text.endswith(b")")
                value = value._replace(value=(before or "") + value.value, literal=appended)
            if value.literal:
                state.env[name] = value.value
            elif name == "IFS":
                state.env[name] = UNKNOWN_IFS  # not the default: how words split from here on is not known
            else:
                state.env.pop(name, None)

    def _declaration(self, node: Node, state: _State) -> None:
        """`declare`, `local`, `export`...: their plain assignments as any, and what their other operands assign
        (`declare "X=/etc"`, `local "$v"`); `-l`, `-u`, `-i`, `-a` change what is stored, so those are unknown."""
        expander = None  # made only for an operand that is not plain: most are `X=...` and `-x`
        keyword = node.children[0].text.decode(errors="replace") if node.children else "declare"
        operands: list[Word] = []
        for child in node.named_children:
            if child.type == "variable_assignment":
                self._assign(child, state)
                name = child.child_by_field_name("name")
                if name is not None:
                    operands.append(Word(name.text.decode(errors="replace") + "=", True, False, ""))
            elif child.type == "word" and _NAME_OR_OPTION.fullmatch(child.text):
                operands.append(Word(child.text.decode(), True, False, ""))
            else:
                expander = expander or Expander({**state.env, "PWD": state.cwd})
                operands += expander.words(child)
        self._substitutions(node, state)
        if all(_marks_plain(w) for w in operands):  # `export A=1 B=2`: plain assignments, done above
            return
        names, reference = assigned.declared(keyword, operands)
        if reference and keyword in ("declare", "typeset", "local"):  # export -n only stops exporting
            self.opaque.append(f"{keyword} -n makes a name reference: what its assignments change is not followed")
        elif names is assigned.EVERY:
            self.opaque.append(f"{_snippet(node)!r} assigns a variable whose name is only known when it runs")
        options = {c for w in operands if w.literal and w.value[:1] in "-+" for c in w.value[1:]}
        if names is not None and not options & {"l", "u", "i", "a", "A", "c"}:  # known values, but where an
            plain = {w.value[:-1] for w in operands if _marks_plain(w)}  # expanded operand assigns the same name
            rest = assigned.declared(keyword, [w for w in operands if not _marks_plain(w)])[0] or frozenset()
            names = frozenset(n for n in names if n not in plain or n in rest)  # (`declare X=1 "$v"=`)
        assigned.forget(state.env, names)

    def _redirect(self, node: Node, state: _State) -> Redirect:
        children = node.children
        count = len(children)
        if node.type == "file_redirect" and (count == 2 or (count == 3 and children[0].type == "file_descriptor")) \
                and not children[-2].is_named:  # `> out.txt`, `2>/dev/null`
            target = children[-1]
            word = None if target.named_child_count else plain(target.type, target.text.decode(errors="replace"))
            if word is not None:  # a plain leaf word: no substitution in it, its text its value
                fd = int(children[0].text) if count == 3 and children[0].text.isdigit() else None
                return Redirect(children[-2].text.decode(), fd, word)
        expander = Expander(state.env, state.cwd)  # the live state: a here-document's body comes after the target
        fd = None
        op = ""
        target: Word | None = None
        body = None
        start = next((c.text.decode(errors="replace") for c in node.children if c.type == "heredoc_start"), "")
        for child in node.children:
            if child.type == "file_descriptor":
                fd = int(child.text) if child.text.isdigit() else None
            elif not child.is_named:
                op = op or child.text.decode()
            elif child.type == "heredoc_body":
                body = child.text.decode(errors="replace")
                if not any(c in start for c in "'\"\\"):  # `<<EOF`, not `<<'EOF'`: bash expands the body
                    self._heredoc(child, body, state)
            elif child.type in ("heredoc_start", "heredoc_end"):
                continue
            elif target is None:
                self._substitutions(child, state)
                target = expander.word(child)
        if node.type == "herestring_redirect" and target is not None:
            body = target.value + "\n" if target.literal else None
        return Redirect(op, fd, target if node.type != "heredoc_redirect" else None, body)

    def _heredoc(self, node: Node, body: str, state: _State) -> None:
        """An unquoted here-document's body is expanded: its `$(...)` run and are judged, its `${X:=v}` assign.
        tree-sitter-bash reads no backquote there, nor anything after a `<<-` tab: such a body is opaque."""
        found = sum(1 for c in node.named_children if c.type == "command_substitution")
        if "`" in body or body.count("$(") - body.count("$((") > found:
            self.opaque.append("a here-document runs a command substitution that is not checked")
        self._substitutions(node, state)
        names = assigned.in_text(body)
        if names is assigned.EVERY:
            self.opaque.append("a here-document assigns a variable whose name is only known when it runs")
        assigned.forget(state.env, names)

    # -- substitutions ---------------------------------------------------------

    def _substitutions(self, node: Node, state: _State) -> None:
        """Commands inside $(...), `...` and <(...) run too: walk them."""
        if node.type in _SUBSTITUTIONS:
            self._substitution(node, state)
            return
        if not node.named_child_count:
            return
        text = node.text or b""
        if b"(" not in text and b"`" not in text:  # $(...), `...`, <(...) and >(...) each hold one
            return
        for child in node.named_children:
            self._substitutions(child, state)

    def _substitution(self, node: Node, state: _State) -> list[int]:
        label = "<(...)" if node.type == "process_substitution" else "$(...)"
        inner = _Walker((*self.context, label), self.functions)
        inner.cdpath = self.cdpath
        inner.calling, inner.arguments, inner.defining, inner.calls = (self.calling, self.arguments, self.defining,
                                                                       self.calls)
        inner._children(node, state.copy(), ())
        self.named_by_argument += [(name, index + len(self.commands)) for name, index in inner.named_by_argument]
        self.elsewhere.update({index + len(self.commands): places for index, places in inner.elsewhere.items()})
        self.commands += inner.commands
        self.opaque += inner.opaque
        self.hazards += inner.hazards
        return []


    def called_commands(self, text: str) -> list[Command]:
        """The commands, less those a function's body names by its arguments (`f() { command "$@"; }`) when
        the function is called on the line and every mention of it is such a call, walked with its arguments:
        then `"$@"` was judged at each call as what it is there (`f git status` runs git status).

        A mention elsewhere (`eval "f rm -rf ~"`, `trap f EXIT`, `export -f f`) is a call whose arguments
        this walk did not see: the body as written stays, and its command named by an argument is opaque.
        Mentions are counted both in the line's text and in the words its commands expand to.
        """
        if not self.named_by_argument:
            return self.everywhere(range(len(self.commands)))
        names = {name for name, _index in self.named_by_argument}
        in_text = collections.Counter(t for t in _NAME_CHARS.findall(text) if t in names)
        in_words: collections.Counter[str] = collections.Counter()
        for command in self.commands:
            values = [w.value for w in command.argv] + [w.value for _name, w in command.assignments]
            values += [r.target.value for r in command.redirects if r.target is not None]
            values += [r.body for r in command.redirects if r.body]
            for value in values:
                in_words.update(t for t in _NAME_CHARS.findall(value) if t in names)
        covered = {name for name in names
                   if _NAME_CHARS.fullmatch(name) and name not in self.calls.skipped and self.calls.walked[name]
                   and in_words[name] == self.calls.walked[name] and in_text[name] == len(self.calls.sites[name])}
        dropped = {index for name, index in self.named_by_argument if name in covered}
        return self.everywhere(i for i in range(len(self.commands)) if i not in dropped)

    def everywhere(self, indexes: Iterable[int]) -> list[Command]:
        """The commands, and again each in every other directory it may run in: the worst of them decides.
        A copy keeps the command's words and place in the line: a rewrite of either is one rewrite of the
        line (rewrite.apply makes it once), and runs wherever the shell turns out to be."""
        kept = list(indexes)
        out = [self.commands[i] for i in kept]
        for i in kept:
            for place in self.elsewhere.get(i, ()):
                if place != self.commands[i].cwd:
                    out.append(self.commands[i]._replace(cwd=place))
        return out

    def unfollowed(self) -> list[str]:
        """Why a function that runs its arguments was not followed into a call (recursion, depth)."""
        named = {name for name, _index in self.named_by_argument}
        return [why for name, why in self.calls.skipped.items() if name in named]


def _assigned_by_expansions(node: Node, text: str | None = None) -> assigned.Assigned:
    """What the expansions in a node assign (`${X:=v}`, `$((X++))`), found in the tree: text in single quotes
    (an awk or perl program) is not an expansion. `text`: the node's, where the caller has it."""
    if text is None:
        raw = node.text or b""
        if b"((" not in raw and b"${" not in raw:  # most: neither arithmetic nor a braced expansion
            return _NOTHING
        text = raw.decode(errors="replace")
    if not assigned.may_assign(text):
        return _NOTHING
    found: list[assigned.Assigned] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in ("expansion", "arithmetic_expansion"):
            found.append(assigned.in_text(current.text.decode(errors="replace")))
        stack.extend(current.named_children)
    return assigned.union(found)


def _as_written(command: Node) -> list[Word]:
    """A command's words as written, known where plain text (`read -r line`, `'x'`), for a look at what a
    builtin assigns before the command is walked."""
    words = []
    for child in command.named_children:
        if child.type == "command_name":
            child = child.named_children[0] if child.named_children else child
        elif child.type.endswith("redirect") or child.type == "variable_assignment":
            continue
        text = child.text.decode(errors="replace")
        if child.type == "raw_string":
            words.append(Word(text[1:-1], True, False, text))
        elif child.type == "string" and not any(c in text[1:-1] for c in '$`\\"'):
            words.append(Word(text[1:-1], True, False, text))
        elif child.type in ("word", "number") and not any(c in text for c in "$`\\\"'*?[{~"):
            words.append(Word(text, True, False, text))
        else:
            words.append(Word(text, False, False, text))
    return words


def list_steps(node: Node) -> list[tuple[str, Node]]:
    """The items of a `list` node in order, each with the operator before it ("" for the first, `&&` or
    `||`), its nested lists opened with a stack. Read left to right: `a && (b || c)` as `(a && b) || c`,
    which knows less of what holds when c runs, never more."""
    named = node.named_children
    if len(named) == 2 and named[0].type != "list" and named[1].type != "list":  # `a && b`: most lists
        return [("", named[0]), (node.child(1).type, named[1])]
    steps: list[tuple[str, Node]] = []
    stack: list[tuple[str, Node]] = [("", node)]
    while stack:
        operator, current = stack.pop()
        if current.type != "list":
            steps.append((operator, current))
            continue
        items: list[tuple[str, Node]] = []
        for child in current.children:
            if child.is_named:
                items.append((operator, child))
                operator = ""
            elif child.type in ("&&", "||"):
                operator = child.type
        stack.extend(reversed(items))
    return steps


def _named_by_argument(argv: list[Word]) -> bool:
    """`"$@"`, `"$1" ...`, or a builtin running one (`command "$@"`, `exec -a NAME "$@"`): named by an argument.

    Generous on purpose: such a command of the body as written is dropped only where every call of the
    function was walked with its arguments, and so judged as it runs there.
    """
    def positional(word: Word) -> bool:
        return not word.literal and bool(_POSITIONAL_HEAD.fullmatch(word.source))

    if positional(argv[0]):
        return True
    return argv[0].literal and argv[0].value in _RUNNERS and any(positional(w) for w in argv[1:])


# Builtins that run a command line of their own in this shell, so it may shift the function's arguments.
_RUNS_IN_THIS_SHELL = frozenset({"eval", "source", ".", "trap"})
_MAY_MOVE = _RUNS_IN_THIS_SHELL | {"command", "builtin", "time", "shift", "set"}  # what _moves_arguments starts with


def _moves_arguments(argv: list[Word]) -> bool:
    """`shift` or `set -- ...`, bare or behind `command`, `builtin` or `time` (with their options), which run
    it in this shell all the same (`command shift` shifts the function's arguments)."""
    if not argv[0].literal or argv[0].value not in _MAY_MOVE:
        return False  # most commands: none of the names below
    index = 0
    while index < len(argv) and argv[index].literal and argv[index].value in ("command", "builtin", "time"):
        index += 1
        while index < len(argv) and argv[index].literal and argv[index].value.startswith("-"):
            index += 1
    rest = argv[index:]
    if rest and rest[0].literal and rest[0].value in _RUNS_IN_THIS_SHELL:
        return True  # `eval shift`, `. ./x`, `trap shift RETURN`: what they run here is not walked for the call
    return bool(rest) and rest[0].literal and rest[0].value in ("shift", "set") and _sets_arguments(rest)


def _sets_arguments(argv: tuple[Word, ...] | list[Word]) -> bool:
    """`shift` always moves the arguments; `set` when it has operands (`set -- a b`, not `set -e`)."""
    if argv[0].value == "shift":
        return True
    words = iter(argv[1:])
    for word in words:
        if word.value in ("-o", "+o"):
            next(words, None)  # set -o pipefail: an option's name, not an argument
        elif word.value in ("--", "-") or word.value[:1] not in ("-", "+") or not word.literal:
            return True
    return False


def _spawns(node: Node) -> bool:
    """A pipeline or a background job somewhere inside `node` (an explicit stack: a body may be long)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "pipeline" or (not current.is_named and current.type == "&"):
            return True
        stack.extend(current.children)
    return False


def _errexit(args: list[Word], before: bool) -> bool:
    """Whether `set ARGS` leaves errexit on: -e, -o errexit (+e, +o errexit: off), in bundles (-eu)."""
    words = iter(args)
    on = before
    for word in words:
        value = word.value
        if value in ("-o", "+o"):
            name = next(words, None)
            if name is not None and name.value == "errexit":
                on = value == "-o"
        elif value[:1] in ("-", "+") and value[1:].isalpha() and "e" in value[1:]:
            on = value[0] == "-"
        elif value == "--" or value[:1] not in ("-", "+"):
            break
    return on


def _change_directory(state: _State, how: str, args: list[Word], searched: bool = False) -> None:
    """`cd DIR`, `pushd DIR`: the walk goes there; `popd`, `pushd +N` and a relative DIR looked up in a
    CDPATH the line names (`CDPATH=/ cd etc` goes to /etc even where ./etc exists) leave it not knowing."""
    operands = [w for w in args if not w.value.startswith("-") or w.value == "-"]
    if how == "popd" or (how == "pushd" and (not operands or operands[0].value[:1] in "+-")):
        state.cwd = "${PWD}"  # the directory stack is not followed
        return
    if searched and operands and not operands[0].value.startswith(("/", ".")):
        state.cwd = "${PWD}"
        return
    if not operands:
        target = Word(state.env.get("HOME", "${HOME}"), "HOME" in state.env, False, "~")
    else:
        target = operands[0]
    if target.value == "-":
        target = Word(state.env.get("OLDPWD", "${OLDPWD}"), "OLDPWD" in state.env, False, "-")
    if target.literal and not target.glob and (state.cwd.startswith("/") or target.value.startswith("/")):
        state.env["OLDPWD"] = state.cwd
        state.cwd = os.path.normpath(os.path.join(state.cwd, target.value))
    else:  # `cd ..` from a directory not known stays not known (normpath made `${PWD}/..` the relative `.`)
        state.cwd = "${PWD}"  # unknown from here on


def _functions_defined(node: Node) -> dict[str, Node]:
    """The functions a part of the line defines, name -> body, found with a stack (`f()`, `function f`)."""
    text = node.text or b""
    if b"(" not in text and b"function" not in text:
        return {}
    found: dict[str, Node] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "function_definition":
            name, body = current.child_by_field_name("name"), current.child_by_field_name("body")
            if name is not None and body is not None:
                found[name.text.decode(errors="replace")] = body
        stack.extend(current.named_children)
    return found


def _marks_plain(word: Word) -> bool:
    """The word _declaration puts for a plain `X=...` it assigned itself (no source); an operand that expands
    to `X=` (`declare "$v"=`, v=X) has its source and is an assignment the walk did not make."""
    return word.source == "" and word.value.endswith("=")


def _joined(one: _State, other: _State) -> _State:
    both = one.copy()
    both.join(other)
    return both


def _with_redirects(command: Command, extra: tuple[Redirect, ...]) -> Command:
    """The command with more redirects: command._replace(redirects=...) at a fraction of its cost."""
    argv, assignments, redirects, *rest = command
    return Command(argv, assignments, redirects + extra, *rest)


def _name(command: Command) -> str:
    return os.path.basename(command.argv[0].value) if command.argv else "?"


def _snippet(node: Node) -> str:
    text = node.text.decode(errors="replace").strip()
    return text if len(text) <= 60 else text[:57] + "..."


def _deeper_than(root: Node, limit: int) -> bool:
    """Whether the tree has more than `limit` levels, measured without recursion (a cursor walk).

    A list inside a list is not a level: that is how tree-sitter reads `a && b && c`, and the walk opens
    it without recursion (list_steps), so a chain of any length is one level.
    """
    cursor = root.walk()
    path = [(root.type, 1)]  # the node types on the cursor's path, and whether each added a level
    depth = 1
    # A subtree of n nodes is at most n levels deep: one that cannot pass the limit is not walked into (a
    # script of 10,000 short commands is 10,000 steps here, not every node of every command).
    descend = depth + root.descendant_count - 1 > limit
    while True:
        if descend and cursor.goto_first_child():
            node = cursor.node
            kind = node.type
            step = 0 if kind == "list" == path[-1][0] else 1
            path.append((kind, step))
            depth += step
            if depth > limit:
                return True
            descend = depth + node.descendant_count - 1 > limit
            continue
        while True:
            depth -= path.pop()[1]
            if cursor.goto_next_sibling():
                node = cursor.node
                kind = node.type
                step = 0 if kind == "list" == path[-1][0] else 1
                path.append((kind, step))
                depth += step
                if depth > limit:
                    return True
                descend = depth + node.descendant_count - 1 > limit
                break
            if not cursor.goto_parent():
                return False


def too_deep(reasons: Iterable[str]) -> bool:
    """Whether a line's opaque reasons say it was too deep to walk (MAX_NESTING)."""
    return _TOO_DEEP in reasons


def parse(line: str, cwd: str, env: Mapping[str, str], context: tuple[str, ...] = ()) -> Parsed:
    """The commands of one line, with what could not be known.

    A byte that was not UTF-8 (surrogate-escaped by os.fsdecode) reaches tree-sitter as that byte, as the
    shell would read it; a line nested more than MAX_NESTING levels deep is opaque and not walked.
    """
    tree = _tree_sitter().parse(line.encode("utf-8", "surrogateescape"))
    # a tree of no more nodes than the limit is no deeper than it: most lines skip the walk (same answer)
    if tree.root_node.descendant_count > MAX_NESTING and _deeper_than(tree.root_node, MAX_NESTING):
        return Parsed((), (_TOO_DEEP,), "none", _TOO_DEEP)
    walker = _Walker(context)
    walker.cdpath = "CDPATH" in line or bool(env.get("CDPATH"))
    start = dict(env)
    if "IFS" in line:  # set where the walk does not see it (read IFS, for IFS in, printf -v IFS): not the default
        start["IFS"] = UNKNOWN_IFS
    walker.start_home = env.get("HOME")
    if "PS4" in line or "BASH_ALIASES" in line or ("@P" in line and _PROMPT.search(line)):
        walker.opaque.append(_RUNS_LATER)
    walker.walk(tree.root_node, _State(cwd, start))
    walker.opaque += walker.trapped()
    # An alias with nothing after it changes nothing; on a line that turns expand_aliases on, resolve judges
    # its text. Else bash may still expand it (`set -o posix`, `shopt -s "$o"`): what runs is not followed.
    if "expand_aliases" in line or all(c.argv and c.argv[0].value == "alias" for c in walker.commands):
        walker.opaque = [r for r in walker.opaque if not r.endswith(assigned.ALIAS_DEFINED)]
    if not tree.root_node.has_error and not any(reason.endswith(_MISREAD) for reason in walker.opaque):
        return Parsed(tuple(walker.called_commands(line)), tuple(dict.fromkeys(walker.opaque + walker.unfollowed())),
                      "tree-sitter", hazards=tuple(walker.hazards))
    from .bashlex_fallback import parse_with_bashlex

    second = parse_with_bashlex(line, cwd, env, context)
    if second is not None:
        return second
    reasons = tuple(dict.fromkeys(walker.opaque)) or ("the line cannot be parsed",)
    return Parsed(tuple(walker.everywhere(range(len(walker.commands)))), reasons, "none",
                  "neither tree-sitter-bash nor bashlex can parse it",
                  tuple(walker.hazards))
