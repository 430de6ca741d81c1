"""What will really run: wrappers stripped, nested shells and command runners looked into.

`sudo env -i nice -n5 /usr/bin/rm -rf x` runs `rm`; `bash -c 'rm -rf ~'`,
`find . -exec rm {} +`, `xargs rm` and `watch 'rm x'` run `rm` too. What
cannot be known before running (`eval $X`, `$CMD args`, `curl | sh`,
`python -c CODE`) is reported as opaque, never guessed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable, Mapping
from typing import NamedTuple

from jail.policy.programs import Program

from . import jscode, pycode, windows
from .commandoptions import expected, option_commands, shell_escape
from .ir import Command, Parsed
from .makefile import shell_commands
from .parse import MAX_NESTING, parse, too_deep
from .programs.catalogue import BUILTIN, grammar
from .programs.options import Grammar, command_start, flags, operands, takes_next, values
from .remote import PROGRAMS as REMOTE_PROGRAMS
from .remote import Remote, remote, unset_expansion
from .shellargs import invocation
from .words import Word
from .written import shebang, stdin_text, without_shebang, writes

MAX_DEPTH = 8
_NO_ENTRY = Program()
MAX_WRAPPERS = 32  # programs one command is reached through (nice env sudo ... rm); more is opaque, not walked
_TOO_MANY_WRAPPERS = f"a command reached through more than {MAX_WRAPPERS} wrappers"
# The shells (sh, bash, zsh...) are the catalogue's entries with `shell = true`.
# An argument that hands a command line to its program: `--rsh '/bin/sh -c ...'`, `-e 'system("sh")'`.
_SPAWNS_SHELL = re.compile(r"(^|[\s'\"=:;|&(,])(/usr)?(/bin/)?(ba|da|z|k|c|tc|fi|a)?sh"
                           r"(\s+-[a-z]*[ci]|\s*$|\s*[<>;)'\"]|,)"
                           r"|system\s*\(|os\.system|subprocess|popen|exec\s*\(|spawn\s*\(|run-shell-command"
                           r"|syscmd\s*\("  # m4's esyscmd and syscmd
                           r"|/bin/(ba|da|z|k|c|tc)?sh\b")

# Interpreters (the catalogue's `interpreter = true`), the options after which the next argument is program
# text (`code`), the letters of one-letter switches that bundle (`perl -ne CODE`: `code_letters`, and
# `value_letters` whose value is the rest of the bundle, `-i.bak`, after which none does), and whether with
# no program it waits for a person (`repl`, false for awk, make, vim...) are catalogue data.
AWKS = frozenset({"awk", "gawk", "mawk", "nawk"})
PYTHONS = frozenset({"python", "python3", "pypy3"})  # and python3.11...: their -c is read (pycode.py)
NODES = frozenset({"node", "nodejs"})
# Variables whose program is one a jail confines as it confines `python file.py` (modules from a directory).
CONFINED_VARIABLES = frozenset({"PYTHONPATH"})
# Programs that open a shell or a session of their own (the catalogue's `session`), that never run their
# arguments (`text_only`: a shell's path in them is only text, echo $SHELL, a commit message), that copy or
# link a file (`copies`), that list processes by name (`lists_processes`) are catalogue entries.
# The subcommands that start an interactive shell in a program's environment, unless handed a command to run
# there (nix-shell --run 'CMD', nix develop -c CMD ARGS), are its entry's environment_shell ("" for a program
# that is such a shell by itself), environment_line and environment_command; the files a program reads from
# its directory when named none (where a line's written script hides), its `manifests`; make's `makefiles`.
SHELL_DIRECTORIES = frozenset({"/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin"})
# Environment variables that make programs run a command of their choosing.
COMMAND_VARIABLES = frozenset({"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "PAGER", "GIT_PAGER", "MANPAGER",
                               "EDITOR", "VISUAL", "GIT_EDITOR", "LESSOPEN", "LESSCLOSE", "PERL5OPT", "PERL5DB",
                               "PERL5LIB", "PYTHONSTARTUP", "PYTHONPATH", "BASH_ENV", "ENV", "PROMPT_COMMAND",
                               "GIT_SSH_COMMAND", "GIT_SSH", "GIT_ASKPASS", "SSH_ASKPASS", "SUDO_ASKPASS",
                               "RESTIC_PASSWORD_COMMAND", "NODE_OPTIONS", "RUBYOPT", "BROWSER", "SHELL",
                               "GIT_EXTERNAL_DIFF", "GIT_EXEC_PATH", "GIT_TEMPLATE_DIR", "GIT_CONFIG_GLOBAL",
                               "GIT_CONFIG_PARAMETERS", "PS4", "CRASHPAGER", "SYSTEMD_PAGER", "SYSTEMD_EDITOR",
                               "SUDO_EDITOR", "FCEDIT", "PSQL_PAGER", "GH_PAGER", "GH_EDITOR", "KUBE_EDITOR",
                               "SVN_EDITOR", "GIT_SEQUENCE_EDITOR"})

class Invocation(NamedTuple):
    """One program that will run, as the judge sees it."""

    name: str  # the program's base name: rm, git, bash
    args: tuple[Word, ...]  # its arguments, after the program
    command: Command  # the simple command it comes from
    via: tuple[str, ...]  # wrappers and runners on the way: sudo, bash -c, find -exec, xargs
    extra_args: bool = False  # more arguments are appended at run time (xargs, find -exec {} +)
    stdin_script: bool = False  # a shell or interpreter reading its program from standard input
    handed: tuple[Word, ...] = ()  # texts the line hands it: files it writes (source: the name given), its stdin

    @property
    def cwd(self) -> str:
        return self.command.cwd

    def values(self) -> list[str]:
        return [word.value for word in self.args]


class Opaque(NamedTuple):
    reason: str
    text: str
    # What a jail confines as it confines `python file.py` (python -c, node -e, PYTHONPATH=, pkill's pick of
    # the jail's own processes): judged without a question in jail semantics, asked in the hook's (judge.py).
    confined: bool = False


class Resolved(NamedTuple):
    invocations: tuple[Invocation, ...]
    opaque: tuple[Opaque, ...]
    parsers: tuple[str, ...]  # which parser read each level ("none" where none could)
    hazards: tuple[Opaque, ...] = ()


def resolve(line: str, cwd: str, env: Mapping[str, str], catalogue: Mapping[str, Program] = BUILTIN) -> Resolved:
    """Every program the line runs, with wrappers stripped and nested command lines parsed; wrappers and
    grammars are the catalogue's (the built-in one, or a profile's entries over it: catalogue.programs)."""
    collector = _Collector(env, catalogue)
    collector.line(line, cwd, (), depth=0)
    _kill_from_listing(collector)
    return Resolved(tuple(collector.invocations), tuple(collector.opaque), tuple(collector.parsers),
                    tuple(collector.hazards))


def unread(reasons: tuple[str, ...]) -> str | None:
    """Why part of a line was left unread for its depth (parse.MAX_NESTING, MAX_WRAPPERS), if it was."""
    if too_deep(reasons):
        return f"the line nests more than {MAX_NESTING} levels deep"
    return _TOO_MANY_WRAPPERS if _TOO_MANY_WRAPPERS in reasons else None


def _kill_from_listing(collector: _Collector) -> None:
    """`for p in $(pgrep node); do kill $p; done`, `ps aux | grep x | awk ... | xargs kill`: kill with pids
    only known when it runs, on a line that lists processes (`lists_processes`: ps, pgrep, pidof; not
    `lsof -t -i:PORT`: freeing a port the agent's own server holds is ordinary work), signals processes
    picked by name."""
    catalogue = collector.catalogue
    if not any(catalogue.get(i.name, _NO_ENTRY).lists_processes for i in collector.invocations):
        return
    for kill in (i for i in collector.invocations if i.name == "kill"):
        if kill.extra_args or any(not w.literal and not w.value.startswith("-") for w in kill.args):
            collector.opaque.append(Opaque("kill signals processes picked by name from a list of processes, as "
                                           "pkill does", kill.command.text, confined=True))
            return


class _Collector:
    def __init__(self, env: Mapping[str, str], catalogue: Mapping[str, Program] = BUILTIN) -> None:
        self.env = env
        self.catalogue = catalogue
        self.invocations: list[Invocation] = []
        self.opaque: list[Opaque] = []
        self.hazards: list[Opaque] = []
        self.parsers: list[str] = []
        self.written: dict[str, str | None] = {}  # files the line writes so far: their text, None if unknown
        self.aliases_expand = False  # the line turns alias expansion on (`shopt -s expand_aliases`)

    def line(self, text: str, cwd: str, via: tuple[str, ...], depth: int, context: tuple[str, ...] = (),
             env: Mapping[str, str] | None = None) -> None:
        if depth > MAX_DEPTH:
            self.opaque.append(Opaque(f"command lines nested more than {MAX_DEPTH} deep", text))
            return
        parsed: Parsed = parse(text, cwd, self.env if env is None else env, context)
        self.aliases_expand = self.aliases_expand or "expand_aliases" in text
        self.parsers.append(parsed.parser)
        for reason in parsed.opaque:
            self.opaque.append(Opaque(reason, text))
        for reason in parsed.hazards:
            self.hazards.append(Opaque(reason, text))
        for command in parsed.commands:
            self.command(command, list(command.argv), via, depth)
            self._note_writes(command)

    def _is_shell(self, name: str) -> bool:
        return self.catalogue.get(name, _NO_ENTRY).shell

    def _note_writes(self, command: Command) -> None:
        for path, text, appends in writes(command):
            if appends and path in self.written:
                before = self.written[path]
                text = None if before is None or text is None else before + text
            self.written[path] = text

    def command(self, command: Command, argv: list[Word], via: tuple[str, ...], depth: int,
                extra_args: bool = False) -> None:
        if not argv:  # assignments and redirections only; `> ~/.bashrc` writes as `: > ~/.bashrc` does
            if any(r.writes_file for r in command.redirects):
                self.invocations.append(Invocation(":", (), command, via))
            return
        if len(via) > MAX_WRAPPERS:  # each wrapper is one more level of this walk: 5,000 raised RecursionError
            self.opaque.append(Opaque(_TOO_MANY_WRAPPERS, command.text))
            return
        head = argv[0]
        if not head.literal:
            self.opaque.append(Opaque(f"the command name {head.source!r} is only known when it runs", command.text))
            return
        name = os.path.basename(head.value)
        args = argv[1:]
        wrapper = self.catalogue.get(name)
        if wrapper is not None and wrapper.wraps and not _lookup_only(wrapper, args):
            inner = _unwrap(wrapper, args)
            if inner is None:
                self.opaque.append(Opaque(f"cannot tell what {name} runs", command.text))
                return
            own = args[:len(args) - len(inner)]
            rules = Grammar(wrapper.values, wrapper.bundles)
            split = next(iter(values(own, wrapper.splits, rules)), None) if wrapper.splits else None
            label = f"{name} {wrapper.splits[0]}" if wrapper.splits else name
            if split is not None and not split.literal:
                self.opaque.append(Opaque(f"{label} splits a string only known when it runs", command.text))
                return
            if split is not None:
                self.line(split.value, command.cwd, (*via, label), depth + 1, (label,))
                if inner:
                    self.command(command, inner, (*via, name), depth, extra_args)
                return
            directory = next(iter(values(own, wrapper.chdir, rules)), None) if wrapper.chdir else None
            if directory is not None and not directory.literal:
                self.opaque.append(Opaque(f"{name} {wrapper.chdir[0]} runs in a directory only known when it runs",
                                          command.text))
                return
            if directory is not None:  # `env -C / rm -rf etc`: relative paths are the new directory's
                command = command._replace(cwd=os.path.normpath(os.path.join(command.cwd, directory.value)),
                                           span=None, word_spans=())
            if own:  # the wrapper's own options are judged too: `strace -o FILE`, `ltrace -F /etc/shadow`
                self.invocations.append(Invocation(name, tuple(own), command, via))
            if inner:
                self.command(command, inner, (*via, name), depth, extra_args)
                return
        elsewhere = remote(name, args, self.env.get("HOME", "/")) if name in REMOTE_PROGRAMS else None
        if elsewhere is not None:  # ssh HOST CMD, docker exec C CMD: CMD is judged; the program itself below
            self._remote(command, elsewhere, via, depth)
        handler = _HANDLERS.get(name) or _HANDLERS.get(name.lower()) or (  # CMD.EXE, PowerShell.exe
            _shell if self._is_shell(name) or self._is_shell(name.lower()) else
            _interpreter if self.catalogue.get(name, _NO_ENTRY).interpreter else None)
        if handler is not None and handler(self, command, name, args, via, depth):
            return
        self._option_commands(command, name, args, via, depth)
        for variable, value in command.assignments:
            if variable in COMMAND_VARIABLES or variable.startswith("GIT_CONFIG_") or _SPAWNS_SHELL.search(value.value):
                confined = variable in CONFINED_VARIABLES and not _SPAWNS_SHELL.search(value.value)
                self.opaque.append(Opaque(f"{variable}= makes {name} run a program of its choosing",
                                          command.text, confined))
                if not confined:
                    break
        entry = wrapper or _NO_ENTRY
        if entry.session:
            self.opaque.append(Opaque(f"{name} starts a shell or session whose commands shelljail would not see",
                                      command.text))
        if entry.environment_shell:
            self._environment_shell(command, name, entry, args, via, depth)
        if entry.copies:
            shell = next((w for w in args[:-1] if w.literal and _is_shell_binary(w.value, self.catalogue)), None)
            if shell is not None:
                self.opaque.append(Opaque(f"{name} copies the shell {shell.value}: under another name it runs "
                                          "commands shelljail would not see", command.text))
        self._written_script(command, head, name, args, via, depth)
        if entry.makefiles and self.written:
            self._written_makefile(command, name, entry.makefiles, args, via, depth)
        stdin_script = _reads_script_from_stdin(name, args, command, self.catalogue)
        is_shell = entry.shell
        if stdin_script and is_shell and command.piped_text is not None:
            stdin_script = False  # the script is known: judge it
            self.line(command.piped_text, command.cwd, (*via, f"| {name}"), depth + 1, (f"| {name}",))
        handed = self._handed(command, name, args) if not is_shell and not entry.text_only else ()
        fed = stdin_text(command) if not is_shell and not entry.text_only else None
        if fed and "/" in fed:  # `python3 <<EOF open("/etc/shadow")`: the paths in it are named to the program
            handed += (Word(fed, True, False, "its standard input"),)
        self.invocations.append(Invocation(name, tuple(args), command, via, extra_args, stdin_script, handed))
        if is_shell:
            self._shell_stdin(command, name, args, via, depth)
            if not command.piped_from and _interactive(name, args, command):
                self.opaque.append(Opaque(f"{name} starts an interactive shell, whose commands shelljail "
                                          "would not see", command.text))
        elif entry.interpreter and entry.repl and not command.piped_from \
                and _interactive(name, args, command):
            self.opaque.append(Opaque(f"{name} starts an interactive interpreter", command.text))
        elif not entry.interpreter and not entry.text_only:
            for word in args[:len(args) - (elsewhere.words if elsewhere is not None else 0)]:
                if _SPAWNS_SHELL.search(word.value):
                    self.opaque.append(Opaque(f"an argument of {name} ({_short(word.source)}) hands it a command "
                                              "to run", command.text))
                    break
            else:
                self._handed_shell(command, name, handed, via, depth)
        if entry.interpreter and (handed or fed):  # `python3 x.py` after `echo ... > x.py`, python3 - <<EOF
            self._handed_shell(command, name, handed, via, depth)

    def _remote(self, command: Command, elsewhere: Remote, via: tuple[str, ...], depth: int) -> None:
        """What runs on another host or in a container, judged as a line of its own, after the local shell's
        expansion (remote.py): with a variable the line does not know, also as if it were unset."""
        step, context = (*via, elsewhere.how), (elsewhere.how,)
        if elsewhere.line is not None:
            if not elsewhere.line.literal:
                self.opaque.append(Opaque(f"{elsewhere.how} runs a command line with text only known when it runs "
                                          f"({_short(elsewhere.line.source)})", command.text))
                unset = unset_expansion(elsewhere.line)
                if unset is not None:
                    self.line(unset, elsewhere.cwd, step, depth + 1, context)
            self.line(elsewhere.line.value, elsewhere.cwd, step, depth + 1, context)
        elif elsewhere.argv:
            inner = command._replace(argv=elsewhere.argv, redirects=(), cwd=elsewhere.cwd, piped_from=(),
                                     piped_text=None, context=(*command.context, elsewhere.how), span=None,
                                     word_spans=())
            self.command(inner, list(elsewhere.argv), step, depth + 1)
        elif elsewhere.session:
            fed = stdin_text(command)
            if fed is not None:
                self.line(fed, elsewhere.cwd, step, depth + 1, context)
            elif not any(r.op == "<" and r.target is not None and r.target.value == "/dev/null"
                         for r in command.redirects):
                self.opaque.append(Opaque(f"{elsewhere.how} starts a remote shell whose commands shelljail would "
                                          "not see", command.text))

    def _option_commands(self, command: Command, name: str, args: list[Word], via: tuple[str, ...],
                         depth: int) -> None:
        """`tcpdump -z CMD`, `tar --to-command=CMD`: the command is judged, and asked about unless it is
        the plain program the option is for; `pic -U`, `pdflatex --shell-escape`: what it reads may run
        commands (commandoptions.py)."""
        escape = shell_escape(name, args, self.catalogue)
        if escape is not None:
            self.opaque.append(Opaque(f"{name} {escape} lets the text it reads run shell commands", command.text))
        for option, value in option_commands(name, args, self.catalogue):
            label = f"{name} {option}"
            if not value.literal:
                self.opaque.append(Opaque(f"{label} runs a command only known when it runs", command.text))
                continue
            self.line(value.value, command.cwd, (*via, label), depth + 1, (label,))
            # `tar -I zstd`, `rsync -e 'ssh -p 2222'` are plain
            if not expected(name, option, value.value, self.catalogue):
                self.opaque.append(Opaque(f"{label} makes {name} run {_short(value.value)} when it chooses, "
                                          "with arguments of its own", command.text))

    def _environment_shell(self, command: Command, name: str, entry: Program, args: list[Word],
                           via: tuple[str, ...], depth: int) -> None:
        """`poetry shell`, `nix develop`: a shell a person types into, unseen; `nix-shell --run CMD` and
        `nix develop -c CMD ARGS` run CMD there: judged."""
        subcommands = [w.value for w in operands(args, grammar(name, self.catalogue))]
        wanted = tuple(w for w in entry.environment_shell if w)
        if wanted and (not subcommands or subcommands[0] not in wanted):
            return
        label = f"{name} {subcommands[0]}" if wanted else name
        for index, word in enumerate(args):
            option, equals, attached = word.value.partition("=")
            if option in entry.environment_line:
                text = Word(attached, word.literal, False, word.source) if equals else (
                    args[index + 1] if index + 1 < len(args) else None)
                if text is not None and text.literal:
                    self.line(text.value, command.cwd, (*via, label), depth + 1, (label,))
                else:
                    self.opaque.append(Opaque(f"{label} runs a command only known when it runs", command.text))
                return
            if option in entry.environment_command:
                self.command(command, args[index + 1:], (*via, label), depth)
                return
        self.opaque.append(Opaque(f"{label} starts an interactive shell, whose commands shelljail would not see",
                                  command.text))

    # -- files the line writes, then runs or hands on ------------------------------

    def _written_script(self, command: Command, head: Word, name: str, args: list[Word], via: tuple[str, ...],
                        depth: int) -> None:
        """A script this line writes and then runs: judged with the line. In the jail, the shell that
        runs it is a child of an allowed shell and is not judged again (judge_child_shells)."""
        script, params = _script_operand(head, name, args, self.catalogue)
        if script is None:
            return
        path = os.path.normpath(os.path.join(command.cwd, script.value))
        if path not in self.written:
            return
        text = self.written[path]
        if text is None:
            self.opaque.append(Opaque(f"{name} runs {_short(script.value)}, which this line writes with text only "
                                      "known when it runs", command.text))
            return
        program = shebang(text)
        if script is head and program is not None and not self._is_shell(program):
            # A python or node script: as with `python3 x.py`, its code is its interpreter's, unless it
            # starts a shell or a program (os.system, subprocess), whose commands would go unseen.
            self._handed_shell(command, name, (Word(text, True, False, script.value),), via, depth)
            return
        env = {k: v for k, v in self.env.items() if not (k.isdigit() or k in ("#", "@", "*"))}
        env.update({str(n): w.value for n, w in enumerate(params, 1) if w.literal})
        env.update({"0": script.value, "#": str(len(params))})
        label = f"{name} {_short(script.value)}" if script is not head else _short(script.value)
        self.line(text, command.cwd, (*via, label), depth + 1, (label,), env)

    def _written_makefile(self, command: Command, name: str, makefiles: tuple[str, ...], args: list[Word],
                          via: tuple[str, ...], depth: int) -> None:
        """`printf 'all:\\n\\trm -rf ~\\n' > Makefile; make`: the recipes of a Makefile this line writes run
        in shells make starts, not judged again (judge_child_shells): judged with the line. A Makefile
        already on disk is not read, as scripts on disk are not."""
        files, directory = _make_operands(name, args, self.catalogue)
        cwd = os.path.normpath(os.path.join(command.cwd, directory))
        if files:
            paths = [os.path.normpath(os.path.join(cwd, f)) for f in files]
        else:
            paths = [p for p in (os.path.join(cwd, n) for n in makefiles) if p in self.written][:1]
        for path in paths:
            if path not in self.written:
                continue
            text = self.written[path]
            commands = None if text is None else shell_commands(text)
            label = f"make -f {_short(os.path.relpath(path, command.cwd))}"
            if commands is None:
                self.opaque.append(Opaque(f"make runs the recipes of {_short(path)}, which this line writes with "
                                          "commands only known when it runs", command.text))
            elif commands:
                self.line(commands, cwd, (*via, label), depth + 1, (label,))

    def _handed(self, command: Command, name: str, args: list[Word]) -> tuple[Word, ...]:
        """The files this line writes (with known text) that a program is handed: by path, by their
        directory, or as the manifest it reads where it runs (package.json for npm). Each as a Word of
        the file's text, its source the name the program was given."""
        if not any(self.written.values()):
            return ()
        values = [w.value for w in args if w.literal] + [v.value for _, v in command.assignments if v.literal]
        values += [v.split("=", 1)[1] for v in values if "=" in v]
        values += self.catalogue.get(name, _NO_ENTRY).manifests
        handed: dict[str, Word] = {}
        for value in values:
            named = os.path.normpath(os.path.join(command.cwd, value))
            for path, text in self.written.items():
                if text and (path == named or (named != "/" and path.startswith(named + "/"))):
                    handed.setdefault(path, Word(text, True, False, value))
        return tuple(handed.values())

    def _handed_shell(self, command: Command, name: str, handed: tuple[Word, ...], via: tuple[str, ...] = (),
                      depth: int = 0) -> None:
        """`echo 'exec /bin/sh' > f; tool --config f`, `echo 'esyscmd(sh)' | m4`: a program handed text
        this line writes with a command that starts a shell runs that shell, unseen."""
        fed = stdin_text(command)
        if fed and _SPAWNS_SHELL.search(fed):
            self.opaque.append(Opaque(f"{name} is fed text that starts a shell", command.text))
            return
        for text in handed:
            if _SPAWNS_SHELL.search(without_shebang(text.value)):
                self.opaque.append(Opaque(f"{name} is handed {_short(text.source)}, which this line writes with a "
                                          "command that starts a shell", command.text))
                return
            scripts = _manifest_scripts(text)
            if scripts is None:
                self.opaque.append(Opaque(f"{name} is handed {_short(text.source)}, which this line writes with "
                                          "scripts that cannot be read", command.text))
                return
            for script in scripts:  # npm runs them with sh -c, children of this shell: not judged again
                self.line(script, command.cwd, (*via, f"{name} script"), depth + 1, (f"{name} script",))

    # -- nested command lines --------------------------------------------------

    def _shell_stdin(self, command: Command, name: str, args: list[Word], via: tuple[str, ...],
                     depth: int) -> None:
        """A shell fed a here-document or here-string runs that text: parse it."""
        if not self._is_shell(name) or any(w.value == "-c" for w in args):
            return
        for redirect in command.redirects:
            if redirect.op in ("<<", "<<-", "<<<") and redirect.body is not None:
                self.line(redirect.body, command.cwd, (*via, f"{name} <<"), depth + 1, (f"{name} <<",))


def _make_operands(name: str, args: list[Word], catalogue: Mapping[str, Program]) -> tuple[list[str], str]:
    """The makefiles make is told to read (-f), and the directory it runs in (-C, relative, cumulative)."""
    rules = grammar(name, catalogue)
    files = [w.value for w in values(args, ("-f", "--file", "--makefile"), rules)]
    return files, os.path.join(".", *(w.value for w in values(args, ("-C", "--directory"), rules)))


def _script_operand(head: Word, name: str, args: list[Word], catalogue: Mapping[str, Program]
                    ) -> tuple[Word | None, list[Word]]:
    """The script a command runs, and its arguments: `./x.sh a`, `sh -e x.sh a`, `source x.sh`."""
    if not head.literal:
        return None, []
    if "/" in head.value:
        return head, args
    if name in ("source", "."):
        return (args[0], args[1:]) if args and args[0].literal else (None, [])
    if not catalogue.get(name, _NO_ENTRY).shell:
        return None, []
    mode, _value, index = invocation([name, *(w.value for w in args)])
    if mode != "file" or not args[index - 1].literal:
        return None, []
    return args[index - 1], args[index:]


def _is_shell_binary(value: str, catalogue: Mapping[str, Program]) -> bool:
    return catalogue.get(os.path.basename(value), _NO_ENTRY).shell and os.path.dirname(value) in SHELL_DIRECTORIES


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


_SESSION_OPTIONS = frozenset({"-i", "-l", "--login", "--norc", "--noprofile", "-u", "-q", "-I", "-S", "-B", "-E",
                              "-s", "-", "-f", "-x", "-v", "-e", "--noediting", "--posix", "-r", "--restricted"})


def _interactive(name: str, args: list[Word], command: Command) -> bool:
    """A shell or interpreter given no program (no -c, no script file, no here-document, no
    --version) reads its commands from a person."""
    if any(w.value not in _SESSION_OPTIONS for w in args):
        return False
    return not any(r.op in ("<<", "<<-", "<<<") or (r.op in ("<", "<>") and r.target is not None
                                                     and r.target.value != "/dev/tty") for r in command.redirects)


def _lookup_only(wrapper: Program, args: list[Word]) -> bool:
    """`command -v rm`, `command -pv rm`: with one of its lookup options among its own, before the command it
    wraps, a wrapper runs nothing, only looks the command up (`command rm -rf -v ~` runs rm)."""
    if not wrapper.lookup:
        return False
    rules = Grammar(wrapper.values, wrapper.bundles)
    own = args[:command_start(args, rules)]
    return bool(flags(own, rules) & set(wrapper.lookup))


def _unwrap(spec: Program, args: list[Word]) -> list[Word] | None:
    """The wrapped command's argv ([] when the wrapper runs nothing), None if unknowable: after the wrapper's
    options (by its catalogue grammar), its NAME=VALUE words (`assignments`) and its own operands."""
    rules = Grammar(spec.values, spec.bundles)
    index = 0
    operands = spec.operands
    while index < len(args):
        word = args[index]
        value = word.value
        if not word.literal:
            return None
        if value == "--":
            index += 1
            break
        if spec.assignments and "=" in value and not value.startswith("-"):
            index += 1
            continue
        if value.startswith("-") and len(value) > 1:
            index += 2 if takes_next(value, rules) else 1  # -n 5, -n5, --x=5, -fp PID
            continue
        if operands:
            operands -= 1
            index += 1
            continue
        break
    while operands and index < len(args):
        operands -= 1
        index += 1
    return args[index:]


def _reads_script_from_stdin(name: str, args: list[Word], command: Command, catalogue: Mapping[str, Program]
                             ) -> bool:
    """A shell or interpreter with no program named reads one from standard input."""
    is_shell = catalogue.get(name, _NO_ENTRY).shell
    entry = catalogue.get(name, _NO_ENTRY)
    if not is_shell and not entry.interpreter:
        return False
    operands = [w for w in args if not w.value.startswith("-") and not w.value.startswith("+")]
    if is_shell and any(w.value == "-s" for w in args):
        operands = []
    if operands and operands[0].value != "-":
        return False
    if any(w.value in entry.code or w.value == "-c" for w in args):
        return False
    stdin_file = any(r.op in ("<", "<>") and (r.fd in (None, 0)) for r in command.redirects)
    return bool(command.piped_from) or stdin_file


# -- handlers for commands that run other commands ---------------------------------

Handler = Callable[[_Collector, Command, str, list[Word], tuple[str, ...], int], bool]


def _shell(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
           depth: int) -> bool:
    """bash -c STRING: judge STRING as a command line of its own."""
    for index, word in enumerate(args):
        value = word.value
        is_c = value == "-c" or (value.startswith("-") and not value.startswith("--") and "c" in value[1:]
                                 and name != "su")
        if name == "su" and value in ("-c", "--command"):
            is_c = True
        if is_c:
            if index + 1 >= len(args):
                collector.invocations.append(Invocation(name, tuple(args), command, via))
                collector.opaque.append(Opaque(f"{name} -c gets its script only when it runs", command.text))
                return True
            script = args[index + 1]
            collector.invocations.append(Invocation(name, tuple(args), command, via))
            if not script.literal:
                collector.opaque.append(Opaque(f"{name} -c runs a string only known when it runs", command.text))
                return True
            # `sh -c 'rm -rf "$1"' _ ~`: the words after the script are its $0, $1, ...
            handed = args[index + 2:]
            env = None
            if handed and all(w.literal and not w.glob for w in handed):
                env = {**collector.env, **{str(n): w.value for n, w in enumerate(handed)}, "#": str(len(handed) - 1)}
            collector.line(script.value, command.cwd, (*via, f"{name} -c"), depth + 1, (f"{name} -c",), env)
            return True
        if not value.startswith("-") and not value.startswith("+"):
            break
    for word in args:
        if word.source.startswith("<(") or word.source.startswith(">("):
            collector.invocations.append(Invocation(name, tuple(args), command, via))
            collector.opaque.append(Opaque(f"{name} runs a script produced by a process substitution",
                                           command.text))
            return True
    return False


def _eval(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
          depth: int) -> bool:
    collector.invocations.append(Invocation(name, tuple(args), command, via))
    if not args:
        return True
    if all(w.literal for w in args):
        collector.line(" ".join(w.value for w in args), command.cwd, (*via, "eval"), depth + 1, ("eval",))
    else:
        collector.opaque.append(Opaque("eval runs a string only known when it runs", command.text))
    return True


# Arguments of one `parallel` judged one by one; past them it is judged as if more followed.
_PARALLEL_ARGUMENTS = 64
# Traps whose action runs between the line's commands (before each, after a function, on a failure).
_BETWEEN_COMMANDS = frozenset({"DEBUG", "RETURN", "ERR"})


def _trap(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
          depth: int) -> bool:
    """`trap 'rm -rf ~' EXIT`: the action runs in this shell when the signal comes, at the latest as it exits,
    so it is judged as a line, as eval's is; where the line will be by then is not known, so its relative paths
    are not either. An action that runs between the line's commands (DEBUG, RETURN, ERR) can change what they
    get: opaque."""
    collector.invocations.append(Invocation(name, tuple(args), command, via))
    words = operands(args)  # -p and -l print; `--` ends the options
    if len(words) < 2 or (words[0].literal and words[0].value in ("", "-")):
        return True  # printing, resetting to the default, or ignoring
    action, signals = words[0], words[1:]
    if not action.literal:
        collector.opaque.append(Opaque("trap runs a command only known when it runs", command.text))
    elif any(not s.literal or s.value.upper().removeprefix("SIG") in _BETWEEN_COMMANDS for s in signals):
        collector.opaque.append(Opaque("a trap on DEBUG, RETURN or ERR runs between the line's commands: what it "
                                       "changes there is not followed", command.text))
    else:
        collector.line(action.value, "${PWD}", (*via, "trap"), depth + 1, ("trap",))
    return True


def _alias(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
           depth: int) -> bool:
    """`alias ls='rm -rf ~'`: on a line that turns on `shopt -s expand_aliases`, a later line's `ls` runs the
    alias's text (a shell that is not interactive expands none, and each of the jail's shells is a new one).
    Which later word will is not followed, so the text is judged as a line where it is defined, in a directory
    not known."""
    collector.invocations.append(Invocation(name, tuple(args), command, via))
    if not collector.aliases_expand:
        return True
    for word in operands(args):
        if "=" not in word.value:
            continue  # `alias ls` prints it
        if not word.literal:
            collector.opaque.append(Opaque("alias defines a command only known when it runs", command.text))
        else:
            collector.line(word.value.split("=", 1)[1], "${PWD}", (*via, "alias"), depth + 1, ("alias",))
    return True


def _manifest_scripts(text: Word) -> list[str] | None:
    """The command lines a package.json or composer.json this line writes names under "scripts" (npm, yarn,
    pnpm, bun, composer run them with sh -c: `npm run x`, `npm install`'s install scripts); None if the file
    names scripts but is not JSON that can be read."""
    if not text.source.endswith(".json") or '"scripts"' not in text.value:
        return []
    try:
        data = json.loads(text.value)
    except ValueError:
        return None
    scripts = data.get("scripts") if isinstance(data, dict) else None
    if not isinstance(scripts, dict):
        return [] if scripts is None else None
    found: list[str] = []
    for value in scripts.values():  # composer allows a list of commands per script
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in items):
            return None
        found += items
    return found


