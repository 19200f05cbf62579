"""The landing folder (`python -m lifecycle watch`, lifecycle/watch.py) and `ingest` of a
directory or glob.

Covers: --once over good, bad, duplicate and misplaced files; files still being written;
a restart after a crash between commit and move; two real processes (a writer dropping files
while the watcher runs, kill -9 of the watcher, restart: every file loaded exactly once); the
watcher handing files to a process that holds the database; and the watcher inside the app's
process (ui/runtime.py, as the inbox drainer is tested).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from lifecycle import cli, watch
from lifecycle.ingest import AlreadyLoaded, ingest
from lifecycle.store import Store
from tests.browser import ROOT
from tests.conftest import toy_predictions
from tests.test_live_ingest import Holder

PAST = time.time() - 3600


def land(root: Path, rel: str, frame: pd.DataFrame, *, settled: bool = True) -> Path:
    """Write `frame` at root/rel (Parquet or CSV by suffix), aged past any settle time."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    if settled:
        os.utime(path, (PAST, PAST))
    return path


def lifecycle_argv(*argv) -> list[str]:
    """`python -m lifecycle ARGV...` for a subprocess."""
    return [sys.executable, "-m", "lifecycle", *[str(a) for a in argv]]


def watch_once(capsys, db, root, *extra) -> tuple[int, str]:
    code = cli.main(["watch", "--db", str(db), str(root), "--once", "--settle", "0", *extra])
    return code, capsys.readouterr().err


def report_of(path: Path) -> dict:
    return json.loads(path.with_name(path.name + watch.REPORT_SUFFIX).read_text())


def toy_features(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"prediction_id": ids, "x": [float(i % 10) for i in range(len(ids))], "color": "red"}
    )


def test_once_loads_good_files_rejects_bad_ones_and_skips_duplicates(toy_db_file, tmp_path, capsys):
    root = tmp_path / "landing"
    good = toy_predictions(30, prefix="g")
    land(root, "toy/predictions/date=2026-01-01/part-0.parquet", good)
    land(root, "toy/predictions/date=2026-01-02/copy.parquet", good)  # same bytes
    land(root, "toy/features/date=2026-01-01/f.csv", toy_features([f"g{i}" for i in range(30)]))
    bad = toy_predictions(5, prefix="b")
    bad.loc[2, "prediction"] = 7.0
    land(root, "toy/predictions/date=2026-01-02/bad.csv", bad)
    land(root, "toy/nowhere/x.parquet", toy_predictions(3, prefix="n"))  # unknown kind
    land(root, "ghost/predictions/y.parquet", toy_predictions(3, prefix="y"))  # unknown model

    code, err = watch_once(capsys, toy_db_file, root)

    assert code == 2, err
    assert "2 loaded, 1 duplicate(s) skipped, 3 rejected, 0 error(s), 0 left" in err
    done, rejected = root / "done", root / "rejected"
    first = done / "toy/predictions/date=2026-01-01/part-0.parquet"
    assert report_of(first)["state"] == "loaded"
    assert report_of(first)["report"]["rows"] == 30
    copy = report_of(done / "toy/predictions/date=2026-01-02/copy.parquet")
    assert copy["state"] == "duplicate" and copy["duplicate_of"] == report_of(first)["batch_id"]
    assert "duplicate, skipped" in copy["message"]
    assert report_of(done / "toy/features/date=2026-01-01/f.csv")["state"] == "loaded"
    refused = report_of(rejected / "toy/predictions/date=2026-01-02/bad.csv")
    assert "probability outside [0, 1]" in refused["error"] and "row 3" in refused["error"]
    assert "landing layout" in report_of(rejected / "toy/nowhere/x.parquet")["error"]
    assert "unknown model 'ghost'" in report_of(rejected / "ghost/predictions/y.parquet")["error"]
    assert not [p for p in root.rglob("*") if p.is_file() and p.parts[len(root.parts)] == "toy"]
    with Store(toy_db_file) as s:
        counts = s.row_counts()
        assert counts["predictions"] == 30 and counts["features__toy"] == 30
        assert counts["ingest_batches"] == 2 and counts["loaded_files"] == 2
        # predictions were loaded before their features although "features" sorts first
        kinds = s.query_all("SELECT kind FROM ingest_batches ORDER BY batch_id")
        assert kinds == [("predictions",), ("features",)]


