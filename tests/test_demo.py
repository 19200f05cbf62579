"""The demo database holds what data/README.md promises, measured from the data itself.

Incident onsets are found from the logs (first day a statistic leaves its healthy band) and
compared with the documented dates, written here as days before the end of the data.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from lifecycle.store import Store
from tests.conftest import DEMO_END

END = datetime.fromisoformat(DEMO_END).replace(tzinfo=UTC)


def day(days_before_end: int) -> datetime:
    return END - timedelta(days=days_before_end)


@pytest.fixture(scope="module")
def con(demo_db):
    con = duckdb.connect(str(demo_db), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    yield con
    con.close()


def daily(con, sql: str) -> dict[datetime, float]:
    """Run a query returning (day, value) rows; keys are UTC datetimes."""
    return {d.astimezone(UTC): v for d, v in con.execute(sql).fetchall()}


def first_day_above(series: dict[datetime, float], threshold: float) -> datetime:
    return min(d for d, v in series.items() if v is not None and v > threshold)


def test_volume_models_and_lifecycle_states(con):
    per_model = dict(
        con.execute("SELECT model_name, count(*) FROM predictions GROUP BY 1").fetchall()
    )
    assert set(per_model) == {"credit_risk", "churn", "delivery_time"}
    assert sum(per_model.values()) >= 1_000_000
    states = con.execute(
        "SELECT model_name, list(state ORDER BY version) FROM model_versions GROUP BY 1"
    ).fetchall()
    assert dict(states) == {
        "credit_risk": ["retired", "production", "shadow", "pending_approval"],
        "churn": ["retired", "production", "canary"],
        "delivery_time": ["retired", "production", "shadow", "pending_approval"],
    }
    span = con.execute("SELECT min(ts), max(ts) FROM predictions").fetchone()
    assert span[0] >= END - timedelta(days=90) and span[1] < END
    assert (span[1] - span[0]).days >= 89
    risk = dict(con.execute("SELECT name, risk_tier FROM models").fetchall())
    assert risk == {"credit_risk": "high", "churn": "low", "delivery_time": "low"}


def test_shadow_predictions_sit_beside_production(con):
    rows = con.execute(
        """
        SELECT s.model_name, count(*) AS shadow, count(p.prediction_id) AS paired,
               count(*) FILTER (WHERE s.model_version = p.model_version) AS same_version
        FROM predictions s LEFT JOIN predictions p
          ON p.request_id = s.request_id AND p.variant = 'production'
        WHERE s.variant = 'shadow' GROUP BY 1
        """
    ).fetchall()
    assert len(rows) == 3
    for _model, shadow, paired, same_version in rows:
        assert shadow > 50_000 and paired == shadow and same_version == 0


def test_one_version_awaits_review_in_each_risk_tier(con):
    pending = con.execute(
        "SELECT m.risk_tier, v.model_name, v.version, v.review_quorum, v.registered_by, "
        "v.review_requested_by FROM model_versions v JOIN models m ON m.name = v.model_name "
        "WHERE v.state = 'pending_approval' ORDER BY m.risk_tier"
    ).fetchall()
    assert [row[0] for row in pending] == ["high", "low"]  # the registry's two tiers, once each
    tiers = {tier: rest for tier, *rest in pending}
    assert tiers["high"][:3] == ["credit_risk", "1.3", 2]  # committee: two reviewers
    assert tiers["low"][:3] == ["delivery_time", "1.3", 1]  # peer review
    # the app's default development identity sent the low-risk one, so four-eyes shows
    assert tiers["low"][3:] == ["developer@localhost", "developer@localhost"]
    for _tier, model, version, *_ in pending:  # recorded by the registry's own actions
        actions = con.execute(
            "SELECT list(action ORDER BY ts, audit_id), list(actor ORDER BY ts, audit_id) "
            "FROM audit_log WHERE model_name = ? AND version = ?",
            [model, version],
        ).fetchone()
        expected = ["register", "request_approval"] + (
            ["approve"] if model == "credit_risk" else []
        )
        assert actions[0] == expected, model
        assert (
            con.execute(
                "SELECT count(*) FROM predictions WHERE model_name = ? AND model_version = ?",
                [model, version],
            ).fetchone()[0]
            == 0
        )  # awaiting review: never served
    approvals = con.execute(
        "SELECT reviewer FROM approvals WHERE model_name = 'credit_risk' AND version = '1.3'"
    ).fetchall()
    assert approvals == [("rita.reviewer@example.com",)]  # one of the two it needs


def test_churn_candidate_is_a_canary_mid_rollout_with_its_own_traffic(con):
    pointer = con.execute(
        "SELECT production_version, canary_version, canary_share FROM deployments "
        "WHERE model_name = 'churn'"
    ).fetchone()
    assert pointer == ("2.0", "2.1", 0.05)  # an intermediate step: 1% -> 5% -> 25% -> 50%
    steps = con.execute(
        "SELECT ts, from_state, to_state, evidence->>'canary_share' FROM audit_log "
        "WHERE model_name = 'churn' AND version = '2.1' AND action = 'promote' ORDER BY ts"
    ).fetchall()
    assert [(a, b, float(c)) for _, a, b, c in steps[1:]] == [
        ("shadow", "canary", 0.01), ("canary", "canary", 0.05),
    ]  # fmt: skip
    assert [ts.astimezone(UTC) for ts, *_ in steps[1:]] == [day(10), day(5)]
    # the canary answers real requests instead of production, in the shares of its steps
    share = dict(
        con.execute(
            "SELECT ts >= ? AS raised, avg((variant = 'canary')::INT) FROM predictions "
            "WHERE model_name = 'churn' AND variant IN ('production', 'canary') AND ts >= ? "
            "GROUP BY 1",
            [day(5), day(10)],
        ).fetchall()
    )
    assert 0.005 < share[False] < 0.015 and 0.04 < share[True] < 0.06
    canary = con.execute(
        "SELECT min(ts), count(*), count(DISTINCT model_version), "
        "count(*) FILTER (WHERE request_id IN (SELECT request_id FROM predictions "
        "WHERE model_name = 'churn' AND variant <> 'canary')) "
        "FROM predictions WHERE model_name = 'churn' AND variant = 'canary'"
    ).fetchone()
    assert canary[0] >= day(10) and canary[1] > 500 and canary[2] == 1
    assert canary[3] == 0  # a request is answered by the canary or by production, never both
    shadow_end = con.execute(
        "SELECT max(ts) FROM predictions WHERE model_name = 'churn' AND variant = 'shadow'"
    ).fetchone()[0]
    assert shadow_end < day(10)  # its shadow stopped when the canary started
    logged = con.execute(
        "SELECT count(*) FROM features__churn f JOIN predictions p USING (prediction_id) "
        "WHERE p.variant = 'canary'"
    ).fetchone()[0]
    infra = con.execute(
        "SELECT min(ts) FROM infra_metrics WHERE model_name = 'churn' AND variant = 'canary'"
    ).fetchone()[0]
    assert logged == canary[1] and infra == day(10)


def test_labels_arrive_late_and_some_never(con):
    rows = con.execute(
        """
        SELECT p.model_name,
               min(epoch(l.labeled_at) - epoch(p.ts)) / 3600 AS min_delay_h,
               count(l.prediction_id) / count(*) AS labelled,
               max(l.labeled_at) AS last_label
        FROM predictions p LEFT JOIN labels l USING (prediction_id)
        WHERE p.ts < TIMESTAMPTZ '2026-10-01'  -- old enough for every delay to have passed
        GROUP BY 1
        """
    ).fetchall()
    by_model = {m: (delay, share, last) for m, delay, share, last in rows}
    assert by_model["credit_risk"][0] >= 14 * 24  # credit defaults are known weeks later
    assert by_model["churn"][0] >= 7 * 24
    assert by_model["delivery_time"][0] > 0.5  # a delivery takes at least minutes
    assert 0.80 < by_model["credit_risk"][1] < 0.90  # ~15% never labelled
    assert 0.85 < by_model["churn"][1] < 0.95
    assert 0.95 < by_model["delivery_time"][1] < 1.0
    recent = con.execute(
        "SELECT count(l.prediction_id) FROM predictions p JOIN labels l USING (prediction_id) "
        "WHERE p.model_name = 'credit_risk' AND p.ts >= ?",
        [day(14)],
    ).fetchone()[0]
    assert recent == 0  # the last two weeks of credit decisions have no outcome yet


def test_models_are_real_classifiers(con):
    """Production scores separate the classes as a fitted model's would (AUC well above 0.5)."""
    for model in ("credit_risk", "churn"):
        score, actual = (
            con.execute(
                "SELECT p.prediction, l.actual_value FROM predictions p JOIN labels l "
                "USING (prediction_id) WHERE p.model_name = ? AND p.variant = 'production' "
                "AND p.status = 'ok' AND p.ts < ? USING SAMPLE 20000 ROWS",
                [model, day(36)],
            )
            .fetchnumpy()
            .values()
        )
        assert 0.68 < roc_auc_score(actual, score) < 0.9, model


