"""Feature names as users have them (capitals, spaces, punctuation, accents): stored under safe
column names, shown, checked and reported under their own names everywhere."""

from __future__ import annotations

import json
import re
import textwrap

import numpy as np
import pandas as pd
import pytest

from lifecycle import catalog
from lifecycle.cli import main
from lifecycle.ingest import ingest
from lifecycle.monitor import monitor_model
from lifecycle.review import drift_baseline, fairness
from lifecycle.store import IDENT, Store, feature_column, feature_table

NAMES = ["MedInc", "Loan amount (EUR)", "Région"]

SPEC = """
name = "housing"
task = "binary_classification"
owner = "alice@example.com"
risk_tier = "low"
version = "1.0"
reference = "reference.parquet"
classes = ["0", "1"]
positive_class = "1"
sensitive_attribute = "Région"

[[features]]
name = "MedInc"
type = "numeric"
range = [0, 20]

[[features]]
name = "Loan amount (EUR)"
type = "numeric"

[[features]]
name = "Région"
type = "categorical"
values = ["Nord", "Sud", "Île-de-France"]

[[rules]]
name = "loan_not_negative"
sql = '"Loan amount (EUR)" >= 0'
"""


def frame(rng, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "MedInc": rng.normal(5 + shift, 1.5, n).clip(0.1, 19),
            "Loan amount (EUR)": rng.gamma(2.0, 5_000.0, n),
            "Région": rng.choice(["Nord", "Sud", "Île-de-France"], n),
        }
    )


