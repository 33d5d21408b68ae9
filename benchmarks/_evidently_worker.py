"""Evidently's data-drift preset on two Parquet files, timed; run by ``monitor.py`` in a Python
of its own (Evidently 0.7 does not import beside pandas 3, which mlops-jupyter's tests use).

    python _evidently_worker.py REFERENCE.parquet CURRENT.parquet REPEAT NUMERIC,... CATEGORICAL,...

Prints one JSON object: the best time of ``Report([DataDriftPreset()]).run(current, reference)``
over REPEAT runs (the frames read once, before timing; the column types given, not inferred),
and each column's drift as the run with the preset's tests reports it: the method Evidently
chose, its score, its threshold and whether it detected drift.
"""

from __future__ import annotations

import json
import sys
import time
import warnings


def main() -> None:
    reference_path, current_path, repeat, numeric, categorical = sys.argv[1:6]
    warnings.simplefilter("ignore")
    import evidently
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    definition = DataDefinition(
        numerical_columns=[c for c in numeric.split(",") if c],
        categorical_columns=[c for c in categorical.split(",") if c],
    )

    def datasets() -> tuple[object, object]:
        return (
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )

    times = []
    for _ in range(int(repeat)):
        cur, ref = datasets()
        started = time.perf_counter()
        Report([DataDriftPreset()]).run(cur, ref)
        times.append(time.perf_counter() - started)
    cur, ref = datasets()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(cur, ref)
    result = snapshot.dict()
    columns: dict[str, dict[str, object]] = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            columns[config["column"]] = {
                "method": config.get("method"),
                "threshold": config.get("threshold"),
                "score": metric["value"],
            }
    for test in result["tests"]:
        column = (test.get("metric_config") or {}).get("params", {}).get("column")
        if column is None:  # the test names its column in its name
            name = test.get("name", "")
            column = name.rsplit(" ", 1)[-1] if name.startswith("Value Drift for column") else None
        if column in columns:
            columns[column]["detected"] = test["status"] == "FAIL"
    print(
        json.dumps(
            {
                "seconds": min(times) if times else None,
                "version": evidently.__version__,
                "pandas": pd.__version__,
                "columns": columns,
            }
        )  # fmt: skip
    )


if __name__ == "__main__":
    main()
