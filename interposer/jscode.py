"""What a `node -e` program may reach beyond a jail's confinement, from the names it uses (no JavaScript parser).

In a jail, `node -e CODE` runs as confined as `node file.js`: its files are the jail's view, its processes the
jail's own. What that confinement does not judge by itself is a program started (its commands go unseen),
the network, native code or code built at run time, and a deletion: a program naming any of them is asked
about, in the jail as in the hook.
"""

from __future__ import annotations

import re

MAX_SOURCE = 64 << 10
_REACHES = re.compile(
    r"child_process|\bnet\b|\bdgram\b|\bhttps?\b|\bhttp2\b|\btls\b|worker_threads|\bcluster\b|\bvm\b|inspector"
    r"|\bprocess\s*\.\s*(binding|dlopen|kill|_linkedBinding)|\beval\s*\(|\bFunction\s*\(|\bfetch\s*\("
    r"|\bimport\s*\(|WebSocket|XMLHttpRequest|\bDeno\b|\bBun\b|\bffi\b|\bwasi\b"
    r"|\b(rmSync|rmdirSync|unlinkSync|rm|rmdir|unlink|truncate|truncateSync)\s*\(|\\u|\\x|\[\s*['\"`]"
    r"|\bReflect\b|\bset(Timeout|Interval|Immediate)\s*\(\s*['\"`]")
_REQUIRE = re.compile(r"\brequire\s*\(")
_PLAIN_REQUIRE = re.compile(r"\brequire\s*\(\s*(['\"])[\w@/.:-]+\1\s*\)")  # require("fs"), not require(x)


def confined(source: str) -> bool:
    """Whether the program names nothing a jail's confinement leaves unjudged (see the module's docstring).

    Escapes (\\x..), computed property names (`fs['rm' + 'Sync']`) and a require of anything but one plain
    string (`require('child_' + 'process')`) count as naming it.
    """
    if len(source) > MAX_SOURCE or _REACHES.search(source) is not None:
        return False
    return len(_REQUIRE.findall(source)) == len(_PLAIN_REQUIRE.findall(source))