def _source(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
            depth: int) -> bool:
    if args and (args[0].source.startswith("<(") or args[0].value in ("/dev/stdin", "-")):
        collector.invocations.append(Invocation(name, tuple(args), command, via))
        collector.opaque.append(Opaque(f"{name} runs a script only known when it runs", command.text))
        return True
    return False


def _windows_shell(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
                   depth: int) -> bool:
    """powershell -Command TEXT, cmd /c TEXT: the Windows command read into a bash line (windows.py); what it
    could not read is opaque, never allowed unread."""
    collector.invocations.append(Invocation(name, tuple(args), command, via))
    read = windows.powershell if name.lower() in windows.POWERSHELLS else windows.cmd
    reading = read(args, stdin_text(command))
    for reason in reading.unread:
        collector.opaque.append(Opaque(reason, command.text))
    if reading.line:
        collector.line(reading.line, command.cwd, (*via, reading.how), depth + 1, (reading.how,))
    return True


_SQLITE_SHELL = re.compile(r"\s*\.(shell|system)\b")


def _interpreter(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
                 depth: int) -> bool:
    if name.startswith("sqlite") and any(_SQLITE_SHELL.match(w.value) for w in args):
        collector.invocations.append(Invocation(name, tuple(args), command, via))
        collector.opaque.append(Opaque(f"{name}'s .shell or .system runs a command line", command.text))
        return True
    base = name.rstrip("0123456789.")
    if name in PYTHONS or base in PYTHONS:
        return _python(collector, command, name, args, via, depth)
    entry, of_base = collector.catalogue.get(name, _NO_ENTRY), collector.catalogue.get(base, _NO_ENTRY)
    code_flags = entry.code or of_base.code
    letters = (entry.code_letters, entry.value_letters) if entry.code_letters else (
        (of_base.code_letters, of_base.value_letters) if of_base.code_letters else None)
    for index, word in enumerate(args):
        value = word.value
        option = value.split("=", 1)[0]
        if option in code_flags or (value[:2] in code_flags and len(value) > 2 and value[:2] != "--") or \
                _bundled_code(letters, value):
            if name in NODES or base in NODES:  # `node -e CODE`, `node -pe CODE`: read for what escapes a jail
                code = args[index + 1] if option == value and index + 1 < len(args) else word
                confined = code.literal and jscode.confined(code.value)
                collector.opaque.append(Opaque(f"{name} {option[:2]} runs program text that only its interpreter "
                                               "understands", command.text, confined))
                return False  # judged on as a program too: its variables (NODE_OPTIONS=), its arguments
            collector.invocations.append(Invocation(name, tuple(args), command, via))
            collector.opaque.append(Opaque(f"{name} {value[:2] if len(value) > 2 else value} runs program text "
                                           "that only its interpreter understands", command.text))
            return True
    return False


