"""The wheel's build hook: compiles the jail's shell launcher (interposer/launcher.c) into the wheel, so
that an installed shelljail judges shells with the same static binary `make setup` builds. No compiler:
the wheel is built without it and the jail uses the Python launcher (interposer/launcher.py), which
`shelljail doctor` names. A compiler that fails is an error: never a wheel with a stale or missing binary
that looks complete. The flags are read from interposer/launcher.cflags, which the Makefile reads too."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("interposer") / "launcher.c"
FLAGS = Path("interposer") / "launcher.cflags"
INSTALLED_AS = "interposer/shelljail-launcher"


class LauncherBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return  # an editable install runs the checkout, whose launcher `make launcher` builds
        compiler = shutil.which(os.environ.get("CC") or "cc")
        if compiler is None:
            self.app.display_warning(f"no C compiler ({os.environ.get('CC') or 'cc'}): the wheel has no compiled "
                                     "launcher, and the jail will use the slower Python one")
            return
        root = Path(self.root)
        self._built = Path(tempfile.mkdtemp(prefix="shelljail-launcher-"))
        binary = self._built / "shelljail-launcher"
        command = [compiler, *shlex.split((root / FLAGS).read_text()), "-o", str(binary), str(root / SOURCE)]
        self.app.display_info(" ".join(command))
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the launcher did not compile ({compiler} exited {done.returncode}):\n{done.stderr}")
        build_data["force_include"][str(binary)] = INSTALLED_AS
        build_data["pure_python"] = False  # a Linux binary of this machine's architecture
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        built = getattr(self, "_built", None)
        if built is not None:
            shutil.rmtree(built, ignore_errors=True)
