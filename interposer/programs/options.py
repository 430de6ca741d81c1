"""The one option reader: which words of a command are options, their values, and operands.

Every place that needs a program's operands (the files rm deletes, the subcommand of git, the script
of awk, the directory of `env -C`) reads them here, with the program's grammar from the catalogue: the
options that take a value, and whether short options bundle (getopt: `-rf` is `-r -f`; in `-Eu root`
the bundle ends at `-u`, whose value is the rest of the word or the next one).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import NamedTuple

from ..words import Word


class Grammar(NamedTuple):
    values: Collection[str] = frozenset()  # options that take a value
    bundles: bool = True


PLAIN = Grammar()


def takes_next(option: str, grammar: Grammar) -> bool:
    """Whether the option's value is the next word: `-u root`, `--user root`, `-Eu root`; not `--user=root`,
    `-uroot`."""
    if option.startswith("--") or len(option) == 2 or not grammar.bundles:
        return option in grammar.values
    for position, letter in enumerate(option[1:], 1):
        if f"-{letter}" in grammar.values:
            return position == len(option) - 1
    return False


def is_option(value: str) -> bool:
    return value.startswith("-") and value != "-"


def operands(args: Sequence[Word], grammar: Grammar = PLAIN) -> list[Word]:
    """The words that are not options or option values (all words after `--`); `-` (standard input) is one."""
    out: list[Word] = []
    index = 0
    while index < len(args):
        value = args[index].value
        if value == "--":
            out += args[index + 1:]
            break
        if is_option(value):
            index += 2 if takes_next(value, grammar) else 1
            continue
        out.append(args[index])
        index += 1
    return out


def value(args: Sequence[Word], names: Collection[str], grammar: Grammar = PLAIN) -> Word | None:
    """The value first given to one of the options `names` (`-C DIR`, `-CDIR`, `--chdir=DIR`), if any."""
    for index, word in enumerate(args):
        text = word.value
        if text == "--":
            return None
        if not is_option(text):
            continue
        option, equals, attached = text.partition("=")
        if option in names and text.startswith("--") and equals:
            return Word(attached, word.literal, False, word.source)
        if text in names:
            return args[index + 1] if index + 1 < len(args) else None
        if not text.startswith("--") and text[:2] in names and len(text) > 2:
            return Word(text[2:], word.literal, False, word.source)
    return None


def given(args: Sequence[Word], grammar: Grammar = PLAIN) -> Iterator[tuple[str, Word | None]]:
    """Each option before `--`, with its value (None for a switch), as getopt reads it: `-rf` is `-r` and
    `-f`; in `-Eu root` and `-uroot` `-u`'s value is `root`; `--user=root` and `--user root` (when
    `--user` takes a value) are `--user` with `root`. Operands are passed over (GNU programs permute)."""
    index = 0
    while index < len(args):
        word = args[index]
        text = word.value
        index += 1
        if text == "--":
            return
        if not is_option(text):
            continue
        if text.startswith("--"):
            option, equals, attached = text.partition("=")
            if equals:
                yield option, Word(attached, word.literal, False, word.source)
            elif option in grammar.values and index < len(args):
                yield option, args[index]
                index += 1
            else:
                yield option, None
            continue
        if not grammar.bundles or len(text) == 2:
            if text in grammar.values and index < len(args):
                yield text, args[index]
                index += 1
            else:
                yield text, None
            continue
        for position, letter in enumerate(text[1:], 1):
            option = f"-{letter}"
            if option not in grammar.values:
                yield option, None
                continue
            rest = text[position + 1:]
            if rest:
                yield option, Word(rest, word.literal, False, word.source)
            elif index < len(args):
                yield option, args[index]
                index += 1
            else:
                yield option, None
            break


def values(args: Sequence[Word], names: Collection[str], grammar: Grammar = PLAIN) -> list[Word]:
    """Every value given to one of the options `names` (which take one), in order: `-f A -fB --file=C`."""
    rules = grammar._replace(values=frozenset(grammar.values) | frozenset(names))
    return [found for option, found in given(args, rules) if option in names and found is not None]


def command_start(args: Sequence[Word], grammar: Grammar = PLAIN) -> int:
    """Where the command a program runs begins (`xargs -n 1 rm`, `watch -n 1 ls`): the first operand,
    after its options and their values; after `--` when it ends them."""
    index = 0
    while index < len(args):
        text = args[index].value
        if text == "--":
            return index + 1
        if not is_option(text):
            return index
        index += 2 if takes_next(text, grammar) else 1
    return min(index, len(args))


def flags(args: Sequence[Word], grammar: Grammar | None = None) -> set[str]:
    """Short options split out of bundles (-rf is -r and -f), long options without values;
    `-9` or `-1` are numbers (kill -9, head -1), not options. With a grammar, option values are
    skipped: in `git clean -fenode` the bundle ends at `-e`, whose value is `node`, not `-n`."""
    found: set[str] = set()
    index = 0
    while index < len(args):
        text = args[index].value
        index += 1
        if text == "--":
            break
        if text.startswith("--"):
            found.add(text.split("=", 1)[0])
            if grammar is not None and takes_next(text, grammar):
                index += 1
        elif text.startswith("-") and len(text) > 1 and not text[1:].isdigit():
            for letter in text[1:]:
                found.add(f"-{letter}")
                if grammar is not None and grammar.bundles and f"-{letter}" in grammar.values:
                    break  # the rest of the word, or the next one, is its value
            if grammar is not None and takes_next(text, grammar):
                index += 1
    return found