def _bundled_code(letters: tuple[str, str] | None, value: str) -> bool:
    """A bundle of one-letter switches with a program-text letter in it: `-ne`, `-lane`, `-wpe`."""
    if letters is None or not value.startswith("-") or value.startswith("--") or len(value) < 3:
        return False
    code, takes_value = letters
    for letter in value[1:]:
        if letter in code:
            return True
        if letter in takes_value:
            return False
    return False


def _python(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
            depth: int) -> bool:
    """`python3 -c CODE`: read with `ast` (pycode.py), judged as the commands it amounts to, or opaque with
    the reason; then judged on as a program (False), so that its variables and arguments are judged too."""
    code = _python_code(args)
    if code is None:
        return False
    label = f"{name} -c"
    if not code.literal:
        collector.opaque.append(Opaque(f"{label} runs a program only known when it runs", command.text))
        return False
    reading = pycode.read(code.value, collector.env.get("HOME"))
    if reading.unread is not None:
        collector.opaque.append(Opaque(f"{label}: {reading.unread}", command.text, reading.confined))
    # What it was read to do is judged, whatever is unread (`import torch, os; os.system(...)`). Its commands
    # are the program's, not words of the line: no rewrite may edit the line for them.
    inner = command._replace(assignments=(), span=None, word_spans=())
    for step in reading.steps:
        if step.line is not None:
            collector.line(step.line, command.cwd, (*via, label), depth + 1, (label,))
        else:
            words = [Word(v, True, False, v) if v is not None else Word("${?}", False, False, "a path it computes")
                     for v in step.argv]
            collector.command(inner, words, (*via, label), depth + 1)
    return False


