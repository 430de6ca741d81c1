"""What a program does to the filesystem: the paths it deletes and writes, and where they are.

Rules match on these classes rather than on raw arguments, so that `rm -rf
~`, `rm -r -f $HOME/`, `find ~ -delete` and `mv ~/x /tmp` are all one fact:
a deletion in the home directory, outside the workspace.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from jail.policy.paths import (
    CREDENTIALS,
    SCRATCH,
    STARTUP_FILES,
    SYSTEM_CREDENTIALS,
    SYSTEM_STARTUP,
    is_cache_path,
)
from jail.policy.programs import Program

from .programs import options
from .programs.catalogue import BUILTIN, Act, acts, grammar
from .programs.options import flags
from .resolve import KNOWN_PROGRAMS, Invocation
from .words import Word

__all__ = ["Effects", "Place", "Target", "classes", "credential_beneath", "effects", "find_roots", "flags"]


class Target(NamedTuple):
    path: str | None  # absolute and normalised; None when only known at run time
    word: Word | None
    contents: str = ""  # "all" or "some" of what is under `path`, rather than `path` itself


class Effects(NamedTuple):
    deletes: tuple[Target, ...] = ()
    writes: tuple[Target, ...] = ()
    reads: tuple[Target, ...] = ()  # files whose content it reads (for secrets: .env, ~/.ssh/...)
    # Absolute paths its arguments name, wherever in them (`--data @/etc/shadow`, `file:/etc/shadow`,
    # `-C 'Include /etc/shadow'`): a program handed a credential's path is taken to read it.
    mentions: tuple[Target, ...] = ()
    sends: tuple[Target, ...] = ()  # local files it sends over the network (`curl -T F`, `-d @F`, `scp F host:`)
    acts: tuple[Act, ...] = ()  # what its form does by the catalogue: destroys-data, kills, overwrites-config


_NO_ENTRY = Program()
_MENTION_SPLIT = re.compile(r"[\s=@,;:'\"(){}<>|&\\]+")
def _operands(name: str, args: tuple[Word, ...], catalogue: Mapping[str, Program] = BUILTIN) -> list[Word]:
    """Arguments that are not options or their values (everything after `--`), by the program's grammar."""
    return options.operands(args, grammar(name, catalogue))


def _target(word: Word, cwd: str, contents: str = "") -> Target:
    if not word.literal or "${PWD}" in cwd and not word.value.startswith("/"):
        return Target(None, word, contents)
    value = word.value
    if word.glob:
        # `rm -rf *` acts on all the contents of a directory, `rm *.o` on some of them
        cut = min((value.find(c) for c in "*?[" if c in value), default=len(value))
        directory, pattern = os.path.split(value[:cut])[0], os.path.basename(value)
        whole = pattern in ("*", ".*", "*.*") and "/" not in value[cut:]
        return Target(os.path.normpath(os.path.join(cwd, directory or ".")), word, "all" if whole else "some")
    return Target(os.path.normpath(os.path.join(cwd, value)), word, contents)


