"""The whole pipeline on hostile strings: class names, segments, categories, versions,
metric names and descriptions with quotes, SQL fragments, backslashes, unicode and newlines.

Every value reaches DuckDB as a bound parameter, so these must be stored exactly as written
and never run: a class name such as `'); SELECT * FROM read_csv('/etc/passwd') --` once
ran its subquery during `register`, and `won't stay` crashed it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from lifecycle import review
from lifecycle.cli import main
from lifecycle.store import Store

NEGATIVE = "won't stay"
POSITIVE = "'); SELECT * FROM read_csv('/etc/passwd') --"
CATEGORIES = ["x' OR 1=1 --", "back\\slash", "ünïcødé ☃", "new\nline", '"double"']
SEGMENTS = ["seg' OR '1'='1", "web\\n", "日本語", "tab\there"]
VERSION = "1.0'--"
METRIC = "lat'ency\\ms"
DESCRIPTION = "A model's \"description\" with 'quotes', \\backslashes\\, ünïcødé\nand newlines"

SPEC = """
name = "hostile"
task = "binary_classification"
owner = "alice@example.com"
risk_tier = "low"
description = {description}
version = {version}
reference = "reference.csv"
classes = {classes}
positive_class = {positive}
sensitive_attribute = "color"

[[features]]
name = "x"
type = "numeric"
range = [0, 10]
description = "it's \\"x\\""

[[features]]
name = "color"
type = "categorical"
values = {categories}

[[kpis]]
name = "conversion"
description = "KPI's 'description' \\\\ ☃"

