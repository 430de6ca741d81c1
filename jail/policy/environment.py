"""The jailed command's environment: the profile's allow-list, nothing inherited by accident."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

from jail.policy.profile import Environment, expand


def build(env: Environment, caller: Mapping[str, str], values: Mapping[str, str],
          extra: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
    """Kept names from the caller, then the profile's values, then `--env` pairs."""
    out = {name: value for name, value in caller.items()
           if any(fnmatch.fnmatchcase(name, pattern) for pattern in env.keep)}
    out.update({name: expand(value, values) for name, value in env.set.items()})
    out.update(extra)
    return out