def effects(invocation: Invocation, find_roots: tuple[Target, ...] = (),
            catalogue: Mapping[str, Program] = BUILTIN) -> Effects:
    """What the invocation deletes, writes, reads, names and sends, and the acts of its form."""
    name = invocation.name
    args = invocation.args
    cwd = invocation.cwd
    entry = catalogue.get(name, _NO_ENTRY)
    deletes: list[Target] = []
    writes: list[Target] = []
    unknown_extra = Target(None, None) if invocation.extra_args else None

    def targets(words: list[Word], contents: bool = False) -> list[Target]:
        out = []
        for word in words:
            if word.value == "{}" and find_roots:
                out += list(find_roots)
            else:
                out.append(_target(word, cwd, contents))
        return out

    if "delete" in entry.files:  # rm, rmdir, unlink, srm
        deletes += targets(_operands(name, args, catalogue))
        if unknown_extra:
            deletes.append(unknown_extra)
    elif name == "shred":
        writes += targets(_operands(name, args, catalogue))
        if "-u" in flags(args) or "--remove" in flags(args):
            deletes += writes
    elif name == "find":
        roots = targets(_find_roots(args), contents=_find_scope(args))
        if any(w.value == "-delete" for w in args):
            deletes += roots
        for index, word in enumerate(args):
            if word.value in ("-fprint", "-fprint0", "-fprintf", "-fls") and index + 1 < len(args):
                writes.append(_target(args[index + 1], cwd))
    elif "move" in entry.files:  # mv
        operands = targets(_operands(name, args, catalogue))
        if len(operands) >= 2:
            deletes += operands[:-1]
            writes.append(operands[-1])
        if unknown_extra:
            deletes.append(unknown_extra)
    elif "write-last" in entry.files:  # cp, ln, install, rsync, scp
        operands = targets(_operands(name, args, catalogue))
        dry_run = entry.dry_run and flags(args, grammar(name, catalogue)) & entry.dry_run
        if operands and not dry_run:  # rsync -n only says what it would copy and delete
            writes.append(operands[-1])
            if entry.prunes and any(f.startswith(entry.prunes) for f in flags(args)):  # rsync --delete-after
                deletes.append(operands[-1]._replace(contents="some"))
    elif "write-after-first" in entry.files:  # chmod, chown, chgrp, chattr, setfacl
        operands = _operands(name, args, catalogue)
        has_reference = any(w.value.startswith("--reference") for w in args)
        writes += targets(operands if has_reference else operands[1:])
    elif name == "dd":
        for word in args:
            if word.value.startswith("of=") and word.literal:
                writes.append(_target(Word(word.value[3:], True, False, word.source), cwd))
            elif word.value.startswith("of="):
                writes.append(Target(None, word))
    elif name in ("sed", "perl", "ruby") and any(f in ("-i", "--in-place") or f.startswith("--in-place")
                                                   for f in flags(args) | {w.value for w in args}):
        files = _operands(name, _without_bsd_suffix(args), catalogue)
        script_given = bool(flags(args) & {"-e", "-f", "--expression", "--file"})  # -e X, -pe X, --file=F
        writes += targets(files if script_given else files[1:])
    elif name == "xxd" and "-r" in flags(args):
        operands = _operands(name, args, catalogue)
        writes += targets(operands[1:2])  # xxd -r IN OUT: OUT is written
    elif name == "git":
        deletes += _git_deletes(args, cwd, catalogue)
        writes += _git_apply_writes(args, cwd)
    elif "write" in entry.files:  # editors, touch, truncate, tee, mkdir...
        writes += targets(_operands(name, args, catalogue))
    elif name == "sysctl":
        writes += _sysctl_writes(args)
    writes += _output_options(entry, args, cwd)
    writes += _extracted(entry.archive, args, cwd, catalogue) if entry.archive else []

    found_acts = acts(name, args, catalogue, KNOWN_PROGRAMS)
    for act in found_acts:
        writes += targets(list(act.writes))
    reads = _reads(name, entry, args, cwd, targets, catalogue)
    for redirect in invocation.command.redirects:
        if redirect.writes_file and redirect.target is not None:
            writes.append(_target(redirect.target, cwd))
        elif redirect.op in ("<", "<>") and redirect.target is not None:
            reads.append(_target(redirect.target, cwd))
    if "stdin-names" in entry.files and invocation.command.piped_text:  # echo /etc/shadow | cpio -o
        reads += [_target(Word(p, True, False, p), cwd) for p in invocation.command.piped_text.split()]
    mentions = [] if "name" in entry.files else _mentions((*args, *invocation.handed))
    sends = _sends(name, entry, args, invocation, targets, catalogue)
    return Effects(tuple(deletes), tuple(writes), tuple(reads), tuple(mentions), tuple(sends), tuple(found_acts))


def _without_bsd_suffix(args: tuple[Word, ...]) -> tuple[Word, ...]:
    """`sed -i '' EXPR FILE` (BSD and macOS): the empty word after -i is its backup suffix, not the script."""
    return tuple(w for i, w in enumerate(args)
                 if not (i and w.literal and w.value == "" and args[i - 1].value == "-i"))


def _sysctl_writes(args: tuple[Word, ...]) -> list[Target]:
    """`sysctl -w kernel.core_pattern=...` writes /proc/sys/kernel/core_pattern; `sysctl -p` and `--system`
    load a file of settings into /proc/sys."""
    found = []
    for word in args:
        value = word.value
        if value == "--system" or value.startswith(("-p", "--load")):  # -p, -pFILE, --load=FILE
            found.append(Target("/proc/sys", word, "some"))
        elif not value.startswith("-") and "=" in value:
            key = value.split("=", 1)[0].strip().replace(".", "/") if word.literal else ""
            found.append(Target(f"/proc/sys/{key}".rstrip("/"), word) if key else Target(None, word))
    return found


