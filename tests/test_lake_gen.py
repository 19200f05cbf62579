"""The scripted lake generator (bench/lake_gen.py): layout, types, determinism, labels that
join, the injected change, and specs whose reference registers."""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifecycle import catalog
from lifecycle.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("lake_gen", ROOT / "bench" / "lake_gen.py")
lake_gen = importlib.util.module_from_spec(_spec)
sys.modules["lake_gen"] = lake_gen
_spec.loader.exec_module(lake_gen)

MODELS = ("lake_churn", "lake_fraud", "lake_eta")
DAYS = 8


def small_plan(seed: int = 0, fmt: str = "parquet") -> lake_gen.Plan:
    return lake_gen.Plan(
        predictions=20_000, models=3, features=20, days=DAYS, end="2026-03-10",
        seed=seed, format=fmt, label_delay=1.0,
    )  # fmt: skip


def quiet():
    import io

    return lake_gen.Reporter(io.StringIO())


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lake")
    lake_gen.generate(out, small_plan(), quiet())
    return out


def files(folder: Path) -> str:
    return f"{folder}/**/*.parquet"


LAKE_PAIR = """FROM read_parquet($labels, hive_partitioning = true) l
    LEFT JOIN read_parquet($predictions, hive_partitioning = true) p USING (request_id)"""


def test_layout_and_types(lake):
    for model in MODELS:
        days = sorted(p.name for p in (lake / model / "predictions").iterdir())
        assert days == [f"date=2026-03-{d:02d}" for d in range(3, 11)]
        files = list((lake / model / "predictions").rglob("*.parquet"))
        assert [f.name for f in files] == ["part-00000.parquet"] * DAYS
        schema = pq.read_schema(files[0])
        assert schema.field("request_id").type == pa.string()
        assert schema.field("event_time").type == pa.timestamp("us", tz="UTC")
        assert schema.field("score").type == pa.float64()
        assert schema.field("latency_ms").type == pa.float32()
        assert schema.field("status").type == pa.string()
        classifier = model != "lake_eta"
        assert ("predicted_label" in schema.names) == classifier
        head = 7 if classifier else 6
        assert len(schema.names) == head + 20  # the features live in the same files
        labels = pq.read_schema(next((lake / model / "labels").rglob("*.parquet")))
        assert labels.field("label").type == (pa.string() if classifier else pa.float64())
        assert labels.field("label_time").type == pa.timestamp("us", tz="UTC")
    churn = pq.read_schema(next((lake / "lake_churn" / "predictions").rglob("*.parquet")))
    assert "Account Age (days)" in churn.names  # a lake-style name the spec maps
    manifest = json.loads((lake / lake_gen.MANIFEST).read_text())
    assert manifest["days_written"] == DAYS


def test_counts_statuses_and_labels_join(lake):
    con = duckdb.connect()
    total = 0
    for model in MODELS:
        predictions, labels = lake / model / "predictions", lake / model / "labels"
        n, distinct, errors, null_scores = con.execute(
            "SELECT count(*), count(DISTINCT request_id), count(*) FILTER (status = 'error'), "
            "count(*) FILTER (score IS NULL) FROM read_parquet(?)",
            [files(predictions)],
        ).fetchone()
        pair = {"labels": files(labels), "predictions": files(predictions)}
        total += n
        assert n == distinct
        assert 0 < errors < 0.02 * n and null_scores == errors  # failed requests have no score
        orphans, early, late_partition, labelled = con.execute(
            f"""SELECT count(*) FILTER (p.request_id IS NULL),
                       count(*) FILTER (l.label_time <= p.event_time),
                       count(*) FILTER (l.date <> CAST(timezone('UTC', l.label_time) AS DATE)),
                       count(*) {LAKE_PAIR}""",
            pair,
        ).fetchone()
        assert orphans == 0 and early == 0 and late_partition == 0
        # labels of the last day have not arrived yet (late labels); none from the future
        last_labelled = con.execute(f"SELECT max(p.date) {LAKE_PAIR}", pair).fetchone()[0]
        assert str(last_labelled) < "2026-03-10"
        assert 0.3 * n < labelled < n
    assert total == 20_000


def test_same_seed_same_lake_other_seed_other_lake(tmp_path):
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    lake_gen.generate(first, small_plan(seed=7), quiet())
    lake_gen.generate(second, small_plan(seed=7), quiet())
    lake_gen.generate(other, small_plan(seed=8), quiet())
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix == ".parquet":
            assert pq.read_table(first / rel).equals(pq.read_table(second / rel)), rel
        else:
            assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    rel = Path("lake_churn/predictions/date=2026-03-05/part-00000.parquet")
    assert not pq.read_table(first / rel).equals(pq.read_table(other / rel))


