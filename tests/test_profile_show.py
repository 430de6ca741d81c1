"""`shelljail profile show` writes the resolved profile as TOML (tomli_w) that loads back to the same profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from jail.policy import profile


@pytest.mark.parametrize("name", profile.builtin_names())
def test_a_shown_profile_loads_back_the_same(tmp_path: Path, name: str) -> None:
    loaded = profile.load(name)
    shown = tmp_path / "shown.toml"
    shown.write_text(profile.to_toml(loaded))
    again = profile.load(str(shown))
    assert again._replace(name=loaded.name, source=loaded.source) == loaded


def test_unset_values_are_named_in_a_comment() -> None:
    text = profile.to_toml(profile.load("coding-agent"))
    assert text.startswith("# coding-agent, resolved from ")
    assert "# not set: " in text.splitlines()[1] and "limits.wall_time" in text.splitlines()[1]
