"""The shell commands in a Makefile a line writes, so `make` after it is judged with the line.

`printf 'all:\\n\\trm -rf ~\\n' > Makefile; make` runs `rm -rf ~` in a shell that make
starts, a child of an allowed shell and not judged again (judge_child_shells). The
resolver walks what this returns as a script: every recipe line of every rule (which
targets run is make's business; any could), and every `$(shell ...)` and `!=`
assignment, which run when make reads the file. Make's references become what they
name where the file says (its own variables, make's built-in ones such as $(RM)), a
command substitution for $(shell), and a shell variable otherwise, which the judge
treats as only known when it runs. None when the commands cannot be read off the
text: $(eval) and $(call) write make code as they go, and a SHELL that is not a shell
runs the recipes in another language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_ASSIGNMENT = re.compile(r"^(?:override\s+|export\s+)?([A-Za-z0-9_.\-]+)\s*(::?=|:::=|\?=|\+=|!=|=)\s*(.*)$",
                         re.DOTALL)
_RULE = re.compile(r"^([^:=#;]+?)\s*(?<![:!?+])::?(?![=])\s*([^;=]*?)(?:\s*;\s*(.*))?$", re.DOTALL)
_DIRECTIVES = ("ifeq", "ifneq", "ifdef", "ifndef", "else", "endif", "include", "-include", "sinclude",
               "vpath", "unexport", "export", "undefine")
# Make's own variables, as GNU make defines them; RM is the one that deletes.
_BUILT_IN = {"MAKE": "make", "RM": "rm -f", "CC": "cc", "CXX": "g++", "CPP": "cc -E", "AR": "ar", "AS": "as",
             "LD": "ld", "LEX": "lex", "YACC": "yacc", "FC": "f77", "MAKEFLAGS": "", "MFLAGS": "",
             "CURDIR": ".", "SHELL": "/bin/sh", "MAKEFILE_LIST": "Makefile"}
# Functions that only compute file names or words: their value is a word the judge cannot know.
_WORD_FUNCTIONS = frozenset({"wildcard", "patsubst", "subst", "notdir", "basename", "addprefix", "addsuffix",
                             "dir", "sort", "filter", "filter-out", "strip", "word", "words", "wordlist",
                             "firstword", "lastword", "join", "realpath", "abspath", "suffix", "findstring",
                             "if", "or", "and", "foreach", "origin", "flavor", "info", "warning", "error",
                             "value", "file", "let", "intcmp"})
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "busybox"})
_MAX_EXPANSION = 8
_SHELL_NAME = re.compile(r"^.*/")  # the directory part of SHELL's value


class Unreadable(Exception):
    """The file's commands are only known when make runs it."""


def shell_commands(text: str) -> str | None:
    """The shell commands the Makefile `text` can run, one per line; None if they cannot be read off it."""
    try:
        return _Reader(text).commands()
    except Unreadable:
        return None


