"""Alerts: rules per layer, the alert lifecycle, the scheduled check, notifications,
retraining recommendations and the weekly review. See docs/alerts.md.

Public API:
    rules: RULES, RESPONSES, Evaluation, monitor_evaluations, infra_evaluations, ...
    lifecycle: apply_evaluations, maintain, acknowledge, snooze, resolve, list_alerts,
               get_alert, alert_history, alert_windows, active_counts
    check: run_check(store, models=None, as_of=None, notify_url=None) -> CheckReport
    retraining: recommendations(store, as_of=None) -> list[Recommendation]
    report: weekly_review(store, week) -> WeeklyReview; to_markdown / to_html
"""
