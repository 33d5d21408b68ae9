"""The benchmark scripts keep running (small sizes; figures come from full runs, not tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import skip_or_fail

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "expected_rows"),
    [
        ("hashing.py", ["**hash_data** (mlops-jupyter)", "memory copy (np.copyto)"]),
        ("store_writes.py", ["raw sqlite3, executemany", "tracked cell"]),
        ("track_overhead.py", ["**`%%track --no-shap`**, no data", "**first `%%track` cell**"]),
        ("card_generation.py", ["**HTML** (read + render)", "**HTML with intervals**"]),
        ("runs_query.py", ["by a param, 80 % and 50 % together", "compare 10 runs"]),
        ("signing.py", ["**`sshsig.sign`** of the statement", "**`audit.verify`** of the"]),
        ("store_size.py", ["| 100 |", "| 1,000 |"]),
        ("team_store.py", ["**PostgreSQL store** `record_run`", "push 200 runs"]),
        ("kernel_memory.py", ["| after 50 cells |", "untracked kernel"]),
        ("curves.py", ["raw sqlite3: 3,000 rows", "**mlops-jupyter** `metric_curve`"]),
        ("store_scale.py", ["| 2,000 | before |", "| 10,000 | now |"]),
        ("monitor.py", ["**`record_batch`** end to end", "not run (--quick)"]),
        ("panel_browser.py", ["**Refresh** to the runs table (5,010 runs", "**filter** `params."]),
    ],
)
def test_benchmark_quick_run(script: str, expected_rows: list[str]) -> None:
    if script == "panel_browser.py":
        chromium = os.environ.get("MLOPS_JUPYTER_CHROMIUM") or "/usr/bin/chromium"
        if not Path(chromium).is_file():
            skip_or_fail(f"Chromium not found at {chromium} (set MLOPS_JUPYTER_CHROMIUM)")
    before = (BENCH / "README.md").read_text(encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Machine:" in result.stdout
    for row in expected_rows:
        assert row in result.stdout
    assert (BENCH / "README.md").read_text(encoding="utf-8") == before  # --quick never writes


def test_benchmark_readme_has_results_from_a_full_run() -> None:
    text = (BENCH / "README.md").read_text(encoding="utf-8")
    for section in (
        "hashing",
        "store-writes",
        "track-overhead",
        "card-generation",
        "runs-query",
        "signing",
        "store-size",
        "team-store",
        "curves",
        "store-scale",
        "monitor",
        "panel-browser",
    ):
        body = text.split(f"<!-- {section}:begin -->")[1].split(f"<!-- {section}:end -->")[0]
        assert "Machine:" in body and "| " in body, f"{section} table missing: run the benchmark"
