"""A writer process for the concurrency tests: ``python store_worker.py STORE N START_AT TAG``.

Waits until the wall-clock time START_AT so that all workers hit a fresh store together, then
records N runs of 10 params and 5 metrics each (N = 0 means: until killed), printing each run id
as soon as its transaction has returned.
"""

from __future__ import annotations

import sys
import time

from mlops_jupyter.store import Store


def main() -> None:
    store_path, n, start_at, tag = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    while time.time() < start_at:
        pass  # spin: a sleep would spread the start over a scheduler tick
    store = Store.open(store_path)
    i = 0
    while n == 0 or i < n:
        run_id = store.record_run(
            f"worker-{tag}",
            name=f"{tag}-{i}",
            params={f"p{j}": j * i for j in range(10)},
            metrics={f"m{j}": i + j / 10 for j in range(5)},
        )
        print(run_id, flush=True)
        i += 1
    store.close()


if __name__ == "__main__":
    main()