def _python_code(args: list[Word]) -> Word | None:
    """The program text of `python -c CODE` (-cCODE, -Ic CODE: short options bundle), None if it runs none."""
    index = 0
    while index < len(args):
        word = args[index]
        value = word.value
        if value in ("--", "-") or not value.startswith("-"):
            return None  # a script (or standard input) runs, and the rest are its arguments
        index += 1
        if value.startswith("--"):
            index += value == "--check-hash-based-pycs"
            continue
        for position, letter in enumerate(value[1:], 1):
            rest = value[position + 1:]
            if letter == "c":
                if rest:
                    return Word(rest, word.literal, False, word.source)
                return args[index] if index < len(args) else None
            if letter == "m":
                return None  # a module runs (the catalogue's runner reads `python -m`)
            if letter in "WX":
                index += not rest  # its value is the rest of the word, or the next one
                break
    return None


_AWK_RISKY = re.compile(r"system\s*\(|getline|\|\s*&|print[f]?\b[^;}]*(>>?|\|)\s*[\"$a-zA-Z(]|fflush\s*\(\s*\"")
_SED_RISKY = re.compile(r"(^|[;\n}{0-9$]|/[gpIiMm0-9]*)\s*[wWe]\b|/[gpIiMm0-9]*[we]\b|^\s*e\b")


