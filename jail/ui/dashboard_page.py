"""The dashboard's HTML, rendered on the server (every value escaped), and its small script and style.

Every value is escaped twice over: first by `jail.display.shown` (controls, bidi overrides, zero-width
and other invisible characters made visible as \x1b, \u202e: the page must not show a command other
than the one that will run), then for HTML. The live events reach the script already passed through
`shown` by the server (dashboard.visible), and the script puts them in the page as text only.

No build step and nothing from a CDN: the machine may be offline. The script only refreshes the
server's fragments, appends the live events (as text, never as markup) and posts the buttons' actions.
"""

from __future__ import annotations

import html
from typing import Any

from jail.display import shown, shown_diff

DECISIONS = ("allow", "deny", "ask", "rewrite")


def _e(value: Any) -> str:
    """One value on one line: made visible, then HTML-escaped."""
    return html.escape(shown(value), quote=True)


def _lines(value: Any) -> str:
    """A preview or a diff in a <pre>: its newlines and tabs kept, every other control made visible."""
    return html.escape(shown_diff(value), quote=True)


def _page(title: str, body: str) -> str:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><link rel=\"stylesheet\" href=\"/app.css\">"
            "<script src=\"/app.js\" defer></script></head><body>"
            "<header><a class=\"home\" href=\"/\">shelljail</a> <span>dashboard</span></header>"
            f"<main>{body}</main><p id=\"status\" role=\"status\" aria-live=\"polite\"></p></body></html>")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _memory(size: int | None) -> str:
    return "" if not size else f"{size / (1 << 20):.0f} MB"


def _cpu(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.1f} s"


def _stop_button(session: str) -> str:
    return (f"<button class=\"stop\" data-action=\"/stop/{_e(session)}\" "
            f"data-confirm=\"Stop session {_e(session)}? Every process in its jail is killed at once.\">"
            f"Stop</button>")


