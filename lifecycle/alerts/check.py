"""The scheduled check: `python -m lifecycle check --db PATH [--model NAME] [--as-of TIME]
[--json] [--notify URL]`.

One run: compute the monitoring windows that new data completed on each of the model's
declared grains (lifecycle.monitoring_plan; lifecycle.monitor skips unchanged windows),
evaluate every alert rule on complete windows, feed new or changed
evaluations to the alert lifecycle (open / repeat / raise, auto-resolve, snooze expiry,
escalation), send new, raised and escalated alerts to the destinations the routing of the
config file chooses (lifecycle.alerts.routing) and to the `--notify` webhook (and retry
earlier failed deliveries), and report retraining recommendations. Routing settings that
cannot be used stop the check before anything changes (exit 3, every problem named).

Exit code: 0 when no alert is active (open or acknowledged) at warning or above, 1 when
the worst active alert is a warning, 2 when one is critical; 3 when the check could not run
(bad arguments, database busy and the app did not answer in time); 4 when no alert is
active but a model's drift or performance had no verdict at all in the last 7 days
(lifecycle.coverage: "not evaluated" is never "OK"), or a model's stored settings cannot be
read: that model is reported NOT EVALUATED with the reason, the others are checked as usual.

While the app holds the database (DuckDB lets one process open the file), the command
hands its request to the app's process through `<db>.inbox/requests/` (lifecycle.requests)
and prints the outcome the app writes back.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.alerts.routing import RoutingConfig
    from lifecycle.store import Store

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_ERROR = 0, 1, 2, 3
EXIT_NOT_EVALUATED = 4  # healthy as far as evaluated, but drift or performance was not
COVERAGE_DAYS = 7  # the period whose evaluation coverage the check reports
_CHECK_LOCK = threading.Lock()


class CheckError(RuntimeError):
    """The check could not run (named reason); nothing half-done is left behind."""


@dataclass
class CheckReport:
    as_of: datetime
    models: list[str]
    monitor: list[dict[str, Any]] = field(default_factory=list)
    evaluated: int = 0
    opened: list[int] = field(default_factory=list)
    raised: list[int] = field(default_factory=list)
    repeated: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=dict)
    active_alerts: list[dict[str, Any]] = field(default_factory=list)
    windows: dict[str, str] = field(default_factory=dict)  # model -> its monitoring plan
    evaluation: dict[str, str] = field(default_factory=dict)  # model -> full or what changed
    notifications: dict[str, Any] | None = None
    retraining: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    coverage: list[dict[str, Any]] = field(default_factory=list)  # per model and layer
    not_evaluated: list[dict[str, Any]] = field(default_factory=list)
    # models skipped whole because their stored settings fail (also in not_evaluated)
    invalid_settings: list[dict[str, Any]] = field(default_factory=list)
    # automatic rollbacks carried out (or attempted) by this check ([rollout] auto_rollback)
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.active.get("critical"):
            return EXIT_CRITICAL
        if self.active.get("warning"):
            return EXIT_WARNING
        if self.not_evaluated:
            return EXIT_NOT_EVALUATED
        return EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        data = dict(vars(self))
        data["as_of"] = self.as_of.isoformat()
        data["exit_code"] = self.exit_code
        return data

    def text(self) -> str:
        from lifecycle.alerts.lifecycle import severity_text

        status = {0: "OK", 1: "WARNING", 2: "CRITICAL", 4: "NOT EVALUATED"}[self.exit_code]
        lines = [
            f"check as of {self.as_of:%Y-%m-%d %H:%M} UTC: {status} - "
            f"{self.active.get('critical', 0)} critical, {self.active.get('warning', 0)} "
            f"warning alert(s) active ({', '.join(self.models) or 'no models'})",
            f"  {self.evaluated} new or changed rule evaluation(s); opened "
            f"{len(self.opened)}, raised {len(self.raised)}, repeated {len(self.repeated)}, "
            f"resolved {len(self.resolved)}, escalated {len(self.escalated)}",
        ]
        for a in self.active_alerts[:20]:
            lines.append(
                f"  [{severity_text(a)}] #{a['alert_id']} {a['model_name']} {a['model_version']} "
                f"{a['layer']}/{a['rule']}/{a['subject']} x{a['count']} ({a['state']}): "
                f"{a['summary']}"
            )
        if len(self.active_alerts) > 20:
            lines.append(f"  ... and {len(self.active_alerts) - 20} more (use --json)")
        for r in self.rollbacks:
            done = "ROLLED BACK" if r["error"] is None else f"ROLLBACK NOT DONE ({r['error']})"
            lines.append(f"  {done} {r['model']} {r['version']} ({r['variant']}): {r['reason']}")
        lines += [f"  NOT EVALUATED - {n['model']}: {n['text']}" for n in self.not_evaluated]
        lines += _coverage_lines(self.coverage)
        if self.notifications:
            lines += notification_lines(self.notifications)
        for r in self.retraining:
            lines.append(f"  retraining: {r['text']}")
        lines += [f"  skipped: {s}" for s in self.skipped]
        lines += [f"  {m} monitored on {text}" for m, text in self.windows.items()]
        return "\n".join(lines)


def run_check(
    store: Store,
    models: list[str] | None = None,
    *,
    as_of: datetime | None = None,
    notify_url: str | None = None,
    app_url: str | None = None,
    monitor: bool = True,
    attempts: int = 3,
    backoff: float = 0.5,
    full: bool = False,
    routing: RoutingConfig | None = None,
) -> CheckReport:
    """One scheduled check (see the module docstring); returns what it did and found.

    `routing`: where alerts go; None reads the config file's [alerts] routing
    (routing.NO_ROUTING sends nothing but to `notify_url`).

    Only windows whose inputs changed since the model's last check are evaluated
    (lifecycle.alerts.incremental); `full` evaluates every window.

    Checks in one process run one at a time (the app may serve a queued request while a
    reviewer presses "Run check now"): both would otherwise update the same alerts.
    """
    with _CHECK_LOCK:
        return _run_check(store, models, as_of, notify_url, app_url, monitor, attempts, backoff,
                          full, routing)  # fmt: skip


def _run_check(store, models, as_of, notify_url, app_url, monitor, attempts, backoff, full,
               routing):  # fmt: skip
    # imported here, not at the top, so that `check --help` stays fast (pandas, scipy)
    from lifecycle import catalog
    from lifecycle.alerts import incremental, notify
    from lifecycle.alerts.config import AlertConfigError
    from lifecycle.alerts.lifecycle import LifecycleResult, active_counts, apply_evaluations
    from lifecycle.alerts.retraining import RetrainingConfigError, recommendations
    from lifecycle.drift.config import DriftConfigError
    from lifecycle.monitoring_plan import MonitorError, MonitoringConfigError, monitoring_plan
    from lifecycle.registry import auto_rollback

    started, started_at = time.perf_counter(), datetime.now(UTC)
    as_of = _utc(as_of or started_at)
    routing = _routing(routing)  # before any change: a bad config must not swallow events
    with store.cursor() as cur:
        known = catalog.model_names(cur)
    names = models or known
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise CheckError(f"unknown model(s) {unknown} (known: {', '.join(known) or 'none'})")
    report = CheckReport(as_of=as_of, models=list(names))
    result = LifecycleResult()
    settings_errors = (MonitoringConfigError, AlertConfigError, RetrainingConfigError,
                       DriftConfigError)  # fmt: skip
    healthy = []
    for model in names:
        # a model whose stored settings cannot be read is reported, the others still run
        try:
            plan = monitoring_plan(store, model)
            changes, seen = _changes(store, model, plan, as_of, full)
            if monitor:
                report.monitor += _monitor(store, model, plan, as_of, changes)
            changes.new_results = changes.full or incremental.new_results(store, model, changes)
            seen = replace(seen, results_watermark=incremental.results_watermark(store))
            evaluations, configs, skipped = _evaluate(store, model, as_of, plan, changes)
        except settings_errors as exc:
            report.invalid_settings.append(_not_evaluated(model, exc))
            continue
        except MonitorError as exc:  # a window failed; isolate it if the settings were why
            if not isinstance(exc.__cause__ or exc.__context__, settings_errors):
                raise
            report.invalid_settings.append(_not_evaluated(model, exc.__cause__ or exc.__context__))
            continue
        healthy.append(model)
        report.windows[model] = plan.describe()
        report.evaluation[model] = changes.describe()
        report.skipped += [f"{model}: {s}" for s in skipped]
        result.merge(apply_evaluations(store, evaluations, configs, now=as_of, models=[model]))
        incremental.record(store, model, seen)
    report.evaluated = result.evaluated
    for name in ("opened", "raised", "repeated", "resolved", "escalated"):
        setattr(report, name, sorted(set(getattr(result, name))))
    rollbacks = auto_rollback.apply(store, healthy, now=as_of)
    report.rollbacks = [r.to_dict() for r in rollbacks]
    events = result.events() + [
        (alert_id, "rolled_back") for r in rollbacks if r.error is None for alert_id in r.alert_ids
    ]
    delivery = notify.notify_check(store, events, routing, notify_url, app_url=app_url,
                                   now=as_of, attempts=attempts, backoff=backoff)  # fmt: skip
    if delivery is not None:
        report.notifications = delivery.to_dict()
    report.active = active_counts(store, list(names))
    report.active_alerts = _active_alerts(store, names)
    recs = []
    for model in healthy:
        try:
            recs += recommendations(store, [model], as_of)
        except RetrainingConfigError as exc:
            report.invalid_settings.append(_not_evaluated(model, exc))
    report.retraining = [{**r.to_dict(), "text": r.text()} for r in recs]
    _add_coverage(store, report)
    report.seconds = round(time.perf_counter() - started, 2)
    _record_run(store, report, started_at)
    return report


def _routing(routing: RoutingConfig | None) -> RoutingConfig:
    from lifecycle.alerts.routing import RoutingConfigError, load_routing_config

    if routing is not None:
        return routing
    try:
        return load_routing_config()
    except RoutingConfigError as exc:
        raise CheckError(str(exc)) from exc


def notification_lines(n: dict[str, Any]) -> list[str]:
    """The report's lines about notifications (shared with the replay)."""
    lines = [
        f"  notifications: {len(n['delivered'])} delivered, {len(n['failed'])} failed "
        "(kept, retried on the next check)"
    ]
    for name, d in n.get("destinations", {}).items():
        lines.append(f"    {name} ({d['kind']}, {d['target']}): {d['delivered']} delivered, "
                     f"{d['failed']} failed")  # fmt: skip
    lines += [f"    #{nid}: {err}" for nid, err in n["failed"].items()]
    lines += [f"    not sent: {u}" for u in n.get("unrouted", [])]
    lines += [
        f"    {count} pending for {name}, which the configuration no longer names"
        for name, count in n.get("orphaned", {}).items()
    ]
    return lines


