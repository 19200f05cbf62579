"""Alerts: rule evaluations per window, the alerts they open, webhook deliveries, check runs.

- `alert_evaluations`: one row per (model, version, variant, rule, subject, grain, window):
  the outcome of one alert rule on one window (ok / warning / critical / insufficient).
  The check only feeds the alert lifecycle with rows that are new or whose outcome changed.
- `alerts`: at most one unresolved alert per (model, version, rule, subject); repeats raise
  `count` and move `last_seen` instead of opening a new alert. Updated with a
  compare-and-swap on `revision` (two reviewers acting at once: one wins, one is told).
- `alert_notifications`: the webhook outbox. A delivery that failed stays `pending` and is
  retried by the next check, so an alert is never lost to a broken webhook.
- `check_runs`: what each scheduled check saw and returned.
"""

NAME = "alerts, rule evaluations, notifications, check runs"

STATEMENTS = [
    """
    CREATE TABLE alert_evaluations (
        model_name     VARCHAR NOT NULL,
        model_version  VARCHAR NOT NULL,
        variant        VARCHAR NOT NULL,
        layer          VARCHAR NOT NULL,
        rule           VARCHAR NOT NULL,
        subject        VARCHAR NOT NULL,
        grain          VARCHAR NOT NULL,
        window_start   TIMESTAMPTZ NOT NULL,
        window_end     TIMESTAMPTZ NOT NULL,
        outcome        VARCHAR NOT NULL,
        value          DOUBLE,
        threshold      DOUBLE,
        summary        VARCHAR NOT NULL,
        evidence       JSON,
        evaluated_at   TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (model_name, model_version, variant, rule, subject, grain, window_start)
    )
    """,
    "CREATE SEQUENCE alert_seq START 1",
    """
    CREATE TABLE alerts (
        alert_id          BIGINT PRIMARY KEY,
        model_name        VARCHAR NOT NULL,
        model_version     VARCHAR NOT NULL,
        variant           VARCHAR NOT NULL,
        layer             VARCHAR NOT NULL,
        rule              VARCHAR NOT NULL,
        subject           VARCHAR NOT NULL,
        grain             VARCHAR NOT NULL,
        severity          VARCHAR NOT NULL,
        state             VARCHAR NOT NULL,
        first_seen        TIMESTAMPTZ NOT NULL,
        last_seen         TIMESTAMPTZ NOT NULL,
        last_window_end   TIMESTAMPTZ NOT NULL,
        count             INTEGER NOT NULL,
        value             DOUBLE,
        threshold         DOUBLE,
        summary           VARCHAR NOT NULL,
        evidence          JSON,
        response          VARCHAR NOT NULL,
        opened_at         TIMESTAMPTZ NOT NULL,
        updated_at        TIMESTAMPTZ NOT NULL,
        acknowledged_by   VARCHAR,
        acknowledged_at   TIMESTAMPTZ,
        ack_comment       VARCHAR,
        snoozed_until     TIMESTAMPTZ,
        snoozed_by        VARCHAR,
        escalated_at      TIMESTAMPTZ,
        escalation_level  INTEGER NOT NULL DEFAULT 0,
        resolved_at       TIMESTAMPTZ,
        resolved_by       VARCHAR,
        resolution        VARCHAR,
        revision          INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE SEQUENCE alert_notification_seq START 1",
    """
    CREATE TABLE alert_notifications (
        notification_id  BIGINT PRIMARY KEY,
        alert_id         BIGINT NOT NULL,
        event            VARCHAR NOT NULL,
        url              VARCHAR NOT NULL,
        payload          JSON NOT NULL,
        state            VARCHAR NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        last_error       VARCHAR,
        created_at       TIMESTAMPTZ NOT NULL,
        last_attempt_at  TIMESTAMPTZ,
        delivered_at     TIMESTAMPTZ
    )
    """,
    "CREATE SEQUENCE check_run_seq START 1",
    """
    CREATE TABLE check_runs (
        run_id       BIGINT PRIMARY KEY,
        started_at   TIMESTAMPTZ NOT NULL,
        finished_at  TIMESTAMPTZ NOT NULL,
        as_of        TIMESTAMPTZ NOT NULL,
        models       JSON NOT NULL,
        exit_code    INTEGER NOT NULL,
        summary      JSON NOT NULL
    )
    """,
]
