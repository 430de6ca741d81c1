"""Remote execution: what `ssh HOST CMD`, `docker exec C CMD`, `kubectl exec P -- CMD` and `gcloud compute ssh
--command CMD` run somewhere else, so the judge can read it as a command line of its own.

The local shell expands the words first (in `ssh h "rm -rf $X/*"` an unset `$X` makes `rm -rf /*` on the
remote side), then ssh joins its words with spaces into one line the remote shell reads again: quoting is
lost (`ssh h rm -rf "/srv/my dir"` deletes `/srv/my` and `dir`), so the joined text is what is judged.
`docker exec` and `kubectl exec` run their words as a program and its arguments, without a shell.
Relative paths lead to the remote home (ssh) or the container's working directory (`/` unless `-w` says).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from .programs.catalogue import grammar
from .programs.options import Grammar, is_option, takes_next
from .programs.options import value as option_value
from .words import Word

# ssh(1): the options that take a value (the catalogue's); a command is not run remotely with -N (forwarding
# only), -W (stdio forwarding), -s (a subsystem: sftp), and nothing connects with -V, -G or -Q.
SSH = grammar("ssh")
_SSH_NO_COMMAND = frozenset("NVGQWsO")
# docker/podman/nerdctl exec, docker compose exec: their options that take a value.
_DOCKER_GLOBAL = Grammar(frozenset({"-H", "--host", "--context", "-c", "--config", "-l", "--log-level",
                                    "--connection", "--url", "--namespace", "-n", "--address", "-a"}))
_COMPOSE = Grammar(frozenset({"-f", "--file", "-p", "--project-name", "--env-file", "--profile",
                              "--project-directory", "--ansi", "--parallel", "--progress"}))
_EXEC = Grammar(frozenset({"-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir", "--detach-keys",
                           "--index", "--preserve-fds"}))
# kubectl/oc exec: global and exec options that take a value.
_KUBECTL = Grammar(frozenset({"-c", "--container", "-n", "--namespace", "--context", "--cluster", "--kubeconfig",
                              "-f", "--filename", "--pod-running-timeout", "-s", "--server", "--user", "--token",
                              "--as", "--as-group", "--request-timeout", "-v", "--v", "--certificate-authority",
                              "--client-certificate", "--client-key", "--tls-server-name", "--cache-dir",
                              "--profile", "--profile-output"}))
# gcloud ... ssh: its options that take a value (--command is the remote line).
_GCLOUD = Grammar(frozenset({"--zone", "--project", "--ssh-flag", "--ssh-key-expire-after", "--strict-host-key-"
                             "checking", "--account", "--configuration", "--verbosity", "--worker", "--region",
                             "--container", "--impersonate-service-account", "--format", "--billing-project",
                             "--flags-file", "--trace-token", "--internal-ip", "--tunnel-through-iap"}))
_LXC = Grammar(frozenset({"--env", "--user", "--group", "--cwd", "--mode", "--project"}))
CONTAINER_ENGINES = frozenset({"docker", "podman", "nerdctl"})
PROGRAMS = frozenset({"ssh", "gcloud", "kubectl", "oc", "docker-compose", "vagrant", "lxc", "incus", "multipass",
                      *CONTAINER_ENGINES})
_UNKNOWN = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


class Remote(NamedTuple):
    """What runs on the other side: a line its shell reads, or a program run without a shell (argv)."""

    how: str  # the step as a reason names it: "ssh h", "docker exec web"
    line: Word | None = None  # read by the remote shell (ssh, gcloud --command)
    argv: tuple[Word, ...] = ()  # run as a program and its arguments (docker exec, kubectl exec)
    cwd: str = "/"  # where its relative paths lead
    session: bool = False  # no command given: an interactive remote shell (or what standard input feeds it)
    words: int = 0  # how many of the last arguments are the remote command (not the program's own options)


def remote(name: str, args: Sequence[Word], home: str) -> Remote | None:
    """What the command runs elsewhere; None when it runs nothing there (`ssh -N`, `docker ps`, `kubectl get`)."""
    if name == "ssh":
        return _ssh(args, home)
    if name in CONTAINER_ENGINES or name == "docker-compose":
        return _container_exec(name, args)
    if name in ("kubectl", "oc", "lxc", "incus", "multipass"):
        return _exec_after_dashes(name, args)
    if name == "gcloud":
        return _gcloud(args, home)
    if name == "vagrant":
        return _vagrant(args, home)
    return None


def elsewhere(via: Sequence[str]) -> str | None:
    """The remote step a command was reached through (`ssh h`, `docker exec web`), for its reason."""
    return next((step for step in via if step.split()[0] in PROGRAMS or step.startswith("gcloud ssh")), None)


def joined(words: Sequence[Word]) -> Word:
    """Words as ssh sends them: one line, joined with spaces, for the remote shell to split again."""
    return Word(" ".join(w.value for w in words), all(w.literal for w in words), False,
                " ".join(w.source for w in words))


def unset_expansion(line: Word) -> str | None:
    """The line as the local shell makes it when every variable it does not know is unset (`$X/*` -> `/*`),
    or None when it knows them all."""
    if line.literal or not _UNKNOWN.search(line.value):
        return None
    return _UNKNOWN.sub("", line.value)


def _ssh(args: Sequence[Word], home: str) -> Remote | None:
    """OpenSSH reads options before the host and again after it (`ssh h -v ls`), until `--` or the command."""
    host: Word | None = None
    index = 0
    while index < len(args):
        text = args[index].value
        if text == "--":
            index += 1
            if host is None and index < len(args):
                host, index = args[index], index + 1
            break
        if not is_option(text):
            if host is not None:
                break
            host, index = args[index], index + 1
            continue
        if not text.startswith("--") and _SSH_NO_COMMAND & set(_letters(text, SSH)):
            return None
        index += 2 if takes_next(text, SSH) else 1
    if host is None:
        return None  # no host: ssh prints its usage
    how, command = f"ssh {host.value}", args[index:]
    background = any(is_option(w.value) and not w.value.startswith("--") and "f" in _letters(w.value, SSH)
                     for w in args[:index])
    if not command:
        return None if background else Remote(how, cwd=home, session=True)  # -f without a command: refused
    return Remote(how, line=joined(command), cwd=home, words=len(command))


def _letters(option: str, grammar: Grammar) -> str:
    """The letters of a short-option bundle, up to the one whose value is the rest (`-Nfp22`: N, f, p)."""
    out = ""
    for letter in option[1:]:
        out += letter
        if f"-{letter}" in grammar.values:
            break
    return out


def _skip(args: Sequence[Word], index: int, grammar: Grammar) -> int:
    """The index of the first operand at or after `index` (options and their values skipped)."""
    while index < len(args) and is_option(args[index].value) and args[index].value != "--":
        index += 2 if takes_next(args[index].value, grammar) else 1
    return index


def _container_exec(name: str, args: Sequence[Word]) -> Remote | None:
    """`docker exec [OPTIONS] C CMD...`, `docker container exec`, `docker compose exec SERVICE CMD...`."""
    if name == "docker-compose":
        position = _skip(args, 0, _COMPOSE)
    else:
        position = _skip(args, 0, _DOCKER_GLOBAL)
        first = args[position].value if position < len(args) else ""
        position += 1
        if first == "compose":
            position = _skip(args, position, _COMPOSE)
        elif first == "container":
            pass
        elif first == "exec":
            position -= 1
        else:
            return None
    if position >= len(args) or args[position].value != "exec":
        return None
    start = position + 1
    position = _skip(args, start, _EXEC)
    options = list(args[start:position])
    if position < len(args) and args[position].value == "--":
        position += 1
    if position >= len(args):
        return None  # no container: the engine prints its usage
    target, command = args[position], tuple(args[position + 1:])
    words = len(command)
    if command and command[0].value == "--":
        command = command[1:]
    workdir = option_value(options, {"-w", "--workdir"}, _EXEC)
    cwd = workdir.value if workdir is not None and workdir.literal and workdir.value.startswith("/") else "/"
    return Remote(f"{name} exec {target.value}", argv=command, cwd=cwd, session=not command, words=words)


def _exec_after_dashes(name: str, args: Sequence[Word]) -> Remote | None:
    """`kubectl exec [OPTIONS] POD [--] CMD...`, `lxc exec C -- CMD`, `multipass exec VM -- CMD`."""
    grammar = _LXC if name in ("lxc", "incus") else _KUBECTL
    index = _skip(args, 0, grammar)
    if index >= len(args) or args[index].value != "exec":
        return None
    index = _skip(args, index + 1, grammar)
    if index >= len(args) or args[index].value == "--":
        return None
    target = args[index]
    rest = list(args[index + 1:])
    words = len(rest)
    if "--" in [w.value for w in rest]:
        command = tuple(rest[[w.value for w in rest].index("--") + 1:])
    else:
        command = tuple(rest[_skip(rest, 0, grammar):])  # the old form: kubectl exec POD CMD
    return Remote(f"{name} exec {target.value}", argv=command, session=not command, words=words)


def _gcloud(args: Sequence[Word], home: str) -> Remote | None:
    """`gcloud compute ssh VM --command CMD` (and `tpu-vm ssh`, `cloud-shell ssh`); after `--`, ssh's own words."""
    words = [w.value for w in args]
    if "ssh" not in words[:4]:
        return None
    given = option_value(list(args), {"--command"}, _GCLOUD)
    if given is not None:
        return Remote("gcloud ssh --command", line=given, cwd=home)
    if "--" in words:
        after = args[words.index("--") + 1:]
        index = _skip(after, 0, SSH)
        if index < len(after):
            return Remote("gcloud ssh --", line=joined(after[index:]), cwd=home, words=len(after) - index)
    return Remote("gcloud ssh", cwd=home, session=True)


def _vagrant(args: Sequence[Word], home: str) -> Remote | None:
    words = [w.value for w in args]
    if not words or words[0] != "ssh":
        return None
    given = option_value(list(args[1:]), {"-c", "--command"}, Grammar(frozenset({"-c", "--command"})))
    if given is not None:
        return Remote("vagrant ssh -c", line=given, cwd=home)
    return Remote("vagrant ssh", cwd=home, session=True)