def _changes(store, model, plan, as_of, full):
    """(what to evaluate, what this check has seen) for one model."""
    from lifecycle.alerts import incremental

    digest = incremental.settings_digest(store, model, json.dumps(plan.to_dict()))
    batches = incremental.batch_watermark(store)
    changes = incremental.changes(store, model, as_of=as_of, digest=digest, batches=batches,
                                  previous=incremental.previous_state(store, model),
                                  force=full)  # fmt: skip
    seen = incremental.CheckState(as_of, batches, as_of, digest)  # results mark: set later
    return changes, seen


def _monitor(store, model, plan, as_of, changes) -> list[dict[str, Any]]:
    """Compute the windows that new data or time completed; nothing when nothing changed
    (the drift engine is not even imported)."""
    from lifecycle.names import chunk_size

    runs = []
    for grain in plan.grains:
        if chunk_size(grain):  # chunk boundaries move with late rows: list them all
            if not changes.full and changes.logged_since is None:
                continue
            since = None
        elif changes.grain_unchanged(grain, logged_only=True):
            continue
        else:
            since = changes.monitor_bound(grain)
        from lifecycle.monitor import monitor_model

        runs.append(monitor_model(store, model, grain=grain, as_of=as_of, since=since).to_dict())
    return runs


def _evaluate(store, model, as_of, plan, changes):
    """The rule evaluations this check must feed to the lifecycle (none if nothing changed)."""
    from lifecycle.alerts.config import model_configs

    configs = model_configs(store, model)
    infra = {c.section("infrastructure")["grain"] for c in configs.values()}
    if not changes.full and changes.nothing({*plan.grains, plan.layer_grain, *infra}):
        return [], {(model, v): c for v, c in configs.items()}, []
    from lifecycle.alerts.sources import evaluate_model

    found = evaluate_model(store, model, as_of, plan=plan, changes=changes)
    return found.evaluations, found.configs, found.skipped


