"""The catalogue read: a program's grammar, the program a runner runs, and the acts of a command's form.

The built-in entries are data (catalogue.toml, next to this file), checked by the same schema as a
profile's `[interposer.programs]` tables (jail/policy/programs.py); a profile's entry replaces the built-in
one of the same name. The judge's rules match the acts found here (`acts = ["destroys-data"]`), so a new
program is taught to shelljail by an entry, not by a branch in code.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

from jail.policy.programs import Program, build, validate

from ..words import Word
from .options import Grammar, flags, is_option, operands, takes_next

CATALOGUE = os.path.join(os.path.dirname(__file__), "catalogue.toml")
MAX_RUNNERS = 8  # npx pnpm exec uv run ...: more runners in a row are not followed


class Act(NamedTuple):
    kind: str  # one of jail.policy.programs.ACTS
    verb: str  # how the reason names it: "prisma migrate reset", "pm2 kill"
    writes: tuple[Word, ...] = ()  # files it overwrites (overwrites-config)


_MAX_CACHED = 1 << 22


def load(path: str = CATALOGUE) -> dict[str, Program]:
    """A catalogue file's entries, checked; kept in shelljail's cache (jail/cachedir.py) under the identity
    of the file and of its schema, since parsing the built-in one's TOML was most of the judge's import
    (measured under load: 43 ms parsed, 5 ms from the cache), and a hook is a process per command."""
    import marshal
    import zlib

    from jail import cachedir
    from jail.policy import programs as schema

    try:
        key = repr((cachedir.stamp(path), cachedir.stamp(schema.__file__)))
    except OSError:
        key = ""
    name = f"{zlib.crc32(os.path.realpath(path).encode()):08x}.marshal"
    raw = cachedir.read("catalogue", name, _MAX_CACHED) if key else None
    if raw is not None:
        try:
            cached_key, entries = marshal.loads(raw)
            if cached_key == key:
                return build(entries)
        except (EOFError, ValueError, TypeError):
            pass
    with open(path, "rb") as f:
        entries = dict(validate(tomllib.load(f)["programs"]))
    if key:
        data = marshal.dumps((key, entries))
        if len(data) <= _MAX_CACHED:
            cachedir.write("catalogue", name, data)
    return build(entries)


BUILTIN = load()
_MERGED: dict[int, tuple[Mapping[str, object], dict[str, Program]]] = {}


def programs(overrides: Mapping[str, object] | None = None) -> Mapping[str, Program]:
    """The built-in catalogue with a profile's entries over it (kept per profile mapping)."""
    if not overrides:
        return BUILTIN
    key = id(overrides)
    cached = _MERGED.get(key)
    if cached is None or cached[0] is not overrides:
        cached = (overrides, {**BUILTIN, **build(overrides)})  # type: ignore[arg-type]
        _MERGED[key] = cached
    return cached[1]


def grammar(name: str, catalogue: Mapping[str, Program] = BUILTIN) -> Grammar:
    entry = catalogue.get(name)
    return Grammar() if entry is None else Grammar(entry.values, entry.bundles)


def _program_name(word: str) -> str:
    """`dotenv-vault@latest` and `@scope/tool@1` run the tool; `bin/rails` runs rails."""
    base = word[1:] if word.startswith("@") else word
    base = base.split("@", 1)[0]
    return os.path.basename(base)


def identify(name: str, args: Sequence[Word], catalogue: Mapping[str, Program] = BUILTIN
             ) -> tuple[str, Sequence[Word]]:
    """The program a runner runs, with its arguments: `npx prisma migrate reset` is prisma's
    `migrate reset`, `python manage.py flush` is manage.py's `flush`, `python -m alembic` alembic's."""
    for _ in range(MAX_RUNNERS):
        entry = catalogue.get(name)
        if entry is None:
            break
        found = _runs(entry, args, catalogue)
        if found is None:
            break
        name, args = found
    return name, args