# Options of HTTP clients whose value is a file to send: `@FILE` (curl -d/-F, httpie) or the value itself.
_SEND_AT = frozenset({"-d", "--data", "--data-binary", "--data-ascii", "--data-urlencode", "-F", "--form", "--json"})
_SEND_FILE = frozenset({"-T", "--upload-file", "--post-file", "--body-file"})


def _sends(name: str, entry: Program, args: tuple[Word, ...], invocation: Invocation, targets: Any,
           catalogue: Mapping[str, Program]) -> list[Target]:
    """The local files a network client sends: upload options, `scp`/`rsync` to a remote, `nc < FILE`."""
    files: list[Word] = []
    network = entry.network
    if network in ("uploads", "httpie"):
        for index, word in enumerate(args):
            option, equals, attached = word.value.partition("=")
            value = attached if equals else (args[index + 1].value if index + 1 < len(args) else "")
            if option[:2] in ("-d", "-F", "-T") and len(word.value) > 2 and not option.startswith("--"):
                option, value = word.value[:2], word.value[2:]  # curl -d@FILE, -Tfile
            if option in _SEND_FILE:
                files.append(Word(value, word.literal, False, word.source))
            elif option in _SEND_AT or (network == "httpie" and not word.value.startswith("-")):
                # curl -d @F, -F k=@F, -F k=<F, --data-urlencode k@F; httpie's k@F and k=@F items
                at = (word.value if option not in _SEND_AT else value).replace("=<", "=@")
                if "@" in at and not at.startswith("-"):
                    path = at.split("@", 1)[1].split(";", 1)[0]
                    if path and path != "-" and "://" not in at:
                        files.append(Word(path, word.literal, False, word.source))
    elif entry.sends_operands:  # scp, rsync, sftp
        operands = _operands(name, args, catalogue)
        if len(operands) >= 2 and ":" in operands[-1].value and not operands[-1].value.startswith("/"):
            files += [w for w in operands[:-1] if ":" not in w.value]
    if network == "raw":
        files += [r.target for r in invocation.command.redirects if r.op in ("<", "<>") and r.target is not None]
    return targets([w for w in files if w.value and w.value != "-"])


def _git_apply_writes(args: tuple[Word, ...], cwd: str) -> list[Target]:
    """`git apply --directory=DIR` writes under DIR (outside the repository with --unsafe-paths)."""
    values = [w.value for w in args]
    if "apply" not in values:
        return []
    found: list[Target] = []
    for index, word in enumerate(args):
        if word.value == "--directory" and index + 1 < len(args):
            found.append(_target(args[index + 1], cwd))
        elif word.value.startswith("--directory="):
            found.append(_target(Word(word.value.split("=", 1)[1], word.literal, False, word.source), cwd))
    return found


def _mentions(args: tuple[Word, ...]) -> list[Target]:
    """Every absolute path inside the literal arguments (`file:` and `file://` prefixes dropped; a URL's
    `//host` is not a path), in `{...}` (LaTeX's \\input{/etc/shadow}) and after a `:` (`open:/etc/x`)."""
    found = []
    for word in args:
        if not word.literal or "/" not in word.value:
            continue
        for token in _MENTION_SPLIT.split(word.value.replace("file://", "").replace("file:", "")):
            if token.startswith("/") and not token.startswith("//") and len(token) > 1:
                found.append(Target(os.path.normpath(token), word))
    return found




def _reads(name: str, entry: Program, args: tuple[Word, ...], cwd: str, targets: Any,
           catalogue: Mapping[str, Program]) -> list[Target]:
    """The files a program reads; a directory it reads whole (the catalogue's `trees`, or one of its
    `recursive` options) has contents "all" (see credential_beneath)."""
    read = _files_read(name, entry, args, cwd, targets, catalogue)
    if entry.trees or (entry.recursive and flags(args) & entry.recursive):
        return [t._replace(contents="all") for t in read]
    return read


