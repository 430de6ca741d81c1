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
from collections.abc import Sequence

from .words import Word

_COMPRESSORS = frozenset({"gzip", "gunzip", "pigz", "bzip2", "bunzip2", "pbzip2", "lbzip2", "xz", "unxz", "pixz",
                          "zstd", "unzstd", "pzstd", "lz4", "lzip", "plzip", "lzma", "lzop", "brotli", "compress"})
_REMOTE_SHELLS = frozenset({"ssh", "rsh"})
_PAGERS = frozenset({"less", "more", "most", "cat"})

# program -> {option whose value is a command line the program runs: the programs that option expects}
COMMAND_OPTIONS: dict[str, dict[str, frozenset[str]]] = {
    "tcpdump": {"-z": frozenset()},
    "restic": {"--password-command": frozenset()},
    "dnsmasq": {"--conf-script": frozenset(), "--dhcp-script": frozenset(), "--dhcp-luascript": frozenset()},
    "zic": {"-y": frozenset()},
    "tar": {"-I": _COMPRESSORS, "--use-compress-program": _COMPRESSORS, "--to-command": frozenset(),
            "--rsh-command": _REMOTE_SHELLS, "--rmt-command": frozenset(), "--info-script": frozenset(),
            "--new-volume-script": frozenset(), "-F": frozenset()},
    "cpio": {"--rsh-command": _REMOTE_SHELLS},
    "rsync": {"-e": _REMOTE_SHELLS, "--rsh": _REMOTE_SHELLS, "--rsync-path": frozenset({"rsync"})},
    "scp": {"-S": _REMOTE_SHELLS},
    "sftp": {"-S": _REMOTE_SHELLS},
    "wget": {"--use-askpass": frozenset()},
    "aria2c": {f"--on-{event}": frozenset() for event in ("download-start", "download-complete", "download-error",
                                                           "download-pause", "download-stop", "bt-download-complete")},
    "zip": {"-TT": frozenset({"unzip"}), "--unzip-command": frozenset({"unzip"})},
    "man": {"-P": _PAGERS, "--pager": _PAGERS},
    "mysql": {"--pager": _PAGERS},
    "mariadb": {"--pager": _PAGERS},
    "ncat": {"-e": frozenset(), "--exec": frozenset(), "-c": frozenset(), "--sh-exec": frozenset(),
             "--lua-exec": frozenset()},
    "nc": {"-e": frozenset(), "-c": frozenset()},
    "netcat": {"-e": frozenset(), "-c": frozenset()},
    "openvpn": {option: frozenset() for option in ("--up", "--down", "--route-up", "--route-pre-down", "--ipchange",
                                                   "--tls-verify", "--client-connect", "--client-disconnect",
                                                   "--auth-user-pass-verify", "--learn-address")},
    "start-stop-daemon": {"-x": frozenset(), "--exec": frozenset(), "-a": frozenset(), "--startas": frozenset()},
}
# program -> names of its `-o NAME=VALUE` settings (lower case) whose value is a command line it runs
_SSH_SETTINGS = ("proxycommand", "localcommand", "knownhostscommand")
_APT_SETTINGS = ("apt::update::pre-invoke", "apt::update::post-invoke", "apt::update::post-invoke-success",
                 "dpkg::pre-invoke", "dpkg::post-invoke", "dpkg::pre-install-pkgs", "dpkg::post-install-pkgs")
COMMAND_SETTINGS: dict[str, tuple[str, ...]] = {
    "ssh": _SSH_SETTINGS, "scp": _SSH_SETTINGS, "sftp": _SSH_SETTINGS, "autossh": _SSH_SETTINGS,
    "sshfs": (*_SSH_SETTINGS, "ssh_command"),
    "apt": _APT_SETTINGS, "apt-get": _APT_SETTINGS,
}
_SETTING_NAME = re.compile(r"[\s=]")
# Options that let the text a program reads run shell commands (its "unsafe" or "shell escape" mode).
_TEX = ("--shell-escape", "-shell-escape", "--enable-write18", "-enable-write18")
SHELL_ESCAPES: dict[str, tuple[str, ...]] = {
    "pic": ("-U",), "groff": ("-U",), "troff": ("-U",), "dvips": ("-R0",), "gs": ("-dNOSAFER",),
    **{tex: _TEX for tex in ("tex", "latex", "pdftex", "pdflatex", "xetex", "xelatex", "luatex", "lualatex",
                             "latexmk")},
}


def option_commands(name: str, args: Sequence[Word]) -> list[tuple[str, Word]]:
    """(option, command) for each option of the program `name` whose value is a command it runs."""
    options = COMMAND_OPTIONS.get(name, {})
    settings = COMMAND_SETTINGS.get(name, ())
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
            for piece in _settings(name, setting):
                key, command = (_SETTING_NAME.split(piece.value.strip(), 1) + [""])[:2]  # Name=VALUE, Name VALUE
                if key.rstrip(":").lower() in settings:  # apt: `APT::Update::Pre-Invoke::=CMD`
                    found.append((f"-o {key}", _part(piece, command.strip())))
    return found


def shell_escape(name: str, args: Sequence[Word]) -> str | None:
    """The option that lets what the program reads run shell commands (`pic -U`, `pdflatex --shell-escape`)."""
    return next((w.value for w in args if w.value in SHELL_ESCAPES.get(name, ())), None)


def expected(name: str, option: str, command: str) -> bool:
    """Whether the command is the plain program the option exists for (`tar -I zstd`, `rsync -e 'ssh -p 22'`)."""
    program = os.path.basename(command.split(" ", 1)[0]) if command.strip() else ""
    return program in COMMAND_OPTIONS.get(name, {}).get(option, frozenset())


def _settings(name: str, setting: Word | None) -> list[Word]:
    """sshfs takes several settings in one -o, comma-separated; ssh takes one."""
    if setting is None:
        return []
    if name != "sshfs":
        return [setting]
    return [_part(setting, piece) for piece in setting.value.split(",")]


def _part(word: Word, value: str) -> Word:
    """A piece of a word (the value after `=`), as known as the word is."""
    return Word(value, word.literal, False, word.source)
