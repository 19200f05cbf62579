"""The portfolio at a glance: every model, its versions' states, traffic and data freshness."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import plotly.graph_objects as go

from lifecycle import catalog, lake_manifest
from lifecycle.store import Store

STATE_ORDER = (
    "production",
    "canary",
    "standby",
    "shadow",
    "approved",
    "pending_approval",
    "registered",
    "rejected",
    "rolled_back",
    "retired",
)


def model_summary(store: Store) -> pd.DataFrame:
    """One row per model: metadata, production version, every version's state, traffic and
    the times its logs were last written and last received. A lake reads its newest files
    for the times and its last week's files for the traffic (lifecycle.lake_manifest)."""
    with lake_manifest.edges(store):
        frame = _summary(store)
    last = frame["last_prediction_at"].max() if len(frame) else None
    served = {} if last is None or pd.isna(last) else _served_since(store, last - WEEK)
    frame.insert(7, "predictions_7d", frame["model"].map(served).fillna(0).astype("int64"))
    return frame


WEEK = timedelta(days=7)


def _served_since(store: Store, since) -> dict[str, int]:
    """Requests served (production and canary, not shadow) per model from `since` on."""
    with store.cursor() as cur:
        models = catalog.model_names(cur)
    with lake_manifest.period(store, models, since):
        rows = store.query_all(
            "SELECT model_name, count(*) FROM predictions WHERE variant <> 'shadow' "
            "AND ts >= ? GROUP BY ALL",
            [since],
        )
    return dict(rows)


def _summary(store: Store) -> pd.DataFrame:
    return store.query_df(
        """
        WITH versions AS (
            SELECT model_name,
                   string_agg(version || ' ' || state, ' · '
                              ORDER BY list_position($states, state), version DESC) AS versions,
                   max(version) FILTER (WHERE state = 'production') AS production_version,
                   count(*) AS version_count
            FROM model_versions GROUP BY model_name
        ),
        traffic AS (
            SELECT model_name, max(ts) AS last_prediction_at FROM predictions GROUP BY model_name
        ),
        labels_in AS (
            SELECT model_name, max(labeled_at) AS last_label_at FROM labels GROUP BY model_name
        ),
        batches AS (
            SELECT model_name, max(received_at) AS last_received_at FROM ingest_batches
            GROUP BY model_name
        )
        SELECT m.name AS model, m.task, m.risk_tier, m.owner,
               coalesce(d.production_version, v.production_version) AS production_version,
               v.versions, v.version_count, t.last_prediction_at, l.last_label_at, b.last_received_at
        FROM models m
        LEFT JOIN deployments d ON d.model_name = m.name
        LEFT JOIN versions v ON v.model_name = m.name
        LEFT JOIN traffic t ON t.model_name = m.name
        LEFT JOIN labels_in l ON l.model_name = m.name
        LEFT JOIN batches b ON b.model_name = m.name
        ORDER BY m.name
        """,
        {"states": list(STATE_ORDER)},
    )


def daily_predictions(store: Store) -> pd.DataFrame:
    """Predictions per UTC day, model and variant over the whole history (counted in DuckDB;
    a lake's files already read come from the manifest's rows per hour)."""
    with lake_manifest.tallied(store) as counted:
        return store.query_df(
            """
            SELECT day, model, variant, sum(n)::BIGINT AS predictions FROM (
                SELECT date_trunc('day', ts) AS day, model_name AS model, variant, count(*) AS n
                FROM predictions GROUP BY ALL
                UNION ALL
                SELECT date_trunc('day', hour), model_name, variant, sum(rows)
                FROM lake_hours WHERE kind = 'predictions' AND list_contains(?, path)
                GROUP BY ALL
            )
            GROUP BY ALL ORDER BY day, model, variant
            """,
            [counted],
        )


def daily_predictions_figure(frame: pd.DataFrame) -> go.Figure:
    """One line per model: requests served (production + canary; shadow duplicates them)."""
    served = (
        frame[frame["variant"] != "shadow"].groupby(["day", "model"], as_index=False)["predictions"]
    ).sum()
    fig = go.Figure()
    for model, part in served.groupby("model", sort=True):
        fig.add_trace(go.Scatter(x=part["day"], y=part["predictions"], name=model, mode="lines"))
    fig.update_layout(
        title="Requests served per day (UTC days)",
        xaxis_title="day",
        yaxis_title="requests served per day",
        legend_title="model",
        height=360,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        hovermode="x unified",
    )
    fig.update_yaxes(rangemode="tozero")
    return fig


def first_prediction_at(store: Store) -> datetime | None:
    """Time stamp of the oldest logged prediction, or None when nothing is logged."""
    with lake_manifest.edges(store):  # a lake's oldest files, not all of them
        return store.query_one("SELECT min(ts) FROM predictions")[0]


def last_prediction_at(store: Store) -> datetime | None:
    """Time stamp of the newest logged prediction, or None when nothing is logged."""
    with lake_manifest.edges(store):
        return store.query_one("SELECT max(ts) FROM predictions")[0]