def test_gradual_drift_in_debt_ratio_from_day_35(con):
    means = daily(
        con,
        "SELECT date_trunc('day', p.ts), avg(f.debt_ratio) FROM predictions p "
        "JOIN features__credit_risk f USING (prediction_id) WHERE p.variant = 'production' "
        "GROUP BY 1",
    )
    ref = con.execute("SELECT avg(debt_ratio), stddev(debt_ratio) FROM reference__credit_risk")
    ref_mean, ref_sd = ref.fetchone()
    onset = first_day_above(means, ref_mean + 0.1 * ref_sd)
    assert onset == day(35)
    before = [v for d, v in means.items() if d < day(35)]
    assert max(abs(v - ref_mean) for v in before) < 0.05 * ref_sd
    # gradual: the mean keeps rising, week after week, to over one standard deviation
    weekly = [
        np.mean([v for d, v in means.items() if day(35 - 7 * k) <= d < day(28 - 7 * k)])
        for k in range(5)
    ]
    assert all(b > a for a, b in itertools.pairwise(weekly))
    assert means[day(1)] > ref_mean + 1.0 * ref_sd
    last_week = con.execute(
        "SELECT f.debt_ratio FROM predictions p JOIN features__credit_risk f USING (prediction_id) "
        "WHERE p.ts >= ? AND p.variant = 'production'",
        [day(7)],
    ).fetchnumpy()["debt_ratio"]
    reference = con.execute("SELECT debt_ratio FROM reference__credit_risk").fetchnumpy()
    assert stats.ks_2samp(reference["debt_ratio"], last_week).pvalue < 1e-12