class _Reader:
    def __init__(self, text: str) -> None:
        self.variables = dict(_BUILT_IN)
        self.lines = _logical_lines(text)
        self.found: list[str] = []

    def commands(self) -> str:
        rules: list[tuple[str, list[str], list[str]]] = []  # (target, prerequisites, recipe lines)
        lines = iter(self.lines)
        for line in lines:
            if line.startswith("\t"):
                if rules:
                    rules[-1][2].append(line[1:])
                continue
            stripped = _without_comment(line).strip()
            if not stripped:
                continue
            if stripped.startswith("define ") or stripped == "define":
                self._define(stripped, lines)
                continue
            if stripped.split()[0] in _DIRECTIVES and not _ASSIGNMENT.match(stripped.split(None, 1)[-1]):
                continue  # conditionals: both branches are read; includes: files this line did not write
            assignment = _ASSIGNMENT.match(stripped)
            if assignment:
                self._assign(*assignment.groups())
                continue
            rule = _RULE.match(stripped)
            if rule:
                targets, prerequisites, inline = rule.groups()
                names = self.expand(targets, "", []).split()  # make expands a rule's line as it reads it
                rules.append((names[0] if names else "", self.expand(prerequisites, "", []).split(),
                              [inline] if inline else []))
            else:
                self.expand(stripped, "", [])  # a bare `$(shell ...)` runs as the file is read
        if _SHELL_NAME.sub("", self.variables.get("SHELL", "/bin/sh")).strip() not in _SHELLS:
            raise Unreadable
        for target, prerequisites, recipe in rules:
            for line in recipe:
                command = self.expand(line, target, prerequisites).lstrip("@-+ \t")
                if command.strip():
                    self.found.append(command)
        return "\n".join(self.found)

    def _define(self, header: str, lines: Iterator[str]) -> None:
        name = header.split()[1] if len(header.split()) > 1 else ""
        body = []
        for line in lines:
            if line.strip() == "endef":
                break
            body.append(line)
        self.variables[name] = "\n".join(body)

    def _assign(self, name: str, operator: str, value: str) -> None:
        if operator == "!=":
            self.found.append(self.expand(value, "", []))  # runs now, in a shell
            self.variables[name] = f"${{{_shell_name(name)}}}"
        elif operator == "?=" and name in self.variables:
            return  # make's own variables count as set: `CC ?= gcc` changes nothing
        elif operator == "+=":
            self.variables[name] = (self.variables.get(name, "") + " " + value).strip()
        else:
            self.variables[name] = value
        if operator in (":=", "::=", ":::="):
            self.variables[name] = self.expand(value, "", [])

    def expand(self, text: str, target: str, prerequisites: list[str], depth: int = 0) -> str:
        """Make's references in `text` replaced as the module's docstring says."""
        if depth > _MAX_EXPANSION:
            raise Unreadable
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char != "$" or i + 1 == len(text):
                out.append(char)
                i += 1
                continue
            following = text[i + 1]
            if following == "$":
                out.append("$")
                i += 2
                continue
            if following in "({":
                end = _closing(text, i + 1)
                inner = text[i + 2:end]
                out.append(self._reference(inner, target, prerequisites, depth))
                i = end + 1
                continue
            out.append(self._reference(following, target, prerequisites, depth))
            i += 2
        return "".join(out)

    def _reference(self, inner: str, target: str, prerequisites: list[str], depth: int) -> str:
        automatic = {"@": target, "<": prerequisites[0] if prerequisites else "", "^": " ".join(prerequisites),
                     "+": " ".join(prerequisites), "?": " ".join(prerequisites), "|": "", "*": "${MAKE_STEM}",
                     "@D": _directory(target), "@F": target.rpartition("/")[2]}
        if inner in automatic:
            return automatic[inner]
        function, _, argument = inner.partition(" ")
        if function == "shell" and argument:
            command = self.expand(argument, target, prerequisites, depth + 1)
            self.found.append(command)  # it runs wherever make meets it, even in a value never used later
            return f"$({command})"
        if function in ("eval", "call") and argument:
            raise Unreadable
        if function in _WORD_FUNCTIONS and argument:
            return f"${{MAKE_{_shell_name(function).upper()}}}"
        name = self.expand(inner, target, prerequisites, depth + 1).strip()
        if name in self.variables:
            return self.expand(self.variables[name], target, prerequisites, depth + 1)
        return f"${{{_shell_name(name)}}}"



def _shell_name(name: str) -> str:
    cleaned = re.sub(r"\W", "_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"MAKE_{cleaned}"


def _directory(path: str) -> str:
    return path.rpartition("/")[0] or "."


def _closing(text: str, start: int) -> int:
    """The index of the bracket closing text[start]; the end of text if none."""
    opening = text[start]
    closing = ")" if opening == "(" else "}"
    level = 0
    for i in range(start, len(text)):
        if text[i] == opening:
            level += 1
        elif text[i] == closing:
            level -= 1
            if level == 0:
                return i
    return len(text)


def _without_comment(line: str) -> str:
    match = re.search(r"(?<!\\)#", line)
    return line[:match.start()] if match else line


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined: kept as the shell's in a recipe, a space elsewhere."""
    lines: list[str] = []
    for raw in text.split("\n"):
        if lines and lines[-1].endswith("\\"):
            if lines[-1].startswith("\t"):
                lines[-1] += "\n" + (raw[1:] if raw.startswith("\t") else raw)
            else:
                lines[-1] = lines[-1][:-1].rstrip() + " " + raw.strip()
        else:
            lines.append(raw)
    return lines