def test_append_day_adds_the_next_day_and_its_arriving_labels(tmp_path):
    out = tmp_path / "lake"
    lake_gen.generate(out, small_plan(), quiet())
    before = {p: p.read_bytes() for p in out.rglob("*.parquet")}
    figures = lake_gen.append_day(out, quiet())
    assert figures["date"] == "2026-03-11" and figures["predictions"] > 0
    new = [p for p in out.rglob("*.parquet") if p not in before]
    assert sorted(p.parent.parent.name for p in new) == sorted(
        ["labels", "predictions"] * 3
    )  # each model: its predictions of the day and the labels arriving that day
    assert all(p.read_bytes() == data for p, data in before.items())  # nothing rewritten
    con = duckdb.connect()
    for model in MODELS:
        orphans, dupes = con.execute(
            f"""SELECT count(*) FILTER (p.request_id IS NULL),
                       count(*) - count(DISTINCT l.request_id) {LAKE_PAIR}""",
            {
                "labels": files(out / model / "labels"),
                "predictions": files(out / model / "predictions"),
            },
        ).fetchone()
        assert orphans == 0 and dupes == 0  # regenerated in-flight labels equal the originals
    assert json.loads((out / lake_gen.MANIFEST).read_text())["days_written"] == DAYS + 1


def test_covariate_drift_in_churn_only(lake):
    con = duckdb.connect()

    def shift(model: str, column: str) -> float:
        """Mean of the last day minus mean of the first five, in standard deviations."""
        early, late, sd = con.execute(
            f"""SELECT avg(ln(1 + "{column}")) FILTER (date < DATE '2026-03-08'),
                       avg(ln(1 + "{column}")) FILTER (date = DATE '2026-03-10'),
                       stddev(ln(1 + "{column}")) FILTER (date < DATE '2026-03-08')
                FROM read_parquet(?, hive_partitioning = true)""",
            [files(lake / model / "predictions")],
        ).fetchone()
        return (late - early) / sd

    assert shift("lake_churn", "Account Age (days)") < -0.5
    assert shift("lake_churn", "support_tickets_90d") > 0.3
    assert abs(shift("lake_churn", "logins_30d")) < 0.15
    assert abs(shift("lake_eta", "Distance KM")) < 0.15
    assert abs(shift("lake_fraud", "Txn Amount (USD)")) < 0.15


def test_concept_drift_lowers_fraud_quality_only():
    plan = small_plan()
    rng = np.random.default_rng

    def quality(index: int, day: int) -> float:
        gen = lake_gen.ModelGen(lake_gen.MODELS[index], index, 20, plan.seed, DAYS)
        drawn = gen.draw(rng(day), 40_000, day, None)
        if gen.model.classifier:
            positive = drawn["actual"] == gen.model.classes[1]
            return lake_gen.roc_auc(drawn["score"], positive)
        return -float(np.mean(np.abs(drawn["score"] - drawn["actual"])))  # minus MAE

    assert quality(1, 0) - quality(1, DAYS - 1) > 0.1  # fraud: AUC drops near the end
    assert abs(quality(0, 0) - quality(0, DAYS - 1)) < 0.03  # churn: covariate drift only
    assert abs(quality(2, 0) - quality(2, DAYS - 1)) < 0.5  # eta: stable, MAE within 0.5 min


def test_specs_register_and_read_the_lake_in_place(lake, store):
    for model in MODELS:
        path = lake / "specs" / f"{model}.toml"
        sources = tomllib.loads(path.read_text())["sources"]
        assert sources["predictions"]["columns"]["prediction_id"] == "request_id"
        assert sources["labels"]["columns"]["actual"] == "label"
        # reference CSV validated against the spec, lake columns checked against the mapping
        catalog.register(store, load_spec(path))
    assert store.query_one("SELECT count(*) FROM model_versions")[0] == 3
    assert all(n == 0 for n in log_rows(store.row_counts()).values())  # nothing copied
    per_model = dict(store.query_all("SELECT model_name, count(*) FROM predictions GROUP BY 1"))
    assert sum(per_model.values()) == 20_000 and set(per_model) == set(MODELS)
    mapped = store.query_one(
        "SELECT count(account_age_days), count(nps_score), count(*) FROM features__lake_churn"
    )
    assert mapped[0] == mapped[2] and 0.9 * mapped[2] < mapped[1] < mapped[2]  # NPS: 4% missing
    labels = dict(store.query_all("SELECT model_name, count(actual_label) FROM labels GROUP BY 1"))
    assert labels["lake_fraud"] > 0 and labels.get("lake_eta", 0) == 0  # eta: numeric actuals


def log_rows(rows: dict[str, int]) -> dict[str, int]:
    logs = ("predictions", "labels", "business_events")
    return {k: v for k, v in rows.items() if k in logs or k.startswith("features__")}


def test_delta_format_writes_one_commit_per_day(tmp_path):
    deltalake = pytest.importorskip("deltalake")
    out = tmp_path / "lake"
    plan = lake_gen.Plan(predictions=3_000, models=1, features=20, days=4, end="2026-03-10",
                         seed=0, format="delta", label_delay=1.0)  # fmt: skip
    lake_gen.generate(out, plan, quiet())
    table = deltalake.DeltaTable(str(out / "lake_churn" / "predictions"))
    assert table.version() == 3  # versions 0..3: one commit per day
    assert table.metadata().partition_columns == ["date"]
    data = table.to_pyarrow_table()
    assert data.num_rows == 3_000 and "Account_Age_days" in data.column_names
    raw = tomllib.loads((out / "specs" / "lake_churn.toml").read_text())
    assert {raw["sources"][k]["format"] for k in ("predictions", "features", "labels")} == {"delta"}
    assert raw["sources"]["features"]["columns"]["account_age_days"] == "Account_Age_days"
