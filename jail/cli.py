"""The `shelljail` command line. Imports stay lazy: start-up time is a feature."""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: start-up time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

HOOK_EPILOG = """\
In .claude/settings.json (or ~/.claude/settings.json):
  {"hooks": {"PreToolUse": [{"matcher": "Bash",
     "hooks": [{"type": "command", "command": "shelljail hook claude-code"}]}]}}
"""

LEARN_EPILOG = """\
examples:
  shelljail learn -o tests.toml -- make test           learn what the test suite needs
  shelljail run -p tests.toml -- make test             ... and run it with nothing more
  shelljail lab run -p tests.toml -- python3 other.py  which syscalls another workload lacks
  shelljail lab diff coding-agent tests.toml           what the learned profile takes away

A failing or partial run learns less than the real work needs: learn on a run that succeeds,
and on every path you care about (one learn per workload, then merge their allow lists).
"""

RUN_EPILOG = """\
examples:
  shelljail run -- bash                      a shell in the current directory, jailed
  shelljail run -w ~/src/app -- make test    build in ~/src/app; nothing else is writable
  shelljail run -p readonly -- git diff      review: even the workspace is read-only
  shelljail run --timeout 600 -- pi          stop the agent (and all it started) after 10 min
  shelljail run --ask deny -- pi             unattended: a command that needs a person is refused
  shelljail run --secret NPM_TOKEN -- npm ci a secret for this run only, masked in log and output

exit status: the command's own; 124 timeout; 125 the jail could not be set
up; 126 not executable, or denied by the interposer; 127 command not found;
137 stopped (shelljail stop, or Ctrl-C).
"""


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = _parser(words[0] if words and not words[0].startswith("-") else None)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from jail.errors import JailError

    try:
        code = args.handler(args)
    except JailError as exc:
        from jail.display import shown

        print(f"shelljail: {shown(str(exc))}", file=sys.stderr)
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # `shelljail log | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if args.handler is _run:
        # Skip the interpreter's teardown (several ms): nothing is left to clean up.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


class _Skipped:
    """Stands for the parser of a command this invocation does not use, and ignores what is added to it:
    building all thirty (argparse looks up a translation for each string) took 15 ms of every `run`."""

    def __getattr__(self, _name: str) -> Any:
        return lambda *_args, **_kwargs: self


class _Only:
    """The subparsers action, building only the parser of `wanted`."""

    def __init__(self, commands: Any, wanted: str) -> None:
        self.commands = commands
        self.wanted = wanted
        self.found = False

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name != self.wanted:
            return _Skipped()
        self.found = True
        kind = kwargs.pop("formatter_class", argparse.HelpFormatter)
        return self.commands.add_parser(name, formatter_class=_sized(kind), **kwargs)


def _sized(kind: type[argparse.HelpFormatter]) -> Callable[[str], argparse.HelpFormatter]:
    """`kind`, given the terminal's width: unasked, argparse imports shutil for it (3 ms with the bz2 and lzma
    it imports, on every `run`, since add_argument makes a formatter to check each metavar)."""
    return lambda prog: kind(prog, width=_columns() - 2)


