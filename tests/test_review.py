"""Review pack and promotion gates: numbers checked against scikit-learn / numpy / pandas on
the same rows; each gate blocks with its reason and changes nothing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from lifecycle import catalog, registry, review
from lifecycle.identity import PermissionDenied
from lifecycle.ingest import ingest
from lifecycle.registry import gates
from tests.conftest import write_toy_spec
from tests.test_registry import ADMIN, DANA, NO_LIVE_EVIDENCE, RITA, approve_fully

N = 600
START = pd.Timestamp("2026-03-01", tz="UTC")


# the pair's shadow run: 600 requests and no monitoring run; the gates' other tests set the
# evidence bar there (the evidence gate's own tests keep the defaults)
PAIR_EVIDENCE = "\n[rollout]\nmin_live_rows = 500\nmin_windows = 0\n"


def register(store, folder, version, rollout: str = PAIR_EVIDENCE):
    spec = write_toy_spec(folder / version, version=version, seed=int(float(version)))
    text = spec.read_text().replace(
        'description = "A small model for tests"',
        'description = "A small model for tests"\nsensitive_attribute = "color"',
    )
    spec.write_text(text + rollout)
    catalog.register_from_file(store, spec)


def served(n=N, seed=0):
    """Requests answered by production 1.0 with shadow 2.0 on the same requests."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    color = rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2])
    # 2.0 separates the classes better, and says "1" more often to blue
    champ = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 0.8 * y)))
    cand = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 1.6 * y + 0.9 * (color == "blue"))))
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "ts": START + pd.to_timedelta(np.arange(n), unit="min"),
            "segment": rng.choice(["web", "app"], n),
            "color": color,
            "x": rng.uniform(0, 10, n),
            "y": y,
            "champ": champ.round(5),
            "cand": cand.round(5),
            # labels arrive for some production rows, some shadow rows, or none
            "label_on": rng.choice(["p", "s", "none"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def log(store, frame, *, version, variant, column, prefix, status=None, latency=10.0):
    preds = pd.DataFrame(
        {
            "prediction_id": prefix + frame["request_id"],
            "request_id": frame["request_id"],
            "model_version": version,
            "ts": frame["ts"],
            "variant": variant,
            "prediction": frame[column],
            "predicted_label": np.where(frame[column] >= 0.5, "1", "0"),
            "latency_ms": latency,
            "status": status if status is not None else "ok",
            "segment": frame["segment"],
        }
    )
    ingest(store, "toy", "predictions", preds)
    ingest(
        store,
        "toy",
        "features",
        pd.DataFrame(
            {"prediction_id": preds["prediction_id"], "x": frame["x"], "color": frame["color"]}
        ),
    )
    mine = frame["label_on"] == prefix.rstrip("-")
    if not mine.any():
        return
    ingest(
        store,
        "toy",
        "labels",
        pd.DataFrame(
            {
                "prediction_id": preds["prediction_id"][mine],
                "actual": frame["y"][mine].astype(str),
                "labeled_at": frame["ts"][mine] + pd.Timedelta(days=1),
            }
        ),
    )


@pytest.fixture
def pair(store, tmp_path):
    """toy 1.0 in production, 2.0 in shadow, both logged on the same requests."""
    for version in ("1.0", "2.0"):
        register(store, tmp_path, version)
    at = START - pd.Timedelta(days=10)  # history recorded before the logged traffic
    for version, last in (("1.0", "switch"), ("2.0", None)):
        registry.request_approval(store, DANA, "toy", version, at=at)
        registry.approve(store, RITA, "toy", version, at=at)
        registry.promote(store, DANA, "toy", version, at=at)
        if last:
            registry.switch(store, DANA, "toy", version, at=at)
    frame = served()
    log(store, frame, version="1.0", variant="production", column="champ", prefix="p-")
    log(store, frame, version="2.0", variant="shadow", column="cand", prefix="s-")
    return store, frame


def labelled(frame):
    return frame[frame["label_on"] != "none"]


def test_metrics_beside_production_on_the_same_rows_match_sklearn(pair):
    store, frame = pair
    result = gates.compare_metrics(store, "toy", "2.0", "1.0")
    rows = labelled(frame)
    assert result["basis"].startswith("same requests") and result["rows"] == len(rows)
    for side, column in (("candidate", "cand"), ("champion", "champ")):
        pred = (rows[column] >= 0.5).astype(int)
        m = result["metrics"]
        assert m["roc_auc"][side] == pytest.approx(roc_auc_score(rows["y"], rows[column]))
        assert m["accuracy"][side] == pytest.approx(accuracy_score(rows["y"], pred))
        assert m["f1"][side] == pytest.approx(f1_score(rows["y"], pred))
    for pair in result["metrics"].values():
        if pair["candidate"] is not None and pair["champion"] is not None:
            assert pair["difference"] == pytest.approx(pair["candidate"] - pair["champion"])


def test_segment_metrics_match_sklearn_per_segment(pair):
    store, frame = pair
    result = review.segment_metrics(store, "toy", "2.0", "1.0")
    table = result["frame"].set_index(["group", "side"])
    for segment, rows in labelled(frame).groupby("segment"):
        got = table.loc[(segment, "candidate")]
        assert got["labelled"] == len(rows)
        assert got["roc_auc"] == pytest.approx(roc_auc_score(rows["y"], rows["cand"]))
        champ = table.loc[(segment, "champion")]
        assert champ["roc_auc"] == pytest.approx(roc_auc_score(rows["y"], rows["champ"]))


def test_fairness_disparate_impact_and_the_80_percent_rule(pair):
    store, frame = pair
    result = review.fairness(store, "toy", "2.0", "1.0")
    assert result["attribute"] == "color" and result["basis"].startswith("shadow")
    got = result["frame"].set_index(["side", "group"])
    for side, column in (("candidate", "cand"), ("champion", "champ")):
        rates = (frame[column] >= 0.5).groupby(frame["color"]).mean()
        expected = rates / rates.max()
        for color in rates.index:
            assert got.loc[(side, color), "positive_rate"] == pytest.approx(rates[color])
            assert got.loc[(side, color), "disparate_impact"] == pytest.approx(expected[color])
        summary = result["summary"][side]
        assert summary["min_ratio"] == pytest.approx(expected.min())
        assert summary["passes"] == (expected.min() >= 0.8)
    # the candidate favours blue strongly: the 80% rule flags it
    assert not result["summary"]["candidate"]["passes"]


def test_shadow_comparison_agreement_and_difference_distribution(pair):
    store, frame = pair
    result = review.shadow_comparison(store, "toy", "2.0", "1.0")
    diff = frame["cand"] - frame["champ"]
    assert result["pairs"] == len(frame)
    agree = ((frame["cand"] >= 0.5) == (frame["champ"] >= 0.5)).mean()
    assert result["agreement"] == pytest.approx(agree)
    assert result["mean_diff"] == pytest.approx(diff.mean())
    assert result["sd_diff"] == pytest.approx(diff.std())
    for q, value in result["quantiles"].items():
        assert value == pytest.approx(np.quantile(diff, q), abs=1e-9)
    assert result["histogram"]["pairs"].sum() == len(frame)


def test_drift_baseline_summarises_the_reference(pair, tmp_path):
    store, _ = pair
    baseline = review.drift_baseline(store, "toy", "2.0")
    reference = pd.read_csv(tmp_path / "2.0" / "reference.csv")
    x = baseline["numeric"].set_index("feature").loc["x"]
    assert x["mean"] == pytest.approx(reference["x"].mean())
    assert x["median"] == pytest.approx(reference["x"].median())
    shares = baseline["categorical"].set_index("value")["share"]
    expected = reference["color"].value_counts(normalize=True)
    for color, share in expected.items():
        assert shares[color] == pytest.approx(share)


def test_review_pack_has_every_part(pair):
    store, _ = pair
    pack = review.review_pack(store, "toy", "2.0")
    meta = pack["metadata"]
    assert meta["training_fingerprint"] == "sha256:toy"
    assert meta["parameters"] == {"max_depth": 3}
    assert meta["validation_metrics"] == {"roc_auc": 0.8}
    assert [f["name"] for f in meta["features"]] == ["x", "color"]
    assert (meta["owner"], meta["risk_tier"]) == ("alice@example.com", "low")
    assert pack["champion"] == "1.0" and pack["comparison"]["rows"] > 0
    assert {g.name for g in pack["gates"]} == {"evidence", "monitoring", "alerts", "metrics",
                                               "live"}  # fmt: skip


# -- gates ---------------------------------------------------------------------------------------


def to_canary_end(store):
    for _ in range(4):
        registry.promote(store, DANA, "toy", "2.0")
    assert registry.version_status(store, "toy", "2.0")["deployment"]["canary_share"] == 0.5


def add_finding(store, severity, window_start):
    store.query_all(
        "INSERT INTO monitor_results (model_name, model_version, variant, grain, window_start, "
        "window_end, reference_kind, check_name, subject, layer, severity, status, "
        "input_version, computed_at) VALUES ('toy', '2.0', 'shadow', 'day', ?, "
        "? + INTERVAL 1 DAY, 'reference', 'data_drift', 'x', 'drift', ?, 'ok', 1, now())",
        [window_start, window_start, severity],
    )


def test_significant_finding_in_the_latest_window_blocks_production(pair):
    store, _ = pair
    to_canary_end(store)
    add_finding(store, "significant", START)
    before = store.row_counts()
    with pytest.raises(registry.GateBlocked, match="monitoring: 1 significant finding"):
        registry.promote(store, DANA, "toy", "2.0")
    assert store.row_counts() == before
    option = next(
        o for o in registry.available_actions(store, DANA, "toy", "2.0") if o.action == "promote"
    )
    assert not option.allowed and "data_drift x" in option.why
    add_finding(store, "minor", START + pd.Timedelta(days=1))  # a later, calmer window
    result = registry.promote(store, DANA, "toy", "2.0", reason="drift settled")
    assert result.to_state == "production"
    evidence = json.loads(
        store.query_one("SELECT evidence FROM audit_log WHERE audit_id = ?", [result.audit_ids[0]])[
            0
        ]
    )
    assert all(g["passed"] for g in evidence["gates"])


def test_unresolved_critical_alert_blocks_production(pair):
    store, _ = pair
    to_canary_end(store)
    store.query_all(
        "INSERT INTO alerts (alert_id, model_name, model_version, variant, layer, rule, subject, "
        "grain, severity, state, first_seen, last_seen, last_window_end, count, summary, "
        "response, opened_at, updated_at) VALUES (99, 'toy', '2.0', 'canary', 'infrastructure', "
        "'error_rate', 'requests', 'hour', 'critical', 'acknowledged', now(), now(), now(), 1, "
        "'errors', 'page on-call', now(), now())"
    )
    with pytest.raises(registry.GateBlocked, match="#99 error_rate"):
        registry.switch(store, DANA, "toy", "2.0")
    store.query_all("UPDATE alerts SET state = 'resolved' WHERE alert_id = 99")
    assert registry.switch(store, DANA, "toy", "2.0").to_state == "production"


def test_worse_candidate_is_blocked_by_the_metric_gate(pair, tmp_path):
    store, frame = pair
    register(store, tmp_path, "3.0")
    approve_fully(store, "3.0")
    registry.promote(store, DANA, "toy", "3.0")
    noise = frame.assign(noise=np.random.default_rng(5).uniform(0, 1, len(frame)).round(5))
    log(store, noise, version="3.0", variant="shadow", column="noise", prefix="n-")
    gate = gates.metric_gate(store, "toy", "3.0", "1.0")
    assert not gate.passed and "worse than production" in gate.detail
    assert gate.evidence["basis"].startswith("same requests")
    assert gate.evidence["candidate"] < gate.evidence["limit"]
    before = store.row_counts()
    with pytest.raises(registry.GateBlocked, match="metrics: worse than production"):
        registry.switch(store, DANA, "toy", "3.0")
    with pytest.raises(PermissionDenied, match="override gates"):
        registry.switch(store, DANA, "toy", "3.0", override_gates=True, reason="urgent")
    with pytest.raises(registry.RegistryError, match="needs a reason"):
        registry.switch(store, ADMIN, "toy", "3.0", override_gates=True)
    assert store.row_counts() == before
    result = registry.switch(store, ADMIN, "toy", "3.0", override_gates=True, reason="hotfix")
    evidence = json.loads(
        store.query_one("SELECT evidence FROM audit_log WHERE audit_id = ?", [result.audit_ids[0]])[
            0
        ]
    )
    assert [g["name"] for g in evidence["gates"] if not g["passed"]] == ["metrics"]
    assert evidence["gates"][-1]["name"] == "override"


def test_canary_breach_recommends_rollback(pair):
    store, frame = pair
    registry.promote(store, DANA, "toy", "2.0", at=START - pd.Timedelta(hours=1))  # 1%
    canary = frame.assign(request_id="c" + frame["request_id"])
    status = np.where(np.arange(len(frame)) % 10 == 0, "error", "ok")
    log(store, canary, version="2.0", variant="canary", column="cand", prefix="c-",
        status=status, latency=40.0)  # fmt: skip
    rec = registry.canary_recommendation(store, "toy")
    assert rec["canary"] == "2.0" and rec["rollback"]
    assert any("error rate 10.0%" in b for b in rec["breaches"])
    assert any("p95 latency 40 ms" in b for b in rec["breaches"])
    assert rec["since"] == START - pd.Timedelta(hours=1)
    assert review.review_pack(store, "toy", "2.0")["canary"]["rollback"]


def test_gates_judge_the_production_version_they_replace(pair, tmp_path, monkeypatch):
    """Two versions switched at once: the loser's gates compared it with a production version
    that was replaced while they ran, so it must not take production (issue 17, finding 2)."""
    store, _ = pair
    register(store, tmp_path, "3.0", rollout=NO_LIVE_EVIDENCE)  # no traffic of its own
    approve_fully(store, "3.0")
    registry.promote(store, DANA, "toy", "3.0")  # shadow
    real_gates = registry.promotion_gates

    def gates_then_race(store_, model, version, champion):
        results = real_gates(store_, model, version, champion)
        if version == "3.0":  # another deployer switches 2.0 while 3.0's gates were evaluated
            monkeypatch.setattr(registry, "promotion_gates", real_gates)
            registry.switch(store, DANA, "toy", "2.0")
        return results

    monkeypatch.setattr(registry, "promotion_gates", gates_then_race)
    audit_before = store.query_one("SELECT count(*) FROM audit_log")[0]
    with pytest.raises(registry.Conflict, match="production of toy changed"):
        registry.switch(store, DANA, "toy", "3.0")
    status = registry.version_status(store, "toy", "3.0")
    assert status["state"] == "shadow"
    assert status["deployment"]["production"] == "2.0"
    # only the winner's switch was audited (its version and the replaced 1.0)
    assert store.query_one("SELECT count(*) FROM audit_log")[0] == audit_before + 2
    # evaluated afresh against 2.0, the switch goes through
    assert registry.switch(store, DANA, "toy", "3.0").to_state == "production"


def _store_estimates(store, version, variant, values, rows=500):
    """Stored estimated ROC AUC of `version` for consecutive days of its traffic."""
    from lifecycle import estimation, reference_models
    from lifecycle.drift.engine import store_results
    from lifecycle.drift.windows import Window

    est = estimation.Estimator(task="binary_classification", valid=True, reference_rows=500)
    for day, value in enumerate(values):
        start = (START + pd.Timedelta(days=day)).to_pydatetime()
        e = estimation.Estimate(value, value - 0.02, value + 0.02)
        result = reference_models._graded("roc_auc", e, 0.8, [0.02, 0.05], est, rows)
        window = Window("toy", version, variant, "day", start, start + pd.Timedelta(days=1))
        store_results(store, window, "spec", ["estimated_performance"], 1, [result])


def test_without_labelled_pairs_the_gate_uses_live_estimates_and_says_so(store, tmp_path):
    """Labels pending (no labelled shadow pair): the metric gate compares each version's
    ROC AUC estimated on its live traffic, and its detail and the pack say "estimated"."""
    for version in ("1.0", "2.0"):
        register(store, tmp_path, version)
    frame = served().assign(label_on="none")
    log(store, frame, version="1.0", variant="production", column="champ", prefix="p-")
    log(store, frame, version="2.0", variant="shadow", column="cand", prefix="s-")
    before = gates.compare_metrics(store, "toy", "2.0", "1.0")
    assert before["basis"].startswith("validation data") and "no estimate" in before["basis"]
    _store_estimates(store, "1.0", "production", [0.80, 0.80, 0.90])  # day 2 outside 2.0's
    _store_estimates(store, "2.0", "shadow", [0.70, 0.76], rows=250)
    result = gates.compare_metrics(store, "toy", "2.0", "1.0")
    assert result["basis"].startswith("estimated on live traffic, labels pending")
    assert result["estimated"] and result["predictions"] == {"candidate": 500, "champion": 1000}
    assert result["metrics"]["roc_auc"]["candidate"] == pytest.approx(0.73)
    assert result["metrics"]["roc_auc"]["champion"] == pytest.approx(0.80)
    gate = gates.metric_gate(store, "toy", "2.0", "1.0")
    assert not gate.passed and "worse than production" in gate.detail
    assert "estimated on live traffic, labels pending" in gate.detail
    pack = review.review_pack(store, "toy", "2.0", with_gates=False)
    assert pack["live_estimate"]["basis"] == "estimated from 500 predictions, labels pending"
    assert pack["live_estimate"]["metrics"]["roc_auc"] == pytest.approx(0.73)
    assert pack["reference_basis"].startswith("validation data")


def test_a_never_monitored_version_without_live_traffic_is_refused(pair, tmp_path):
    store, _ = pair
    register(store, tmp_path, "3.0", rollout="")  # the default evidence bar
    approve_fully(store, "3.0")
    registry.promote(store, DANA, "toy", "3.0")  # shadow, but nothing served
    before = store.row_counts()
    with pytest.raises(registry.GateBlocked) as err:
        registry.switch(store, DANA, "toy", "3.0")
    assert (
        "evidence: not enough evidence (n=0 shadow/canary requests, needs 1,000; 0 monitored "
        "day window(s) of that traffic, needs 3)" in str(err.value)
    )
    assert store.row_counts() == before
    gate = next(g for g in registry.promotion_gates(store, "toy", "3.0", "1.0")
                if g.name == "evidence")  # fmt: skip
    assert gate.evidence["rows"] == 0 and gate.evidence["min_live_rows"] == 1000
    # an admin may still override, with a reason, on the record
    result = registry.switch(store, ADMIN, "toy", "3.0", override_gates=True,
                             reason="emergency fix, shadow skipped")  # fmt: skip
    evidence = json.loads(store.query_one(
        "SELECT evidence FROM audit_log WHERE audit_id = ?", [result.audit_ids[0]])[0])  # fmt: skip
    assert "evidence" in [g["name"] for g in evidence["gates"] if not g["passed"]]


def add_production_finding(store, severity, window_start):
    store.query_all(
        "INSERT INTO monitor_results (model_name, model_version, variant, grain, window_start, "
        "window_end, reference_kind, check_name, subject, layer, severity, status, "
        "input_version, computed_at) VALUES ('toy', '1.0', 'production', 'day', ?, "
        "? + INTERVAL 1 DAY, 'reference', 'data_drift', 'x', 'drift', ?, 'ok', 1, now())",
        [window_start, window_start, severity],
    )


def test_input_drift_production_sees_too_is_shown_not_held_against_the_candidate(pair):
    store, _ = pair
    add_finding(store, "significant", START)
    add_production_finding(store, "significant", START)
    gate = gates.monitoring_gate(store, "toy", "2.0", "1.0")
    assert gate.passed
    assert "1 shared with production in the same window" in gate.detail
    (shared,) = gate.evidence["shared_with_production"]
    assert (shared["subject"], shared["production_severity"]) == ("x", "significant")
    # production only mildly affected in that window: the candidate is worse, and blocked
    store.query_all("UPDATE monitor_results SET severity = 'minor' WHERE model_version = '1.0'")
    gate = gates.monitoring_gate(store, "toy", "2.0", "1.0")
    assert not gate.passed
    assert "1 significant finding(s) production does not share: data_drift x" in gate.detail
    assert gate.evidence["findings"][0]["production_severity"] == "minor"