[[rules]]
name = "x's rule"
sql = "x >= 0"
"""


def rows_of(store: Store, sql: str, params=None) -> list[tuple]:
    return [tuple(r) for r in store.query_df(sql, params).itertuples(index=False)]


def toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def write_spec(folder, rows=300, seed=0):
    rng = np.random.default_rng(seed)
    pd.DataFrame(
        {
            "x": rng.uniform(0, 10, rows),
            "color": rng.choice(CATEGORIES, rows),
            "prediction": rng.uniform(0, 1, rows),
            "actual": rng.choice([NEGATIVE, POSITIVE], rows),
            "segment": rng.choice(SEGMENTS, rows),
        }
    ).to_csv(folder / "reference.csv", index=False)
    spec = folder / "hostile.toml"
    spec.write_text(
        SPEC.format(
            description=toml_str(DESCRIPTION),
            version=toml_str(VERSION),
            classes=json.dumps([NEGATIVE, POSITIVE]),
            positive=toml_str(POSITIVE),
            categories=json.dumps(CATEGORIES),
        ),
        encoding="utf-8",
    )
    return spec


def batches(folder, n=600, seed=1):
    rng = np.random.default_rng(seed)
    ids = [f"p'{i}\\" for i in range(n)]
    ts = pd.Timestamp("2026-01-05", tz="UTC") + pd.to_timedelta(np.arange(n) * 5, unit="min")
    score = rng.uniform(0, 1, n)
    frames = {
        "predictions": pd.DataFrame(
            {
                "prediction_id": ids,
                "model_version": VERSION,
                "ts": ts,
                "prediction": score,
                "predicted_label": np.where(score >= 0.5, POSITIVE, NEGATIVE),
                "segment": rng.choice(SEGMENTS, n),
            }
        ),
        "features": pd.DataFrame(
            {"prediction_id": ids, "x": rng.uniform(0, 10, n), "color": rng.choice(CATEGORIES, n)}
        ),
        "labels": pd.DataFrame(
            {
                "prediction_id": ids,
                "actual": np.where(rng.uniform(0, 1, n) < score, POSITIVE, NEGATIVE),
                "labeled_at": ts + pd.Timedelta(hours=1),
            }
        ),
        "business": pd.DataFrame(
            {"ts": ts[:50], "kpi": "conversion", "value": rng.uniform(0, 1, 50)}
        ),
        "infra": pd.DataFrame(
            {"ts": ts[:50], "model_version": VERSION, "metric": METRIC, "value": 1.0}
        ),
    }
    paths = {}
    for kind, frame in frames.items():
        paths[kind] = folder / f"{kind}.parquet"
        frame.to_parquet(paths[kind])
    return paths


def test_pipeline_stores_hostile_strings_exactly(tmp_path, capsys):
    db = str(tmp_path / "h.duckdb")
    spec = write_spec(tmp_path)
    # the development identity (an admin: no identity config) registers
    assert main(["register", "--db", db, str(spec)]) == 0, capsys.readouterr().err
    for kind, path in batches(tmp_path).items():
        code = main(["ingest", "--db", db, "--model", "hostile", "--kind", kind, str(path)])
        assert code == 0, capsys.readouterr().err
    assert main(["monitor", "--db", db, "--model", "hostile"]) == 0, capsys.readouterr().err
    code = main(["check", "--db", db, "--as-of", "2026-01-12T00:00:00Z", "--no-monitor"])
    assert code in (0, 1, 2, 4), capsys.readouterr().err
    out = tmp_path / "week.html"
    code = main(["report", "--db", db, "--week", "2026-W02", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert out.exists()

    with Store(db) as store:
        # exact strings stored: classes, labels, segments, categories, versions, metrics
        labels = {r[0] for r in rows_of(store, "SELECT DISTINCT actual_label FROM labels")}
        assert labels == {NEGATIVE, POSITIVE}
        positives = store.query_one(
            "SELECT count(*) FILTER (WHERE actual_value = 1.0 AND actual_label = ?), "
            "count(*) FILTER (WHERE actual_value = 1.0) FROM labels",
            [POSITIVE],
        )
        assert positives[0] == positives[1] > 0
        ref = rows_of(
            store, "SELECT DISTINCT actual_label, actual_value FROM reference__hostile ORDER BY 2"
        )
        assert ref == [(NEGATIVE, 0.0), (POSITIVE, 1.0)]
        segs = {r[0] for r in rows_of(store, "SELECT DISTINCT segment FROM predictions")}
        assert segs == set(SEGMENTS)
        cats = {r[0] for r in rows_of(store, "SELECT DISTINCT color FROM features__hostile")}
        assert cats == set(CATEGORIES)
        assert rows_of(store, "SELECT DISTINCT model_version FROM predictions") == [(VERSION,)]
        assert rows_of(store, "SELECT DISTINCT metric FROM infra_metrics") == [(METRIC,)]
        assert store.query_one("SELECT description FROM models")[0] == DESCRIPTION
        # monitoring ran over the windows, and found no "new" category among declared ones
        rows = rows_of(
            store, "SELECT severity FROM monitor_results WHERE check_name = 'new_categories'"
        )
        assert rows and all(r[0] == "none" for r in rows)
        pack = review.review_pack(store, "hostile", VERSION)
    assert pack["fairness"]["attribute"] == "color"
    groups = set(pack["fairness"]["frame"]["group"])
    assert groups == set(CATEGORIES)
    assert main(["registry", "list", "--db", db]) == 0


def test_register_refuses_nothing_hostile_but_runs_nothing(tmp_path):
    """The payload class name is data: registering it reads no file (a read_csv of a path
    that does not exist would fail the registration if it ran)."""
    spec = write_spec(tmp_path)
    text = spec.read_text().replace("/etc/passwd", str(tmp_path / "no-such-file.csv"))
    spec.write_text(text)
    db = str(tmp_path / "h.duckdb")
    ref = pd.read_csv(tmp_path / "reference.csv")
    ref["actual"] = ref["actual"].str.replace("/etc/passwd", str(tmp_path / "no-such-file.csv"))
    ref.to_csv(tmp_path / "reference.csv", index=False)
    assert main(["register", "--db", db, str(spec)]) == 0
    with Store(db) as store:
        assert store.query_one("SELECT count(*) FROM reference__hostile WHERE actual_value = 1")[0]