def _awk(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
         depth: int) -> bool:
    """An awk program can run commands (system, |) and write files (print >)."""
    collector.invocations.append(Invocation(name, tuple(args), command, via))
    files = _program_files(collector, command, name, args)
    # the first operand, when no -f names a file
    programs = files or operands(args, grammar(name, collector.catalogue))[:1]
    if any(not word.literal or _AWK_RISKY.search(word.value) for word in programs):
        collector.opaque.append(Opaque(f"the {name} program runs commands or writes files", command.text))
    return True


def _sed(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
         depth: int) -> bool:
    """A sed script can write files (w) and run commands (e)."""
    rules = grammar(name, collector.catalogue)
    scripts = values(args, ("-e", "--expression"), rules)
    scripts += _program_files(collector, command, name, args)
    if not scripts and not flags(args, rules) & {"-f", "--file"}:
        bsd = [w for i, w in enumerate(args) if not (i and w.literal and w.value == "" and args[i - 1].value == "-i")]
        scripts = operands(bsd, rules)[:1]  # `sed -i '' EXPR FILE`: '' is a suffix
    for word in scripts:
        if not word.literal or _SED_RISKY.search(word.value):
            collector.invocations.append(Invocation(name, tuple(args), command, via))
            collector.opaque.append(Opaque("the sed script runs commands or writes files", command.text))
            return True
    return False