def test_upstream_break_usage_gb_mostly_null_for_two_days(con):
    null_rate = daily(
        con,
        "SELECT date_trunc('day', p.ts), avg((f.usage_gb IS NULL)::INT) FROM predictions p "
        "JOIN features__churn f USING (prediction_id) GROUP BY 1",
    )
    broken = sorted(d for d, v in null_rate.items() if v > 0.5)
    assert broken == [day(50), day(49)]
    assert all(null_rate[d] > 0.8 for d in broken)
    assert all(v == 0 for d, v in null_rate.items() if d not in broken)


def test_unseen_employment_type_from_day_20(con):
    allowed = con.execute(
        "SELECT spec->'$.features' FROM model_versions WHERE model_name = 'credit_risk' "
        "AND state = 'production'"
    ).fetchone()[0]
    assert "gig_worker" not in allowed
    share = daily(
        con,
        "SELECT date_trunc('day', p.ts), avg((f.employment_type = 'gig_worker')::INT) "
        "FROM predictions p JOIN features__credit_risk f USING (prediction_id) "
        "WHERE p.variant = 'production' GROUP BY 1",
    )
    assert first_day_above(share, 0.0) == day(20)
    assert 0.06 < np.mean([v for d, v in share.items() if d >= day(20)]) < 0.10


def test_latency_spike_with_errors_on_day_25(con):
    hourly = con.execute(
        "SELECT date_trunc('hour', ts) AS h, quantile_cont(latency_ms, 0.95), "
        "avg((status = 'error')::INT) FROM predictions "
        "WHERE model_name = 'delivery_time' AND variant = 'production' GROUP BY 1"
    ).fetchall()
    typical = np.median([p95 for _, p95, _ in hourly])
    spiking = sorted(h.astimezone(UTC) for h, p95, _ in hourly if p95 > 4 * typical)
    assert spiking == [day(25) + timedelta(hours=h) for h in range(10, 16)]
    errors = {h.astimezone(UTC): e for h, _, e in hourly}
    assert all(errors[h] > 0.08 for h in spiking)
    assert np.mean([e for h, e in errors.items() if h not in spiking]) < 0.005
    other_models = con.execute(
        "SELECT max(latency_ms) FROM predictions WHERE model_name <> 'delivery_time'"
    ).fetchone()[0]
    assert other_models < 4 * 45 * 4  # no spike elsewhere