def _columns() -> int:
    """The width shutil.get_terminal_size would say: $COLUMNS, else standard output's terminal, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _parser(wanted: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with `wanted` (the command named first), only that command's part of it."""
    parser = argparse.ArgumentParser(
        prog="shelljail", formatter_class=_sized(argparse.HelpFormatter),
        description="Run an AI coding agent (or any command) in a jail where only its workspace is writable.",
    )
    commands: Any = parser.add_subparsers(metavar="COMMAND")
    if wanted is not None:
        commands = _Only(commands, wanted)

    run = commands.add_parser(
        "run", help="run a command jailed", epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run CMD in new user, mount, pid, ipc, uts and network namespaces, with a fresh "
                    "root that shows only what the profile names, the workspace the only writable place.",
    )
    run.add_argument("-p", "--profile", default=None,
                     help="a built-in profile name or a TOML file (default: the agent's own by the command's "
                          "name, claude -> claude-code, codex, gemini, opencode, aider; else coding-agent)")
    run.add_argument("--agent-config", choices=("copy", "read-only", "none"), default=None,
                     help="how an agent profile gives the agent its configuration (~/.claude, ~/.codex...): "
                          "copy, a per-workspace copy it may write; read-only, the real one; none (default: the "
                          "profile's agent.config)")
    run.add_argument("-w", "--workspace", default=None,
                     help="the directory the command may change (default: the current directory)")
    run.add_argument("--timeout", type=_seconds, default=None, metavar="S",
                     help="kill everything in the jail after S seconds and exit 124 "
                          "(default: the profile's limits.wall_time, or none)")
    run.add_argument("--env", action="append", default=[], metavar="K=V", type=_env_pair,
                     help="set an environment variable inside the jail (repeatable)")
    run.add_argument("--secret", action="append", default=[], metavar="NAME[=SOURCE]",
                     help="give the command a secret for this run only: NAME from your environment, "
                          "NAME=file:PATH or NAME=cmd:COMMAND; end with :file to get /run/secrets/NAME instead "
                          "of a variable. Masked as [secret:NAME] in the log and relayed output (repeatable)")
    run.add_argument("--interposer", choices=("on", "off"), default=None,
                     help="judge every shell command before it runs (default: the profile's interposer.enabled)")
    run.add_argument("--ask", choices=("tty", "deny"), default="tty",
                     help="where an `ask` decision goes: tty asks a person on this terminal (and shelljail approve "
                          "from any terminal); deny refuses at once, for CI and unattended runs (default: tty)")
    run.add_argument("--workspace-mode", choices=("read-write", "read-only", "overlay"), default=None,
                     help="read-write: the command changes the workspace itself; overlay: its writes land in a layer "
                          "of the session's, to review with shelljail diff, then commit or discard; read-only "
                          "(default: the profile's filesystem.workspace)")
    run.add_argument("--dry-run", action="store_true",
                     help="the workspace read-only, and only shell commands that only read run; the others "
                          "are judged, logged and reported as what they would have done (exit 126)")
    run.add_argument("--read-only", action="append", default=[], metavar="PATH", type=_run_flag("--read-only"),
                     help="also show PATH to the command, read-only, at the same place: an install folder, a "
                          "model's files (as filesystem.read_only; repeatable)")
    run.add_argument("--allow", action="append", default=[], metavar="HOST[:PORT]", type=_run_flag("--allow"),
                     help="also let the proxy reach HOST (*.domain matches its subdomains; without :PORT, 80 and "
                          "443), such as an API host (as network.allow; repeatable; needs network.mode proxy)")
    run.add_argument("--forward", action="append", default=[], metavar="127.0.0.1:PORT", type=_run_flag("--forward"),
                     help="also forward this port of the host's loopback to the same address in the jail, as "
                          "HTTP with the model forward's filter: a model server on another port (as "
                          "network.forward; repeatable; needs network.mode proxy)")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]")
    run.set_defaults(handler=_run)

    check = commands.add_parser(
        "check", help="the interposer's decision for a command line, running nothing",
        description="Parse COMMAND as the jailed agent's shell would get it and print the interposer's decision: "
                    "allow, deny or ask, the rule that decided, and why. `run` decides the same way.",
    )
    check.add_argument("-p", "--profile", default=None,
                       help="profile (default: the agent's own when the line starts with claude, codex, gemini, "
                            "opencode or aider, as run picks it; else coding-agent)")
    check.add_argument("-C", "--directory", default=".", metavar="DIR",
                       help="the directory the command runs in (default: the current directory)")
    check.add_argument("-w", "--workspace", default=None, help="the workspace (default: DIR)")
    check.add_argument("--json", action="store_true", help="one JSON object per command line")
    check.add_argument("-f", "--file", default=None, metavar="FILE",
                       help="judge one command per line of FILE (- for standard input)")
    check.add_argument("command", nargs="?", help="the command line, quoted as one argument")
    check.set_defaults(handler=_check)

    sessions = commands.add_parser("sessions", help="the recorded sessions, newest first")
    sessions.add_argument("--json", action="store_true")
    sessions.set_defaults(handler=_sessions)
    log = commands.add_parser("log", help="a session's audit log (default: the newest session)")
    log.add_argument("session", nargs="?", help="a session id or a unique prefix of one")
    log.add_argument("--json", action="store_true", help="the raw JSON Lines")
    log.add_argument("-f", "--follow", action="store_true", help="keep printing events as they are written")
    log.set_defaults(handler=_log)
    approvals = commands.add_parser("approvals", help="questions waiting for a person, in every session")
    approvals.set_defaults(handler=_approvals)
    approve = commands.add_parser("approve", help="allow a waiting command (shelljail approvals lists them)")
    approve.add_argument("id")
    approve.add_argument("--always", action="store_true", help="and the same command again in this session")
    approve.set_defaults(handler=_approve)
    deny = commands.add_parser("deny", help="refuse a waiting command")
    deny.add_argument("id")
    deny.set_defaults(handler=_deny)
    stop = commands.add_parser("stop", help="the stop button: kill a running jail, every process in it")
    stop.add_argument("session", nargs="?", help="a session id or prefix (default: the newest running one)")
    stop.set_defaults(handler=_stop)

    dashboard = commands.add_parser(
        "dashboard", help="a local web page: every session live, approvals, the stop button",
        description="Serve a page on 127.0.0.1 that shows every session as it happens (decisions, approvals, "
                    "network, limits), answers approvals, stops jails and reviews overlay workspaces. It prints a "
                    "URL with a random token: only that URL opens it. No jail can reach its port: a forward to it "
                    "is refused.")
    dashboard.add_argument("--port", type=int, default=7878, help="the port on 127.0.0.1 (default: 7878; 0: any "
                           "free port)")
    dashboard.set_defaults(handler=_dashboard)

    trash = commands.add_parser(
        "trash", help="what rm and unlink in a jail moved aside, and putting it back",
        description="Inside a jail, rm and unlink of workspace files (not regenerable caches such as target/ or "
                    "node_modules/) move them to the session's trash instead: the agent sees rm's usual output "
                    "and status, and nothing is lost.")
    trash_commands = trash.add_subparsers(metavar="ACTION", required=True)
    trash_list = trash_commands.add_parser("list", help="the trash of a session (default: every session), newest first")
    trash_list.add_argument("session", nargs="?", help="a session id or a unique prefix of one")
    trash_list.add_argument("--json", action="store_true")
    trash_list.set_defaults(handler=_trash_list)
    trash_restore = trash_commands.add_parser(
        "restore", help="put a removed file or tree back where it was",
        description="REF is an entry's id as `trash list` prints it (SESSION/N), or the path it had, or a path "
                    "inside a removed tree (its last removal). Refused if something is at that path now.")
    trash_restore.add_argument("reference", metavar="ID|PATH")
    trash_restore.set_defaults(handler=_trash_restore)
    trash_put = trash_commands.add_parser(
        "put", help="move workspace files or trees to the trash, on the host (what the hook writes for rm)",
        description="Without a jail (the Claude Code hook), `rm -rf src` in the workspace becomes `shelljail trash "
                    "put -w WORKSPACE -f -- src`: src is moved, under the same rules as the jail's trash (no "
                    "symlink or mount on the way, never the workspace itself), and `trash restore` puts it back.")
    trash_put.add_argument("-w", "--workspace", default=None, help="the workspace (default: the current directory)")
    trash_put.add_argument("-f", "--force", action="store_true", help="a path that does not exist is no error")
    trash_put.add_argument("paths", nargs="+", metavar="PATH")
    trash_put.set_defaults(handler=_trash_put)

    agent = commands.add_parser(
        "agent", help="the reference agent: a local model (Ollama) whose tools run in the jail",
        description="Give TASK to a model served by Ollama. The model states a plan (approved on this terminal, "
                    "if there is one), then reads, searches, edits and runs commands through a small set of "
                    "tools that run inside the jail: every command goes through the interposer, every write "
                    "through the workspace. Exit 0 when the model finished, 1 when it was stopped, 125 when "
                    "the model or the jail could not be used.")
    agent.add_argument("task")
    agent.add_argument("--model", required=True, help="an Ollama model name, such as qwen2.5-coder:7b")
    agent.add_argument("--host", default=None, help="the Ollama server (default: $OLLAMA_HOST or 127.0.0.1:11434)")
    agent.add_argument("-p", "--profile", default="coding-agent", help="the jail's profile (default: coding-agent)")
    agent.add_argument("-w", "--workspace", default=None, help="the workspace (default: the current directory)")
    agent.add_argument("--ask", choices=("tty", "deny"), default="tty",
                       help="tty: a person approves the plan and each write, and answers the interposer's "
                            "questions, on this terminal; deny: nobody is asked (default: tty)")
    agent.add_argument("--timeout", type=_seconds, default=1800, metavar="S", help="wall time (default: 1800)")
    agent.add_argument("--max-steps", type=int, default=30, metavar="N", help="model turns (default: 30)")
    agent.add_argument("--test", default=None, metavar="CMD", help="what run_tests runs, such as 'make test'")
    agent.add_argument("--secret", action="append", default=[], metavar="NAME[=SOURCE]",
                       help="as for run; masked in what the model sees too")
    agent.set_defaults(handler=_agent)

    hook = commands.add_parser(
        "hook", help="the interposer as an agent's own permission hook (claude-code), with or without the jail",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=HOOK_EPILOG,
        description="Read the agent's pre-tool-use event on standard input and answer in its format: deny with "
                    "the interposer's reason, ask, or allow a safer rewrite; say nothing for what it allows.")
    hook.add_argument("agent", choices=("claude-code",))
    hook.add_argument("-p", "--profile", default="coding-agent", help="whose rules (default: coding-agent)")
    hook.add_argument("-w", "--workspace", default=None,
                      help="the workspace (default: $CLAUDE_PROJECT_DIR, else the event's cwd)")
    hook.set_defaults(handler=_hook)

    diff = commands.add_parser(
        "diff", help="what an overlay session changed: added, changed and deleted files, and a unified diff",
        description="An overlay session (run --workspace-mode overlay) left the real workspace untouched; "
                    "this shows what it would change. Then: shelljail commit SESSION [PATH...] or discard SESSION.")
    diff.add_argument("session", nargs="?", help="a session id or prefix (default: the newest)")
    diff.add_argument("paths", nargs="*", metavar="PATH", help="only these paths (and what is under them)")
    diff.add_argument("--names", action="store_true", help="only the list of files (A added, M changed, D deleted)")
    diff.set_defaults(handler=_diff)
    commit = commands.add_parser(
        "commit", help="apply an overlay session's changes (all, or the PATHs named) to the real workspace",
        description="Each file is written beside its destination and renamed into place (atomic per file). "
                    "Refused, with nothing applied, if a real file changed since the session started.")
    commit.add_argument("session", help="a session id or prefix")
    commit.add_argument("paths", nargs="*", metavar="PATH")
    commit.set_defaults(handler=_commit)
    discard = commands.add_parser("discard", help="throw an overlay session's changes away")
    discard.add_argument("session", help="a session id or prefix")
    discard.set_defaults(handler=_discard)

    timeline = commands.add_parser(
        "timeline", help="a session's commands in order, with what each changed in the workspace",
        description="Before each command line the agent runs, the supervisor records a checkpoint of the "
                    "workspace (caches left out; see [timeline] in docs/profiles.md). This lists the commands: "
                    "the number is the checkpoint before the command, then the files it added (+), changed (~) "
                    "and deleted (-), and the bytes written. The changes between two commands are the command's "
                    "and anything else the agent wrote meanwhile. Then: shelljail undo [--to N].")
    timeline.add_argument("session", nargs="?", help="a session id or prefix (default: the newest)")
    timeline.add_argument("--files", action="store_true", help="name the files each command added, changed, deleted")
    timeline.add_argument("--json", action="store_true", help="one JSON object: every command and its changes")
    timeline.set_defaults(handler=_timeline)
    undo = commands.add_parser(
        "undo", help="put the workspace back as it was before the last command (or before command N)",
        description="Restores every file, directory and symlink of the workspace to the checkpoint before the "
                    "session's last command (--to N: before command N of shelljail timeline). What is there now "
                    "is recorded first as a checkpoint of its own, so an undo can be undone (shelljail undo "
                    "again). A file that changed since the session's last checkpoint, by anything but the "
                    "session, is not overwritten: undo refuses, changing nothing, unless --force. "
                    "An overlay session's undo writes its layer, not the real workspace (review it with "
                    "shelljail diff, then commit); once committed whole, the real workspace. "
                    "The session must have ended.")
    undo.add_argument("session", nargs="?", help="a session id or prefix (default: the newest)")
    undo.add_argument("--to", type=int, metavar="N",
                      help="the checkpoint before command N (shelljail timeline); 1: as the session started")
    undo.add_argument("--force", action="store_true", help="overwrite files changed since the session too")
    undo.set_defaults(handler=_undo)
    restore = commands.add_parser(
        "restore", help="put PATHs of a workspace back as they were at checkpoint N",
        description="Like undo --to N, for the PATHs named only (a directory: what is under it). PATHs are "
                    "relative to the current directory and must be inside the session's workspace.")
    restore.add_argument("--at", type=int, required=True, metavar="N", help="the checkpoint (shelljail timeline)")
    restore.add_argument("paths", nargs="+", metavar="PATH")
    restore.add_argument("-s", "--session", default=None, help="a session id or prefix (default: the newest)")
    restore.add_argument("--force", action="store_true", help="overwrite files changed since the session too")
    restore.set_defaults(handler=_restore)

    snapshots = commands.add_parser(
        "snapshots", help="the git snapshots saved before commands that discard work",
        description="Before git reset --hard, git clean -f, git checkout -- ., git restore ., git stash drop/clear, "
                    "the interposer saves the work tree (untracked files too) to refs/shelljail/snapshots/N. "
                    "This lists them; shelljail rollback N restores one.")
    snapshots.add_argument("-w", "--workspace", default=None, help="the repository (default: the current directory)")
    snapshots.set_defaults(handler=_snapshots)
    rollback = commands.add_parser(
        "rollback", help="restore a git snapshot: HEAD, files and stashes (saving the present one first)",
        description="Restore snapshot N: the branch goes back to where HEAD was, the files to what they were "
                    "(untracked ones come back untracked), and dropped stashes return. What is there now is "
                    "saved as a new snapshot first, so a rollback can be rolled back. Git runs in a jail.")
    rollback.add_argument("number", type=int, metavar="N")
    rollback.add_argument("-w", "--workspace", default=None, help="the repository (default: the current directory)")
    rollback.set_defaults(handler=_rollback)

    seccomp = commands.add_parser("seccomp", help="the syscall policy of a profile")
    seccomp_commands = seccomp.add_subparsers(metavar="ACTION", required=True)
    export = seccomp_commands.add_parser(
        "export", help="a profile's seccomp policy as Docker/OCI JSON (for containerd, Podman, Kubernetes)")
    export.add_argument("-p", "--profile", default="coding-agent")
    export.add_argument("-o", "--output", default="-", help="a file (default: standard output)")
    export.set_defaults(handler=_seccomp_export)

    learn = commands.add_parser(
        "learn", help="run a command and write a profile that allows exactly the syscalls it used",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=LEARN_EPILOG,
        description="Run CMD jailed on the base profile, as `run` would, with every syscall outside a small core "
                    "(read, write, mmap, execve, ...) sent to the supervisor by seccomp user notification, recorded "
                    "and let through. Then write a profile that extends the base with an allow-list of what was "
                    "seen: anything else fails with the profile's errno_value. The file also notes, as comments, "
                    "the files opened for writing outside the workspace, the programs run, the sockets opened and "
                    "the connections tried.")
    _lab_options(learn, "coding-agent")
    learn.add_argument("-o", "--output", default="learned.toml", metavar="NEW.toml",
                       help="the profile to write (default: learned.toml)")
    learn.set_defaults(handler=_learn)
    lab = commands.add_parser("lab", help="syscall experiments: run with a denial report, compare profiles")
    lab_commands = lab.add_subparsers(metavar="ACTION", required=True)
    lab_run = lab_commands.add_parser(
        "run", help="run jailed, then report each denied syscall, how often, and the first program that tried it",
        description="Run CMD as `run` would (default profile: lab, the coding-agent jail without the interposer), "
                    "then print each syscall the filter denied with a count and the first program that tried it. "
                    "Iterate: learn, run the learned profile here, see what it lacks.")
    _lab_options(lab_run, "lab")
    lab_run.set_defaults(handler=_lab_run)
    lab_diff = lab_commands.add_parser(
        "diff", help="what one profile allows that the other does not (syscalls, paths, network)")
    lab_diff.add_argument("first", metavar="A", help="a built-in profile name or a TOML file")
    lab_diff.add_argument("second", metavar="B", help="a built-in profile name or a TOML file")
    lab_diff.set_defaults(handler=_lab_diff)

    doctor = commands.add_parser("doctor", help="check which kernel features work here")
    doctor.set_defaults(handler=_doctor)

    profile = commands.add_parser("profile", help="list, show and validate profiles")
    profile_commands = profile.add_subparsers(metavar="ACTION", required=True)
    profile_commands.add_parser("list", help="the built-in profiles").set_defaults(handler=_profile_list)
    show = profile_commands.add_parser("show", help="a profile, resolved with what it extends")
    show.add_argument("name", help="a built-in name or a TOML file")
    show.set_defaults(handler=_profile_show)
    validate = profile_commands.add_parser("validate", help="check a profile file; exit 1 if it is wrong")
    validate.add_argument("file")
    validate.set_defaults(handler=_profile_validate)
    if wanted is not None and not commands.found:
        return _parser()  # not a command: the whole parser, to say so and list them
    return parser


