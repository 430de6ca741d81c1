"""The program catalogue's schema: what one entry may say about a program, checked as every profile key is.

The interposer's built-in catalogue (interposer/programs/catalogue.toml) and a profile's
`[interposer.programs.NAME]` tables are read by the same `validate`, so an entry a profile adds or
overrides is held to the rules of the built-in ones. An entry states a program's option grammar
(which options take a value, whether short options bundle), how it runs another program (`npx X`,
`python -m X`, `python manage.py`; a wrapper's `sudo -u root CMD`, `timeout 5 CMD`, `env -C DIR CMD`),
and the forms that destroy, overwrite or kill, each with the effect the judge's rules match on (`acts`).
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

# What a form does, as a rule's `acts` names it.
ACTS = ("destroys-data",  # drops, resets, flushes or rolls back a database or data store
        "overwrites-config",  # writes local secrets or configuration over what is there (`vercel env pull`)
        "kills",  # stops or kills processes or services it does not own alone (`pm2 kill`, `taskkill /F`)
        "discards-work",  # discards uncommitted work a snapshot can keep (`git clean -f`, `git checkout -- P`)
        "installs-beyond",  # installs from beyond the allowed registries, or outside the workspace and its venvs
        "destructive-verb")  # a destructive word on a program without an entry (found, never declared)
_PROGRAM_KEYS = {"values": "options that take a value (the next word, or `=VALUE`)",
                 "bundles": "whether short options bundle as getopt reads them (-rf, -fVALUE)",
                 "runs": "subcommands after which the words are another program's command ('' for the first word)",
                 "program_option": "the option whose value names the program run (python -m)",
                 "script": "whether the first operand is a script whose file name names the program",
                 "forms": "the destructive forms, a list of tables",
                 "wraps": "whether it runs the command given after its options, judged as a program of its own "
                          "(sudo, env, nice, timeout)",
                 "operands": "how many operands of its own come before the command it wraps (timeout DURATION: 1)",
                 "assignments": "whether NAME=VALUE words before the wrapped command set its environment (env)",
                 "lookup": "options with which it runs nothing, only looks the command up (command -v)",
                 "chdir": "options whose value is the directory the wrapped command starts in (env -C)",
                 "splits": "options whose value is a command line it splits into words and runs (env -S)"}
# What a program does with the files its operands name (effects.py reads these).
FILE_KINDS = {"read": "reads their content (cat, head, diff)",
              "read-after-script": "reads them, but for the first operand, its program or pattern, when no option "
                                   "gives that (grep PATTERN FILE, awk PROGRAM FILE, sed SCRIPT FILE)",
              "write": "writes them (editors, touch, truncate, tee, mkdir)",
              "name": "only names them, never reads their content: paths in its arguments are not taken as read "
                      "(ls, stat, test, echo, rm)",
              "show": "only reads or shows what it is handed: naming a start-up file to it changes nothing",
              "stdin-names": "reads the files whose names come on its standard input (cpio -o)",
              "delete": "deletes them (rm, rmdir, unlink)",
              "write-last": "writes the last (cp, ln, install, rsync, scp)",
              "read-but-first": "reads all but the first, its archive (zip ARCHIVE FILES)",
              "read-but-last": "reads all but the last (cp, scp, rsync, install, mv)",
              "move": "moves all but the last to the last: those are deleted, the last written (mv)",
              "write-after-first": "writes them but the first, its mode or owner, unless --reference names a file "
                                   "(chmod, chown, setfacl)"}
_PROGRAM_KEYS |= {"files": f"what it does with the files its operands name: any of {', '.join(FILE_KINDS)}",
                  "output": "its own options whose value is a file it writes (besides -o, --output, --log-file...)",
                  "not_output": "common output options that are something else for it (ssh -o, mount -o)",
                  "bundled_output": "the output option that may end a bundle of short options (strace -fo FILE)",
                  "recursive": "options with which it reads the directories it is handed whole (grep -r)",
                  "trees": "whether it always reads the directories it is handed whole (rg)",
                  "unknown_verbs": "whether its destructive words and flags are still asked about, as a program's "
                                   "with no entry are (an entry that only says what it does with files: curl, du)"}
# How a program reaches the network (destinations.py and effects.py read these).
NETWORK_KINDS = {"urls": "fetches the URLs among its operands and option values, through the jail's HTTP proxy "
                         "(aria2c, pip, npm)",
                 "uploads": "as urls, and its upload options name local files it sends (curl -T F, -d @F, wget "
                            "--post-file F)",
                 "httpie": "as uploads, and its request items name files too (http POST host f@F)",
                 "raw": "opens raw connections by itself; what its standard input reads is sent (nc, socat, openssl)",
                 "ssh": "connects over ssh, or rsync's own protocol, to the host it names (ssh, scp, rsync)"}
_PROGRAM_KEYS |= {"network": f"how it reaches the network: one of {', '.join(NETWORK_KINDS)}",
                  "text_only": "whether it never runs its arguments: a shell's path among them is only text (echo)",
                  "session": "whether it starts a shell or a session of its own, whose commands shelljail would not "
                             "see (screen, tmux, chroot)",
                  "copies": "whether it copies or links files: a shell copied under another name runs what the line "
                            "cannot show (cp, ln)",
                  "lists_processes": "whether it lists processes by name: a kill of pids taken from it signals "
                                     "processes picked by name, as pkill does (ps, pgrep)"}
_PROGRAM_KEYS |= {"commands": "a table: each option whose value is a command line it runs later, with its own "
                              "arguments (tcpdump -z CMD), and the programs that option expects (tar -I: gzip, zstd)",
                  "command_settings": "names of its `-o NAME=VALUE` settings whose value is a command line it runs "
                                      "(ssh -o ProxyCommand=CMD)",
                  "settings_list": "whether one -o takes several settings, comma-separated (sshfs)",
                  "shell_escapes": "options that let the text it reads run shell commands (pdflatex --shell-escape)"}
_PROGRAM_KEYS |= {"environment_shell": "subcommands that start an interactive shell in its environment, unseen "
                                       "(poetry shell, nix develop); \"\" for the program itself (nix-shell)",
                  "environment_line": "options whose value is a command line run in that environment "
                                      "(nix-shell --run CMD)",
                  "environment_command": "options after which the words are a command run in that environment "
                                         "(nix develop -c CMD ARGS)",
                  "manifests": "files it reads from its directory when named none (npm: package.json): one this "
                               "line writes is judged with it",
                  "makefiles": "it is make: the files it reads recipes from when named none, in its order; the "
                               "recipes of one this line writes are judged with it"}
_PROGRAM_KEYS |= {"shell": "whether it is a shell: its -c line, script, here-document or piped text is read as "
                           "shell text and judged (sh, bash, zsh)"}
_PROGRAM_KEYS |= {"interpreter": "whether it is an interpreter: program text from a file, an option (code) or its "
                                 "standard input, only it understands (python, node, perl)",
                  "code": "options (or words: deno eval) whose next word is program text (python -c)",
                  "code_letters": "one-letter switches that give program text inside a bundle (perl -ne: \"eE\")",
                  "value_letters": "one-letter switches whose value is the rest of a bundle (perl -i.bak)",
                  "repl": "whether with no program it waits for a person (default true; false for awk, make)"}
_PROGRAM_KEYS |= {"dry_run": "options with which it changes nothing, only says what it would do (rsync -n)",
                  "prunes": "options (and those they begin: --delete-after) with which it deletes what the "
                            "destination holds beyond the source (rsync --delete)",
                  "reads_options": "options whose next word is a file it reads (ssh -i KEY, -F CONFIG)",
                  "sends_operands": "whether, given a remote last (HOST:PATH), it sends its local operands there "
                                    "(scp, rsync, sftp)"}
# How an archiver unpacks (and packs) what it is handed (effects.py).
ARCHIVE_KINDS = {"tar": "extracts with -x, --extract or --get, under -C DIR; with -c, -r or -u it reads what it "
                        "packs (tar, bsdtar, gtar)",
                 "unzip": "extracts under -d DIR, or where it runs (unzip)",
                 "7z": "extracts with x or e, under -oDIR (7z)"}
_PROGRAM_KEYS |= {"archive": f"how it unpacks an archive, judged by the destination: one of {', '.join(ARCHIVE_KINDS)}"}
_FLAGS = ("sends_operands", "shell", "interpreter", "repl", "bundles", "script", "wraps", "assignments", "trees",
          "unknown_verbs", "text_only", "session", "copies", "lists_processes", "settings_list")
# The keys that only say how a wrapper reads what it wraps (so only with wraps = true).
_WRAPPER_KEYS = ("operands", "assignments", "lookup", "chdir", "splits")
MAX_WRAPPED_OPERANDS = 8
_FORM_KEYS = {"act": f"one of {', '.join(ACTS)}",
              "subcommand": "patterns on the leading operands, words separated by spaces (`migrate reset`)",
              "flags": "any of these options (bundles split)", "args": "any argument matching one of these globs",
              "unless_flags": "not when one of these options is given (a dry run)",
              "writes": "files written when no file operand follows the subcommand (`.env.local`)",
              "verb": "how the reason names the form"}


class Form(NamedTuple):
    """One destructive form of a program: every matcher given must match."""

    act: str
    subcommand: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    unless_flags: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    verb: str = ""


class Program(NamedTuple):
    """What the catalogue knows of one program."""

    values: frozenset[str] = frozenset()
    bundles: bool = True
    runs: tuple[str, ...] = ()
    program_option: str = ""
    script: bool = False
    forms: tuple[Form, ...] = ()
    wraps: bool = False
    operands: int = 0
    assignments: bool = False
    lookup: frozenset[str] = frozenset()
    chdir: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()
    files: frozenset[str] = frozenset()
    output: frozenset[str] = frozenset()
    not_output: frozenset[str] = frozenset()
    bundled_output: str = ""
    recursive: frozenset[str] = frozenset()
    trees: bool = False
    unknown_verbs: bool = False
    network: str = ""
    text_only: bool = False
    session: bool = False
    copies: bool = False
    lists_processes: bool = False
    commands: Mapping[str, frozenset[str]] = MappingProxyType({})
    command_settings: frozenset[str] = frozenset()
    settings_list: bool = False
    shell_escapes: frozenset[str] = frozenset()
    environment_shell: tuple[str, ...] = ()
    environment_line: frozenset[str] = frozenset()
    environment_command: frozenset[str] = frozenset()
    manifests: tuple[str, ...] = ()
    makefiles: tuple[str, ...] = ()
    shell: bool = False
    interpreter: bool = False
    code: tuple[str, ...] = ()
    code_letters: str = ""
    value_letters: str = ""
    repl: bool = True
    dry_run: frozenset[str] = frozenset()
    prunes: tuple[str, ...] = ()
    reads_options: frozenset[str] = frozenset()
    sends_operands: bool = False
    archive: str = ""


class ProgramError(ValueError):
    """A bad entry: the program and its key, for the profile's file/line error."""

    def __init__(self, program: str, key: str, problem: str) -> None:
        super().__init__(f"program {program!r}, key {key!r}: {problem}")
        self.program = program
        self.key = key


