"""Word expansion as bash does it, as far as it can be known before running anything.

Turns one tree-sitter word node into the argument strings bash would pass:
quote removal (backslashes, '...', "...", ANSI-C $'...'), tilde expansion,
brace expansion, and the parameters whose value is known ($HOME, $PWD,
$OLDPWD, variables assigned earlier on the same line). What cannot be known
(command substitution, an unknown variable, arithmetic) leaves the word
non-literal: the caller must not treat it as a known value.

Written by hand rather than borrowed: neither parser does quote removal, and
bashlex misreads $'...' (as `$atb` for `$'a\\tb'`).
"""

from __future__ import annotations

import pwd
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

Node = Any  # a tree_sitter.Node


class Word(NamedTuple):
    value: str  # after expansion; unknown parts appear as ${NAME} or $(...)
    literal: bool  # every part was known statically
    glob: bool  # has an unquoted *, ? or [ that the shell would expand
    source: str  # the text as written


class _Piece(NamedTuple):
    text: str
    quoted: bool
    known: bool = True
    split: bool = False  # a known variable's value expanded unquoted: bash splits it at IFS and globs it


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r",
                   "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}
_ANSI_RE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)", re.S)
_DQ_ESCAPABLE = '$`"\\\n'
_GLOB_CHARS = "*?["
_DEFAULT_IFS = " \t\n"
# IFS's value where the line changes it to something not known (IFS=$(...), read IFS): no real value holds a NUL.
UNKNOWN_IFS = "\0"
_IFS_RUN = re.compile(r"[ \t\n]+")
# What makes an unquoted word more than its text: a backslash, a brace, a leading tilde.
_SPECIAL_IN_WORD = re.compile(r"[\\{}]|^~")
# Nodes whose text is the value when it holds none of those: an unquoted word, and a number (`42`; its
# other form, `10#${X}`, holds a brace and takes the long way).
_PLAIN_KINDS = ("word", "number")


def decode_ansi_c(body: str) -> str:
    """The value of $'body' (escapes as in bash's ANSI-C quoting)."""
    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        head = code[0]
        if head in "xuU" and len(code) > 1:
            value = int(code[1:], 16)
            return chr(value) if value < 0x110000 else ""
        if head in "01234567":
            return chr(int(code, 8) & 0xFF)
        if head == "c" and len(code) == 2:
            return chr(ord(code[1].upper()) ^ 0x40) if code[1] != "?" else "\x7f"
        return _SIMPLE_ESCAPES.get(code, "\\" + code)

    return _ANSI_RE.sub(replace, body)


def _unquoted_word(text: str) -> list[_Piece]:
    """Backslash removal in an unquoted word; an escaped character counts as quoted."""
    if "\\" not in text:
        return [_Piece(text, quoted=False)]
    pieces: list[_Piece] = []
    run = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            if run:
                pieces.append(_Piece("".join(run), quoted=False))
                run = []
            if text[index + 1] != "\n":  # backslash-newline is a line continuation
                pieces.append(_Piece(text[index + 1], quoted=True))
            index += 2
            continue
        run.append(char)
        index += 1
    if run:
        pieces.append(_Piece("".join(run), quoted=False))
    return pieces