def _add_coverage(store: Store, report: CheckReport) -> None:
    """Per model and layer: checks with a verdict and without, in the last COVERAGE_DAYS
    (production traffic); drift or performance with no verdict at all is NOT EVALUATED."""
    from lifecycle import coverage

    since = report.as_of - timedelta(days=COVERAGE_DAYS)
    frame = coverage.evaluation_coverage(store, report.models, since, report.as_of,
                                         variant="production", as_of=report.as_of,
                                         by_version=False)  # fmt: skip
    rows = frame.drop(columns=["model_version", "variant"])
    report.coverage = [
        {**{k: _plain(v) for k, v in r.items()}, "text": coverage.describe(t)}
        for r, t in zip(rows.to_dict("records"), rows.itertuples(index=False), strict=True)
    ]
    report.not_evaluated = [*report.invalid_settings] + [
        {"model": r["model"], "layer": r["layer"], "text": r["text"]}
        for r in report.coverage
        if r["state"] == "not evaluated" and r["layer"] in coverage.KEY_LAYERS
    ]


def _not_evaluated(model: str, exc: Exception) -> dict[str, Any]:
    return {
        "model": model,
        "layer": "all",
        "text": f"not evaluated: its stored settings cannot be used ({exc})",
    }


def _plain(value):
    """JSON-able scalars (numpy numbers, pandas NA)."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _coverage_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per model: checks with a verdict / all, per layer (production, last days)."""
    lines, by_model = [], {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    for model, layers in by_model.items():
        parts = [
            f"{r['layer']} {r['verdicts']}/{r['checks']}"
            + ("" if r["state"] == "evaluated" else f" ({r['state']})")
            for r in layers
        ]
        lines.append(
            f"  evaluated {model} (checks with a verdict, last {COVERAGE_DAYS} days): "
            + ", ".join(parts)
        )
    return lines


def _active_alerts(store: Store, models) -> list[dict[str, Any]]:
    rows = store.query_df(
        "SELECT alert_id, model_name, model_version, variant, layer, rule, subject, severity, "
        "coalesce(worst_severity, severity) AS worst_severity, state, count, first_seen, "
        "last_seen, summary, response FROM alerts "
        "WHERE state IN ('open', 'acknowledged') AND list_contains(?, model_name) "
        "ORDER BY CASE severity WHEN 'critical' THEN 0 ELSE 1 END, model_name, alert_id",
        [list(models)],
    )
    for column in ("first_seen", "last_seen"):
        rows[column] = rows[column].map(lambda t: t.isoformat())
    return rows.to_dict("records")


def _record_run(store: Store, report: CheckReport, started_at: datetime) -> None:
    summary = {k: v for k, v in report.to_dict().items() if k != "active_alerts"}
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO check_runs VALUES (nextval('check_run_seq'), ?, now(), ?, ?, ?, ?)",
            [
                started_at,
                report.as_of,
                json.dumps(report.models),
                report.exit_code,
                json.dumps(summary, default=str),
            ],
        )


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time; use ISO 8601, e.g. 2026-11-16 or 2026-11-16T06:00Z"
        ) from exc
    return _utc(value)