def test_concept_drift_inputs_stable_error_grows_from_day_40(con):
    mae = daily(
        con,
        "SELECT date_trunc('day', p.ts), avg(abs(l.actual_value - p.prediction)) "
        "FROM predictions p JOIN labels l USING (prediction_id) "
        "WHERE p.model_name = 'delivery_time' AND p.variant = 'production' GROUP BY 1",
    )
    healthy = [v for d, v in mae.items() if day(60) <= d < day(40)]
    assert max(healthy) < 4.5
    assert first_day_above(mae, 1.5 * max(healthy)) == day(40)
    before, after = (
        con.execute(
            "SELECT f.traffic_index FROM predictions p JOIN features__delivery_time f "
            f"USING (prediction_id) WHERE p.variant = 'production' AND p.ts {op} ? "
            "USING SAMPLE 20000 ROWS",
            [day(40)],
        ).fetchnumpy()["traffic_index"]
        for op in ("<", ">=")
    )
    assert stats.ks_2samp(before, after).statistic < 0.03  # the inputs did not move


def test_kpi_drop_while_accuracy_holds_from_day_15(con):
    conversion = daily(
        con,
        "SELECT date_trunc('day', ts), avg(value) FROM business_events "
        "WHERE model_name = 'churn' AND kpi = 'conversion' GROUP BY 1",
    )
    before = [v for d, v in conversion.items() if day(45) <= d < day(15)]
    after = [v for d, v in conversion.items() if d >= day(14)]
    assert 0.26 < np.mean(before) < 0.34 and 0.11 < np.mean(after) < 0.19
    accuracy = dict(
        con.execute(
            "SELECT p.ts >= ? AS late, avg((p.predicted_label = l.actual_label)::INT) "
            "FROM predictions p JOIN labels l USING (prediction_id) WHERE p.model_name = 'churn' "
            "AND p.variant = 'production' AND p.model_version = '2.0' "
            "AND p.ts >= ? GROUP BY 1",
            [day(15), day(45)],
        ).fetchall()
    )
    assert abs(accuracy[True] - accuracy[False]) < 0.03


def test_demo_database_opens_with_the_current_schema(demo_db):
    with Store(demo_db, read_only=True) as store:
        assert store.data_version() >= 14


def test_models_built_in_worker_processes_equal_a_build_in_one_process(tmp_path, monkeypatch):
    """The demo trains and serves its models in worker processes side by side; the logs,
    references and specs are exactly those of a build that does everything in one process
    (each model's generators are its own, whatever runs first)."""
    import os

    from lifecycle.demo import build_demo

    end = datetime(2026, 11, 1, tzinfo=UTC)
    build_demo(tmp_path / "workers.duckdb", days=7, end=end)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # one core: everything in this process
    build_demo(tmp_path / "here.duckdb", days=7, end=end)
    a = duckdb.connect(str(tmp_path / "workers.duckdb"), read_only=True)
    b = duckdb.connect(str(tmp_path / "here.duckdb"), read_only=True)
    tables = [t for (t,) in a.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND "
        "(table_name LIKE 'logged_%' OR table_name LIKE 'features__%' OR table_name LIKE "
        "'reference__%' OR table_name = 'infra_metrics') ORDER BY 1").fetchall()]  # fmt: skip
    assert len(tables) == 10
    for table in tables:
        query = f'SELECT * FROM "{table}" ORDER BY ALL'
        assert a.execute(query).fetchall() == b.execute(query).fetchall(), table
    # the specs differ only in where the build kept each reference file meanwhile
    specs = "SELECT model_name, version, regexp_replace(spec_toml, 'reference = \"[^\"]*\"', '') FROM model_versions ORDER BY ALL"
    assert a.execute(specs).fetchall() == b.execute(specs).fetchall()
