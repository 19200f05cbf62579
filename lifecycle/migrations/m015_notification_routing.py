"""Alerts: routed notifications, and no webhook URL (a secret) kept in the database.

`alert_notifications` held each webhook's full URL, whose path or query carries its token.
The outbox now names the destination (a configured name, or `--notify` for `check --notify
URL`) with its `kind`, the `target` cut to scheme and host, the `route` that chose it, and
for an ad-hoc URL only its sha256 (`target_digest`), so the next `check --notify` with the
same URL still retries what failed. Existing rows stay readable as `--notify` webhook
notifications. The URLs that earlier releases wrote into delivery audit reasons, check-run
summaries and errors are cut the same way: a secret is removed wherever it was stored.
"""

NAME = "alerts: routed notifications, no webhook URLs stored"

# scheme://host[:port] of a URL, as lifecycle.alerts.routing.redact_url cuts it
_REDACTED = (
    "coalesce(nullif(regexp_extract(url, '^([A-Za-z][A-Za-z0-9+.-]*://)', 1) || "
    "regexp_extract(url, '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#]*)', 1), ''), "
    "'(a URL that is not http(s))')"
)

STATEMENTS = [
    f"""
    CREATE TEMP TABLE m015_urls AS
    SELECT DISTINCT url, {_REDACTED} AS redacted FROM alert_notifications
    """,
    """
    UPDATE audit_log SET reason = replace(reason, u.url, u.redacted)
    FROM m015_urls u
    WHERE audit_log.action IN ('alert_notified', 'alert_notify_failed')
      AND contains(audit_log.reason, u.url)
    """,
    """
    UPDATE check_runs SET summary = replace(CAST(summary AS VARCHAR), u.url, u.redacted)::JSON
    FROM m015_urls u WHERE contains(CAST(check_runs.summary AS VARCHAR), u.url)
    """,
    """
    CREATE TABLE alert_notifications_routed (
        notification_id  BIGINT PRIMARY KEY,
        alert_id         BIGINT NOT NULL,
        event            VARCHAR NOT NULL,
        destination      VARCHAR NOT NULL,
        kind             VARCHAR NOT NULL,
        target           VARCHAR NOT NULL,
        target_digest    VARCHAR,
        route            VARCHAR NOT NULL,
        payload          JSON NOT NULL,
        state            VARCHAR NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        last_error       VARCHAR,
        created_at       TIMESTAMPTZ NOT NULL,
        last_attempt_at  TIMESTAMPTZ,
        delivered_at     TIMESTAMPTZ
    )
    """,
    """
    INSERT INTO alert_notifications_routed
    SELECT n.notification_id, n.alert_id, n.event, '--notify', 'webhook', u.redacted,
           'sha256:' || sha256(n.url), '--notify', n.payload, n.state, n.attempts,
           replace(n.last_error, n.url, u.redacted), n.created_at, n.last_attempt_at,
           n.delivered_at
    FROM alert_notifications n JOIN m015_urls u USING (url)
    """,
    "DROP TABLE alert_notifications",
    "ALTER TABLE alert_notifications_routed RENAME TO alert_notifications",
    "DROP TABLE m015_urls",
]