# -- command line -----------------------------------------------------------------------------


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "check",
        help="scheduled monitoring: compute new windows, update alerts, notify; exit 0/1/2/4",
        description="Compute the windows new data completed, evaluate the alert rules, update "
        "the alerts and print a summary. Exit code: 0 nothing active at warning or above, "
        "1 warnings, 2 critical, 3 the check could not run, 4 nothing active but a model's "
        "drift or performance could not be evaluated in the last 7 days (too little data).",
    )
    p.add_argument("--db", help="DuckDB file (default: $LIFECYCLE_DB, else data/lifecycle.duckdb)")
    p.add_argument("--model", action="append", help="only this model (repeatable)")
    p.add_argument("--as-of", type=parse_time, help="check time (UTC); default now")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--notify", metavar="URL",
                   help="also POST new/raised/escalated alerts to this webhook (besides the "
                   "routing of the config file)")  # fmt: skip
    p.add_argument("--app-url", help="base URL of the app for evidence links in notifications")
    p.add_argument(
        "--full",
        action="store_true",
        help="evaluate every window again (default: only windows whose inputs changed since "
        "the model's last check)",
    )
    p.add_argument(
        "--no-monitor",
        action="store_true",
        help="evaluate stored results only (skip computing new drift/quality windows)",
    )
    p.add_argument(
        "--replay",
        action="store_true",
        help="replay the scheduled checks --from .. --to every --every over history in one "
        "run (no webhooks unless --notify)",
    )
    p.add_argument("--from", dest="replay_from", type=parse_time, help="first replayed check time")
    p.add_argument("--to", dest="replay_to", type=parse_time, help="last replayed check time")
    p.add_argument("--every", choices=("day", "week"), default="day", help="replay step")
    p.add_argument(
        "--wait",
        type=float,
        default=900.0,
        help="if the app holds the database, seconds to wait for it to run the check (default 900)",
    )
    p.set_defaults(func=cmd_check)


