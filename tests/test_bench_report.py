"""bench/report.py rewrites the benchmarks section of docs/results.md: a benchmark not run this time keeps its
last subsection (it used to vanish, so each partial run was spliced in by hand)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    spec = importlib.util.spec_from_file_location("bench_report_under_test", BENCH / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results.md")
    (tmp_path / "bench" / "results").mkdir(parents=True)
    return module


def test_a_benchmark_not_run_keeps_its_last_figures_and_a_run_one_is_replaced(report: object,
                                                                             tmp_path: Path) -> None:
    old = "\n".join([report.BEGIN, "## Benchmarks", "", "### startup", "", "old date", "", "| a | 1 |", "",
                     "### trash", "", "old trash", "", report.END])
    (tmp_path / "results.md").write_text(f"# Results\n\n{old}\n\n<!-- redteam: begin -->\nkept\n")
    (tmp_path / "bench" / "results" / "trash.json").write_text(json.dumps(
        {"benchmark": "trash", "date": "new date", "runs": 5, "machine": "m", "seconds": {"trash": 0.4}}))
    assert report.main() == 0
    text = (tmp_path / "results.md").read_text()
    assert "### startup\n\nold date\n\n| a | 1 |" in text  # not run: kept as it was
    assert "old trash" not in text and "| seconds / trash | 0.4 |" in text and "new date, 5 runs" in text
    assert text.index("### startup") < text.index("### trash")  # the order stays the bench's
    assert text.endswith("<!-- redteam: begin -->\nkept\n")