def sessions_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>No sessions yet: <code>shelljail run -- CMD</code> starts one.</p>"
    head = "".join(f"<th scope=\"col\">{h}</th>" for h in (
        "session", "profile", "workspace", "state", "age", "CPU", "memory", *DECISIONS, ""))
    body = []
    for row in rows:
        session = str(row.get("session"))
        state = str(row.get("state", "?"))
        counts = row.get("counts") or {}
        cells = [f"<td><a href=\"/session/{_e(session)}\">{_e(session)}</a></td>",
                 f"<td>{_e(row.get('profile', ''))}</td>",
                 f"<td class=\"path\">{_e(row.get('workspace', ''))}</td>",
                 f"<td><span class=\"state {_e(state)}\">{_e(state)}</span></td>",
                 f"<td>{_age(row.get('age'))}</td>", f"<td>{_cpu(row.get('cpu'))}</td>",
                 f"<td>{_memory(row.get('memory'))}</td>",
                 *(f"<td class=\"count {d}{' some' if counts.get(d) else ''}\">{int(counts.get(d, 0))}</td>"
                   for d in DECISIONS),
                 f"<td>{_stop_button(session) if state == 'running' else ''}</td>"]
        body.append(f"<tr id=\"row-{_e(session)}\" data-session=\"{_e(session)}\">{''.join(cells)}</tr>")
    return (f"<div class=\"scroll\"><table class=\"sessions\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def approvals_list(requests: list[dict[str, Any]]) -> str:
    if not requests:
        return "<p class=\"quiet\">No command is waiting for a person.</p>"
    items = []
    for request in requests:
        rid = _e(request.get("id"))
        preview = request.get("preview")
        items.append(
            f"<li class=\"approval\" id=\"request-{rid}\">"
            f"<p><code class=\"command\">{_e(request.get('command'))}</code></p>"
            f"<p>{_e(request.get('reason'))} <span class=\"quiet\">(rule {_e(request.get('rule'))}; "
            f"session <a href=\"/session/{_e(request.get('session'))}\">{_e(request.get('session'))}</a>; "
            f"id {rid})</span></p>"
            + (f"<pre class=\"diff\">{_lines(preview)}</pre>" if preview else "")
            + f"<p class=\"buttons\"><button class=\"approve\" data-action=\"/approve/{rid}\" data-scope=\"once\">"
              f"Approve once</button> <button class=\"approve\" data-action=\"/approve/{rid}\" "
              f"data-scope=\"always\">Always, this session</button> <button class=\"deny\" "
              f"data-action=\"/deny/{rid}\">Deny</button></p></li>")
    return f"<ul class=\"approvals\">{''.join(items)}</ul>"


def index(rows: list[dict[str, Any]], requests: list[dict[str, Any]]) -> str:
    stop_all = ("<button class=\"stop big\" data-action=\"/stop-all\" data-confirm=\"Stop every running session? "
                "All their processes are killed at once.\">Stop all running sessions</button>")
    body = (f"<section aria-labelledby=\"h-approvals\"><h2 id=\"h-approvals\">Waiting for you</h2>"
            f"<div id=\"approvals\" data-part=\"/part/approvals\">{approvals_list(requests)}</div></section>"
            f"<section aria-labelledby=\"h-sessions\"><h2 id=\"h-sessions\">Sessions</h2>{stop_all}"
            f"<div id=\"sessions\" data-part=\"/part/sessions\">{sessions_table(rows)}</div></section>")
    return _page("shelljail dashboard", body)


def _diff(text: str) -> str:
    return f"<pre class=\"diff\">{_lines(text)}</pre>" if text else ""


def timeline_section(session: str, state: str, rows: list[dict[str, Any]] | None) -> str:
    """The session's commands, what each changed (with its diffs), and an undo button for each once it ended."""
    if not rows:
        return ""
    items = []
    for row in rows:
        change = row.get("changes")
        what = ("running" if state == "running" else "not recorded") if change is None else (
            f"+{len(change['added'])} ~{len(change['changed'])} -{len(change['deleted'])}")
        button = "" if state == "running" else (
            f"<button class=\"deny\" data-action=\"/undo/{_e(session)}/{_e(row['point'])}\" "
            f"data-confirm=\"Put the workspace back as it was before command {_e(row['point'])}? What is there now "
            f"is kept as a point of its own.\">Undo to before this</button>")
        diffs = "".join(f"<li><code>{_e(line)}</code>{_diff(text)}</li>" for line, text in row.get("diffs") or [])
        items.append(f"<li><details><summary><code>{_e(row['point'])}</code> <code>{_e(row.get('command'))}</code> "
                     f"{_e(what)}</summary><ul class=\"changes\">{diffs}</ul></details>{button}</li>")
    return (f"<section aria-labelledby=\"h-timeline\"><h2 id=\"h-timeline\">Timeline</h2>"
            f"<ol class=\"timeline\">{''.join(items)}</ol></section>")


def session_page(row: dict[str, Any], requests: list[dict[str, Any]], overlay: Any,
                 timeline: list[dict[str, Any]] | None = None) -> str:
    session = str(row.get("session"))
    state = str(row.get("state", "?"))
    facts = [("profile", row.get("profile", "")), ("workspace", row.get("workspace", "")),
             ("command", " ".join(str(a) for a in row.get("argv") or [])), ("started", row.get("started", "")),
             ("ended", row.get("ended", "")), ("exit status", row.get("exit_status", ""))]
    details = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts if v not in ("", None))
    review = ""
    if overlay is not None:
        _target, changes = overlay
        listing = "".join(f"<li><code>{_e(line)}</code></li>" for line, _ in changes) or "<li>no changes</li>"
        diffs = "".join(f"<pre class=\"diff\">{_lines(text)}</pre>" for _, text in changes if text)
        review = (f"<section aria-labelledby=\"h-overlay\"><h2 id=\"h-overlay\">Overlay: changes to review</h2>"
                  f"<ul class=\"changes\">{listing}</ul>{diffs}<p class=\"buttons\">"
                  f"<button class=\"approve\" data-action=\"/overlay/{_e(session)}/commit\" "
                  f"data-confirm=\"Apply these changes to {_e(row.get('workspace'))}?\">Commit to the workspace"
                  f"</button> <button class=\"deny\" data-action=\"/overlay/{_e(session)}/discard\" "
                  f"data-confirm=\"Throw these changes away?\">Discard</button></p></section>")
    body = (f"<h1>Session {_e(session)} <span class=\"state {_e(state)}\">{_e(state)}</span></h1>"
            f"{_stop_button(session) if state == 'running' else ''}<dl class=\"facts\">{details}</dl>"
            f"<section aria-labelledby=\"h-approvals\"><h2 id=\"h-approvals\">Waiting for you</h2>"
            f"<div id=\"approvals\" data-part=\"/part/approvals?session={_e(session)}\">"
            f"{approvals_list(requests)}</div></section>{review}{timeline_section(session, state, timeline)}"
            f"<section aria-labelledby=\"h-live\"><h2 id=\"h-live\">Live</h2><div class=\"scroll\">"
            f"<table class=\"live\" id=\"live\" data-session=\"{_e(session)}\"><thead><tr><th scope=\"col\">time"
            f"</th><th scope=\"col\">event</th><th scope=\"col\">what</th><th scope=\"col\">why</th></tr></thead>"
            f"<tbody></tbody></table></div></section>")
    return _page(f"shelljail session {session}", body)


