"""shelljail's cache directory: compiled seccomp filters and parsed profiles, which later runs trust.

So it must never be in a jail's view (session.start refuses a run whose view shows it).
"""

from __future__ import annotations

import os


def cache_home() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "shelljail")