def _program_files(collector: _Collector, command: Command, name: str, args: list[Word]) -> list[Word]:
    """The programs of `awk -f FILE` and `sed -f FILE` that this line writes: their text (a word not
    literal when only running shows it). Files already on disk are not read."""
    found = []
    for given in values(args, ("-f", "--file"), grammar(name, collector.catalogue)):
        if given.literal:
            path = os.path.normpath(os.path.join(command.cwd, given.value))
            if path in collector.written:
                text = collector.written[path]
                found.append(Word(text or "", text is not None, False, given.source))
    return found


def _find(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
          depth: int) -> bool:
    """find ... -exec CMD {} ; runs CMD for each match (-delete is judged as find's own)."""
    collector.invocations.append(Invocation(name, tuple(args), command, via))
    index = 0
    while index < len(args):
        value = args[index].value
        if value in ("-exec", "-execdir", "-ok", "-okdir"):
            end = index + 1
            while end < len(args) and args[end].value not in (";", "+"):
                end += 1
            inner = args[index + 1:end]
            if inner:
                # `{}` stands for each match: the judge reads it as "under find's roots"
                collector.command(command, inner, (*via, f"find {value}"), depth)
            index = end + 1
            continue
        index += 1
    return True


def _xargs(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
           depth: int) -> bool:
    """xargs CMD ARGS: CMD runs with more arguments that come from standard input."""
    collector.invocations.append(Invocation(name, tuple(args), command, via))
    rules = grammar(name, collector.catalogue)
    index = command_start(args, rules)
    inner = args[index:] or [Word("echo", True, False, "echo")]
    if flags(args[:index], rules) & {"-o", "--open-tty"} and collector._is_shell(os.path.basename(inner[0].value)) \
            and not any(w.value.startswith("-") and "c" in w.value for w in inner[1:]):
        collector.opaque.append(Opaque(f"xargs -o gives {inner[0].value} the terminal: an interactive shell, whose "
                                       "commands shelljail would not see", command.text))
    collector.command(command, list(inner), (*via, name), depth, extra_args=True)
    return True


