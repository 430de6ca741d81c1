"""Attacks on this session's changes, by its second reader (each a real problem found, or a check that it holds).

Every destructive line runs inside a real jail, behind `guarded` (the script refuses to run unless its user,
mount and pid namespaces differ from the host's); host-side steps touch only the test's own tmp_path.
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
from conftest import JUDGE_WORKSPACE, SEMANTICS, Jail, guarded, judged

from interposer.destinations import unlisted
from jail.policy.hostpatterns import allow_fix, host_name
from jail.policy.profile import Network

both = pytest.mark.parametrize("semantics", sorted(SEMANTICS))



# -- a function that runs its arguments, after they were moved -----------------------------------------------
# The walker follows `f() { "$@"; }` into each call with the call's arguments, and forgets them after a
# plain `shift` or `set -- ...`. But bash runs those builtins the same behind `command`, `builtin` or the
# `time` keyword (checked: `f() { command shift; echo "$@"; }; f a b c` prints "b c"), and the walker did
# not see them there: it judged `"$@"` as the call's arguments before the shift (`true rm -rf ~`: allowed)
# while bash runs what is after it (`rm -rf ~`). Fixed in parse._moves_arguments.

MOVED = [
    'f() { command shift; "$@"; }; f true rm -rf ~',
    'f() { builtin shift; "$@"; }; f true rm -rf ~',
    'f() { time shift; "$@"; }; f true rm -rf ~',
    'f() { command -- shift; "$@"; }; f true rm -rf ~',
    'f() { command command shift; "$@"; }; f true rm -rf ~',
    'f() { command set -- rm -rf ~; "$@"; }; f true',
    'f() { time -p set -- rm -rf ~; "$@"; }; f true',
]


@both
@pytest.mark.parametrize("line", MOVED)
def test_shift_behind_a_builtin_leaves_the_arguments_unknown(semantics: str, line: str) -> None:
    assert judged(line, semantics).decision in ("deny", "ask"), line


def keeps(tmp_path: Path, line: str) -> None:
    """`line` run by bash in a real jail with the interposer (behind the namespace check): ./keep survives."""
    jail = Jail(tmp_path)
    (jail.workspace / "keep").write_text("x")
    result = jail.run("/bin/bash", "-c", guarded(line), interposer=True)
    assert (jail.workspace / "keep").exists(), (result.returncode, result.stderr)


@pytest.mark.jail
def test_shift_behind_command_deletes_nothing_in_a_real_jail(tmp_path: Path) -> None:
    keeps(tmp_path, 'f() { command shift; "$@"; }; f true rm -rf ./keep /etc')


# -- a function that runs its arguments unquoted, with IFS changed ---------------------------------------------
# `$@` unquoted in a body is each argument split at blanks, the walker says ("as with the default IFS"); but
# an `IFS=x` before it (in the body, at the top of the line, or as the call's prefix) makes bash split at x:
# `f "rmx-rfx/etc"` runs rm -rf /etc (checked: `f() { IFS=x; $@; }; f "echoxHIT"` prints HIT) while the walker
# judged one program named "rmx-rfx/etc" (allowed: no rule names it). Fixed in parse._Walker._words (an IFS
# assigned on the line: arguments holding its characters are unknown) and at a call with an IFS= prefix.

SPLIT = [
    'f() { IFS=x; $@; }; f "rmx-rfx/etc"',
    'f() { local IFS=x; $@; }; f "rmx-rfx/etc"',
    'IFS=x; f() { $@; }; f "rmx-rfx/etc"',
    'f() { $@; }; IFS=x f "rmx-rfx/etc"',
    'f() { $*; }; IFS=x; f "rmx-rfx/etc"',
    'f() { "$@"; }; IFS=x f rm -rf /etc',
]


@both
@pytest.mark.parametrize("line", SPLIT)
def test_an_unquoted_argument_split_at_a_changed_ifs_is_not_judged_as_one_word(semantics: str, line: str) -> None:
    assert judged(line, semantics).decision in ("deny", "ask"), line


@both
@pytest.mark.parametrize("line", ['f() { IFS=x; $@; }; f git status', 'f() { IFS=; $@; }; f "rm -rf /etc"'])
def test_an_ifs_that_cannot_split_the_arguments_changes_nothing(semantics: str, line: str) -> None:
    assert judged(line, semantics).decision == "allow", line


@pytest.mark.jail
def test_an_ifs_split_deletes_nothing_in_a_real_jail(tmp_path: Path) -> None:
    keeps(tmp_path, 'f() { IFS=x; $@; }; f "rmx-rfx./keepx/etc"')


# -- a known variable expanded unquoted: field splitting ------------------------------------------------------
# Not this session's change (so at 8bdf52a too), found on the way: words.Expander gave `$X` with a known value
# as one word, but unquoted bash splits it at blanks. `X="rm -rf /etc"; $X` was judged as one program named
# "rm -rf /etc" (no rule: allowed) and `X="-rf /etc"; rm $X` as rm of a file named "-rf /etc" in the workspace.
# Fixed in words.Expander._split; an IFS assigned on the line leaves such a value unknown (asked).
UNSPLIT = [
    'X="rm -rf /etc"; $X',
    'X="rm -rf /etc"; ${X}',
    'X="-rf /etc"; rm $X',
    'X="./a /etc"; rm -rf $X',
    'IFS=x; X="rmx-rfx/etc"; $X',
    'X="rmx-rfx/etc"; IFS=x; $X',
    'IFS=x; X="rmx-rfx/etc"; echo $X | sh',
    'IFS=x; X=rm; $X -rf /etc',
    'IFS=x; X=; $X rm -rf /etc',
    'X=; $X rm -rf /etc',
    # an IFS given a value the walk does not know is not the default either
    'read IFS <<< x; X=rmx-rfx/etc; $X',
    'IFS=$(printf x); X=rmx-rfx/etc; $X',
    'printf -v IFS x; X=rmx-rfx/etc; $X',
    'for IFS in x; do X=rmx-rfx/etc; $X; done',
    'f() { IFS=x; }; f; X=rmx-rfx/etc; $X',
    'IFS=x; IFS=$(printf x); X=rmx-rfx/etc; $X',
    'f() { $@; }; read IFS <<< x; f rmx-rfx/etc',
]


@both
@pytest.mark.parametrize("line", UNSPLIT)
def test_a_known_variable_expanded_unquoted_is_split_as_bash_splits_it(semantics: str, line: str) -> None:
    assert judged(line, semantics).decision in ("deny", "ask"), line


@both
@pytest.mark.parametrize("line", ['X="git status"; $X', 'X="-la ."; ls $X', 'X=""; $X git status',
                                  'while IFS= read -r l; do echo "$l"; done < f.txt',
                                  'X="rm -rf /etc"; "$X"', 'IFS=; X="rm -rf /etc"; $X'])
def test_a_split_value_is_judged_as_what_bash_runs(semantics: str, line: str) -> None:
    """The allowed twins: what bash runs there harms nothing (quoted, or with
    IFS empty, the value is one program's name, which does not exist)."""
    assert judged(line, semantics).decision == "allow", line


@pytest.mark.jail
def test_an_unquoted_variable_deletes_nothing_in_a_real_jail(tmp_path: Path) -> None:
    keeps(tmp_path, 'X="rm -rf ./keep /etc"; $X')


# -- the model forward's filter, under a profile whose forward_paths hold a wildcard (gemini) -----------------
# Each request is sent raw from inside the jail; the host's server records every request that reached it.
# Only the two allowed ones may: the rest are refused by the filter (400 or 403) and never reach the server.

RAW = """\
import socket, sys
port = int(sys.argv[1])
for raw in sys.argv[2:]:
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(raw.encode("latin-1").decode("unicode_escape").encode("latin-1"))
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    print(b" ".join(line.split(b" ")[1][:3] for line in data.split(b"\\r\\n") if line.startswith(b"HTTP/")).decode())
    s.close()
"""

ALLOWED = r"POST /v1beta/models/g:generateContent HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
TRICKS = [
    r"POST /v1beta/models/x/../../../api/delete HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    r"POST /v1beta/models/%2e%2e/%2e%2e/api/delete HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    r"POST //v1beta/models/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    r"POST /v1beta/models//api/delete HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    r"POST http://127.0.0.1/api/delete HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    r"POST /api/delete  HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    r"POST /v1beta/models/x\tHTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    r"POST /v1beta/models/x/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    r"post /v1beta/models/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    r"DELETE /v1beta/models/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    r"GET /v1beta/models/x HTTP/1.1\r\n\r\n",
    r"POST /v1beta/models/x\\..\\..\\api HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    r"POST /v1beta/models/x#/../../api HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    r"POST /v1beta/models/x HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    r"POST /v1beta/models/x HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    r"POST /v1beta/models/x HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\n",
    r"POST /v1beta/models/x HTTP/1.1\r\nContent-Length : 0\r\n\r\n",
    r"POST /v1beta/models/x HTTP/1.1\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    r"POST /v1beta/models/x HTTP/2.0\r\nContent-Length: 0\r\n\r\n",
]
# An allowed request, then a refused one pipelined after it, and a refused one hidden as the first's body
# by a Content-Length the filter reads as 0.
PIPELINED = [ALLOWED + r"DELETE /api/delete HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
             r"POST /v1beta/models/y HTTP/1.0\r\nContent-Length: 0\r\n\r\nPOST /v1/files HTTP/1.1\r\n\r\n"]


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def _answer(self) -> None:
        type(self).seen.append((self.command, self.path))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_DELETE = do_post = _answer  # noqa: N815 - the standard library's names

    def log_message(self, *_args: object) -> None:
        pass


@pytest.mark.jail
def test_path_tricks_reach_nothing_the_profile_does_not_name(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.daemon_threads = True
    _Recorder.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        jail = Jail(tmp_path)
        (jail.workspace / "raw.py").write_text(RAW)
        agent = jail.workspace / "gemini"  # picks the gemini profile: forward_paths ["POST /v1beta/models/*"]
        agent.write_text("#!/bin/sh\n" + guarded('exec /usr/bin/python3 raw.py "$@"\n'))
        agent.chmod(0o755)
        result = jail.run("./gemini", str(port), ALLOWED, *TRICKS, *PIPELINED,
                          options=("--forward", f"127.0.0.1:{port}"))
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    answers = result.stdout.splitlines()
    assert answers[0] == "200", answers  # the control: the profile's own path passes
    for trick, answer in zip(TRICKS, answers[1:], strict=False):
        assert answer in ("400", "403"), (trick, answer)
    # the first pipelined: refused in turn; the second (HTTP/1.0): its connection ends with the first answer
    assert answers[1 + len(TRICKS):] == ["200 403", "200"], answers
    assert sorted(set(_Recorder.seen)) == [("POST", "/v1beta/models/g:generateContent"),
                                           ("POST", "/v1beta/models/y")], _Recorder.seen


# -- a host off the allow-list, asked about: numbers that are addresses --------------------------------------
# hostpatterns.host_name took `127.1`, `0x7f.1`, `2130706433` (and 134744072, which is 8.8.8.8) for DNS names:
# a person would have been asked "let this session reach 134744072:443?", an address in disguise, which curl
# and getaddrinfo read as an IPv4 address. Such a host is no name to ask about or to name in a fix now.

SHORTHAND = ["2130706433", "134744072", "0x7f.1", "127.1", "0177.0.0.1", "a.b.c.123", "example.0x1"]


@pytest.mark.parametrize("host", SHORTHAND)
def test_an_ipv4_shorthand_is_no_host_name(host: str) -> None:
    assert host_name(host) is None
    assert allow_fix(host, 443).startswith("no fix:")


@pytest.mark.parametrize("host", ["8.8.8.8", "123.com", "x123.com", "0xdead.com", "example.com"])
def test_names_and_dotted_addresses_stay_host_names(host: str) -> None:
    assert host_name(host) == host


def test_a_line_to_an_ipv4_shorthand_is_not_asked_about() -> None:
    network = Network(mode="proxy")
    assert unlisted("curl https://134744072/", JUDGE_WORKSPACE, {}, network) is None
    assert unlisted("curl https://example.com/", JUDGE_WORKSPACE, {}, network) == [("example.com", 443)]


# -- hard links into the workspace (the timeline follows a new link's other names since dab4627) ---------------
# The timeline looks a newly linked file's inode up among the names it recorded; those are all in the workspace
# only if no name from outside can be linked in. From inside a real jail, every outside file refuses (EXDEV:
# the workspace is a mount of its own), so the timeline never reads or restores through a name outside it.

@pytest.mark.jail
def test_no_file_outside_the_workspace_can_be_hard_linked_into_it(tmp_path: Path) -> None:
    jail = Jail(tmp_path)
    script = ('for t in /etc/hostname /tmp/x "$HOME/x" /usr/bin/env /proc/self/status; do\n'
              '  [ -e "$t" ] || echo y > "$t" 2>/dev/null\n'
              '  if ln "$t" ./l 2>/dev/null; then echo "LINKED $t"; rm -f ./l; fi\n'
              'done; ln ./a ./b && echo "linked inside"')
    (jail.workspace / "a").write_text("x")
    result = jail.sh(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["linked inside"], result.stdout  # the control: a link inside works
