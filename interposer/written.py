"""Files a command line writes before it runs them: `cat > x.sh <<EOF ... EOF; sh x.sh`.

In the jail, a script run by an allowed line starts a child shell that is not
judged again (judge_child_shells), so the text a line writes and then runs
must be judged with the line. The resolver keeps, per line, each file written
by a redirection or `tee`, with its text when the line shows it (a literal
echo or printf, a here-document) or None when only running shows it
(`curl -o x.sh URL`, `echo "$X" > x.sh`).
"""

from __future__ import annotations

import os
import re

from .ir import Command

_WRITE_OPS = (">", ">|", "&>")
_APPEND_OPS = (">>", "&>>")
# Programs' options that name a file they download into.
_DOWNLOAD_OUTPUTS = {"curl": ("-o", "--output"), "wget": ("-O", "--output-document"),
                     "aria2c": ("-o", "--out")}
_SHEBANG = re.compile(r"#!\s*(\S+)(?:\s+(\S+))?")


def literal_output(command: Command) -> str | None:
    """What `echo ...` or `printf ...` with literal words writes (for `echo 'rm -rf ~' | sh` too)."""
    argv = command.argv
    if not argv or not all(w.literal for w in argv) or argv[0].value not in ("echo", "printf"):
        return None
    words = [w.value for w in argv[1:]]
    if argv[0].value == "printf":
        return _unescape(words[0]) if words and "%" not in words[0] else None
    flags = ""
    while words and re.fullmatch(r"-[neE]+", words[0]):
        flags += words.pop(0)
    text = " ".join(words) + ("" if "n" in flags else "\n")
    return _unescape(text) if "e" in flags else text


def stdout_text(command: Command) -> str | None:
    """What the command writes to its standard output, when the line shows it: echo, printf, and cat or
    tee fed a here-document or a literal pipe."""
    text = literal_output(command)
    if text is not None or not command.argv or not all(w.literal for w in command.argv):
        return text
    name = os.path.basename(command.argv[0].value)
    if name == "tee" or (name == "cat" and all(w.value.startswith("-") for w in command.argv[1:])):
        return stdin_text(command)
    return None


def stdin_text(command: Command) -> str | None:
    """What the command reads on its standard input, when the line shows it."""
    for redirect in command.redirects:
        if redirect.op in ("<<", "<<-", "<<<") and redirect.fd in (None, 0):
            return redirect.body
    return command.piped_text


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


def writes(command: Command) -> list[tuple[str, str | None, bool]]:
    """(path, text or None, appends) for each file the command writes whole text into."""
    out: list[tuple[str, str | None, bool]] = []
    for redirect in command.redirects:
        if redirect.target is None or redirect.fd not in (None, 1) or not redirect.target.literal:
            continue
        if redirect.op in _WRITE_OPS or redirect.op in _APPEND_OPS:
            out.append((_path(command, redirect.target.value), stdout_text(command), redirect.op in _APPEND_OPS))
    argv = command.argv
    if not argv or not argv[0].literal:
        return out
    name = os.path.basename(argv[0].value)
    if name != "tee" and name not in _DOWNLOAD_OUTPUTS:
        return out
    args = argv[1:]
    if name == "tee":
        appends = any(w.value in ("-a", "--append") for w in args)
        out += [(_path(command, w.value), stdin_text(command), appends)
                for w in args if w.literal and not w.value.startswith("-")]
    options = _DOWNLOAD_OUTPUTS.get(name, ())
    for index, word in enumerate(args):
        value = word.value
        if value in options and index + 1 < len(args) and args[index + 1].literal:
            out.append((_path(command, args[index + 1].value), None, False))
        elif "=" in value and value.split("=", 1)[0] in options and word.literal:
            out.append((_path(command, value.split("=", 1)[1]), None, False))
    return out


def _path(command: Command, value: str) -> str:
    return os.path.normpath(os.path.join(command.cwd, value))


def shebang(text: str) -> str | None:
    """The program a script's `#!` line names (`env python3` gives python3), or None."""
    match = _SHEBANG.match(text)
    if match is None:
        return None
    program = os.path.basename(match.group(1))
    if program == "env" and match.group(2):
        return os.path.basename(match.group(2))
    return program


def without_shebang(text: str) -> str:
    """The text after its `#!` line: `#!/bin/sh` names the interpreter, it starts no shell."""
    return text.split("\n", 1)[1] if text.startswith("#!") and "\n" in text else ("" if text.startswith("#!")
                                                                                    else text)
