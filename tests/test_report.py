"""Weekly review: week parsing, status per layer and what changed, alerts and decisions of
the week, Markdown and self-contained HTML, and the report command."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from lifecycle import cli
from lifecycle.alerts import lifecycle as lc
from lifecycle.alerts import report
from lifecycle.alerts.config import alert_config
from lifecycle.alerts.rules import Evaluation
from lifecycle.identity import Actor

REVIEWER = Actor("rita@example.com", frozenset({"reviewer"}))


def test_parse_week():
    assert report.parse_week("2026-W46") == (
        datetime(2026, 11, 9, tzinfo=UTC),
        datetime(2026, 11, 16, tzinfo=UTC),
    )
    assert report.week_of(datetime(2026, 11, 15, 23, tzinfo=UTC)) == "2026-W46"
    for bad in ("2026-46", "2026-W54", "W46", ""):
        with pytest.raises(ValueError, match="week"):
            report.parse_week(bad)


def evaluation(day: datetime, outcome: str, layer="drift", rule="data_drift", subject="x"):
    return Evaluation(
        model="toy", version="1.0", variant="production", layer=layer, rule=rule,
        subject=subject, grain="day", window_start=day, window_end=day + timedelta(days=1),
        outcome=outcome, value=0.2, threshold=0.05, summary=f"{subject} {outcome}",
    )  # fmt: skip


@pytest.fixture
def reviewed(toy_store):
    """This week: x drifted (warning, acknowledged), errors fine; last week all healthy."""
    now = datetime.now(UTC)
    week = report.week_of(now)
    start, _ = report.parse_week(week)
    evals = [evaluation(start - timedelta(days=d), "ok") for d in range(1, 8)]
    evals += [evaluation(start - timedelta(days=d), "ok", "infrastructure", "error_rate",
                         "error_rate") for d in range(1, 8)]  # fmt: skip
    evals += [evaluation(start, "ok"), evaluation(start + timedelta(days=1), "warning")]
    evals += [evaluation(start, "ok", "infrastructure", "error_rate", "error_rate")]
    configs = {("toy", "1.0"): alert_config(None)}
    lc.apply_evaluations(toy_store, evals, configs, now=start + timedelta(days=2))
    alert_id = int(lc.list_alerts(toy_store).alert_id[0])
    lc.acknowledge(toy_store, REVIEWER, alert_id, "feature owner asked",
                   now=start + timedelta(days=2, hours=3))  # fmt: skip
    return toy_store, week, alert_id


def test_review_status_changes_alerts_and_decisions(reviewed):
    store, week, alert_id = reviewed
    review = report.weekly_review(store, week, app_url="http://console")
    (m,) = review.models
    assert m.status["drift"] == "warning" and m.previous["drift"] == "ok"
    assert m.status["infrastructure"] == m.previous["infrastructure"] == "ok"
    assert m.status["business"] == "no data"
    assert m.overall == "warning"
    assert "drift: ok -> warning" in m.changes and "1 new alert(s)" in m.changes
    (a,) = m.alerts
    assert a["alert_id"] == alert_id and a["state"] == "acknowledged" and a["new_this_week"]
    actions = [d["action"] for d in m.decisions]
    assert "alert_acknowledged" in actions and "alert_opened" not in actions  # system noise
    # last week: nothing changed and no alerts
    previous = report.weekly_review(store, report.week_of(review.start - timedelta(days=3))).models[
        0
    ]
    assert previous.alerts == [] and previous.status["drift"] == "ok"


def test_markdown(reviewed):
    store, week, alert_id = reviewed
    text = report.to_markdown(report.weekly_review(store, week, app_url="http://console"))
    assert text.startswith(f"# Weekly model-health review {week}")
    assert "| toy | - | WARNING | OK | · | · | · | WARNING | not due |" in text
    assert "drift: ok -> warning" in text
    assert f"#{alert_id} 1.0 production drift / data_drift / x (acknowledged, new" in text
    assert "[evidence](http://console/drift?model=toy&version=1.0" in text
    assert "rita@example.com: alert_acknowledged" in text
    # incident response: one warning opened and acknowledged 3 h later, none last week
    assert "**Incident response (this week against last week):**" in text
    assert "| warning alerts opened | 0 | 1 | +1 |" in text
    assert "| time to acknowledge, median | - | 3.0 h | new |" in text
    earlier = report.to_markdown(report.weekly_review(store, "2026-W02"))
    assert "No alert opened, answered or open in either week." in earlier


def test_exported_reports_say_which_base_url_their_links_use(reviewed, monkeypatch):
    store, week, _ = reviewed
    monkeypatch.delenv("LIFECYCLE_APP_URL", raising=False)
    default = report.weekly_review(store, week)
    markdown, page = report.to_markdown(default), report.to_html(default)
    why = (
        "(the default, which works only on the machine running the app; set LIFECYCLE_APP_URL "
        "(or --app-url) to the address your readers open)."
    )
    base = "http://localhost:8501"
    assert f"Links in this report open the console at [{base}]({base}) {why}" in markdown
    assert f"open the console at <a href='{base}'>{base}</a> {why}" in page
    assert f"({base}/drift?model=toy" in markdown  # and the links use it
    monkeypatch.setenv("LIFECYCLE_APP_URL", "https://console.example.org/")
    text = report.to_html(report.weekly_review(store, week))
    assert "https://console.example.org</a> (from $LIFECYCLE_APP_URL)." in text
    assert "https://console.example.org/drift?model=toy" in text
    text = report.to_markdown(report.weekly_review(store, week, app_url="http://console"))
    assert "at [http://console](http://console) (from --app-url)." in text


def test_html_is_self_contained_with_its_chart(reviewed):
    store, week, _ = reviewed
    page = report.to_html(report.weekly_review(store, week))
    assert page.startswith("<!DOCTYPE html>")
    assert "Plotly.newPlot" in page and "status per layer and day" in page
    # no external resources: no script/img/iframe src, no stylesheet links, no CSS imports
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=", page, re.I)
    assert "<link" not in page.lower() and "@import" not in page
    assert len(page) > 3_000_000  # plotly.js itself is inlined
    assert "<td>time to acknowledge, median</td><td>-</td><td>3.0 h</td><td>new</td>" in page


def test_report_command(reviewed, tmp_path, capsys):
    store, week, _ = reviewed
    path = store.path
    store.close()
    out = tmp_path / "out" / "review.html"
    assert cli.main(["report", "--db", str(path), "--week", week, "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    md = tmp_path / "review.md"
    assert cli.main(["report", "--db", str(path), "--week", week, "--out", str(md)]) == 0
    assert "## toy" in md.read_text()
    assert cli.main(["report", "--db", str(path), "--week", "2026-46", "--out", str(md)]) == 2
    assert cli.main(["report", "--db", str(path), "--week", week, "--out", "x.pdf"]) == 2
    err = capsys.readouterr().err
    assert "YYYY-Www" in err and ".md or .html" in err


def test_report_while_the_app_holds_the_database(reviewed, tmp_path, capsys, monkeypatch):
    """The report command queues itself for the process holding the file, which writes it."""
    import threading

    from lifecycle import requests
    from lifecycle.store import DatabaseLocked

    store, week, _ = reviewed

    def locked(*args, **kwargs):
        raise DatabaseLocked("held by the app")

    monkeypatch.setattr(requests, "open_store", locked)
    worker = requests.Worker(store, interval=0.1)
    thread = threading.Thread(target=worker._run, daemon=True)
    thread.start()
    out = tmp_path / "queued.md"
    try:
        code = cli.main(["report", "--db", str(store.path), "--week", week, "--out", str(out),
                         "--wait", "60"])  # fmt: skip
    finally:
        worker.stop()
        thread.join(timeout=5)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "report queued" in captured.err and "wrote" in captured.out
    assert out.read_text().startswith(f"# Weekly model-health review {week}")


def test_performance_from_estimates_is_marked_estimated_never_no_data(toy_store):
    """No label yet this week: the performance verdict and figure come from the estimates
    (labels pending) and say so; last week's realized verdict stays plain."""
    from lifecycle import estimation, reference_models
    from lifecycle.drift.engine import store_results
    from lifecycle.drift.windows import Window

    store = toy_store
    week = report.week_of(datetime.now(UTC))
    start, _ = report.parse_week(week)
    evals = [evaluation(start - timedelta(days=d), "ok", "performance", "performance_metric",
                        "roc_auc") for d in range(1, 8)]  # fmt: skip
    evals += [evaluation(start + timedelta(days=d), "ok", "performance", "estimated_performance",
                         "roc_auc") for d in range(2)]  # fmt: skip
    lc.apply_evaluations(store, evals, {("toy", "1.0"): alert_config(None)},
                         now=start + timedelta(days=2))  # fmt: skip
    est = estimation.Estimator(task="binary_classification", valid=True, reference_rows=500)
    for d, (value, rows) in enumerate([(0.80, 100), (0.70, 300)]):
        day = start + timedelta(days=d)
        result = reference_models._graded("roc_auc", estimation.Estimate(value, value - 0.03,
                                          value + 0.03), 0.8, [0.02, 0.05], est, rows)  # fmt: skip
        window = Window("toy", "1.0", "production", "day", day, day + timedelta(days=1))
        store_results(store, window, "spec", ["estimated_performance"], 1, [result])
    (m,) = report.weekly_review(store, week).models
    assert m.status["performance"] == "ok" and m.status_text("performance") == "ok (estimated)"
    assert m.status_text("performance", previous=True) == "ok"  # realized last week
    # estimated verdicts count as evaluations, and the coverage says they are estimated
    assert m.coverage_text("performance") == (
        "2 of 2 checks had a verdict (2 of them estimated, labels pending)"
    )
    (figure,) = [f for f in m.figures if "estimated" in f["figure"]]
    assert figure["figure"] == "roc_auc (estimated, labels pending; 400 predictions)"
    assert figure["this_week"] == pytest.approx((0.8 * 100 + 0.7 * 300) / 400)
    text = report.to_markdown(report.weekly_review(store, week))
    assert "| performance | ok | ok (estimated) |" in text
    assert "| toy | - | OK | · | OK (estimated) |" in text
    assert "roc_auc (estimated, labels pending; 400 predictions) | n/a | 0.725 |" in text
    html_text = report.to_html(report.weekly_review(store, week))
    assert "<td class='ok'>ok (estimated)</td>" in html_text
    # the day-by-day heatmap marks the days whose verdict is estimated
    heatmap = report.status_figure(m, start, start + timedelta(weeks=1))
    cells = dict(zip(heatmap.data[0].y, heatmap.data[0].text, strict=True))["performance"]
    assert list(cells[:2]) == ["ok (est.)", "ok (est.)"] and cells[2] == "no data"
