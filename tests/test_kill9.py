"""A batch is all-or-nothing even when `ingest` is killed with SIGKILL at a random moment.

Each round starts `python -m lifecycle ingest` on a 200,000-row batch in a real process,
kills it with SIGKILL after a random delay (before, during or after the append), and then
opens the database: the predictions table holds whole batches only, and every stored row
belongs to a batch recorded in ingest_batches with that many rows (issue 17: the probes'
kill -9 runs, kept in CI).
"""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest

from lifecycle import catalog
from lifecycle.store import Store
from tests.browser import ROOT
from tests.conftest import toy_predictions, write_toy_spec

pytestmark = pytest.mark.slow
ROWS = 200_000


def test_ingest_killed_at_random_moments_leaves_whole_batches(tmp_path):
    db = tmp_path / "kill.duckdb"
    with Store(db) as store:
        catalog.register_from_file(store, write_toy_spec(tmp_path / "spec"))
    rng = random.Random(9)
    for round_ in range(6):
        batch = tmp_path / f"batch{round_}.parquet"
        toy_predictions(ROWS, prefix=f"r{round_}-").to_parquet(batch)
        proc = subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "ingest", "--db", str(db), "--model", "toy",
             "--kind", "predictions", str(batch)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(rng.uniform(0.5, 6.0))
        proc.kill()  # SIGKILL: no cleanup, no rollback handler
        proc.wait(timeout=30)
        with Store(db) as store:
            stored = store.query_all(
                "SELECT batch_id, count(*) FROM predictions GROUP BY 1 ORDER BY 1"
            )
            recorded = dict(
                store.query_all(
                    "SELECT batch_id, row_count FROM ingest_batches WHERE kind = ?", ["predictions"]
                )
            )
        for batch_id, rows in stored:
            assert rows == ROWS, (round_, batch_id, rows)  # never half a batch
            assert recorded.get(batch_id) == ROWS  # and always recorded with it
        assert set(recorded) == {b for b, _ in stored}