def _parallel(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
              depth: int) -> bool:
    """`parallel rm -rf ::: a b`: the command (after parallel's own options) runs once per argument after
    `:::`, the argument put for `{}` or appended; `parallel 'CMD {}' ::: ...` is a line per argument."""
    collector.invocations.append(Invocation(name, tuple(args), command, via))
    rest = args[command_start(args, grammar(name, collector.catalogue)):]
    separator = next((i for i, w in enumerate(rest) if w.value.startswith(":::")), len(rest))
    inner, sources = rest[:separator], rest[separator:]
    if not inner:
        collector.opaque.append(Opaque("parallel runs commands read from its input", command.text))
        return True
    if any(w.value.startswith("::::") for w in sources) or any(w.value in ("-I", "--replace") for w in args):
        collector.opaque.append(Opaque("parallel runs its command with arguments only known when it runs",
                                       command.text))
        return True
    values = [w for w in sources if not w.value.startswith(":::")][:_PARALLEL_ARGUMENTS]
    as_line = len(inner) == 1 and inner[0].literal and any(c in inner[0].value for c in " \t\n;|&<>()$`")
    if not values:  # its arguments come from its input (or -a FILE): not known
        if as_line:
            unknown = '"${PARALLEL_ARGUMENT_UNKNOWN}"'
            text = inner[0].value
            line = text.replace("{}", unknown) if "{}" in text else f"{text} {unknown}"
            collector.line(line, command.cwd, (*via, name), depth + 1, (name,))
        else:
            collector.command(command, list(inner), (*via, name), depth, extra_args=True)
        return True
    for value in values:
        if as_line:  # a command line: the argument is quoted into it
            if not value.literal:
                collector.opaque.append(Opaque("parallel runs a line with an argument only known when it runs",
                                               command.text))
                return True
            text = value.value if value.glob else shlex.quote(value.value)
            line = inner[0].value.replace("{}", text) if "{}" in inner[0].value else f"{inner[0].value} {text}"
            collector.line(line, command.cwd, (*via, name), depth + 1, (name,))
            continue
        placed = [value if w.value == "{}" else w for w in inner]
        if all(w.value != "{}" for w in inner):
            placed.append(value)
        placed = [w if "{" not in w.value or w is value else w._replace(literal=False) for w in placed]
        collector.command(command, placed, (*via, name), depth, extra_args=len(sources) > len(values) + 1)
    return True