def credential_beneath(targets: tuple[Target, ...], place: Place) -> Target | None:
    """A credential inside a directory read whole (`grep -r x /etc`, `tar czf b.tgz ~`): it is read too.

    The home's credentials count where they are there to read: in the real home (a hook), or bound into
    the jail's home by the profile; `tar czf home.tgz ~` in a jail whose home has none is a backup."""
    inside = _credentials_present(place)
    for target in targets:
        if target.contents == "all" and target.path is not None:
            prefix = target.path.rstrip("/") + "/"
            found = next((c for c in inside if c.startswith(prefix)), None)
            if found is not None:
                return Target(found, target.word)
    return None


def _tar_words(args: tuple[Word, ...], catalogue: Mapping[str, Program]) -> list[Word]:
    """tar's words with an old-style bundle (`tar czf ARCHIVE ...`) spelt out as options and their values
    (tar's options with a value, the archive, a directory to change to, a list of names..., are the
    catalogue's)."""
    tar_values = grammar("tar", catalogue).values
    words = list(args)
    if words and words[0].literal and not words[0].value.startswith("-"):
        bundle, words = words[0].value, words[1:]
        options: list[Word] = []
        for letter in bundle:
            options.append(Word(f"-{letter}", True, False, f"-{letter}"))
            if f"-{letter}" in tar_values and words:
                options.append(words.pop(0))  # its value: the next word, in order
        words = options + words
    return words


def _extracted(archive: str, args: tuple[Word, ...], cwd: str, catalogue: Mapping[str, Program]) -> list[Target]:
    """Where an archive is unpacked (`tar -xf x.tar -C /`, `unzip x.zip -d DIR`, `7z x -oDIR`, by the entry's
    `archive`): some of what is under that directory is written, judged by the destination."""
    if archive == "tar":
        words = _tar_words(args, catalogue)
        if not flags(tuple(words)) & {"-x", "--extract", "--get"}:
            return []
        destination = None
        for index, word in enumerate(words):  # the last -C wins
            if word.value in ("-C", "--directory") and index + 1 < len(words):
                destination = words[index + 1]
            elif word.value.startswith("--directory="):
                destination = Word(word.value.split("=", 1)[1], word.literal, False, word.source)
    elif archive == "unzip":
        destination = options.value(list(args), {"-d"})
    elif archive == "7z" and args and args[0].value in ("x", "e"):
        given = next((w for w in args if w.value.startswith("-o") and len(w.value) > 2), None)
        destination = Word(given.value[2:], given.literal, False, given.source) if given else None
    else:
        return []
    if destination is None:
        return [Target(os.path.normpath(cwd), None, "some")]
    return [_target(destination, cwd, "some")]


def _tar_inputs(args: tuple[Word, ...], cwd: str, catalogue: Mapping[str, Program]) -> list[Target]:
    """What `tar -c`/`-r`/`-u` puts in an archive (old-style `tar czf x.tgz dir` too), after any -C DIR."""
    words = _tar_words(args, catalogue)
    tar_values = grammar("tar", catalogue).values
    if not flags(tuple(words)) & {"-c", "-r", "-u", "--create", "--append", "--update"}:
        return []
    found: list[Target] = []
    index = 0
    while index < len(words):
        word = words[index]
        option = word.value.split("=", 1)[0]
        if option in tar_values:
            value = word.value.split("=", 1)[1] if "=" in word.value else (
                words[index + 1].value if index + 1 < len(words) else "")
            if option in ("-C", "--directory") and word.literal:
                cwd = os.path.normpath(os.path.join(cwd, value))
            index += 1 if "=" in word.value else 2
            continue
        if not word.value.startswith("-"):
            found.append(_target(word, cwd))
        index += 1
    return [t._replace(contents="all") for t in found]