def _lab_options(parser: argparse.ArgumentParser, profile: str) -> None:
    parser.add_argument("-p", "--profile", default=profile,
                        help=f"a built-in profile or a TOML file (default: {profile})")
    parser.add_argument("-w", "--workspace", default=None, help="the writable directory (default: the current one)")
    parser.add_argument("--timeout", type=_seconds, default=None, metavar="S", help="stop everything after S seconds")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", type=_env_pair,
                        help="set an environment variable inside the jail (repeatable)")
    parser.add_argument("--ask", choices=("tty", "deny"), default="tty",
                        help="where the interposer's `ask` goes, as for run (default: tty)")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected K=V, got {text!r}")
    return name, value


def _run_flag(flag: str) -> Callable[[str], str]:
    """A run flag's value, checked by the validator of the profile key it mirrors (profile.run_flag)."""
    def checked(value: str) -> str:
        from jail.policy import profile

        try:
            return profile.run_flag(flag, value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{value!r}: {exc} (as {profile.RUN_FLAGS[flag]} in a profile)") from None
    return checked


def _run(args: argparse.Namespace) -> int:
    from jail.policy import profile, spec

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("shelljail: run needs a command (shelljail run -- CMD [ARG...])", file=sys.stderr)
        return 2
    loaded = agent_profile(args.profile, command[0], args.agent_config)
    flags = [(flag, value) for flag, values in (("--read-only", args.read_only), ("--allow", args.allow),
                                                ("--forward", args.forward)) for value in values]
    network_flag = next((flag for flag, _ in flags if flag != "--read-only"), None)
    if network_flag and loaded.network.mode != "proxy":
        print(f"shelljail: run {network_flag} needs network.mode = \"proxy\", and profile {loaded.name} has "
              f"\"{loaded.network.mode}\" (use -p coding-agent, or a profile with [network] mode = \"proxy\")",
              file=sys.stderr)
        return 2
    loaded = profile.with_run_flags(loaded, tuple(args.read_only), tuple(args.allow), tuple(args.forward))
    # What each --forward lets through beyond the inference endpoints: said now, and in the run's log.
    also = {address: ", ".join(profile.forward_allow_paths(loaded.network, profile.Forward(address)))
            for address in args.forward}
    for address, paths in also.items():
        extra = f" and {paths} (network.forward_paths of profile {loaded.name})" if paths else " only"
        print(f"shelljail: --forward {address} lets through the model's inference and read-only endpoints (Ollama, "
              f"OpenAI chat completions){extra}", file=sys.stderr)
    if args.workspace_mode:
        loaded = loaded._replace(filesystem=loaded.filesystem._replace(workspace=args.workspace_mode))
    if args.dry_run:
        loaded = loaded._replace(filesystem=loaded.filesystem._replace(workspace="read-only"))
    workspace = args.workspace or os.getcwd()
    from jail.policy.agentconfig import unpassed_keys

    for name in unpassed_keys(loaded, os.environ, args.secret):
        print(f"shelljail: {name} is set in your environment and the jail does not inherit it: give it with "
              f"--secret {name}", file=sys.stderr)
    if loaded.agent.config == "copy" and os.path.isdir(workspace):
        from jail.supervisor import agentcopy

        agentcopy.prepare(loaded, workspace, spec.caller_identity(os.environ)[1])
    jail_spec = spec.build(loaded, workspace, command, os.environ, args.env, secret_specs=args.secret)
    jail_spec = jail_spec._replace(run_flags=tuple(
        f"{flag} {value}" + (f" (also {also[value]})" if flag == "--forward" and also[value] else "")
        for flag, value in flags))
    timeout = args.timeout or loaded.limits.wall_time
    interposing = loaded.interposer.enabled if args.interposer is None else args.interposer == "on"
    if args.dry_run and not interposing:
        print("shelljail: --dry-run needs the interposer (drop --interposer off)", file=sys.stderr)
        return 2
    from jail.run import RunOptions, supervise

    # `run` ends with os._exit once this returns (main): the run may leave a slow close to that exit.
    return supervise(loaded, jail_spec, RunOptions(interposing, timeout, args.ask, args.dry_run, exiting=True))[0]


def agent_profile(name: str | None, program: str, config: str | None = None) -> Any:
    """The profile -p names, else the built-in agent profile for the program's name (said in one line), else
    the default; with `--agent-config` applied."""
    from jail.policy import agentconfig, profile

    return agentconfig.with_mode(profile.load(_profile_name(name, program)), config)


def _profile_name(name: str | None, program: str) -> str:
    from jail.policy import agentconfig, profile

    if name is not None:
        return name
    picked = agentconfig.pick(program)
    if picked is None:
        return profile.DEFAULT_PROFILE
    from jail.display import shown

    print(f"shelljail: using profile {picked} for {shown(os.path.basename(program))} (choose another with -p)",
          file=sys.stderr)
    return picked


def _check(args: argparse.Namespace) -> int:
    from interposer import check

    if (args.file is None) == (args.command is None):
        print("shelljail: check needs a COMMAND, or -f FILE (one command per line)", file=sys.stderr)
        return 2
    if args.file is None:
        lines = [args.command]
    elif args.file == "-":
        lines = sys.stdin
    else:
        try:
            lines = open(args.file)  # noqa: SIM115 - read lazily, closed at exit
        except OSError as exc:
            print(f"shelljail: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
    first = (args.command or "").split(None, 1)[:1]
    name = _profile_name(args.profile, first[0] if first else "")
    return check.run(name, args.directory, args.workspace, args.json, lines, one_line=args.file is None)


def _sessions(args: argparse.Namespace) -> int:
    from jail.supervisor import session

    return session.list_sessions(args.json)


def _log(args: argparse.Namespace) -> int:
    from jail.supervisor import session

    return session.show_log(args.session, args.json, args.follow)


def _approvals(_args: argparse.Namespace) -> int:
    from jail.display import shown, shown_diff
    from jail.supervisor import approvals, audit

    waiting = approvals.pending(audit.state_home())
    if not waiting:
        print("no questions waiting")
    for request in waiting:  # every field the jail's command made shown escaped: one line each, as written
        print(f"{shown(request.get('id'))}  {shown(request.get('session'))}  {shown(request.get('command'))}\n"
              f"        {shown(request.get('reason'))} (rule {shown(request.get('rule'))})")
        for line in shown_diff(request.get("preview") or "").split("\n"):
            if line:
                print(f"        {line}")
    return 0


def _answer(request_id: str, choice: str) -> int:
    import pwd

    from jail.display import shown
    from jail.supervisor import approvals, audit

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    try:
        request = approvals.answer(audit.state_home(), request_id, choice, user)
    except LookupError as exc:
        print(f"shelljail: {shown(str(exc))}", file=sys.stderr)
        return 1
    print(f"{choice}: {shown(request.get('command'))}")
    return 0


def _approve(args: argparse.Namespace) -> int:
    return _answer(args.id, "always" if args.always else "once")


def _deny(args: argparse.Namespace) -> int:
    return _answer(args.id, "deny")


def _dashboard(args: argparse.Namespace) -> int:
    from jail.ui import dashboard

    return dashboard.serve(args.port, say=lambda line: print(line, flush=True))


def _stop(args: argparse.Namespace) -> int:
    from jail.supervisor import session

    return session.stop(args.session)


def _seccomp_export(args: argparse.Namespace) -> int:
    import json

    from jail.policy import profile
    from jail.seccomp import oci as seccomp_oci

    policy = profile.load(args.profile).seccomp
    if policy.oci:
        with open(policy.oci) as f:
            text = f.read()  # already an OCI profile: exported as it is
    else:
        text = json.dumps(seccomp_oci.export(policy.errno, policy.kill, policy.log, policy.errno_value), indent=2)
    if args.output == "-":
        print(text)
    else:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    return 0


def _jailed(args: argparse.Namespace, learn: bool) -> tuple[int, str, Any]:
    """Run a command for the lab, as `run` would; (exit status, log directory, what a learning run saw)."""
    from jail.lab.learn import Recorder
    from jail.policy import profile, spec

    command = _command(args)
    loaded = profile.load(args.profile)
    jail_spec = spec.build(loaded, args.workspace or os.getcwd(), command, os.environ, args.env, learn=learn)
    recorder = Recorder(jail_spec.view.workspace) if learn else None
    from jail.run import RunOptions, supervise

    options = RunOptions(loaded.interposer.enabled, args.timeout or loaded.limits.wall_time, args.ask,
                         recorder=recorder)
    code, directory = supervise(loaded, jail_spec, options)
    return code, directory, recorder


def _command(args: argparse.Namespace) -> list[str]:
    return args.command[1:] if args.command[:1] == ["--"] else args.command


def _learn(args: argparse.Namespace) -> int:
    from jail.lab import reports as lab

    if not _command(args):
        print("shelljail: learn needs a command (shelljail learn -o NEW.toml -- CMD [ARG...])", file=sys.stderr)
        return 2
    code, _directory, recorder = _jailed(args, learn=True)
    learned = lab.write_learned(args.output, args.profile, _command(args), recorder)
    print(f"shelljail: learned {learned} syscalls beyond the core; wrote {args.output} "
          f"(the command exited {code}{'' if code == 0 else ': a failing run may have missed what success needs'})",
          file=sys.stderr)
    return code


def _lab_run(args: argparse.Namespace) -> int:
    from jail.lab import reports as lab

    if not _command(args):
        print("shelljail: lab run needs a command (shelljail lab run -p PROFILE -- CMD [ARG...])", file=sys.stderr)
        return 2
    code, directory, _recorder = _jailed(args, learn=False)
    lab.print_report(directory)
    return code


def _lab_diff(args: argparse.Namespace) -> int:
    from jail.lab import reports as lab

    print(lab.diff(args.first, args.second))
    return 0


def _trash_list(args: argparse.Namespace) -> int:
    import json
    import time

    from jail.display import shown
    from jail.recovery import trash
    from jail.supervisor import audit

    entries = trash.all_entries()
    if args.session:
        try:
            session = audit.find(args.session)["session"]
        except LookupError as exc:
            print(f"shelljail: {shown(str(exc))}", file=sys.stderr)
            return 1
        entries = [e for e in entries if e["session"] == session]
    if args.json:
        for entry in entries:
            print(json.dumps(entry))  # ASCII: every control and bidi character a JSON escape, the data exact
        return 0
    if not entries:
        print("the trash is empty")
        return 0
    for entry in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.get("time", 0)))
        paths = [shown(os.path.join(str(entry["workspace"]), str(p))) for p in entry["paths"]]
        listed = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        print(f"{shown(entry['session'])}/{shown(entry['id']):<4} {when}  {trash.human(entry.get('bytes', 0)):>9}  "
              f"{shown(entry.get('files', 0)):>6} files  {listed}")
    return 0


