"""The dashboard, against a real `shelljail dashboard` and real jailed commands; in headless Chromium
(driven by Playwright with the system's /usr/bin/chromium) for what a person sees and clicks."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ASKS, SHELLJAIL, Jail, sleepers

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("SHELLJAIL_TEST_ARTIFACTS", Path(__file__).resolve().parent / "artifacts"))


@dataclass
class Dashboard:
    url: str  # with the token
    port: int
    token: str
    process: subprocess.Popen

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: str | None = None) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request(method, path, body=body, headers={"Host": f"127.0.0.1:{self.port}", **(headers or {})})
        response = connection.getresponse()
        result = response.status, dict(response.getheaders()), response.read().decode()
        connection.close()
        return result


@pytest.fixture
def dashboard(jail: Jail) -> Iterator[Dashboard]:
    process = subprocess.Popen([*SHELLJAIL, "dashboard", "--port", "0"], stdout=subprocess.PIPE, text=True,
                               env=jail.env(), stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", line)
    assert found, line
    yield Dashboard(found.group(0), int(found.group(1)), found.group(2), process)
    process.terminate()
    process.wait(timeout=10)


def _start(jail: Jail, script: str, *options: str) -> subprocess.Popen:
    """A jailed shell command in the background, with the interposer on; asks go to a person."""
    return subprocess.Popen([*SHELLJAIL, "run", "-w", str(jail.workspace), "--interposer", "on", *options, "--",
                             "/bin/sh", "-c", script], env=jail.env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _session(jail: Jail, deadline: float = 20) -> dict:
    """The newest session, once it has recorded its holder (the jail is up)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        listed = jail.cli("sessions", "--json").stdout.splitlines()
        if listed:
            state = json.loads(listed[0])
            if state.get("holder_pid"):
                return state
        time.sleep(0.1)
    raise AssertionError("no session started")


def _events(jail: Jail, session: str) -> list[dict]:
    return [json.loads(line) for line in jail.cli("log", session, "--json").stdout.splitlines()]


# ---- who may use it (no browser needed) -------------------------------------------------------


def test_requests_without_the_token_or_from_elsewhere_are_refused(dashboard: Dashboard) -> None:
    status, _, body = dashboard.request("GET", "/")
    assert status == 403 and "no token" in body
    assert dashboard.request("GET", "/?token=wrong")[0] == 403
    status, headers, _ = dashboard.request("GET", f"/?token={dashboard.token}")
    assert status == 303 and "HttpOnly; SameSite=Strict" in headers["Set-Cookie"]
    cookie = {"Cookie": f"shelljail_dashboard_{dashboard.port}={dashboard.token}"}
    status, headers, body = dashboard.request("GET", "/", cookie)
    assert status == 200 and "Sessions" in body and "script-src 'self'" in headers["Content-Security-Policy"]
    # DNS rebinding: a page of evil.example resolved to 127.0.0.1 sends its own Host.
    status, _, body = dashboard.request("GET", "/", {**cookie, "Host": f"evil.example:{dashboard.port}"})
    assert status == 403 and "Host" in body
    # Another page in the browser posting here: its Origin, or none.
    for origin in ({"Origin": "http://evil.example"}, {}):
        status, _, body = dashboard.request("POST", "/stop-all", {**cookie, **origin})
        assert status == 403 and "Origin" in body
    assert dashboard.request("POST", "/stop-all", {"Origin": dashboard.base})[0] == 403  # no token
    status, _, body = dashboard.request("POST", "/stop-all", {**cookie, "Origin": dashboard.base})
    assert status == 200 and json.loads(body)["ok"]


def test_a_forward_to_the_dashboards_port_is_refused(jail: Jail, dashboard: Dashboard) -> None:
    profile = jail.root / "forward.toml"
    profile.write_text(f'extends = "coding-agent"\n[network]\nforward = ["127.0.0.1:{dashboard.port}"]\n')
    result = jail.cli("run", "-p", str(profile), "-w", str(jail.workspace), "--", "/bin/true")
    assert result.returncode == 125
    assert f"network.forward 127.0.0.1:{dashboard.port} is the port of the shelljail dashboard" in result.stderr


