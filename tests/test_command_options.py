"""Commands a program runs through one of its options are judged, and asked about (pure: nothing runs).

`tcpdump -z CMD`, `restic --password-command CMD`, `tar --to-command CMD`, `ssh -o ProxyCommand=CMD`: the
program runs CMD later with arguments of its own (interposer/commandoptions.py).
"""

import pytest
from conftest import judge_policy

from interposer.commandoptions import option_commands
from interposer.judge import Policy, decide
from interposer.words import Word

WORKSPACE = "/home/user/project"
HOME = "/home/user"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return judge_policy(WORKSPACE, HOME)


def words(*values: str) -> list[Word]:
    return [Word(v, True, False, v) for v in values]


@pytest.mark.parametrize(("name", "args", "found"), [
    ("tcpdump", ("-w", "x.pcap", "-G", "1", "-z", "/usr/local/bin/hook"), [("-z", "/usr/local/bin/hook")]),
    ("tcpdump", ("-z/tmp/x",), [("-z", "/tmp/x")]),
    ("restic", ("--password-command=pass show restic", "backup"), [("--password-command", "pass show restic")]),
    ("tar", ("-xf", "a.tar", "--to-command", "sh -c x"), [("--to-command", "sh -c x")]),
    ("ssh", ("-o", "ProxyCommand nc %h %p", "host"), [("-o ProxyCommand", "nc %h %p")]),
    ("ssh", ("-oProxyCommand=/tmp/x", "host"), [("-o ProxyCommand", "/tmp/x")]),
    ("sshfs", ("-o", "reconnect,ssh_command=/tmp/x", "h:", "mnt"), [("-o ssh_command", "/tmp/x")]),
    ("apt-get", ("update", "-o", "APT::Update::Pre-Invoke::=/tmp/x"), [("-o APT::Update::Pre-Invoke::", "/tmp/x")]),
    ("ssh", ("-o", "ServerAliveInterval=10", "host"), []),
    ("tar", ("-czf", "out.tgz", "--", "-I"), []),  # after --, an operand
    ("tcpdump", ("-i", "lo"), []),
])
def test_the_options_that_run_a_command_are_found(name: str, args: tuple[str, ...],
                                                   found: list[tuple[str, str]]) -> None:
    assert [(option, value.value) for option, value in option_commands(name, words(*args))] == found


@pytest.mark.parametrize("line", [
    "tcpdump -ln -i lo -w x.pcap -W 1 -G 1 -z /usr/local/bin/service-check",
    "restic --password-command='/usr/local/bin/service-check' backup",
    "dnsmasq --conf-script='/usr/local/bin/service-check 1>&2'",
    "zic -d . -y /usr/local/bin/service-check zones.txt",
    "tar -xf data.tar --to-command=./import.sh",
    "tar -cf x.tar -I ./my-compressor src",
    "rsync -e /tmp/x -a src/ dst/",
    "ssh -oProxyCommand=/tmp/x localhost",
    "sshfs -o ssh_command=/tmp/x localhost: mnt",
    "wget --use-askpass=/tmp/x https://pypi.org/simple/",
    "aria2c --on-download-complete=/tmp/hook.sh https://pypi.org/x",
    "apt-get update -o APT::Update::Pre-Invoke::=/usr/local/bin/x",
    'tar -xf data.tar --to-command="$CMD"',  # not known before it runs
    "CRASHPAGER=/usr/local/bin/service-check crash -h",
    # modes in which the text a program reads runs shell commands
    "pic -U diagram.pic", "dvips -R0 texput.dvi", "pdflatex --shell-escape main.tex", "gs -dNOSAFER x.ps",
])
def test_a_command_run_through_an_option_is_asked_about(policy: Policy, line: str) -> None:
    decision = decide(line, WORKSPACE, policy)
    assert decision.decision == "ask" and decision.opaque, (line, decision.reason)


def test_the_command_itself_is_judged(policy: Policy) -> None:
    decision = decide("restic --password-command='rm -rf ~' backup", WORKSPACE, policy)
    assert decision.decision == "deny" and decision.rule == "delete-home", decision.reason
    assert any(c["via"] == ["restic --password-command"] for c in decision.commands if c["argv"][0] == "rm")


@pytest.mark.parametrize("line", [
    "tar -I zstd -cf out.tar.zst src",
    "tar --use-compress-program='zstd -19 -T0' -cf out.tar.zst src",
    "tar -I pigz -xf deps.tgz",
    "rsync -e 'ssh -p 2222' -a src/ dst/",
    "man -P cat ls",
    "ssh -o ServerAliveInterval=10 localhost uptime",
    "tcpdump -i lo -c 10 -w capture.pcap",
    "pdflatex main.tex", "dvips texput.dvi",
])
def test_the_plain_program_an_option_exists_for_passes(policy: Policy, line: str) -> None:
    decision = decide(line, WORKSPACE, policy)
    assert decision.decision == "allow", (line, decision.reason)