def _trash_restore(args: argparse.Namespace) -> int:
    from jail.display import shown
    from jail.recovery import trash

    restored, problem = trash.restore(args.reference, os.getcwd())
    if problem:
        print(f"shelljail: {shown(problem)}", file=sys.stderr)
        return 1
    print(f"restored {shown(restored)}")
    return 0


def _trash_put(args: argparse.Namespace) -> int:
    from jail.display import shown
    from jail.errors import EXIT_REFUSED
    from jail.recovery import trash

    moved, problem = trash.put(args.workspace or os.getcwd(), args.paths, os.getcwd(), args.force)
    for path in moved:
        print(f"moved to the trash: {shown(path)} (shelljail trash restore {shown(path)})")
    if problem:
        print(f"shelljail: {shown(problem)}", file=sys.stderr)
        return EXIT_REFUSED
    return 0


def _agent(args: argparse.Namespace) -> int:
    from agent import jailed

    return jailed.run(args)


def _hook(args: argparse.Namespace) -> int:
    from interposer.hooks import run_claude_code

    sys.stdout.flush()
    return run_claude_code(sys.stdin.buffer, sys.stdout.buffer, sys.stderr.buffer, args.profile, args.workspace)


def _overlay_session(reference: str | None) -> Any:
    """The overlay session to review or apply; None (and one line said) when there is none to act on."""
    from jail.recovery import overlay
    from jail.supervisor import audit

    try:
        info = audit.find(reference)
        target = overlay.session(info, os.path.join(audit.state_home(), str(info["session"])))
        if target.state != "pending":
            raise LookupError(f"session {target.id} was already {target.state}")
        if info.get("state") == "running":
            raise LookupError(f"session {target.id} is still running; wait for it, or shelljail stop {target.id}")
    except LookupError as exc:
        from jail.display import shown

        print(f"shelljail: {shown(str(exc))}", file=sys.stderr)
        return None
    return target


