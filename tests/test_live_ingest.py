"""Live ingestion with two real processes: a holder of the database (like the app) and `ingest`.

Process A opens the Store read-write and runs the inbox Drainer and the request Worker, as
ui/common.py does, and answers "counts" on stdin with its own view of the row counts. B is
`python -m lifecycle ingest --db ... --wait 30`, which cannot open the held file and hands
its batch to A through the inbox (lifecycle/inbox.py).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap

from lifecycle import inbox
from lifecycle.store import Store
from tests.browser import ROOT
from tests.conftest import toy_predictions

HOLDER = textwrap.dedent(
    """
    import json, sys
    from lifecycle.inbox import Drainer
    from lifecycle.requests import Worker
    from lifecycle.store import Store

    store = Store(sys.argv[1])
    drainer = Drainer(store, interval=0.2).start()
    worker = Worker.start_for(store, interval=0.2)  # the app runs both (ui/common.py)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "counts":
            errors = drainer.last_error or worker.last_error
            print(json.dumps({**store.row_counts(), "last_error": errors}), flush=True)
        elif line.strip() == "quit":
            break
    drainer.stop()
    worker.stop()
    store.close()
    """
)


class Holder:
    """Process A: holds the database file read-write and drains its inbox."""

    def __init__(self, db, env: dict | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._line(60) == "ready"

    def _line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        assert line, f"holder gave no answer; stderr: {self._stderr()}"
        return line.strip()

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()

    def counts(self) -> dict:
        self.proc.stdin.write("counts\n")
        self.proc.stdin.flush()
        return json.loads(self._line(30))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        assert self.proc.returncode == 0, self.proc.stderr.read()


def ingest_process(db, path, kind="predictions") -> subprocess.Popen:
    """Process B: the command a serving system runs."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lifecycle",
            "ingest",
            "--db",
            str(db),
            "--model",
            "toy",
            "--kind",
            kind,
            str(path),
            "--wait",
            "30",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=90)
    return proc.returncode, out, err


def test_ingest_while_another_process_holds_the_database(toy_db_file, tmp_path):
    good = tmp_path / "good.parquet"
    toy_predictions(50, prefix="live").to_parquet(good, index=False)
    bad = toy_predictions(8, prefix="bad")
    bad.loc[7, "prediction_id"] = "bad0"  # duplicate id inside the batch
    bad.to_csv(tmp_path / "bad.csv", index=False)

    holder = Holder(toy_db_file)
    try:
        before = holder.counts()
        # two serving processes submit at the same time while A holds the file
        runs = [
            ingest_process(toy_db_file, good),
            ingest_process(toy_db_file, tmp_path / "bad.csv"),
        ]
        (good_code, good_out, good_err), (bad_code, bad_out, bad_err) = map(finish, runs)

        assert good_code == 0, good_err
        assert "held by another process" in good_err and "queued as" in good_err
        assert "ingested: 50 predictions row(s) for toy" in good_out

        assert bad_code == 2, (bad_out, bad_err)
        assert "duplicate prediction id(s) inside the batch: bad0 (x2)" in bad_err

        after = holder.counts()  # A's own connection sees the new rows, and only them
        assert after.pop("last_error") is None
        before.pop("last_error")
        assert after["predictions"] == before["predictions"] + 50
        assert after["ingest_batches"] == before["ingest_batches"] + 1
        unchanged = {k: v for k, v in after.items() if k not in ("predictions", "ingest_batches")}
        assert unchanged == {k: before[k] for k in unchanged}
    finally:
        holder.stop()

    root = inbox.inbox_dir(toy_db_file)
    assert not [p for p in (root / inbox.PENDING).iterdir() if not p.name.startswith(".")]
    assert len(list((root / inbox.DONE).glob("*.json"))) == 1
    rejected = list((root / inbox.REJECTED).glob("*.json"))
    assert len(rejected) == 1 and (root / inbox.REJECTED / f"{rejected[0].stem}.csv").exists()
    with Store(toy_db_file) as s:
        ids = s.query_all("SELECT prediction_id FROM predictions ORDER BY ts, prediction_id")
        assert [r[0] for r in ids] == [f"live{i}" for i in range(50)]
        source = s.query_one("SELECT source FROM ingest_batches")[0]
        assert source.startswith("inbox:") and source.endswith(f"({good.resolve()})")


def test_ingest_with_no_holder_writes_directly_after_queued_batches(toy_db_file, tmp_path):
    queued = inbox.submit(toy_db_file, "toy", "predictions", toy_predictions(5, prefix="queued"))
    path = tmp_path / "direct.csv"
    toy_predictions(7, prefix="direct").to_csv(path, index=False)

    code, out, err = finish(ingest_process(toy_db_file, path))

    assert code == 0, err
    assert "queued" not in err and "ingested: 7 predictions row(s) for toy as batch 2" in out
    assert inbox.outcome(toy_db_file, queued).state == inbox.DONE  # drained first, as batch 1
    with Store(toy_db_file) as s:
        batches = s.query_all("SELECT batch_id, row_count, source FROM ingest_batches ORDER BY 1")
    assert [(b, n) for b, n, _ in batches] == [(1, 5), (2, 7)]
    assert batches[0][2].startswith(f"inbox:{queued}") and batches[1][2] == str(path.resolve())


def test_a_batch_left_pending_by_a_crash_is_loaded_once(toy_db_file, tmp_path):
    """The drainer committed but died before moving the manifest: the next drain must not
    load the batch again."""
    ticket = inbox.submit(toy_db_file, "toy", "predictions", toy_predictions(4, prefix="once"))
    pending = inbox.inbox_dir(toy_db_file) / inbox.PENDING
    manifest = (pending / f"{ticket}.json").read_text()
    data = (pending / f"{ticket}.parquet").read_bytes()
    with Store(toy_db_file) as s:
        assert [o.state for o in inbox.drain(s)] == [inbox.DONE]
        (pending / f"{ticket}.json").write_text(manifest)  # as if the move never happened
        (pending / f"{ticket}.parquet").write_bytes(data)
        again = inbox.drain(s)
        assert [o.state for o in again] == [inbox.DONE]
        assert "already ingested as batch 1" in again[0].message
        assert s.row_counts()["predictions"] == 4
    assert not os.listdir(pending)


def test_queued_batches_load_in_the_order_they_were_submitted(toy_db_file):
    """A serving process submits predictions, then their labels: the labels must not be
    loaded first (they would be reported as unknown ids), even within one second."""
    frame = toy_predictions(1, prefix="o")
    tickets = [
        inbox.submit(toy_db_file, "toy", "predictions", frame.assign(prediction_id=f"o{i}"))
        for i in range(12)
    ]
    with Store(toy_db_file) as s:
        assert [o.ticket for o in inbox.drain(s)] == tickets
        assert s.query_all("SELECT prediction_id FROM predictions ORDER BY batch_id") == [
            (f"o{i}",) for i in range(12)
        ]