def _strings(program: str, key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProgramError(program, key, f"expected a string or a list of strings, got {type(value).__name__}")
    return list(value)


def _form(program: str, index: int, table: Any) -> dict[str, Any]:
    where = f"forms[{index}]"
    if not isinstance(table, Mapping):
        raise ProgramError(program, "forms", f"{where}: expected a table, got {type(table).__name__}")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key.startswith("\0"):
            continue
        if key not in _FORM_KEYS:
            raise ProgramError(program, "forms", f"{where}: unknown key {key!r} (known: {', '.join(_FORM_KEYS)})")
        if key in ("act", "verb"):
            if not isinstance(value, str):
                raise ProgramError(program, "forms", f"{where}.{key}: expected a string")
            if key == "act" and value not in ACTS:
                raise ProgramError(program, "forms", f"{where}.act: unknown act {value!r} (known: {', '.join(ACTS)})")
            out[key] = value
        else:
            out[key] = _strings(program, "forms", value)
    if "act" not in out:
        raise ProgramError(program, "forms", f"{where}: 'act' is required ({_FORM_KEYS['act']})")
    if not ({"subcommand", "flags", "args"} & set(out)):
        raise ProgramError(program, "forms", f"{where}: names no subcommand, flags or args, so it would match "
                                             "every use of the program")
    return out


def _commands(program: str, table: Any) -> dict[str, list[str]]:
    if not isinstance(table, Mapping):
        raise ProgramError(program, "commands", "expected a table of options, each with a list of programs")
    out = {}
    for option, expects in table.items():
        if option.startswith("\0"):
            continue
        if not option.startswith("-") or len(option) < 2:
            raise ProgramError(program, "commands", f"{option!r}: each option starts with '-' (\"-z\")")
        out[option] = _strings(program, "commands", expects)
    return out


def validate(value: Any) -> Mapping[str, Any]:
    """Program name -> its entry as plain, checked data (lists and strings: it caches and prints as TOML)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a table of programs ([interposer.programs.NAME]), got {type(value).__name__}")
    out: dict[str, Any] = {}
    for name, table in value.items():
        if name.startswith("\0"):
            continue
        if not name or "/" in name or "*" in name or "?" in name or "[" in name and "]" in name:  # `[`, `[[` are names
            raise ProgramError(name, "", "a program is named by its file name, without a path or a pattern")
        if not isinstance(table, Mapping):
            raise ProgramError(name, "", f"expected a table, got {type(table).__name__}")
        entry: dict[str, Any] = {}
        for key, item in table.items():
            if key.startswith("\0"):
                continue
            if key not in _PROGRAM_KEYS:
                raise ProgramError(name, key, f"unknown key (known: {', '.join(_PROGRAM_KEYS)})")
            if key in _FLAGS:
                if not isinstance(item, bool):
                    raise ProgramError(name, key, "expected true or false")
                entry[key] = item
            elif key == "operands":
                if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item <= MAX_WRAPPED_OPERANDS:
                    raise ProgramError(name, key, f"expected a whole number from 0 to {MAX_WRAPPED_OPERANDS}")
                entry[key] = item
            elif key == "bundled_output":
                if not isinstance(item, str) or len(item) != 2 or item[0] != "-" or item[1] == "-":
                    raise ProgramError(name, key, "expected one short option, such as \"-o\"")
                entry[key] = item
            elif key == "commands":
                entry[key] = _commands(name, item)
            elif key in ("code_letters", "value_letters"):
                if not isinstance(item, str) or not item.isalnum():
                    raise ProgramError(name, key, "expected letters, such as \"eE\"")
                entry[key] = item
            elif key == "archive":
                if item not in ARCHIVE_KINDS:
                    raise ProgramError(name, key, f"unknown kind {item!r} (known: {', '.join(ARCHIVE_KINDS)})")
                entry[key] = item
            elif key == "network":
                if item not in NETWORK_KINDS:
                    raise ProgramError(name, key, f"unknown kind {item!r} (known: {', '.join(NETWORK_KINDS)})")
                entry[key] = item
            elif key == "program_option":
                if not isinstance(item, str) or not item.startswith("-"):
                    raise ProgramError(name, key, "expected an option, such as \"-m\"")
                entry[key] = item
            elif key == "forms":
                if not isinstance(item, list):
                    raise ProgramError(name, key, "expected a list of tables")
                entry[key] = [_form(name, index, form) for index, form in enumerate(item, 1)]
            else:
                items = _strings(name, key, item)
                if key == "files" and any(i not in FILE_KINDS for i in items):
                    raise ProgramError(name, key, f"unknown kind {next(i for i in items if i not in FILE_KINDS)!r} "
                                                  f"(known: {', '.join(FILE_KINDS)})")
                if key == "command_settings":
                    items = [i.lower() for i in items]  # matched as the program reads them: without case
                if key in ("values", "lookup", "chdir", "splits", "output", "not_output", "recursive",
                           "shell_escapes", "environment_line", "environment_command", "dry_run", "prunes",
                           "reads_options") and not all(
                        v.startswith("-") and len(v) > 1 for v in items):
                    raise ProgramError(name, key, "each option starts with '-' (\"-n\", \"--size\")")
                entry[key] = items
        stray = next((k for k in _WRAPPER_KEYS if k in entry), None) if not entry.get("wraps") else None
        if stray is not None:
            raise ProgramError(name, stray, "says how a wrapper reads the command it runs: only with wraps = true")
        out[name] = entry
    return MappingProxyType(out)


def build(entries: Mapping[str, Any]) -> dict[str, Program]:
    """Checked entries as records (the interposer's catalogue reads these)."""
    programs = {}
    for name, entry in entries.items():
        forms = tuple(Form(**{k: tuple(v) if isinstance(v, list) else v for k, v in form.items()})
                      for form in entry.get("forms", ()))
        programs[name] = Program(frozenset(entry.get("values", ())), entry.get("bundles", True),
                                 tuple(entry.get("runs", ())), entry.get("program_option", ""),
                                 entry.get("script", False), forms, entry.get("wraps", False),
                                 entry.get("operands", 0), entry.get("assignments", False),
                                 frozenset(entry.get("lookup", ())), tuple(entry.get("chdir", ())),
                                 tuple(entry.get("splits", ())), frozenset(entry.get("files", ())),
                                 frozenset(entry.get("output", ())), frozenset(entry.get("not_output", ())),
                                 entry.get("bundled_output", ""), frozenset(entry.get("recursive", ())),
                                 entry.get("trees", False), entry.get("unknown_verbs", False),
                                 entry.get("network", ""), entry.get("text_only", False),
                                 entry.get("session", False), entry.get("copies", False),
                                 entry.get("lists_processes", False),
                                 MappingProxyType({o: frozenset(p) for o, p in entry.get("commands", {}).items()}),
                                 frozenset(entry.get("command_settings", ())), entry.get("settings_list", False),
                                 frozenset(entry.get("shell_escapes", ())), tuple(entry.get("environment_shell", ())),
                                 frozenset(entry.get("environment_line", ())),
                                 frozenset(entry.get("environment_command", ())), tuple(entry.get("manifests", ())),
                                 tuple(entry.get("makefiles", ())), entry.get("shell", False),
                                 entry.get("interpreter", False), tuple(entry.get("code", ())),
                                 entry.get("code_letters", ""), entry.get("value_letters", ""), entry.get("repl", True),
                                 frozenset(entry.get("dry_run", ())), tuple(entry.get("prunes", ())),
                                 frozenset(entry.get("reads_options", ())), entry.get("sends_operands", False),
                                 entry.get("archive", ""))
    return programs
