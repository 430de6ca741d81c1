"""Options through which a program runs a command of its own: `tcpdump -z CMD`, `restic --password-command
CMD`, `tar --to-command CMD`, `ssh -o ProxyCommand=CMD`, `sshfs -o ssh_command=CMD`.

The command runs later, when the program chooses, with arguments it adds; GTFOBins lists each of these as
a way to run anything through a tool a policy lets pass. The resolver judges the command as a line of its
own (so `--password-command='rm -rf ~'` is denied as `rm -rf ~` is) and asks about it besides, as it asks
about `git -c core.pager` and `PAGER=`, unless it is the plain program the option exists for (a compressor
for `tar -I`, ssh for `rsync -e`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from jail.policy.programs import Program

from .programs.catalogue import BUILTIN
from .words import Word

# Each program's options whose value is a command line it runs (`commands`, with the programs each option
# expects), its `-o NAME=VALUE` settings that are (`command_settings`), and the options that let the text it
# reads run shell commands, its "unsafe" or "shell escape" mode (`shell_escapes`), are its catalogue entry's.
_NO_ENTRY = Program()
_SETTING_NAME = re.compile(r"[\s=]")


def option_commands(name: str, args: Sequence[Word], catalogue: Mapping[str, Program] = BUILTIN
                    ) -> list[tuple[str, Word]]:
    """(option, command) for each option of the program `name` whose value is a command it runs."""
    entry = catalogue.get(name, _NO_ENTRY)
    options = entry.commands
    settings = entry.command_settings
    found: list[tuple[str, Word]] = []
    for index, word in enumerate(args):
        following = args[index + 1] if index + 1 < len(args) else None
        value = word.value
        if value == "--":
            break
        option, equals, attached = value.partition("=")
        if option in options:
            given = _part(word, attached) if equals else following
            found += [(option, given)] if given is not None else []
        elif len(option) > 2 and option[:2] in options and not option.startswith("--"):  # `-z/tmp/x`
            found.append((option[:2], _part(word, value[2:])))
        elif settings and value.startswith("-o"):
            setting = _part(word, value[2:]) if len(value) > 2 else following
            for piece in _settings(entry, setting):
                key, command = (_SETTING_NAME.split(piece.value.strip(), 1) + [""])[:2]  # Name=VALUE, Name VALUE
                if key.rstrip(":").lower() in settings:  # apt: `APT::Update::Pre-Invoke::=CMD`
                    found.append((f"-o {key}", _part(piece, command.strip())))
    return found


def shell_escape(name: str, args: Sequence[Word], catalogue: Mapping[str, Program] = BUILTIN) -> str | None:
    """The option that lets what the program reads run shell commands (`pic -U`, `pdflatex --shell-escape`)."""
    escapes = catalogue.get(name, _NO_ENTRY).shell_escapes
    return next((w.value for w in args if w.value in escapes), None) if escapes else None


def expected(name: str, option: str, command: str, catalogue: Mapping[str, Program] = BUILTIN) -> bool:
    """Whether the command is the plain program the option exists for (`tar -I zstd`, `rsync -e 'ssh -p 22'`)."""
    program = os.path.basename(command.split(" ", 1)[0]) if command.strip() else ""
    return program in catalogue.get(name, _NO_ENTRY).commands.get(option, frozenset())


def _settings(entry: Program, setting: Word | None) -> list[Word]:
    """sshfs takes several settings in one -o, comma-separated (`settings_list`); ssh takes one."""
    if setting is None:
        return []
    if not entry.settings_list:
        return [setting]
    return [_part(setting, piece) for piece in setting.value.split(",")]


def _part(word: Word, value: str) -> Word:
    """A piece of a word (the value after `=`), as known as the word is."""
    return Word(value, word.literal, False, word.source)
