"""Drift impact end to end (issue 12, done-when (c)): through monitoring, the alert check, the
weekly review and the pages, an important feature shifted by d ranks above an unimportant one
shifted by 2d, and the unimportant one's response is "investigate" (its alert a warning)."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from lifecycle import drift_impact, importance
from lifecycle.alerts import report
from lifecycle.alerts.check import run_check
from lifecycle.alerts.lifecycle import list_alerts
from lifecycle.cli import main
from lifecycle.drift.results import results
from lifecycle.ingest import ingest
from lifecycle.monitor import monitor_model
from lifecycle.store import Store
from tests.test_registry import to_production_first

SPEC = """
name = "scoring"
task = "binary_classification"
owner = "alice@example.com"
risk_tier = "low"
version = "1.0"
reference = "reference.parquet"
classes = ["0", "1"]
positive_class = "1"

[[features]]
name = "utilisation"
type = "numeric"

[[features]]
name = "tenure"
type = "numeric"

[[features]]
name = "channel_score"
type = "numeric"
"""
IMPORTANT, UNIMPORTANT = "utilisation", "channel_score"
SHIFT = 0.5  # d, in reference standard deviations: significant (>= 0.3) for both features
DAY1, DAY2 = pd.Timestamp("2026-03-02", tz="UTC"), pd.Timestamp("2026-03-03", tz="UTC")


def features(rng, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "utilisation": rng.normal(0, 1, n),
            "tenure": rng.normal(0, 1, n),
            "channel_score": rng.normal(0, 1, n),
        }
    )


def score(frame: pd.DataFrame) -> np.ndarray:
    """The model leans on utilisation, some on tenure, hardly on channel_score."""
    logit = 2.0 * frame["utilisation"] + 0.7 * frame["tenure"] + 0.05 * frame["channel_score"]
    return (1 / (1 + np.exp(-logit))).to_numpy()


def build(folder, score_of) -> Store:
    """`scoring` 1.0 registered from a 3,000-row reference scored by `score_of`; two days of
    1,500 predictions: day 1 like the reference, day 2 with utilisation shifted by d and
    channel_score by 2d. In production, monitored on days and checked; returns the path of
    the closed database (pages open it)."""
    rng = np.random.default_rng(7)
    ref = features(rng, 3000)
    ref["prediction"] = score_of(ref, rng)
    ref["actual"] = (rng.uniform(size=len(ref)) < ref["prediction"]).astype(float)
    ref.to_parquet(folder / "reference.parquet")
    (folder / "spec.toml").write_text(textwrap.dedent(SPEC), encoding="utf-8")
    db = folder / "lifecycle.duckdb"
    assert main(["register", "--db", str(db), str(folder / "spec.toml")]) == 0
    n = 1500
    day2 = features(rng, n).assign(
        utilisation=lambda f: f["utilisation"] + SHIFT,
        channel_score=lambda f: f["channel_score"] + 2 * SHIFT,
    )
    feats = pd.concat([features(rng, n), day2], ignore_index=True)
    ids = [f"s{i}" for i in range(2 * n)]
    ts = pd.concat(
        [pd.Series(start + pd.to_timedelta(np.sort(rng.uniform(0, 86_000, n)), unit="s"))
         for start in (DAY1, DAY2)], ignore_index=True,
    )  # fmt: skip
    with Store(db) as store:
        to_production_first(store, "1.0", model="scoring")  # the weekly review's subject
        predictions = pd.DataFrame({"prediction_id": ids, "request_id": ids,
                                    "model_version": "1.0", "ts": ts,
                                    "prediction": score_of(feats, rng)})  # fmt: skip
        ingest(store, "scoring", "predictions", predictions)
        ingest(store, "scoring", "features", feats.assign(prediction_id=ids))
        monitor_model(store, "scoring", grain="day")
        run_check(store, monitor=False, as_of=DAY2 + pd.Timedelta(days=1))
    return db


@pytest.fixture(scope="module")
def scoring(tmp_path_factory):
    return build(tmp_path_factory.mktemp("impact"), lambda frame, rng: score(frame))


@pytest.fixture(scope="module")
def unexplained(tmp_path_factory):
    """The same model and traffic, but scores no proxy can reproduce from the features
    (random): no valid importance profile."""
    return build(tmp_path_factory.mktemp("unexplained"),
                 lambda frame, rng: rng.uniform(0.05, 0.95, len(frame)))  # fmt: skip


def day2_drift(db) -> pd.DataFrame:
    with Store(db, read_only=True) as store:
        stored = results(store, "scoring", grain="day", check="data_drift", since=DAY2)
    return stored.set_index("subject")


def test_the_stored_profile_is_valid_and_ranks_what_the_model_uses(scoring):
    with Store(scoring, read_only=True) as store:
        profile = drift_impact.importance_profile(store, "scoring", "1.0")
    assert profile is not None and profile.valid and profile.reason is None
    assert profile.fidelity > importance.MIN_FIDELITY
    assert list(profile.shares["feature"]) == ["utilisation", "tenure", "channel_score"]
    assert profile.shares["share"].sum() == pytest.approx(1.0)
    assert profile.share(UNIMPORTANT) < profile.min_share == 0.05
    assert drift_impact.profile_note(profile) is None


def test_an_important_shift_outranks_an_unimportant_one_twice_as_large(scoring):
    drift = day2_drift(scoring)
    imp, unimp = drift.loc[IMPORTANT], drift.loc[UNIMPORTANT]
    # the unimportant feature moved more, and both moves are significant
    assert unimp["effect_size"] > 1.5 * imp["effect_size"]
    assert imp["severity"] == unimp["severity"] == "significant"
    # ... but the important one has the larger impact, and its response stands
    assert imp["details"]["impact"] > 5 * unimp["details"]["impact"]
    assert imp["response"] == "retrain" and "response_capped" not in imp["details"]
    assert unimp["response"] == "investigate"
    assert "investigate rather than retrain" in unimp["details"]["response_capped"]
    ranking = drift_impact.impact_ranking(drift.reset_index())
    assert list(ranking["feature"]) == [IMPORTANT, UNIMPORTANT]
    assert ranking["capped"].iloc[0] is None and ranking["capped"].iloc[1]
    # day 1 is like the reference: nothing flagged there
    with Store(scoring, read_only=True) as store:
        day1 = results(store, "scoring", grain="day", check="data_drift", until=DAY2)
    assert drift_impact.impact_ranking(day1).empty


def test_the_unimportant_features_alert_is_a_warning_to_investigate(scoring):
    with Store(scoring, read_only=True) as store:
        alerts = list_alerts(store, model="scoring").query("rule == 'data_drift'")
    alerts = alerts.set_index("subject")
    assert alerts.loc[IMPORTANT, "severity"] == "critical"
    assert alerts.loc[IMPORTANT, "response"] == "retrain"
    assert alerts.loc[UNIMPORTANT, "severity"] == "warning"
    assert alerts.loc[UNIMPORTANT, "response"].startswith("investigate")
    evidence = alerts.loc[UNIMPORTANT, "evidence"]
    lines = drift_impact.impact_lines(evidence)
    assert "investigate rather than retrain" in lines[0] and lines[1].startswith("Impact 0.")


def test_the_weekly_review_ranks_drifting_features_by_impact(scoring):
    with Store(scoring, read_only=True) as store:
        review = report.weekly_review(store, "2026-W10")
    (week,) = review.models
    assert [row["feature"] for row in week.drift] == [IMPORTANT, UNIMPORTANT]
    assert week.drift_note is None
    text = report.to_markdown(review)
    assert "Drifting features this week (2), by impact (importance x effect)" in text
    first, second = text.index(f"- {IMPORTANT}: "), text.index(f"- {UNIMPORTANT}: ")
    assert first < second
    line = text[second:].splitlines()[0]
    assert "<1% of importance" in line or "% of importance" in line
    assert "response: investigate (capped" in line
    assert f"<li>{IMPORTANT}: " in report.to_html(review)


# -- without a valid profile: severity decides, and the reason is said once -----------------------


def test_without_a_valid_profile_severity_decides_and_the_reason_is_kept(unexplained):
    with Store(unexplained, read_only=True) as store:
        profile = drift_impact.importance_profile(store, "scoring", "1.0")
        alerts = list_alerts(store, model="scoring").query("rule == 'data_drift'")
        review = report.weekly_review(store, "2026-W10")
    assert not profile.valid and profile.shares.empty
    assert profile.fidelity < importance.MIN_FIDELITY
    assert "would not be trustworthy" in drift_impact.profile_note(profile)
    drift = day2_drift(unexplained)
    assert "importance" not in drift.loc[UNIMPORTANT, "details"]
    assert drift.loc[UNIMPORTANT, "response"] == "retrain"  # severity alone
    assert set(alerts["severity"]) == {"critical"}
    ranking = drift_impact.impact_ranking(drift.reset_index())
    assert ranking["impact"].isna().all()
    assert set(ranking["feature"]) == {IMPORTANT, UNIMPORTANT}
    (week,) = review.models
    assert "would not be trustworthy" in week.drift_note
    assert "Drifting features this week (2), by severity" in report.to_markdown(review)


def test_ranking_by_severity_orders_by_grade_then_windows_flagged():
    stored = pd.DataFrame(
        {
            "check_name": "data_drift",
            "status": "ok",
            "subject": ["a", "b", "b", "c", "d"],
            "severity": ["moderate", "significant", "minor", "none", "significant"],
            "method": "wasserstein",
            "effect_size": [0.2, 0.4, 0.1, 0.01, 0.5],
            "response": ["enhanced monitoring", "retrain", "investigate", "no action", "retrain"],
            "details": [{}, {}, {}, {}, {}],
            "window_start": pd.to_datetime(
                ["2026-03-01", "2026-03-01", "2026-03-02", "2026-03-01", "2026-03-02"], utc=True
            ),
        }
    )
    ranking = drift_impact.impact_ranking(stored)
    # b and d both significant: b was flagged in two windows; c is not drifting
    assert list(ranking["feature"]) == ["b", "d", "a"]
    assert list(ranking["windows_flagged"]) == [2, 1, 1]
    assert ranking.loc[0, "severity"] == "significant"  # b's peak, not its minor window
    assert drift_impact.feature_order(ranking, ["c", "a", "b", "d"], None) == ["b", "d", "a", "c"]


# -- the pages ------------------------------------------------------------------------------------


def test_the_drift_page_ranks_by_impact_and_shows_the_importance(scoring, monkeypatch):
    from tests.test_pages_monitoring import cell_details, grid_rows, heat, open_page

    at = open_page(scoring, monkeypatch, "pages/drift.py", model="scoring",
                   **{"from": "2026-03-02", "to": "2026-03-03"})  # fmt: skip
    (ranking,) = [d.value for d in at.dataframe if "impact" in d.value.columns]
    assert list(ranking["feature"]) == [IMPORTANT, UNIMPORTANT]
    assert ranking["importance"].iloc[0] > 0.5 and ranking["importance"].iloc[1] < 0.05
    assert ranking["impact"].iloc[0] > ranking["impact"].iloc[1]
    assert ranking["response"].tolist() == ["retrain", "investigate (capped)"]
    assert any("by impact" in m.value for m in at.markdown)
    assert not at.info  # a valid profile: no note
    # the grid: drifting features in impact order, then the rest; labels carry the share
    rows = grid_rows(at)
    assert [r.split(" (")[0] for r in rows[:3]] == [IMPORTANT, UNIMPORTANT, "tenure"]
    assert rows[1] == f"{UNIMPORTANT} (<1%)" or rows[1].endswith("%)")
    assert set(heat(at).loc[[IMPORTANT, UNIMPORTANT]].iloc[:, -1]) == {3}  # significant
    # the page opens on the most impactful finding
    values = {s.label: s.value for s in at.selectbox}
    assert (values["Feature"], values["Window"]) == (IMPORTANT, "2026-03-03T00:00")
    details = cell_details(at)
    assert float(details["share of the model's importance"].rstrip("%")) > 50
    assert "why the response is investigate" not in details
    # the unimportant feature: why its response is investigate
    at.selectbox(key="feature").set_value(UNIMPORTANT).run()
    details = cell_details(at)
    assert details["response"] == "investigate"
    assert "investigate rather than retrain" in details["why the response is investigate"]
    assert any("Response capped at investigate" in i.value for i in at.info)


def test_the_drift_page_says_once_why_it_ranks_by_severity(unexplained, monkeypatch):
    from tests.test_pages_monitoring import open_page

    at = open_page(unexplained, monkeypatch, "pages/drift.py", model="scoring",
                   **{"from": "2026-03-02", "to": "2026-03-03"})  # fmt: skip
    notes = [i.value for i in at.info if "ranked by severity" in i.value]
    assert len(notes) == 1 and "would not be trustworthy" in notes[0]
    assert any(m.value.startswith("**Drifting features, by severity**") for m in at.markdown)
    (ranking,) = [d.value for d in at.dataframe if "windows" in d.value.columns]
    assert "importance" not in ranking.columns and "impact" not in ranking.columns
    at = open_page(unexplained, monkeypatch, "pages/version.py", compute=False,
                   model="scoring", version="1.0")  # fmt: skip
    assert any("No valid importance profile" in w.value for w in at.warning)


def test_version_detail_draws_the_importance_profile(scoring, monkeypatch):
    from tests.test_pages_monitoring import figure, open_page

    at = open_page(scoring, monkeypatch, "pages/version.py", compute=False, model="scoring",
                   version="1.0")  # fmt: skip
    fig = figure(at, "scoring 1.0: share of importance per feature")
    (bars,) = fig["data"]
    assert bars["orientation"] == "h"
    assert bars["y"][-1] == IMPORTANT  # largest on top
    assert bars["text"][-1].endswith("%") and float(bars["text"][-1][:-1]) > 50
    assert any("fidelity R²" in c.value and "permutation importance" in c.value
               for c in at.caption)  # fmt: skip


def test_the_alert_shows_importance_and_impact(scoring, monkeypatch):
    from tests.test_pages_monitoring import open_page

    with Store(scoring, read_only=True) as store:
        alerts = list_alerts(store, model="scoring")
    alert_id = int(alerts.loc[alerts["subject"] == UNIMPORTANT, "alert_id"].iloc[0])
    at = open_page(scoring, monkeypatch, "pages/alerts.py", compute=False,
                   alert=str(alert_id))  # fmt: skip
    inbox = at.dataframe[0].value.set_index("alert_id")
    assert inbox.loc[alert_id, "importance"] < 0.05
    (line,) = [m.value for m in at.markdown if m.value.startswith("**Drift impact:**")]
    assert "investigate rather than retrain" in line and "Impact 0." in line


def test_the_weekly_review_page_lists_drifting_features_by_impact(scoring, monkeypatch):
    from tests.test_pages_monitoring import open_page

    at = open_page(scoring, monkeypatch, "pages/weekly_review.py", compute=False, week="2026-W10")
    texts = [m.value for m in at.markdown]
    assert "**Drifting features this week (2), by impact (importance x effect)**" in texts
    (items,) = [t for t in texts if t.startswith(f"- {IMPORTANT}: ")]
    assert items.index(f"- {IMPORTANT}") < items.index(f"- {UNIMPORTANT}")
    assert "% of importance" in items and "investigate (capped" in items
