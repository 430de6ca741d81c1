"""The decision service's warm-up (DecisionService.warm): once the jail's command runs, the judge is imported
and a line judged in a thread, ahead of the first shell; a session that is over by then never imports it.

A real service on tmp_path in a fresh interpreter (its sys.modules says what was imported), with the default
profile's rules; nothing is mocked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROGRAM = r'''
import os, sys, time
from jail.policy import profile
from interposer.service import DecisionService

workspace, directory, order = sys.argv[1:]
loaded = profile.load()
policy = (loaded.interposer, workspace, workspace, {"HOME": workspace}, None, None, False, ())
service = DecisionService(policy, directory, True)
if order == "close first":  # the session ended before the command had run WARM_AFTER seconds
    service.close()
    service.warm()
    time.sleep(0.5)
    print("interposer.judge" in sys.modules)
else:
    service.warm()
    for _ in range(600):  # a minute: however loaded the machine, the import is done well before
        if "interposer.judge" in sys.modules:
            break
        time.sleep(0.1)
    warmed = "interposer.judge" in sys.modules  # before any shell asked: the warm-up imported it
    verdict, event = service.judge(["/bin/sh", "-c", "ls"], workspace, os.getpid())
    print(warmed, verdict, event["decision"])
    service.close()
'''


def run(tmp_path: Path, order: str) -> str:
    (tmp_path / "service").mkdir()
    result = subprocess.run([sys.executable, "-c", PROGRAM, str(tmp_path), str(tmp_path / "service"), order],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_running_session_has_the_judge_imported_before_its_first_shell(tmp_path: Path) -> None:
    assert run(tmp_path, "warm") == "True None allow"


def test_a_session_over_before_the_warm_up_never_imports_the_judge(tmp_path: Path) -> None:
    assert run(tmp_path, "close first") == "False"