@pytest.fixture
def housing(tmp_path) -> Store:
    """`housing` registered from a pandas reference, then two days of logs as pandas writes
    them: ns UTC timestamps, float labels, the feature file's `MedInc` written `medinc`;
    day two has MedInc shifted by 2 SD and three negative loan amounts."""
    rng = np.random.default_rng(11)
    ref = frame(rng, 600)
    score = 1 / (1 + np.exp(-(ref["MedInc"] - 5)))
    ref["prediction"] = score
    ref["actual"] = (rng.uniform(size=600) < score).astype(float)
    ref.to_parquet(tmp_path / "reference.parquet")
    (tmp_path / "spec.toml").write_text(textwrap.dedent(SPEC), encoding="utf-8")
    db = tmp_path / "lifecycle.duckdb"
    assert main(["register", "--db", str(db), str(tmp_path / "spec.toml")]) == 0
    store = Store(db)
    n = 400
    ts = pd.Timestamp("2026-03-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.uniform(0, 2 * 86_400, n)), unit="s"
    )
    feats = pd.concat([frame(rng, n // 2), frame(rng, n // 2, shift=3.0)], ignore_index=True)
    feats.loc[n - 3 :, "Loan amount (EUR)"] = -1.0
    feats.loc[5, "Région"] = None
    ids = [f"h{i}" for i in range(n)]
    score = 1 / (1 + np.exp(-(feats["MedInc"] - 5)))
    predictions = pd.DataFrame(
        {"prediction_id": ids, "request_id": ids, "model_version": "1.0", "ts": ts,
         "prediction": score}
    )  # fmt: skip
    ingest(store, "housing", "predictions", predictions)
    report = ingest(
        store,
        "housing",
        "features",
        feats.rename(columns={"MedInc": "medinc"}).assign(prediction_id=ids),
    )
    assert report.missing_values == {"Région": 1}
    labels = pd.DataFrame(
        {"prediction_id": ids, "actual": (rng.uniform(size=n) < score).astype(float),
         "labeled_at": ts + pd.Timedelta(hours=1)}
    )  # fmt: skip
    ingest(store, "housing", "labels", labels)
    yield store
    store.close()


def test_storage_columns_are_safe_distinct_and_stable():
    assert feature_column("income") == "income"  # databases before free names: unchanged
    assert feature_column("MedInc") == "medinc"
    loan = feature_column("Loan amount (EUR)")
    assert re.fullmatch(r"loan_amount_eur_[0-9a-f]{8}", loan)
    assert feature_column("Loan amount (EUR)") == loan  # a pure function of the name
    names = ["Région", "région!", "123 go", "€", "a b", "a_b", "A-B", "a.b", 'say "hi"', "x" * 128]
    columns = [feature_column(n) for n in names]
    assert all(IDENT.match(c) for c in columns), columns
    assert len(set(columns)) == len(names)


def test_logs_are_stored_under_safe_columns(housing):
    stored = {
        r[0]
        for r in housing.query_all(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
            [feature_table("housing")],
        )
    }
    assert stored == {"prediction_id", "batch_id", *map(feature_column, NAMES)}
    assert housing.query_one(
        f'SELECT count(*) FROM "{feature_table("housing")}" WHERE medinc IS NOT NULL'
    ) == (400,)


def test_monitoring_reports_every_check_under_the_users_names(housing):
    monitor_model(housing, "housing", grain="day")
    rows = housing.query_df(
        "SELECT window_start, check_name, subject, severity, details FROM monitor_results "
        "WHERE model_name = 'housing' ORDER BY window_start"
    )
    drift = rows[rows["check_name"] == "data_drift"]
    assert set(drift["subject"]) == set(NAMES)
    internal = set(map(feature_column, NAMES)) - set(NAMES)
    assert not internal & set(rows["subject"])
    shifted = drift[(drift["subject"] == "MedInc")].iloc[-1]
    assert shifted["severity"] == "significant", drift
    rule = rows[
        (rows["check_name"] == "business_rule") & (rows["window_start"] == shifted["window_start"])
    ]
    details = json.loads(rule.iloc[0]["details"])
    assert details["violations"] == 3, details
    evidence = details["examples"][0]
    assert evidence["Loan amount (EUR)"] == -1.0 and "prediction_id" in evidence
    assert not rows[rows["check_name"] == "schema"]["severity"].isin(["significant"]).any()


def test_review_and_results_use_the_users_names(housing, capsys):
    monitor_model(housing, "housing", grain="day")
    baseline = drift_baseline(housing, "housing", "1.0")
    assert list(baseline["numeric"]["feature"]) == ["MedInc", "Loan amount (EUR)"]
    assert set(baseline["categorical"]["feature"]) == {"Région"}
    assert set(baseline["latest_drift"]["feature"]) == set(NAMES)
    fair = fairness(housing, "housing", "1.0", None)
    assert fair["attribute"] == "Région"
    assert set(fair["frame"]["group"]) >= {"Nord", "Sud", "Île-de-France"}
    capsys.readouterr()
    code = main(
        ["results", "--db", str(housing.path), "--model", "housing", "--layer", "drift",
         "--feature", "Loan amount (EUR)", "--format", "json"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    rows = json.loads(out)
    assert rows and {r["subject"] for r in rows} == {"Loan amount (EUR)"}


def test_a_second_version_adds_and_reuses_columns_by_name(housing, tmp_path):
    spec = (tmp_path / "spec.toml").read_text(encoding="utf-8")
    spec = spec.replace('version = "1.0"', 'version = "2.0"') + textwrap.dedent(
        """
        [[features]]
        name = "Households per km²"
        type = "numeric"
        """
    )
    ref = pd.read_parquet(tmp_path / "reference.parquet")
    ref["Households per km²"] = 3.0
    ref.to_parquet(tmp_path / "reference.parquet")
    (tmp_path / "spec.toml").write_text(spec, encoding="utf-8")
    catalog.register_from_file(housing, tmp_path / "spec.toml")
    with housing.cursor() as cur:
        schema = catalog.feature_schema(cur, "housing")
    assert feature_column("Households per km²") in schema
    assert len(schema) == 4


def test_the_drift_page_shows_and_links_the_users_names(housing, monkeypatch):
    from tests.test_pages_monitoring import figure, heat, open_page, url_value

    at = open_page(housing.path, monkeypatch, "pages/drift.py", model="housing",
                   feature="Loan amount (EUR)", **{"from": "2026-03-01", "to": "2026-03-02"})  # fmt: skip
    assert set(NAMES) <= set(heat(at).index)
    assert {s.label: s.value for s in at.selectbox}["Feature"] == "Loan amount (EUR)"
    assert url_value(at, "feature") == "Loan amount (EUR)"
    overlay = figure(at, "Loan amount (EUR): reference")
    assert [t["name"] for t in overlay["data"]] == ["reference", "current"]