def _diff(args: argparse.Namespace) -> int:
    from jail.display import shown, shown_diff
    from jail.recovery import overlay

    target = _overlay_session(args.session)
    if target is None:
        return 1
    chosen = overlay.selected(overlay.changes(target.upper, target.workspace), args.paths, target.workspace,
                              os.getcwd())
    if not chosen:
        print(f"session {target.id} changed nothing" + (" there" if args.paths else ""))
        return 0
    for change in chosen:
        directory = change.upper is not None and os.path.isdir(change.upper) and not os.path.islink(change.upper)
        directory = directory or (change.kind == "D" and os.path.isdir(os.path.join(target.workspace, change.path)))
        print(f"{change.kind} {shown(change.path)}{'/' if directory else ''}"
              + (f" ({change.type}, not copied)" if change.special else ""))
    if not args.names:
        for change in chosen:
            text = overlay.unified(change, target.workspace)
            if text:
                sys.stdout.write(shown_diff(text))
    return 0


def _commit(args: argparse.Namespace) -> int:
    from jail.display import shown
    from jail.recovery import overlay

    target = _overlay_session(args.session)
    if target is None:
        return 1
    everything = overlay.changes(target.upper, target.workspace)
    chosen = overlay.selected(everything, args.paths, target.workspace, os.getcwd())
    if not chosen:
        print("shelljail: nothing to commit" + (" under those paths" if args.paths else ""), file=sys.stderr)
        return 1
    problems = overlay.conflicts(chosen, target)
    if problems:
        print(f"shelljail: commit refused, nothing applied: {shown('; '.join(problems[:5]))}"
              + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")
              + f"; review with shelljail diff {target.id}, commit other paths, or discard", file=sys.stderr)
        return 1
    overlay.commit(chosen, target)
    overlay.record(target, "overlay-commit", "committed" if len(chosen) == len(everything) else None,
                   paths=[f"{c.kind} {c.path}" for c in chosen])
    print(f"committed {len(chosen)} change(s) to {target.workspace}"
          + ("" if len(chosen) == len(everything) else f"; {len(everything) - len(chosen)} left in the session"))
    return 0


