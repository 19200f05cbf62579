"""`python -m lifecycle results`: every layer in every format, read through the library's own
functions; strict JSON (also of `registry list/history --json`); clear errors; and the same
answer while another process (the app) holds the database."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog, cli, layers, requests
from lifecycle.drift import results as stored_results
from lifecycle.ingest import ingest
from lifecycle.monitor import monitor_model
from lifecycle.store import DatabaseLocked, Store
from tests.browser import ROOT
from tests.conftest import write_toy_spec
from tests.test_check import DAY0, FAST_DRIFT, serve_day

LAYERS = ("infrastructure", "performance", "business", "quality", "drift")
FORMATS = ("table", "csv", "json")
ROWS = 400
# a column of each layer's figures that must reach the output
EXPECTED = {
    "infrastructure": ["requests", "error_rate", "latency_p95", "throughput_per_min"],
    "performance": ["labelled", "coverage", "accuracy", "accuracy_low", "accuracy_high",
                    "roc_auc", "roc_auc_low", "roc_auc_high"],
    "business": ["kpi", "events", "value_mean", "mean_prediction"],
    "quality": ["tier", "check_name", "subject", "rate", "severity", "status"],
    "drift": ["check_name", "subject", "effect_size", "p_value", "p_adjusted", "severity"],
}  # fmt: skip


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def toy_results(tmp_path_factory):
    """Three days of toy traffic with KPI events, the last day without labels (so its
    performance metrics are undefined), monitored at day windows."""
    folder = tmp_path_factory.mktemp("results")
    spec = write_toy_spec(folder / "spec", rows=1000)
    spec.write_text(spec.read_text() + FAST_DRIFT, encoding="utf-8")
    path = folder / "toy.duckdb"
    with Store(path) as store:
        catalog.register_from_file(store, spec)
        for day in range(3):
            serve_day(store, day, rows=ROWS, labels=day < 2)
            ids = [f"d{day}-{i}" for i in range(0, ROWS, 4)]
            ts = pd.Timestamp(DAY0) + pd.Timedelta(days=day, hours=23)
            events = pd.DataFrame({"prediction_id": ids, "ts": ts, "kpi": "conversion",
                                   "value": [float(i % 3 == 0) for i in range(len(ids))]})  # fmt: skip
            ingest(store, "toy", "business", events)
        monitor_model(store, "toy", grain="day")
    return path


def results(capsys, db, *argv) -> tuple[int, str, str]:
    code = cli.main(["results", "--db", str(db), "--model", "toy", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def library_frame(db, layer: str) -> pd.DataFrame:
    """What the pages read for the layer (drift: the stored drift and concept results)."""
    with Store(db) as store:
        if layer == "drift":
            names = ("drift", "concept")
            return pd.concat(
                [stored_results(store, "toy", layer=n, reference="spec") for n in names]
            )
        if layer == "quality":
            return layers.quality_summary(store, "toy")
        reader = {"infrastructure": layers.infra_windows,
                  "performance": layers.performance_windows,
                  "business": layers.business_windows}[layer]  # fmt: skip
        return reader(store, "toy", grain="day")


@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_in_every_format(toy_results, capsys, layer):
    expected = library_frame(toy_results, layer)
    assert len(expected) > 0

    code, out, err = results(capsys, toy_results, "--layer", layer, "--format", "json")
    assert code == 0, err
    rows = strict_json(out)
    assert isinstance(rows, list) and len(rows) == len(expected)
    assert all(set(EXPECTED[layer]) <= set(row) for row in rows)
    assert all(row["window_start"].endswith("T00:00:00Z") for row in rows)

    code, out, err = results(capsys, toy_results, "--layer", layer, "--format", "csv")
    assert code == 0, err
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == len(rows) and list(table[0]) == list(rows[0])
    assert table[0]["window_start"] == rows[0]["window_start"]

    code, out, err = results(capsys, toy_results, "--layer", layer, "--format", "table")
    assert code == 0, err
    lines = out.rstrip("\n").split("\n")
    assert len(lines) == len(rows) + 1
    assert lines[0].split() == list(rows[0])
    assert lines[1].startswith("2026-03-02 00:00  2026-03-03 00:00")
    assert "toy: day windows" in err


def test_the_numbers_are_the_librarys(toy_results, capsys):
    _, out, _ = results(capsys, toy_results, "--layer", "performance", "--format", "json")
    rows = strict_json(out)
    frame = library_frame(toy_results, "performance")
    assert [r["accuracy"] for r in rows[:2]] == pytest.approx(list(frame["accuracy"][:2]))
    assert [r["labelled"] for r in rows] == [ROWS, ROWS, 0]

    _, out, _ = results(capsys, toy_results, "--layer", "drift", "--feature", "x",
                           "--format", "json")  # fmt: skip
    rows = strict_json(out)
    stored = library_frame(toy_results, "drift")
    stored = stored[stored["subject"] == "x"]
    assert {r["subject"] for r in rows} == {"x"} and len(rows) == len(stored) == 3
    assert [r["effect_size"] for r in rows] == pytest.approx(list(stored["effect_size"]))
    assert [r["severity"] for r in rows] == list(stored["severity"])


def test_undefined_numbers_are_null_in_json_and_empty_in_csv(toy_results, capsys):
    """The unlabelled day has no metrics: NaN in the library, null in JSON, '' in CSV, '-' in
    the table."""
    _, out, _ = results(capsys, toy_results, "--layer", "performance", "--format", "json")
    last = strict_json(out)[-1]
    assert last["labelled"] == 0 and last["accuracy"] is None and last["coverage"] == 0.0
    _, out, _ = results(capsys, toy_results, "--layer", "performance", "--format", "csv")
    assert list(csv.DictReader(io.StringIO(out)))[-1]["accuracy"] == ""
    _, out, _ = results(capsys, toy_results, "--layer", "performance")
    assert " - " in out.rstrip("\n").split("\n")[-1]


def test_all_layers_at_once(toy_results, capsys):
    code, out, _ = results(capsys, toy_results)
    assert code == 0
    assert [line for line in out.split("\n") if line.startswith("== ")] == [
        f"== {layer} ==" for layer in LAYERS
    ]
    code, out, _ = results(capsys, toy_results, "--format", "json")
    assert code == 0 and {row["layer"] for row in strict_json(out)} == set(LAYERS)


def test_period_and_filters(toy_results, capsys):
    """A date given to --to includes that day; --version and --variant filter."""
    _, out, _ = results(capsys, toy_results, "--layer", "infrastructure", "--from", "2026-03-03",
                        "--to", "2026-03-03", "--format", "json")  # fmt: skip
    assert [r["window_start"] for r in strict_json(out)] == ["2026-03-03T00:00:00Z"]
    _, out, _ = results(capsys, toy_results, "--layer", "quality", "--feature", "color",
                        "--from", "2026-03-04", "--format", "json")  # fmt: skip
    rows = strict_json(out)
    assert rows and {(r["subject"], r["window_start"]) for r in rows} == {
        ("color", "2026-03-04T00:00:00Z")
    }
    _, out, _ = results(capsys, toy_results, "--layer", "infrastructure", "--version", "1.0",
                        "--variant", "shadow", "--format", "json")  # fmt: skip
    assert strict_json(out) == []
    code, out, _ = results(capsys, toy_results, "--layer", "drift", "--grain", "hour")
    assert code == 0 and "(no drift results at hour windows" in out and "monitor" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "nope"], "unknown model 'nope' (known: toy)"),
        (["--version", "9.9"], "toy has no version '9.9' (versions: 1.0)"),
        (["--feature", "nope"], "unknown feature 'nope' of toy; known subjects: color,"),
        (["--layer", "performance", "--feature", "x"], "--feature applies to the quality and"),
        (["--grain", "chunk:100"], "chunk:100 windows apply to the drift and quality layers"),
        (["--format", "csv"], "--format csv needs --layer"),
        (["--from", "2026-03-04", "--to", "2026-03-02"], "--to 2026-03-02 is not after --from"),
        (["--from", "March"], "--from 'March' is not a date or time"),
    ],
)
def test_clear_errors(toy_results, capsys, argv, message):
    code, out, err = results(capsys, toy_results, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err, err


def test_unknown_layer_is_refused_by_the_parser(toy_results, capsys):
    with pytest.raises(SystemExit) as exit_:
        results(capsys, toy_results, "--layer", "latency")
    assert exit_.value.code == 2
    assert "invalid choice: 'latency'" in capsys.readouterr().err


def test_results_while_the_app_holds_the_database(toy_results, capsys, monkeypatch):
    """With the file locked, `results` is answered by the holder's request worker."""
    _, direct, _ = results(capsys, toy_results, "--layer", "drift", "--format", "json")

    def locked(*args, **kwargs):
        raise DatabaseLocked("held by the app")

    monkeypatch.setattr(requests, "open_store", locked)
    holder = Store(toy_results)
    worker = requests.Worker(holder, interval=0.1)
    thread = threading.Thread(target=worker._run, daemon=True)
    thread.start()
    try:
        code, out, err = results(capsys, toy_results, "--layer", "drift", "--format", "json",
                                 "--wait", "60")  # fmt: skip
    finally:
        worker.stop()
        thread.join(timeout=5)
        holder.close()
    assert code == 0 and "results queued" in err
    assert strict_json(out) == strict_json(direct)


