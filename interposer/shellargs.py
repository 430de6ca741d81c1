"""How a shell's argv says what to run: `-c TEXT`, a script file, or its standard input.

One reading for the decision service (the argv a jailed shell really got) and the resolver (a shell
named on a judged line), so both agree on `bash -e x.sh`, `sh -s`, `bash --rcfile F x.sh`, `sh -- x.sh`.
"""

from __future__ import annotations

SHELL_OPTIONS_WITH_VALUE = frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file"})


def invocation(argv: list[str]) -> tuple[str, str | None, int]:
    """What a shell's argv asks it to run, and where: ("c", text, i), ("file", path, i) with argv[i] the
    text or path, or ("stdin", None, i)."""
    index = 1
    command_mode = False
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            index += 1
            break
        if arg in SHELL_OPTIONS_WITH_VALUE:
            index += 2
            continue
        if arg.startswith("--"):
            index += 1
            continue
        if arg.startswith(("-", "+")) and len(arg) > 1:
            command_mode = command_mode or "c" in arg[1:]
            if "s" in arg[1:] and not command_mode:
                return "stdin", None, index
            index += 1
            continue
        break
    if command_mode:
        return ("c", argv[index], index) if index < len(argv) else ("stdin", None, index)
    if index < len(argv):
        return "file", argv[index], index
    return "stdin", None, index