def _discard(args: argparse.Namespace) -> int:
    from jail.recovery import overlay

    target = _overlay_session(args.session)
    if target is None:
        return 1
    overlay.discard(target)
    overlay.record(target, "overlay-discard", "discarded")
    print(f"discarded the changes of session {target.id}")
    return 0


def _snapshots(args: argparse.Namespace) -> int:
    from jail.recovery import gitjail, snapshots

    return gitjail.run(args.workspace, snapshots.LIST_SCRIPT, snapshots.listing)


def _rollback(args: argparse.Namespace) -> int:
    from jail.recovery import gitjail, snapshots

    return gitjail.run(args.workspace, snapshots.rollback_script(args.number))


def _timeline(args: argparse.Namespace) -> int:
    from jail.recovery import timeline_commands

    return timeline_commands.show(args.session, args.json, args.files)


def _undo(args: argparse.Namespace) -> int:
    from jail.recovery import timeline_commands

    return timeline_commands.undo(args.session, args.to, args.force)


def _restore(args: argparse.Namespace) -> int:
    from jail.recovery import timeline_commands

    return timeline_commands.undo(args.session, args.at, args.force, tuple(args.paths))


def _doctor(_args: argparse.Namespace) -> int:
    from interposer.service import launcher_path
    from jail.ui import doctor

    return doctor.main(launcher_path())


def _profile_list(_args: argparse.Namespace) -> int:
    from jail.policy import profile

    for name in profile.builtin_names():
        loaded = profile.load(name)
        marker = " (default)" if name == profile.DEFAULT_PROFILE else ""
        print(f"{name:14} {loaded.description}{marker}")
    return 0


def _profile_show(args: argparse.Namespace) -> int:
    from jail.policy import profile

    sys.stdout.write(profile.to_toml(profile.load(args.name)))
    return 0


def _profile_validate(args: argparse.Namespace) -> int:
    from jail.errors import ProfileError
    from jail.policy import profile

    try:
        loaded = profile.load(args.file)
    except ProfileError as exc:
        print(f"shelljail: {exc.what}", file=sys.stderr)
        return 1
    print(f"{args.file}: ok ({loaded.description or 'no description'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