def _runs(entry: Program, args: Sequence[Word], catalogue: Mapping[str, Program]
          ) -> tuple[str, Sequence[Word]] | None:
    rules = Grammar(entry.values, entry.bundles)
    index = 0
    while index < len(args):
        text = args[index].value
        if entry.program_option and (text == entry.program_option or (
                text.startswith(entry.program_option) and not text.startswith("--"))):
            module = text[len(entry.program_option):] or (args[index + 1].value if index + 1 < len(args) else "")
            rest = args[index + (1 if len(text) > len(entry.program_option) else 2):]
            return (_program_name(module.split(".")[0]), rest) if module else None
        if text == "--":
            index += 1
            break
        if not is_option(text):
            break
        index += 2 if takes_next(text, rules) else 1
    if index >= len(args) or not args[index].literal:
        return None
    first = args[index].value
    if entry.script and os.path.basename(first) in catalogue:  # python manage.py, ruby bin/rails, php artisan
        return os.path.basename(first), args[index + 1:]
    if "" in entry.runs:
        return _program_name(first), args[index + 1:]
    words = [w.value for w in operands(args, rules)]
    for runner in (r for r in entry.runs if r):
        parts = runner.split()
        if words[:len(parts)] == parts:
            rest = list(args[index:])
            for part in parts:  # drop the subcommand words, then the runner's own options
                rest = rest[[w.value for w in rest].index(part) + 1:]
            while rest and is_option(rest[0].value):
                rest = rest[2 if takes_next(rest[0].value, rules) else 1:] if rest[0].value != "--" else rest[1:]
                if rest and rest[0].value == "--":
                    rest = rest[1:]
            if rest and rest[0].literal:
                return _program_name(rest[0].value), rest[1:]
    return None


def _matches(pattern: str, words: list[str]) -> bool:
    parts = pattern.lower().split()
    return len(words) >= len(parts) and all(fnmatch.fnmatchcase(w, p) for w, p in zip(words, parts, strict=False))


def acts(name: str, args: Sequence[Word], catalogue: Mapping[str, Program] = BUILTIN,
         known: Collection[str] = ()) -> list[Act]:
    """What the command's form does, by its program's entry; a destructive verb on a program with none, or
    with one marked unknown_verbs (and not among `known`, the programs the resolver's handlers take: find,
    xargs, eval...). A request for help (`--help`) does nothing."""
    name, args = identify(name, args, catalogue)
    entry = catalogue.get(name)
    rules = Grammar() if entry is None else Grammar(entry.values, entry.bundles)
    given = flags(args, rules)
    if "--help" in given:
        return []
    found: list[Act] = []
    if entry is None or entry.unknown_verbs:  # no entry, or one that only says what it does with files
        verb = None if name in known or given & DRY_RUN else destructive_verb(args)
        found += [Act("destructive-verb", f"{name} {verb}")] if verb else []
        if entry is None:
            return found
    words = operands(args, rules)
    lowered = [w.value.lower() for w in words]
    for form in entry.forms:
        matched = next((p for p in form.subcommand if _matches(p, lowered)), None)
        if form.subcommand and matched is None:
            continue
        if form.flags and not given & set(form.flags):
            continue
        if form.args and not any(fnmatch.fnmatchcase(w.value.lower(), p.lower()) for w in args for p in form.args):
            continue
        if form.unless_flags and given & set(form.unless_flags):
            continue
        shown = form.verb or " ".join(filter(None, (name, " ".join(lowered[:len(matched.split())])
                                                    if matched else "", *sorted(given & set(form.flags)))))
        written: tuple[Word, ...] = ()
        if form.writes:
            rest = words[len(matched.split()):] if matched else words
            written = (rest[0],) if rest else tuple(Word(p, True, False, p) for p in form.writes)
        found.append(Act(form.act, shown, written))
    return found


DRY_RUN = frozenset({"--dry-run", "--dryrun", "--what-if", "--simulate", "--check"})
# Words that name destruction, as a subcommand (`db:drop`, `delete-bucket`) or a flag.
DESTRUCTIVE_WORDS = frozenset({"reset", "drop", "destroy", "delete", "purge", "prune", "wipe", "flush", "flushall",
                               "flushdb", "truncate", "kill", "killall", "nuke", "erase", "obliterate", "dropdb"})
DESTRUCTIVE_FLAGS = frozenset({"--force", "--accept-data-loss", "-auto-approve", "--auto-approve", "--yes",
                               "--force-reset", "--purge", "--yes-i-really-mean-it", "--drop"})
_SUBCOMMAND = re.compile(r"^[a-z][a-z0-9]*([:_-][a-z0-9]+)*$")
_TOKEN = re.compile(r"[:_-]")


def destructive_verb(args: Sequence[Word]) -> str | None:
    """The first destructive word among the first two subcommand words, or a destructive flag."""
    for word in operands(args)[:2]:
        text = word.value.lower()
        if not word.literal or not _SUBCOMMAND.match(text):
            break
        if any(token in DESTRUCTIVE_WORDS for token in _TOKEN.split(text)):
            return word.value
    for word in args:
        if word.value == "--":
            break
        option = word.value.split("=", 1)[0]
        if option in DESTRUCTIVE_FLAGS:
            return option
    return None