def _files_read(name: str, entry: Program, args: tuple[Word, ...], cwd: str, targets: Any,
                catalogue: Mapping[str, Program]) -> list[Target]:
    if entry.archive == "tar":
        return _tar_inputs(args, cwd, catalogue)
    if "read-but-first" in entry.files:  # zip ARCHIVE FILES
        return targets(_operands(name, args, catalogue)[1:])
    if "read" in entry.files:
        return targets(_operands(name, args, catalogue))
    if "read-after-script" in entry.files:
        operands = _operands(name, args, catalogue)
        given_pattern = any(w.value in ("-e", "-f", "--regexp", "--file") for w in args)
        return targets(operands if given_pattern else operands[1:])
    keys = [args[i + 1] for i, w in enumerate(args[:-1]) if w.value in entry.reads_options] \
        if entry.reads_options else []  # ssh -i KEY, -F CONFIG
    if "read-but-last" in entry.files:  # cp, scp, rsync, install, mv
        return targets(_operands(name, args, catalogue)[:-1] + keys)
    return targets(keys) if keys else []


_FIND_TESTS = frozenset({"-name", "-iname", "-path", "-ipath", "-wholename", "-regex", "-iregex", "-type", "-newer",
                         "-mtime", "-mmin", "-atime", "-amin", "-ctime", "-cmin", "-size", "-empty", "-user",
                         "-group", "-perm", "-links", "-inum", "-samefile", "-lname", "-ilname", "-uid", "-gid",
                         "-nouser", "-nogroup", "-readable", "-writable", "-executable", "-used"})


def _find_scope(args: tuple[Word, ...]) -> str:
    """Whether a find expression selects everything under its roots, or filters."""
    return "some" if any(w.value in _FIND_TESTS for w in args) else "all"


def find_roots(invocation: Invocation) -> tuple[Target, ...]:
    return tuple(_target(w, invocation.cwd, _find_scope(invocation.args)) for w in _find_roots(invocation.args))


# Options that name an output file, across many programs: gcc -o, sort -o, curl -o, openssl -out (a program's
# own are its catalogue entry's `output`, tcpdump -w; those that are something else for it, `not_output`).
_OUTPUT_OPTIONS = frozenset({"-o", "-out", "--out", "--output", "--outfile", "--out-file", "--output-file",
                             "--output-document", "--log-file", "--logfile", "-Logfile", "--junit-xml", "--dump-bin",
                             "-outFile", "--outFile", "--output-dir"})


def _output_options(entry: Program, args: tuple[Word, ...], cwd: str) -> list[Target]:
    """The files named by output options: the common ones and the program's own (`ssh -o` is a setting;
    `strace -fo FILE`, `tcpdump -nw FILE` end a bundle with theirs, the entry's `bundled_output`)."""
    found = []
    bundled = entry.bundled_output
    for index, word in enumerate(args):
        option, equals, attached = word.value.partition("=")
        if bundled and len(option) > 2 and option[1] != "-" and option[-1] == bundled[1]:
            option = bundled
        if option not in _OUTPUT_OPTIONS and option not in entry.output or option in entry.not_output:
            continue
        if equals:
            value = Word(attached, word.literal, False, word.source)
        elif index + 1 < len(args):
            value = args[index + 1]
        else:
            continue
        if value.value.startswith("-") or "://" in value.value or not value.value:
            continue
        found.append(_target(value, cwd))
    return found


# A committed template of a .env (`cp .env.example .env` starts a project): names, no secrets.
DOTENV_TEMPLATES = (".example", ".sample", ".template", ".dist", ".defaults")


def _secret_classes(path: str, place: Place) -> set[str]:
    found = set()
    name = os.path.basename(path)
    if any(path == c or path.startswith(c + "/") for c in SYSTEM_CREDENTIALS) or (
            os.path.dirname(path) == "/etc/ssh" and name.startswith("ssh_host_") and not name.endswith(".pub")):
        found.add("credentials")
    if (name == ".env" or name.startswith(".env.") or name.endswith(".env") or name == ".envrc") \
            and not name.endswith(DOTENV_TEMPLATES):
        found.add("dotenv")
    credentials, startup = _home_locations(place.home)
    if path.startswith(os.path.join(place.home, "")):  # "/root/", or "/" for a home at the root
        if not name.endswith(".pub") and any(path == c or path.startswith(c + "/") for c in credentials):
            found.add("credentials")  # a public key (~/.ssh/id_ed25519.pub) is meant to be shown
        if any(path == s or path.startswith(s + "/") for s in startup):
            found.add("startup")
    if any(path == s or path.startswith(s + "/") for s in SYSTEM_STARTUP):
        found.add("startup")
    return found