def request_params(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "kind": "check",
        "error_exit": EXIT_ERROR,
        "models": args.model,
        "as_of": args.as_of.isoformat() if args.as_of else None,
        "notify_url": args.notify,
        "app_url": args.app_url,
        "monitor": not args.no_monitor,
        "full": args.full,
        "as_json": args.json,
        **_replay_params(args),
    }


def _replay_params(args: argparse.Namespace) -> dict[str, Any]:
    if not getattr(args, "replay", False):
        return {}
    return {
        "replay": True,
        "replay_from": args.replay_from.isoformat() if args.replay_from else None,
        "replay_to": args.replay_to.isoformat() if args.replay_to else None,
        "every": args.every,
    }


def run_params(store: Store, params: dict[str, Any]) -> CheckReport:
    """run_check from a JSON-able parameter dict (the CLI and the app's request queue)."""
    if params.get("replay"):
        return _run_replay_params(store, params)
    as_of = parse_time(params["as_of"]) if params.get("as_of") else None
    return run_check(
        store,
        params.get("models"),
        as_of=as_of,
        notify_url=params.get("notify_url"),
        app_url=params.get("app_url"),
        monitor=params.get("monitor", True),
        full=params.get("full", False),
    )


def _run_replay_params(store: Store, params: dict[str, Any]) -> CheckReport:
    from lifecycle.alerts.replay import run_replay

    if not params.get("replay_from") or not params.get("replay_to"):
        raise CheckError("--replay needs --from and --to (ISO 8601 times)")
    return run_replay(
        store,
        params.get("models"),
        start=parse_time(params["replay_from"]),
        end=parse_time(params["replay_to"]),
        every=params.get("every", "day"),
        notify_url=params.get("notify_url"),
        app_url=params.get("app_url"),
        monitor=params.get("monitor", True),
    )


def serve_request(store: Store, params: dict[str, Any]):
    """A check request, run here or by the app's process (lifecycle.requests)."""
    from lifecycle import jsonout
    from lifecycle.requests import Outcome

    try:
        report = run_params(store, params)
    except (CheckError, KeyError, ValueError) as exc:
        return Outcome(EXIT_ERROR, stderr=f"error: {exc}")
    data = report.to_dict()
    text = jsonout.dumps(data) if params.get("as_json") else report.text()
    return Outcome(report.exit_code, stdout=text, data=data)


def cmd_check(args: argparse.Namespace) -> int:
    from lifecycle import requests
    from lifecycle.store import resolve_db_path

    db_path = resolve_db_path(args.db)
    if not db_path.exists():
        print(f"error: no database at {db_path}", file=sys.stderr)
        return EXIT_ERROR
    return requests.run(db_path, request_params(args), wait=args.wait)
