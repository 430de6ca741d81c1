"""The second opinion: bashlex, for lines where tree-sitter-bash reports an error.

bashlex does its own quote removal but misreads ANSI-C strings ($'a\\tb' as
`$atb`), so a word that holds one, or any expansion, is kept non-literal.
Importing bashlex costs about 0.25 s: it is loaded only when needed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .ir import Command, Parsed, Redirect
from .words import Word

_UNKNOWN_PARTS = ("parameter", "commandsubstitution", "processsubstitution")


def parse_with_bashlex(line: str, cwd: str, env: Mapping[str, str], context: tuple[str, ...]) -> Parsed | None:
    """The IR by bashlex, or None when bashlex cannot read the line either."""
    try:
        import bashlex

        trees = bashlex.parse(line)
    except Exception:  # noqa: BLE001 - bashlex raises ParsingError, NotImplementedError, AssertionError...
        return None
    converter = _Converter(line, cwd, env, context)
    for tree in trees:
        converter.visit(tree, ())
    return Parsed(tuple(converter.commands), tuple(converter.opaque), "bashlex")


class _Converter:
    def __init__(self, line: str, cwd: str, env: Mapping[str, str], context: tuple[str, ...]) -> None:
        self.line = line
        self.cwd = cwd
        self.env = env
        self.context = context
        self.commands: list[Command] = []
        self.opaque: list[str] = []

    def visit(self, node: Any, piped_from: tuple[str, ...]) -> list[int]:
        kind = node.kind
        if kind == "command":
            return [self._command(node, piped_from)]
        if kind == "pipeline":
            produced: list[int] = []
            previous = piped_from
            for part in node.parts:
                if part.kind == "pipe":
                    continue
                indexes = self.visit(part, previous)
                produced += indexes
                previous = tuple(self._name(i) for i in indexes) or ("?",)
            return produced
        produced = []
        for part in getattr(node, "parts", []) or getattr(node, "list", []) or []:
            produced += self.visit(part, piped_from)
        if kind == "function":
            produced += self.visit(node.body, ())
        if kind in ("commandsubstitution", "processsubstitution"):
            self._nested(node.command)
        return produced

    def _nested(self, node: Any) -> None:
        saved = self.context
        self.context = (*saved, "$(...)")
        self.visit(node, ())
        self.context = saved

    def _word(self, node: Any) -> Word:
        source = self.line[node.pos[0]:node.pos[1]]
        value = node.word
        literal = True
        for part in getattr(node, "parts", []):
            if part.kind in _UNKNOWN_PARTS:
                literal = False
                if part.kind != "parameter":
                    self._nested(part.command)
            elif part.kind == "tilde" and value.startswith("~") and "HOME" in self.env:
                value = self.env["HOME"] + value[1:]
        if "$'" in source or '$"' in source:
            literal = False
        glob = any(c in value for c in "*?[") and "'" not in source and '"' not in source
        return Word(value, literal, glob, source)

    def _command(self, node: Any, piped_from: tuple[str, ...]) -> int:
        argv: list[Word] = []
        assignments: list[tuple[str, Word]] = []
        redirects: list[Redirect] = []
        for part in node.parts:
            if part.kind == "word":
                argv.append(self._word(part))
            elif part.kind == "assignment":
                name, _, value = part.word.partition("=")
                assignments.append((name, Word(value, "$" not in value and "`" not in value, False, part.word)))
            elif part.kind == "redirect":
                target = part.output
                word = self._word(target) if hasattr(target, "kind") else Word(str(target), True, False, "")
                fd = part.input if isinstance(part.input, int) else None
                body = part.heredoc.value if getattr(part, "heredoc", None) is not None else None
                redirects.append(Redirect(part.type, fd, word if body is None else None, body))
        text = self.line[node.pos[0]:node.pos[1]]
        self.commands.append(Command(tuple(argv), tuple(assignments), tuple(redirects), self.cwd, piped_from,
                                     self.context, text))
        return len(self.commands) - 1

    def _name(self, index: int) -> str:
        argv = self.commands[index].argv
        return os.path.basename(argv[0].value) if argv else "?"