def test_help_does_not_load_pandas():
    code = (
        "import sys, contextlib, io; from lifecycle.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try: main(['results', '--help'])\n"
        "    except SystemExit: pass\n"
        "assert '--layer' in out.getvalue()\n"
        "print(sorted(m for m in ('pandas', 'numpy', 'duckdb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_registry_json_is_strict(toy_results, capsys):
    """A registered version has no canary share (NaN in the table): null in the JSON."""
    code = cli.main(["registry", "list", "--db", str(toy_results), "--json"])
    listed = strict_json(capsys.readouterr().out)
    assert code == 0 and listed[0]["canary_share"] is None
    assert listed[0]["registered_at"].endswith("Z")
    code = cli.main(["registry", "history", "toy", "--db", str(toy_results), "--json"])
    history = strict_json(capsys.readouterr().out)
    assert code == 0 and history[0]["action"] == "register"


def test_infrastructure_includes_resource_metrics(toy_results, tmp_path, capsys):
    """CPU and memory per window beside requests and latency: mean and max as logged, and a
    window with resource samples but no predictions still listed."""
    db = tmp_path / "infra.duckdb"
    shutil.copyfile(toy_results, db)
    rng = np.random.default_rng(5)
    ts = pd.Timestamp(DAY0) + pd.to_timedelta(np.arange(0, 4 * 24, 0.5), unit="h")
    metrics = pd.concat(
        pd.DataFrame({"ts": ts, "model_version": "1.0", "metric": name,
                      "value": rng.uniform(lo, hi, len(ts))})
        for name, lo, hi in (("cpu_util", 10, 90), ("memory_mb", 500, 900))
    )  # fmt: skip
    with Store(db) as store:
        ingest(store, "toy", "infra", metrics)
    code, out, err = results(capsys, db, "--layer", "infrastructure", "--format", "json")
    assert code == 0, err
    rows = {
        r["window_start"][:10]: r
        for r in strict_json(out)
        if (r["model_version"], r["variant"]) == ("1.0", "production")
    }
    metrics["day"] = metrics["ts"].dt.strftime("%Y-%m-%d")
    expected = metrics.groupby(["day", "metric"])["value"].agg(["mean", "max"])
    assert sorted(rows) == sorted(expected.index.get_level_values("day").unique())
    for (day, metric), stats in expected.iterrows():
        assert rows[day][f"{metric}_mean"] == pytest.approx(stats["mean"], rel=1e-12)
        assert rows[day][f"{metric}_max"] == pytest.approx(stats["max"], rel=1e-12)
    last = max(rows)
    assert rows[last]["requests"] is None  # resource samples on a day without traffic