@functools.lru_cache(maxsize=8)
def _credentials_present(place: Place) -> tuple[str, ...]:
    """The system's credentials and the home's that are there to read (credential_beneath), once per place."""
    home = _home_locations(place.home)[0]
    if place.home_binds is not None:
        home = tuple(c for c in home if any(c == b or c.startswith(b + "/") or b.startswith(c + "/")
                                            for b in place.home_binds))
    return (*SYSTEM_CREDENTIALS, *home)


@functools.lru_cache(maxsize=8)
def _home_locations(home: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The credential and start-up paths under one home, joined once per home rather than per path judged."""
    return (tuple(os.path.join(home, c) for c in CREDENTIALS),
            tuple(os.path.join(home, f) for f in (*STARTUP_FILES, ".ssh/authorized_keys")))


def _find_roots(args: tuple[Word, ...]) -> list[Word]:
    roots = []
    for word in args:
        if word.value.startswith("-") or word.value in ("(", "!", ")"):
            break
        roots.append(word)
    return roots or [Word(".", True, False, ".")]


def _git_deletes(args: tuple[Word, ...], cwd: str, catalogue: Mapping[str, Program]) -> list[Target]:
    operands = _operands("git", args, catalogue)
    if not operands:
        return []
    sub = operands[0].value
    given = flags(args, grammar("git", catalogue))  # `clean -fenode`: -e's value is not -n
    if given & {"-n", "--dry-run"}:
        return []  # it only says what it would delete
    if sub == "clean" and ({"-f", "--force"} & given):
        return [Target(cwd, None, contents="some")]  # untracked files only
    if sub == "rm" and "--cached" not in given:
        return [_target(w, cwd) for w in operands[1:]]
    return []


def _private(path: str, place: Place) -> bool:
    """Whether a path in the home is in the jail's own, disposable home: not bound from the real one, not
    a start-up file, not a credential."""
    if place.home_binds is None or path == place.home:
        return False
    relative = path[len(place.home) + 1:]
    if any(relative == f or relative.startswith(f + "/") for f in (*STARTUP_FILES, *CREDENTIALS)):
        return False
    return not any(path == b or path.startswith(b + "/") or b.startswith(path + "/") for b in place.home_binds)


class Place(NamedTuple):
    workspace: str
    home: str
    # None: the home is the real one (a hook judging outside any jail). A tuple: the jail's home, an empty
    # tmpfs gone after the run, but for these paths bound into it from the real home.
    home_binds: tuple[str, ...] | None = None
    # A jail whose workspace has the timeline on: what a command changes inside it, undo puts back.
    timeline: bool = False
    # Read-write binds of the jail besides the workspace (view.lasting_writable): never scratch, even
    # under /tmp, since what is written there outlives the jail.
    lasting: tuple[str, ...] = ()


def classes(target: Target, place: Place) -> frozenset[str]:
    """The path classes a rule can name: where a target is, relative to the workspace and home."""
    if target.path is None:
        return _UNKNOWN
    return _path_classes(target.path, target.contents, place)


_UNKNOWN = frozenset({"unknown", "any"})


@functools.lru_cache(maxsize=8192)
def _path_classes(path: str, contents: str, place: Place) -> frozenset[str]:
    """classes() of one path, cached: every rule asks it of every target, a line at a time."""
    return frozenset(_classes_of(path, contents, place))


def _classes_of(path: str, contents: str, place: Place) -> set[str]:
    workspace = place.workspace
    found = {"any"} | _secret_classes(path, place)
    if path == workspace:
        found |= {"inside-workspace", "work"} if contents == "some" else {"workspace-root"}
        return found
    if path.startswith(workspace + "/"):
        found.add("inside-workspace")
        parts = path[len(workspace) + 1:].split("/")
        if ".git" in parts:
            found.add("git-dir")
        found.add("cache" if ".git" not in parts and is_cache_path("/".join(parts)) else "work")
        return found
    if path == place.home or path.startswith(place.home + "/"):  # before scratch: a home under /tmp is a home
        found |= {"jail-home"} if _private(path, place) else {"home", "outside-workspace"}
        return found
    found.add("outside-workspace")
    if any(path == s or path.startswith(s + "/") for s in SCRATCH) and not any(
            path == b or path.startswith(b + "/") for b in place.lasting):
        return {"any", "scratch"}
    if path == "/":
        found.add("root")
    return found