def _watch(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
           depth: int) -> bool:
    """watch joins its arguments and runs them with sh -c."""
    collector.invocations.append(Invocation(name, tuple(args), command, via))
    inner = args[command_start(args, grammar(name, collector.catalogue)):]
    if inner and all(w.literal for w in inner):
        collector.line(" ".join(w.value for w in inner), command.cwd, (*via, name), depth + 1, (name,))
    elif inner:
        collector.opaque.append(Opaque("watch runs a command only known when it runs", command.text))
    return True


def _run_parts(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
               depth: int) -> bool:
    """run-parts DIR runs every program in DIR: in /bin, shells among them (`--regex '^sh$' /bin`)."""
    rules = grammar(name, collector.catalogue)
    if flags(args, rules) & {"--test", "--list"}:
        return False
    directories = operands(args, rules)
    directory = os.path.normpath(os.path.join(command.cwd, directories[-1].value)) if directories else ""
    if directories and not directories[-1].literal:
        collector.opaque.append(Opaque("run-parts runs every program in a directory only known when it runs",
                                       command.text))
    elif directory in SHELL_DIRECTORIES:
        collector.opaque.append(Opaque(f"run-parts runs every program in {directory}, shells among them",
                                       command.text))
    return False


_GIT_RISKY_CONFIG = ("core.hookspath", "core.sshcommand", "core.fsmonitor", "core.pager", "core.editor",
                     "alias.", "diff.external", "credential.helper", "filter.", "uploadpack.", "receivepack.",
                     "sequence.editor", "gpg.program", "merge.", "protocol.")


def _git(collector: _Collector, command: Command, name: str, args: list[Word], via: tuple[str, ...],
         depth: int) -> bool:
    """git -c KEY=VALUE can make git run any program (hooks path, aliases, pagers)."""
    for index, word in enumerate(args):
        if word.value == "-c" and index + 1 < len(args):
            key = args[index + 1].value.split("=", 1)[0].lower()
            if key.startswith(_GIT_RISKY_CONFIG):
                collector.invocations.append(Invocation(name, tuple(args), command, via))
                collector.opaque.append(Opaque(f"git -c {key} can run any program", command.text))
                return True
    return False


_HANDLERS: dict[str, Handler] = {
    "su": _shell,
    "eval": _eval, "source": _source, ".": _source, "trap": _trap, "alias": _alias,
    **{name: _awk for name in AWKS}, "sed": _sed,
    "find": _find, "xargs": _xargs, "parallel": _parallel, "watch": _watch, "git": _git,
    "run-parts": _run_parts, **{name: _windows_shell for name in windows.POWERSHELLS | windows.CMDS},
}
# The programs these tables know (the catalogue's destructive-verb check leaves them to their own rules).
KNOWN_PROGRAMS = frozenset(_HANDLERS)
