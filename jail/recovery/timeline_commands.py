"""`shelljail timeline`, `undo` and `restore --at`: a session's timeline read back and acted on.

Every path and command shown came from the jail: shown escaped (jail/display.py), or as JSON.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from typing import Any

from jail.display import shown
from jail.recovery import timeline
from jail.supervisor import audit

SHOWN_FILES = 20  # per command and kind, with --files


def _session(reference: str | None) -> tuple[dict[str, Any], str]:
    state = audit.find(reference)
    return state, os.path.join(audit.state_home(), str(state["session"]))


def _human(size: float) -> str:
    from jail.recovery.trash import human

    return human(size)


def show(reference: str | None, as_json: bool, files: bool) -> int:
    try:
        state, directory = _session(reference)
        points = timeline.read_points(timeline.timeline_directory(directory))
    except (LookupError, timeline.TimelineError) as exc:
        print(f"shelljail: {shown(str(exc))}", file=sys.stderr)
        return 1
    rows = timeline.commands(points)
    if as_json:
        print(json.dumps({"session": state.get("session"), "workspace": state.get("workspace"),
                          "state": state.get("state"), "points": len(points), "commands": rows}))
        return 0
    print(f"session {shown(state.get('session'))}  {shown(state.get('workspace'))}  ({shown(state.get('state'))})")
    if not rows:
        print("no commands recorded yet")
    for row in rows:
        when = time.strftime("%H:%M:%S", time.localtime(row["time"])) if isinstance(row["time"], float) else "?"
        change = row["changes"]
        if change is None:
            what = "running" if state.get("state") == "running" else "not recorded (the session ended first)"
        else:
            what = (f"+{len(change['added'])} ~{len(change['changed'])} -{len(change['deleted'])}  "
                    f"{_human(change['bytes'])}")
        print(f"{row['point']:>4}  {when}  {shown(row['command'])[:70]:70}  {what}")
        if files and change is not None:
            for mark, key in (("A", "added"), ("M", "changed"), ("D", "deleted")):
                for path in change[key][:SHOWN_FILES]:
                    print(f"        {mark} {shown(path)}")
                if len(change[key]) > SHOWN_FILES:
                    print(f"        ... and {len(change[key]) - SHOWN_FILES} more {key}")
    if rows:
        print("shelljail undo puts the workspace back as it was before the last command; --to N before command N")
    return 0


def undo(reference: str | None, to: int | None, force: bool, paths: tuple[str, ...] = ()) -> int:
    """undo (every path) or restore --at (the paths named, relative to the current directory)."""
    try:
        state, directory = _session(reference)
        if state.get("state") == "running":
            raise timeline.TimelineError(f"session {state.get('session')} is running: stop it first "
                                         "(shelljail stop), or wait for it to end")
        workspace = str(state.get("workspace") or "")
        relative = tuple(_relative(path, workspace) for path in paths)
        command = "shelljail " + (f"restore --at {to} " + shlex.join(relative) if paths else
                                  "undo" + (f" --to {to}" if to is not None else ""))
        outcome = timeline.undo(directory, workspace, to, relative, force, command)
    except (LookupError, timeline.TimelineError, OSError) as exc:
        print(f"shelljail: {shown(str(exc))}", file=sys.stderr)
        return 1
    print(f"restored {len(outcome['done'])} path(s) to point {outcome['point']}; what was there before is point "
          f"{outcome['saved']} (shelljail undo --to {outcome['saved']} goes back to it)")
    for path, why in outcome["not_restored"]:
        print(f"not restored: {shown(path)}: {shown(why)}", file=sys.stderr)
    return 1 if outcome["not_restored"] else 0


def _relative(path: str, workspace: str) -> str:
    absolute = os.path.normpath(os.path.join(os.getcwd(), path))
    if not workspace or not (absolute + "/").startswith(workspace.rstrip("/") + "/") or absolute == workspace:
        raise timeline.TimelineError(f"{path} is not inside the session's workspace {workspace}")
    return absolute[len(workspace.rstrip("/")) + 1:]