# ---- in a real browser ---------------------------------------------------------------------------


@pytest.fixture
def page(dashboard: Dashboard) -> Iterator:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"the browser is missing: {CHROMIUM} (Debian's chromium, which make setup installs)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the browser driver is missing: Python's playwright (make setup installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.on("dialog", lambda dialog: dialog.accept())  # the stop button's confirmation: yes
        page.goto(dashboard.url)
        yield page
        browser.close()


def _screenshot(page, name: str) -> None:  # noqa: ANN001
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def test_a_decision_appears_in_the_live_view_within_a_second(jail: Jail, dashboard: Dashboard, page) -> None:  # noqa: ANN001
    # An agent of sorts: a program (not a shell, whose child shells are not judged again) that runs one
    # shell command when the test says go.
    (jail.workspace / "agent.py").write_text(
        "import os, subprocess, time\n"
        "subprocess.run(['/bin/sh', '-c', 'echo first-decision'])\n"
        "while not os.path.exists('go'):\n    time.sleep(0.02)\n"
        "subprocess.run(['/bin/sh', '-c', 'echo second-decision'])\ntime.sleep(60)\n")
    run = subprocess.Popen([*SHELLJAIL, "run", "-w", str(jail.workspace), "--interposer", "on", "--",
                            "/usr/bin/python3", "agent.py"], env=jail.env(), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        session = _session(jail)["session"]
        page.goto(f"{dashboard.base}/session/{session}")
        page.locator("#live tbody tr", has_text="first-decision").wait_for(timeout=20000)  # the log so far
        (jail.workspace / "go").touch()
        deadline = time.monotonic() + 20
        while not any(e.get("command") == "echo second-decision" for e in _events(jail, session)):
            assert time.monotonic() < deadline, "the decision never reached the audit log"
            time.sleep(0.02)
        page.locator("#live tbody tr", has_text="second-decision").wait_for(timeout=1000)
        _screenshot(page, "session")
    finally:
        run.kill()
        run.wait()


def _asking(jail: Jail, page) -> tuple[subprocess.Popen, object]:  # noqa: ANN001
    """A jailed command that waits for a person (chmod -R on the workspace is an ask), and its request
    as the page shows it."""
    run = _start(jail, "chmod -R u+w . && echo ran > approved.txt", "--ask", "tty", "-p", ASKS)
    request = page.locator("li.approval", has_text="chmod -R u+w .")
    try:
        request.wait_for(timeout=20000)
    except BaseException:
        run.kill()
        run.wait()
        raise
    return run, request


def test_an_approval_clicked_in_the_page_lets_the_command_finish(jail: Jail, dashboard: Dashboard, page) -> None:  # noqa: ANN001
    run, request = _asking(jail, page)
    try:
        assert "changes the permissions or owner of everything" in request.inner_text()
        _screenshot(page, "approval")
        page.set_viewport_size({"width": 400, "height": 800})  # a narrow window
        _screenshot(page, "narrow")
        request.get_by_role("button", name="Approve once").click()
        assert run.wait(timeout=30) == 0, run.stderr.read() if run.stderr else ""
        assert (jail.workspace / "approved.txt").read_text() == "ran\n"
        session = _session(jail)["session"]
        [approval] = [e for e in _events(jail, session) if e["event"] == "approval"]
        assert approval["answer"] == "once" and "with the dashboard" in approval["by"]
    finally:
        run.kill()
        run.wait()


def test_a_denial_by_keyboard_refuses_the_command(jail: Jail, dashboard: Dashboard, page) -> None:  # noqa: ANN001
    run, request = _asking(jail, page)
    try:
        request.get_by_role("button", name="Deny").focus()  # no mouse: focus, then Enter
        page.keyboard.press("Enter")
        assert run.wait(timeout=30) == 126
        assert "shelljail: denied:" in (run.stderr.read() if run.stderr else "")
        assert not (jail.workspace / "approved.txt").exists()
        [approval] = [e for e in _events(jail, _session(jail)["session"]) if e["event"] == "approval"]
        assert approval["answer"] == "deny" and "with the dashboard" in approval["by"]
    finally:
        run.kill()
        run.wait()


def _sleeping(*seconds: str) -> list[int]:
    """Host pids of the test's own `sleep N` processes, wherever they run."""
    return [pid for duration in seconds for pid in sleepers(duration)]


def test_the_stop_button_kills_the_session(jail: Jail, dashboard: Dashboard, page) -> None:  # noqa: ANN001
    run = _start(jail, "sleep 3599 & (sleep 3598 &) ; sleep 3597")
    try:
        state = _session(jail)
        deadline = time.monotonic() + 20
        while len(_sleeping("3599", "3598", "3597")) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        page.reload()
        row = page.locator(f"#row-{state['session']}")
        assert re.search(r"\d+ MB", row.inner_text()), row.inner_text()  # what the jail's processes use now
        _screenshot(page, "sessions")
        row.get_by_role("button", name="Stop").click()
        assert run.wait(timeout=20) == 137
        assert _sleeping("3599", "3598", "3597") == []  # daemonised ones too
        assert not os.path.exists(f"/proc/{state['holder_pid']}")
        [stop] = [e for e in _events(jail, state["session"]) if e["event"] == "stop"]
        assert stop["by"].startswith("the dashboard by ")
        row.locator(".state.stopped").wait_for(timeout=5000)
        assert re.search(r"\d+\.\d s", row.inner_text()), row.inner_text()  # the CPU time its exit recorded
    finally:
        run.kill()
        run.wait()


def test_stop_all_kills_every_running_session(jail: Jail, dashboard: Dashboard, page) -> None:  # noqa: ANN001
    runs = [_start(jail, f"sleep {3590 + i}") for i in range(2)]
    try:
        deadline = time.monotonic() + 20
        while sum(1 for line in jail.cli("sessions", "--json").stdout.splitlines()
                  if json.loads(line).get("holder_pid") and json.loads(line)["state"] == "running") < 2:
            assert time.monotonic() < deadline, "the jails did not start"
            time.sleep(0.05)
        page.get_by_role("button", name="Stop all running sessions").click()
        assert [run.wait(timeout=20) for run in runs] == [137, 137]
        assert _sleeping("3590", "3591") == []
        stopped = [json.loads(line) for line in jail.cli("sessions", "--json").stdout.splitlines()]
        assert [s["state"] for s in stopped[:2]] == ["stopped", "stopped"]
    finally:
        for run in runs:
            run.kill()
            run.wait()


def _review(page):  # noqa: ANN001, ANN202
    """The overlay's review section (an overlay session's timeline lists the same files and diffs)."""
    return page.get_by_role("region", name="Overlay: changes to review")


def test_an_overlay_is_reviewed_and_committed_from_the_page(jail: Jail, dashboard: Dashboard, page) -> None:  # noqa: ANN001
    (jail.workspace / "notes.txt").write_text("old line\n")
    run = _start(jail, "echo 'new line' > notes.txt", "--workspace-mode", "overlay")
    assert run.wait(timeout=60) == 0, run.stderr.read() if run.stderr else ""
    session = _session(jail)["session"]
    assert (jail.workspace / "notes.txt").read_text() == "old line\n"  # not yet
    page.goto(f"{dashboard.base}/session/{session}")
    assert "-old line" in _review(page).locator("pre.diff").inner_text()
    _screenshot(page, "overlay")
    page.get_by_role("button", name="Commit to the workspace").click()
    page.locator("#status", has_text="committed 1 change").wait_for(timeout=10000)
    assert (jail.workspace / "notes.txt").read_text() == "new line\n"
    assert any(e["event"] == "overlay-commit" and e.get("via") == "the dashboard" for e in _events(jail, session))


def test_an_overlay_is_discarded_from_the_page(jail: Jail, dashboard: Dashboard, page) -> None:  # noqa: ANN001
    run = _start(jail, "echo draft > draft.txt", "--workspace-mode", "overlay")
    assert run.wait(timeout=60) == 0
    session = _session(jail)["session"]
    page.goto(f"{dashboard.base}/session/{session}")
    assert "A draft.txt" in _review(page).locator("ul.changes").inner_text()
    page.get_by_role("button", name="Discard").click()
    page.locator("#status", has_text="discarded").wait_for(timeout=10000)
    assert not (jail.workspace / "draft.txt").exists()
    assert jail.cli("diff", session).returncode != 0  # nothing left to review


# ---- the jail's text on the page -----------------------------------------------------------------

HOSTILE = "\u202e\x1b[2J\x1b[8m\u200b\r"  # a bidi override, ESC sequences, a zero-width space, CR
RAW = ("\u202e", "\x1b", "\u200b", "\r")


def _no_raw(text: str) -> None:
    assert not [c for c in RAW if c in text], f"raw characters on the page: {text!r}"


def test_the_jails_text_next_to_approve_is_shown_escaped(jail: Jail, dashboard: Dashboard, page) -> None:  # noqa: ANN001
    """The command waiting for Approve names a file whose name reverses the line (U+202E) and holds ESC
    sequences and invisible characters: the page shows their escapes, beside the button and in the live view."""
    run = _start(jail, f"chmod -R u+w . 'gpj{HOSTILE}.sh' && echo ran > approved.txt", "--ask", "tty", "-p", ASKS)
    try:
        request = page.locator("li.approval", has_text="chmod -R u+w .")
        request.wait_for(timeout=20000)
        shown = request.inner_text()
        assert "gpj\\u202e\\x1b[2J\\x1b[8m\\u200b\\x0d.sh" in shown, shown
        _no_raw(shown)
        _no_raw(page.locator("body").inner_text())
        session = _session(jail)["session"]
        page.goto(f"{dashboard.base}/session/{session}")
        page.locator("#live tbody tr", has_text="chmod -R u+w .").first.wait_for(timeout=20000)
        live = page.locator("#live").inner_text()
        assert "\\u202e" in live, live
        _no_raw(live)
        _no_raw(page.locator("body").inner_text())
        page.locator("li.approval").get_by_role("button", name="Deny").click()
        assert run.wait(timeout=30) == 126
        page.locator("#status", has_text="deny:").wait_for(timeout=10000)
        status = page.locator("#status").inner_text()
        assert "\\u202e" in status
        _no_raw(status)
    finally:
        run.kill()
        run.wait()


def test_an_overlays_file_names_and_diffs_are_shown_escaped(jail: Jail, dashboard: Dashboard, page) -> None:  # noqa: ANN001
    run = _start(jail, f"printf 'line{HOSTILE}\\n' > 'name{HOSTILE}'", "--workspace-mode", "overlay")
    assert run.wait(timeout=60) == 0, run.stderr.read() if run.stderr else ""
    session = _session(jail)["session"]
    page.goto(f"{dashboard.base}/session/{session}")
    changes = _review(page).locator("ul.changes").inner_text()
    assert "A name\\u202e\\x1b[2J\\x1b[8m\\u200b\\x0d" in changes, changes
    diff = _review(page).locator("pre.diff").inner_text()
    assert "+line\\u202e\\x1b[2J" in diff, diff
    _no_raw(page.locator("body").inner_text())


def test_a_command_of_the_timeline_is_shown_with_its_diff_and_undone_from_the_page(jail: Jail, dashboard: Dashboard,
                                                                                     page) -> None:  # noqa: ANN001
    (jail.workspace / "notes.txt").write_text("old line\n")
    run = _start(jail, f"echo 'new line{HOSTILE}' > notes.txt", "--ask", "deny")
    assert run.wait(timeout=60) == 0, run.stderr.read() if run.stderr else ""
    session = _session(jail)["session"]
    page.goto(f"{dashboard.base}/session/{session}")
    timeline = page.locator("ol.timeline")
    timeline.locator("summary").first.click()
    text = timeline.inner_text()
    assert "M notes.txt" in text and "-old line" in text and "+new line" in text, text
    _no_raw(page.content())
    page.get_by_role("button", name="Undo to before this").first.click()
    page.locator("#status", has_text="undone: restored 1 path").wait_for(timeout=10000)
    assert (jail.workspace / "notes.txt").read_text() == "old line\n"