def test_once_exits_0_when_every_file_loaded(toy_db_file, tmp_path, capsys):
    root = tmp_path / "landing"
    land(root, "toy/predictions/a.csv", toy_predictions(4, prefix="a"))
    code, err = watch_once(capsys, toy_db_file, root)
    assert code == 0, err
    assert "toy/predictions/a.csv: loaded 4 predictions row(s) for toy as batch 1 -> done/" in err
    assert "\r" not in err


def test_files_still_being_written_are_left_alone(toy_store, tmp_path):
    root = tmp_path / "landing"
    frame = toy_predictions(5, prefix="w")
    ignored = [
        land(root, f"toy/predictions/{name}", frame)
        for name in (".part.parquet", "_tmp.parquet", "p.parquet.tmp", "p.parquet.crc")
    ]
    land(root, "toy/predictions/_temporary/0/p.parquet", frame)  # Spark's work folder
    growing = land(root, "toy/predictions/growing.csv", frame.head(2))
    young = land(root, "toy/predictions/young.parquet", frame, settled=False)
    watcher = watch.Watcher(root, settle_seconds=60)

    assert watcher.ready() == []  # a file must be seen twice
    frame.to_csv(growing, index=False)  # the writer appended rows: size changed
    os.utime(growing, (PAST, PAST))
    assert watcher.scan(toy_store) == []  # nothing settled: growing changed, young is young
    assert sorted(p.name for p in watcher.unsettled) == ["growing.csv", "young.parquet"]

    outcomes = watcher.scan(toy_store)  # growing unchanged since the last scan: loaded whole
    assert [(o.rel.name, o.state) for o in outcomes] == [("growing.csv", "loaded")]
    assert toy_store.row_counts()["predictions"] == 5
    assert young.exists() and all(p.exists() for p in ignored)
    assert (root / "toy/predictions/_temporary/0/p.parquet").exists()


def test_a_restart_after_commit_before_move_does_not_load_twice(toy_store, tmp_path):
    """The watcher committed a file's batch and died before moving it: the next watcher finds
    the hash recorded and moves the file to done/ as a duplicate."""
    root = tmp_path / "landing"
    path = land(root, "toy/predictions/p.parquet", toy_predictions(8, prefix="c"))
    sha = watch.file_sha256(path)
    ingest(toy_store, "toy", "predictions", path, content_sha256=sha)  # the commit, no move
    with pytest.raises(AlreadyLoaded, match="loaded as predictions batch 1"):
        ingest(toy_store, "toy", "predictions", path, content_sha256=sha)

    restarted = watch.Watcher(root, settle_seconds=0)
    restarted.ready()
    outcomes = restarted.scan(toy_store)

    assert [o.state for o in outcomes] == ["duplicate"]
    assert report_of(root / "done/toy/predictions/p.parquet")["duplicate_of"] == 1
    assert toy_store.row_counts()["predictions"] == 8
    # the same name landing again (new content) does not overwrite what done/ holds
    land(root, "toy/predictions/p.parquet", toy_predictions(3, prefix="d"))
    restarted.ready()
    assert [o.state for o in restarted.scan(toy_store)] == ["loaded"]
    assert report_of(root / "done/toy/predictions/p~2.parquet")["report"]["rows"] == 3


# -- two real processes: a writer and the watcher, killed -9 and restarted ---------------------

WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from tests.conftest import toy_predictions

    root, files, big = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    for i in range(files):
        folder = root / "toy" / "predictions" / f"date=2026-01-{i % 28 + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        frame = toy_predictions(big if i == BIG else ROWS + i, prefix=f"f{i}_")
        if i % 2:  # a Parquet file written under a temporary name, then renamed
            tmp = folder / f".part-{i}.parquet.tmp"
            frame.to_parquet(tmp, index=False)
            tmp.rename(folder / f"part-{i}.parquet")
        else:  # a CSV written in place, in chunks: the watcher must wait for it to settle
            with open(folder / f"part-{i}.csv", "w") as handle:
                for start in range(0, len(frame), len(frame) // 4):
                    frame.iloc[start:start + len(frame) // 4].to_csv(
                        handle, index=False, header=start == 0)
                    handle.flush()
                    time.sleep(0.05)
        time.sleep(0.1)
    """
)
FILES, ROWS, BIG, BIG_ROWS = 14, 3000, 7, 600_000  # file 7 takes seconds to load
SETTLE = 1.5


def start_watcher(db, root) -> subprocess.Popen:
    return subprocess.Popen(
        lifecycle_argv("watch", "--db", db, root, "--interval", 0.2, "--settle", SETTLE),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def reports(root: Path) -> list[Path]:
    return sorted((root / "done").rglob(f"*{watch.REPORT_SUFFIX}"))


def kill_9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_writer_and_watcher_processes_with_kill_9_load_every_file_once(toy_db_file, tmp_path):
    root = tmp_path / "landing"
    root.mkdir()
    script = WRITER.replace("ROWS", str(ROWS)).replace("BIG", str(BIG))
    writer = subprocess.Popen(
        [sys.executable, "-c", script, str(root), str(FILES), str(BIG_ROWS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watcher = start_watcher(toy_db_file, root)
    big = root / f"toy/predictions/date=2026-01-{BIG + 1:02d}/part-{BIG}.parquet"
    try:
        # kill -9 between files while files keep landing
        wait_for(lambda: len(reports(root)) >= 2, 120, "2 files done")
        kill_9(watcher)
        watcher = start_watcher(toy_db_file, root)
        # kill -9 while the big file is being loaded: it settled, and its load takes seconds
        wait_for(big.exists, 120, "the big file")
        time.sleep(SETTLE + 1.5)
        assert big.exists()  # not done yet
        kill_9(watcher)
        with Store(toy_db_file) as s:
            first_row = [f"f{BIG}_0"]
            assert s.query_one(
                "SELECT count(*) FROM predictions WHERE prediction_id = ?", first_row
            ) == (0,)
        watcher = start_watcher(toy_db_file, root)
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
        wait_for(lambda: len(reports(root)) >= FILES, 180, "every file done")
        watcher.send_signal(signal.SIGTERM)  # stops cleanly, like Ctrl-C
        _, err = watcher.communicate(timeout=30)
        assert watcher.returncode == 0, err
        assert "stopped" in err and "0 rejected, 0 error(s)" in err
    finally:
        for proc in (writer, watcher):
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    assert not (root / "rejected").exists()
    landed = sorted(p for p in (root / "done").rglob("part-*") if not p.name.endswith(".json"))
    assert len(landed) == FILES  # every file moved once, none left in the landing folder
    assert not [p for p in (root / "toy").rglob("*") if p.is_file()]
    with Store(toy_db_file) as s:
        hashes = dict(s.query_all("SELECT sha256, batch_id FROM loaded_files"))
        batches = {
            source: (row_count, stored)
            for source, row_count, stored in s.query_all(
                "SELECT b.source, b.row_count, (SELECT count(*) FROM predictions p "
                "WHERE p.batch_id = b.batch_id) FROM ingest_batches b"
            )
        }
        total, distinct = s.query_one(
            "SELECT count(*), count(DISTINCT prediction_id) FROM predictions"
        )
    assert len(hashes) == FILES and len(batches) == FILES  # each file exactly one batch
    expected = {i: BIG_ROWS if i == BIG else ROWS + i for i in range(FILES)}
    for path in landed:
        i = int(path.stem.split("-")[1])
        assert watch.file_sha256(path) in hashes
        source = str(root.resolve() / path.relative_to(root / "done"))
        assert batches[source] == (expected[i], expected[i]), path  # the whole file, once
    assert total == distinct == sum(expected.values())


# -- the watcher and a process holding the database -------------------------------------------


def test_watch_hands_files_to_the_process_holding_the_database(toy_db_file, tmp_path):
    root = tmp_path / "landing"
    land(root, "toy/predictions/a.parquet", toy_predictions(12, prefix="h"))
    bad = toy_predictions(3, prefix="hb")
    bad["status"] = "maybe"
    land(root, "toy/predictions/bad.csv", bad)
    holder = Holder(toy_db_file)
    try:
        run = subprocess.run(
            lifecycle_argv(
                "watch", "--db", toy_db_file, root, "--once", "--settle", 0, "--wait", 30
            ),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        counts = holder.counts()
    finally:
        holder.stop()
    assert run.returncode == 2, run.stderr  # one file rejected
    assert "database held: queued as" in run.stderr
    assert "loaded 12 predictions row(s) for toy as batch 1 (by the process holding" in run.stderr
    assert counts["predictions"] == 12 and counts["loaded_files"] == 1
    assert report_of(root / "done/toy/predictions/a.parquet")["state"] == "loaded"
    assert (
        "status not in (ok, error)" in report_of(root / "rejected/toy/predictions/bad.csv")["error"]
    )


def test_the_app_process_runs_the_watcher_when_configured(toy_db_file, tmp_path, monkeypatch):
    from ui import runtime

    root = tmp_path / "landing"
    root.mkdir()
    config = tmp_path / "lifecycle.toml"
    config.write_text(f'[watch]\ndir = "{root}"\ninterval = 0.2\nsettle = 0\n')
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    monkeypatch.delenv(watch.WATCH_ENV, raising=False)
    try:
        store = runtime.store_for(toy_db_file)
        land(root, "toy/predictions/date=2026-01-01/a.parquet", toy_predictions(9, prefix="app"))
        wait_for(lambda: reports(root), 60, "the app's watcher")
        assert store.row_counts()["predictions"] == 9
        assert report_of(root / "done/toy/predictions/date=2026-01-01/a.parquet")["state"] == (
            "loaded"
        )
    finally:
        runtime.shutdown()


def test_watch_config_from_environment_and_file(tmp_path, monkeypatch):
    config = tmp_path / "lifecycle.toml"
    config.write_text('[watch]\ndir = "landing"\ninterval = "soon"\n')
    monkeypatch.setenv("LIFECYCLE_CONFIG", str(config))
    monkeypatch.delenv(watch.WATCH_ENV, raising=False)
    with pytest.raises(watch.ConfigError, match=r"watch\.interval must be a number of seconds"):
        watch.load_watch_config()
    config.write_text("[identity]\nmode = 'dev'\n")
    assert watch.load_watch_config() is None
    monkeypatch.setenv(watch.WATCH_ENV, str(tmp_path / "drop"))
    assert watch.load_watch_config().dir == tmp_path / "drop"


def test_watch_refuses_a_missing_folder_or_database(toy_db_file, tmp_path, capsys):
    code, err = watch_once(capsys, toy_db_file, tmp_path / "nope")
    assert code == 2 and "landing folder" in err and "does not exist" in err
    code, err = watch_once(capsys, tmp_path / "none.duckdb", tmp_path)
    assert code == 2 and "register a model first" in err
    assert not (tmp_path / "none.duckdb").exists()


# -- ingest of a directory or a glob: one batch ------------------------------------------------


def ingest_cli(capsys, db, target) -> tuple[int, str, str]:
    argv = ["ingest", "--db", db, "--model", "toy", "--kind", "predictions", target]
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_of_a_directory_is_one_batch_and_partition_folders_are_not_columns(
    toy_db_file, tmp_path, capsys
):
    logs = tmp_path / "logs"
    for day in (1, 2, 3):
        frame = toy_predictions(10, start=f"2026-01-0{day}", prefix=f"d{day}_")
        if day == 2:
            frame = frame[list(reversed(frame.columns))]  # same columns, another order
        land(logs, f"date=2026-01-0{day}/part-0.parquet", frame)
    (logs / "_SUCCESS").write_text("")
    (logs / "date=2026-01-01/.part-0.parquet.crc").write_text("x")

    code, out, err = ingest_cli(capsys, toy_db_file, logs)

    assert code == 0, err
    assert "ingested: 30 predictions row(s) for toy as batch 1" in out
    with Store(toy_db_file) as s:
        assert s.query_one("SELECT count(*), count(DISTINCT batch_id) FROM predictions") == (30, 1)
        assert "date" not in s.table_columns("predictions")
        assert s.query_one("SELECT source FROM ingest_batches")[0] == f"3 files in {logs}"
        assert s.query_one("SELECT min(ts)::DATE, max(ts)::DATE FROM predictions") == (
            pd.Timestamp("2026-01-01").date(),
            pd.Timestamp("2026-01-03").date(),
        )


def test_ingest_of_a_glob(toy_db_file, tmp_path, capsys):
    logs = tmp_path / "logs"
    land(logs, "a/1.csv", toy_predictions(4, prefix="a"))
    land(logs, "b/2.csv", toy_predictions(6, prefix="b"))
    land(logs, "b/3.parquet", toy_predictions(6, prefix="c"))  # not matched
    code, out, err = ingest_cli(capsys, toy_db_file, f"{logs}/**/*.csv")
    assert code == 0, err
    assert "ingested: 10 predictions row(s)" in out


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("nothing", ["no Parquet (.parquet, .pq) or CSV (.csv) files match", "1 other file"]),
        ("mixed", ["the files mix Parquet and CSV (1 CSV, 1 Parquet)", "one format"]),
        ("columns", ["lacks segment", "has region in addition", "same columns"]),
        ("one bad row", ["refused, nothing written", "probability outside [0, 1]"]),
    ],
)
def test_ingest_of_a_directory_is_refused_whole(toy_db_file, tmp_path, capsys, case, fragments):
    logs = tmp_path / "logs"
    logs.mkdir()
    first = toy_predictions(5, prefix="a")
    if case == "nothing":
        (logs / "notes.txt").write_text("x")
    else:
        land(logs, "1.parquet", first)
    second = toy_predictions(5, prefix="b")
    if case == "mixed":
        land(logs, "2.csv", second)
    elif case == "columns":
        land(logs, "2.parquet", second.drop(columns="segment").assign(region="eu"))
    elif case == "one bad row":
        second.loc[4, "prediction"] = 1.5
        land(logs, "2.parquet", second)
    with Store(toy_db_file) as s:
        before = s.row_counts()
    code, out, err = ingest_cli(capsys, toy_db_file, logs)
    assert code == 2, (out, err)
    for fragment in fragments:
        assert fragment in err, err
    with Store(toy_db_file) as s:
        assert s.row_counts() == before


def test_ingest_of_a_directory_while_the_app_holds_the_database(toy_db_file, tmp_path):
    logs = tmp_path / "logs"
    land(logs, "date=2026-01-01/a.csv", toy_predictions(7, prefix="q"))
    land(logs, "date=2026-01-02/b.csv", toy_predictions(8, prefix="r"))
    holder = Holder(toy_db_file)
    try:
        argv = ("ingest", "--db", toy_db_file, "--model", "toy", "--kind", "predictions", logs)
        run = subprocess.run(
            lifecycle_argv(*argv, "--wait", 30),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        counts = holder.counts()
    finally:
        holder.stop()
    assert run.returncode == 0, run.stderr
    assert "queued as" in run.stderr and "ingested: 15 predictions row(s)" in run.stdout
    assert counts["predictions"] == 15 and counts["ingest_batches"] == 1


@pytest.mark.browser
def test_with_the_app_running_both_its_watcher_and_the_command_load_files(toy_db_file, tmp_path):
    """The real app (`streamlit run`) with $LIFECYCLE_WATCH_DIR, opened in Chromium: a file
    dropped in its landing folder is loaded by the app's process; meanwhile `watch --once`
    on a second folder hands its file to the app through the inbox; each loaded once."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, running_app, wait_until_idle

    app_root, cli_root = tmp_path / "app-landing", tmp_path / "cli-landing"
    app_root.mkdir()
    env = {"LIFECYCLE_WATCH_DIR": str(app_root)}
    with running_app(toy_db_file, env) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.goto(url)
        wait_until_idle(page, 120_000)  # the session starts the app's runtime and watcher
        land(app_root, "toy/predictions/date=2026-01-01/a.parquet", toy_predictions(7, prefix="a"))
        wait_for(lambda: reports(app_root), 60, "the app's watcher")
        land(cli_root, "toy/predictions/b.parquet", toy_predictions(5, prefix="b"))
        done = subprocess.run(
            lifecycle_argv("watch", "--db", toy_db_file, cli_root, "--once", "--settle", "0"),
            cwd=ROOT, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        browser.close()
    assert report_of(app_root / "done/toy/predictions/date=2026-01-01/a.parquet")["state"] == (
        "loaded"
    )
    assert report_of(cli_root / "done/toy/predictions/b.parquet")["state"] == "loaded"
    with Store(toy_db_file) as store:
        rows = store.query_all(
            "SELECT left(prediction_id, 1), count(*) FROM predictions GROUP BY 1 ORDER BY 1"
        )
        files = store.query_one("SELECT count(*) FROM loaded_files")[0]
    assert rows == [("a", 7), ("b", 5)] and files == 2