def _double_quoted(text: str) -> str:
    """Inside "...", a backslash escapes only $ ` " \\ and newline."""
    out = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in _DQ_ESCAPABLE:
            if text[index + 1] != "\n":
                out.append(text[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def plain(kind: str, source: str) -> Word | None:
    """The one word a node of this kind and text is when its text is its value, else None. Most words are
    plain (`-la`, `src/main.rs`, `42`): nothing to remove, expand or look up, so the walk takes them here."""
    if kind in _PLAIN_KINDS and not _SPECIAL_IN_WORD.search(source):
        return Word(source, True, "*" in source or "?" in source or "[" in source, source)  # _GLOB_CHARS
    return None


class Expander:
    """Expands word nodes against what is known: the environment and the working directory."""

    def __init__(self, env: Mapping[str, str], pwd: str | None = None) -> None:
        self.env = env  # read, never changed: a walk passes its live state, not a copy per command
        self.pwd = pwd  # $PWD, when given (the walk's directory): env with PWD added, without copying env

    def words(self, node: Node) -> list[Word]:
        """The arguments one word node becomes (more than one after brace expansion)."""
        source = node.text.decode(errors="replace")
        found = plain(node.type, source)
        if found is not None:
            return [found]
        pieces = self._pieces(node, quoted=False)
        results = []
        for variant in _brace_expand(pieces):
            for field in self._split(self._tilde(variant)):
                results.append(Word(
                    value="".join(p.text for p in field),
                    literal=all(p.known for p in field),
                    glob=any((not p.quoted or p.split) and any(c in p.text for c in _GLOB_CHARS) for p in field),
                    source=source,
                ))
        return results

    def _split(self, pieces: list[_Piece]) -> list[list[_Piece]]:
        """Field splitting: a known value expanded unquoted (`X="rm -rf /etc"; $X`) is as many words as bash
        makes of it at blanks, none if it is only blanks. With an IFS assigned on the line (other than the
        default, or empty: no splitting) where a value holding its characters splits is not worked out: it
        is left unknown."""
        if not any(p.split for p in pieces):
            return [pieces]
        ifs = self.env.get("IFS", _DEFAULT_IFS)
        if ifs == "":
            return [pieces]
        if ifs != _DEFAULT_IFS:  # a value with none of its characters (and not empty) is one field still
            return [[p._replace(known=False) if p.split and (UNKNOWN_IFS in ifs or not p.text
                                                             or any(c in ifs for c in p.text)) else p
                     for p in pieces]]
        fields: list[list[_Piece]] = []
        current: list[_Piece] = []
        started = False  # the field has text, or a quoted part ("" keeps an empty field)
        for piece in pieces:
            if not piece.split:
                current.append(piece)
                started = started or piece.quoted or bool(piece.text)
                continue
            for index, part in enumerate(_IFS_RUN.split(piece.text)):
                if index:
                    if started:
                        fields.append(current)
                    current, started = [], False
                if part:
                    current.append(piece._replace(text=part))
                    started = True
        if started:
            fields.append(current)
        return fields

    def word(self, node: Node) -> Word:
        """One word, where brace expansion does not apply (assignment values, redirect targets)."""
        if node.type in _PLAIN_KINDS:
            found = plain(node.type, node.text.decode(errors="replace"))
            if found is not None:
                return found
        pieces = self._tilde(self._pieces(node, quoted=False))
        return Word("".join(p.text for p in pieces), all(p.known for p in pieces),
                    any(not p.quoted and any(c in p.text for c in _GLOB_CHARS) for p in pieces),
                    node.text.decode(errors="replace"))

    def _pieces(self, node: Node, quoted: bool) -> list[_Piece]:
        kind = node.type
        text = node.text.decode(errors="replace")
        if kind == "word":
            return _unquoted_word(text) if not quoted else [_Piece(text, True)]
        if kind == "raw_string":
            return [_Piece(text[1:-1], quoted=True)]
        if kind == "ansi_c_string":
            return [_Piece(decode_ansi_c(text[2:-1]), quoted=True)]
        if kind in ("string", "translated_string"):
            pieces = []
            for child in node.children:
                if child.type == "string_content":
                    pieces.append(_Piece(_double_quoted(child.text.decode(errors="replace")), quoted=True))
                elif child.type in ('"', '$"'):
                    continue
                elif child.is_named:
                    pieces += self._pieces(child, quoted=True)
                else:  # a lone `$` and similar tokens stand for themselves
                    pieces.append(_Piece(child.text.decode(errors="replace"), quoted=True))
            return pieces or [_Piece("", quoted=True)]
        if kind == "concatenation":
            return [piece for child in node.children for piece in self._pieces(child, quoted)]
        if kind == "simple_expansion":
            return [self._parameter(text[1:], quoted)]
        if kind == "expansion":
            return [self._braced_parameter(node, text, quoted)]
        if kind in ("command_substitution", "process_substitution", "arithmetic_expansion"):
            return [_Piece(text, quoted, known=False)]
        if kind == "brace_expression":
            return [_Piece(text, quoted=quoted)]
        return [_Piece(text, quoted=quoted)]

    def _parameter(self, name: str, quoted: bool) -> _Piece:
        value = self.pwd if name == "PWD" and self.pwd is not None else self.env.get(name)
        if value is not None and UNKNOWN_IFS not in value:  # unquoted, a value is split and globbed
            return _Piece(value, quoted=True, split=not quoted)  # but not re-expanded for braces or ~
        return _Piece("${" + name + "}", quoted, known=False)

    def _braced_parameter(self, node: Node, text: str, quoted: bool) -> _Piece:
        """${NAME} is known when NAME is; any operator (${X:-/}, ${X%/*}) is not."""
        names = [c for c in node.children if c.type == "variable_name"]
        if len(names) == 1 and text == "${" + names[0].text.decode() + "}":
            return self._parameter(names[0].text.decode(), quoted)
        return _Piece(text, quoted, known=False)

    def _tilde(self, pieces: list[_Piece]) -> list[_Piece]:
        if not pieces or pieces[0].quoted or not pieces[0].text.startswith("~"):
            return pieces
        first = pieces[0].text
        prefix, slash, rest = first.partition("/")
        if prefix == "~":
            home = self.env.get("HOME")
            replacement = _Piece(home, True) if home else _Piece("${HOME}", True, known=False)
        elif prefix in ("~+", "~-"):
            replacement = self._parameter("PWD" if prefix == "~+" else "OLDPWD", True)
        elif len(pieces) == 1 or slash:
            try:
                replacement = _Piece(pwd.getpwnam(prefix[1:]).pw_dir, True)
            except (KeyError, ValueError):
                return pieces  # bash leaves an unknown ~user as it is
        else:
            return pieces
        return [replacement, _Piece(slash + rest, False), *pieces[1:]] if slash or rest else \
            [replacement, *pieces[1:]]


def _brace_expand(pieces: list[_Piece]) -> list[list[_Piece]]:
    """Bash brace expansion over unquoted text: a{b,c}d, {1..3}, {a..e}."""
    if not any("{" in piece.text and not piece.quoted for piece in pieces):
        return [pieces]
    chars: list[tuple[str, bool, bool]] = []  # (char, quoted, known)
    for piece in pieces:
        chars += [(c, piece.quoted, piece.known) for c in piece.text]
    expanded = _expand_chars(chars, depth=0)
    if expanded is None:
        return [pieces]
    return [_to_pieces(variant) for variant in expanded[:1024]]


def _to_pieces(chars: list[tuple[str, bool, bool]]) -> list[_Piece]:
    pieces: list[_Piece] = []
    for char, quoted, known in chars:
        if pieces and pieces[-1].quoted == quoted and pieces[-1].known == known:
            pieces[-1] = _Piece(pieces[-1].text + char, quoted, known)
        else:
            pieces.append(_Piece(char, quoted, known))
    return pieces or [_Piece("", True)]


def _expand_chars(chars: list[tuple[str, bool, bool]], depth: int) -> list[list[tuple[str, bool, bool]]] | None:
    """None when there is no brace expression to expand."""
    if depth > 8:
        return None
    for start, (char, quoted, _known) in enumerate(chars):
        if char != "{" or quoted or (start > 0 and chars[start - 1][0] == "$"):
            continue
        level = 0
        commas = []
        for end in range(start + 1, len(chars)):
            c, q, _ = chars[end]
            if q:
                continue
            if c == "{":
                level += 1
            elif c == "}" and level > 0:
                level -= 1
            elif c == "," and level == 0:
                commas.append(end)
            elif c == "}":
                inner = chars[start + 1:end]
                if commas:
                    bounds = [start, *commas, end]
                    options = [chars[bounds[i] + 1:bounds[i + 1]] for i in range(len(bounds) - 1)]
                else:
                    options = _sequence(inner)
                    if options is None:
                        break
                prefix, suffix = chars[:start], chars[end + 1:]
                results = []
                for option in options:
                    combined = prefix + option + suffix
                    results += _expand_chars(combined, depth + 1) or [combined]
                return results
    return None


def _sequence(inner: list[tuple[str, bool, bool]]) -> list[list[tuple[str, bool, bool]]] | None:
    text = "".join(c for c, _, _ in inner)
    match = re.fullmatch(r"(-?\d+|[A-Za-z])\.\.(-?\d+|[A-Za-z])(?:\.\.(-?\d+))?", text)
    if not match:
        return None
    first, last, step = match.group(1), match.group(2), abs(int(match.group(3) or 1)) or 1
    if first.lstrip("-").isdigit() and last.lstrip("-").isdigit():
        a, b = int(first), int(last)
        values = [str(v) for v in range(a, b + (1 if b >= a else -1), step if b >= a else -step)]
    elif first.isalpha() and last.isalpha():
        a, b = ord(first), ord(last)
        values = [chr(v) for v in range(a, b + (1 if b >= a else -1), step if b >= a else -step)]
    else:
        return None
    return [[(c, False, True) for c in value] for value in values[:1024]]