STYLE = """
:root { --allow: #1b7f3b; --deny: #b3261e; --ask: #9a6700; --rewrite: #0b57d0; --quiet: #5f6368; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1f1f1f; background: #fafafa; }
header { background: #202124; color: #fff; padding: .6rem 1rem; }
header a.home { color: #fff; font-weight: 700; text-decoration: none; }
main { max-width: 72rem; margin: 0 auto; padding: .5rem 1rem 3rem; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
code, pre { font-family: ui-monospace, monospace; font-size: .9em; }
pre.diff { background: #f1f3f4; padding: .5rem; overflow-x: auto; max-height: 24rem; }
.scroll { overflow-x: auto; }
table.live td { white-space: normal; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e0e0e0; vertical-align: top; }
td.path { word-break: break-all; }
td { white-space: nowrap; } td.path { white-space: normal; }
td.count.deny.some { color: var(--deny); font-weight: 600; } td.count.ask.some { color: var(--ask); font-weight: 600; }
.state { padding: 0 .4rem; border-radius: .3rem; background: #e8eaed; }
.state.running { background: #e6f4ea; color: var(--allow); font-weight: 600; }
.state.stopped, .state.lost, .state.failed { background: #fce8e6; color: var(--deny); }
button { font: inherit; padding: .35rem .8rem; border-radius: .3rem; border: 1px solid #999; background: #fff;
  cursor: pointer; }
button:focus-visible, a:focus-visible { outline: 3px solid #0b57d0; outline-offset: 2px; }
button.stop { background: var(--deny); color: #fff; border-color: var(--deny); font-weight: 700; }
button.stop.big { font-size: 1.1rem; padding: .6rem 1.4rem; margin-bottom: .6rem; }
button.approve { border-color: var(--allow); color: var(--allow); }
button.deny { border-color: var(--deny); color: var(--deny); }
ul.approvals { list-style: none; padding: 0; }
li.approval { background: #fff8e1; border-left: 4px solid var(--ask); padding: .3rem .8rem; margin-bottom: .6rem; }
.quiet { color: var(--quiet); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.facts dd { margin: 0; word-break: break-all; }
tr.allow td:nth-child(2) { color: var(--allow); } tr.deny { background: #fce8e6; }
tr.ask { background: #fff8e1; } tr.rewrite { background: #e8f0fe; }
tr.stop, tr.limit { background: #f3e8fd; font-weight: 600; } tr.network td:nth-child(2) { color: #6a1b9a; }
#status { position: fixed; bottom: 0; left: 0; right: 0; margin: 0; padding: .4rem 1rem; background: #202124;
  color: #fff; }
#status:empty { display: none; }
@media (max-width: 40rem) { th, td { padding: .25rem; } body { font-size: 14px; } }
"""

SCRIPT = r"""
"use strict";
const say = (text) => { document.getElementById("status").textContent = text; };

async function post(action, scope) {
  const body = scope ? new URLSearchParams({scope}) : undefined;
  try {
    const response = await fetch(action, {method: "POST", body, credentials: "same-origin"});
    const answer = await response.json();
    say(answer.message);
  } catch (error) { say("the dashboard did not answer: " + error); }
  refresh();
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  post(button.dataset.action, button.dataset.scope);
});

async function refresh() {
  for (const part of document.querySelectorAll("[data-part]")) {
    try {
      const response = await fetch(part.dataset.part, {credentials: "same-origin"});
      if (!response.ok) continue;
      const text = await response.text();
      if (text === part.dataset.last) continue;
      const focused = document.activeElement && part.contains(document.activeElement)
        ? document.activeElement.dataset.action + "|" + (document.activeElement.dataset.scope || "") : null;
      part.innerHTML = text;  // the server's fragment, every value escaped there
      part.dataset.last = text;
      if (focused) {
        for (const b of part.querySelectorAll("button[data-action]")) {
          if (b.dataset.action + "|" + (b.dataset.scope || "") === focused) { b.focus(); break; }
        }
      }
    } catch (error) { /* the next refresh tries again */ }
  }
}

function describe(event) {
  const kind = event.event || "?";
  if (kind === "decision") {
    return [event.decision, event.command || (event.argv || []).join(" "),
            [event.rule, event.reason].filter(Boolean).join(": ")];
  }
  if (kind === "approval-request") return ["ask", event.command, event.reason];
  if (kind === "session-start") return ["start", (event.argv || []).join(" "), "profile " + event.profile];
  if (kind === "exit") return ["exit " + event.status, event.reason || "", ""];
  if (kind === "approval") return [event.answer, event.command, event.by];
  if (kind === "network" || kind === "network-closed") {
    return [kind, `${event.host || ""}:${event.port || ""}`, event.decision || event.reason || ""];
  }
  const rest = Object.assign({}, event);
  for (const key of ["ts", "session", "event", "mounts"]) delete rest[key];
  return [kind, JSON.stringify(rest).slice(0, 300), ""];
}

function live(table) {
  const body = table.querySelector("tbody");
  const source = new EventSource("/events/" + encodeURIComponent(table.dataset.session));
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    const [label, what, why] = describe(event);
    const row = document.createElement("tr");
    row.className = [event.event, event.decision || event.answer || ""].join(" ");
    const when = new Date((event.ts || 0) * 1000).toLocaleTimeString();
    for (const text of [when, label, what, why]) {
      const cell = document.createElement("td");
      cell.textContent = text == null ? "" : String(text);
      row.appendChild(cell);
    }
    body.appendChild(row);
    if (event.event === "exit" || event.event === "stop") refresh();
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("live");
  if (table) live(table);
  setInterval(refresh, 1000);
});
"""
