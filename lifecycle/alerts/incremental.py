"""What changed for a model since its last check: the windows a check must evaluate.

A check's evaluations are a function of the model's logs, its stored monitor results, its
settings (specs, registry states, monitoring plan, this code) and the check time. Each
check records per model (table `check_state`) the check time, the newest ingest batch and
the time of the newest monitor result it saw, and a digest of the settings. The next check
then evaluates, on each grain, only windows from the earliest one that can differ:

- logs ingested since (new batches): the window of their earliest timestamp (a label's or
  feature row's window is its prediction's);
- labels whose `labeled_at` passed between the two check times (performance counts only
  labels that had arrived by the check time): their predictions' windows;
- windows that ended between the two check times (newly complete);
- monitor results computed since: exactly those rows.

Changed settings, a check time earlier than the last one, or no record (first check, a
replay since) mean a full evaluation, as before. With nothing changed the check evaluates
nothing and skips monitoring. Later windows that pool or baseline over earlier ones are
re-evaluated with them (every bound is a lower bound); the sources read the lookback they
need before it (lifecycle.alerts.sources). The watermarks are read under the store's write
lock, which every writer in the process holds (ingest, monitor results, registration), so
nothing half-committed is between "seen" and "not seen"; one process holds the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from lifecycle import catalog
from lifecycle.store import Store, feature_table, quote_ident

CALENDAR = ("hour", "day", "week", "month")


@dataclass(frozen=True)
class CheckState:
    as_of: datetime
    batch_watermark: int
    results_watermark: datetime
    settings_digest: str


@dataclass
class Changes:
    """What a check must evaluate for one model. `full`: everything (no usable record).
    Otherwise: the earliest event times whose inputs changed (None: none), the last check's
    time, and `results_since`: monitor results computed at or after it are new."""

    full: bool
    reason: str
    previous_as_of: datetime | None = None
    logged_since: datetime | None = None  # from new batches only (what monitoring reads)
    data_since: datetime | None = None  # and from labels that arrived (what rules read)
    results_since: datetime | None = None
    as_of: datetime | None = None
    new_results: bool = False

    @classmethod
    def everything(cls, reason: str) -> Changes:
        return cls(full=True, reason=reason)

    def bound(self, grain: str) -> datetime | None:
        """Earliest window start (on `grain`) whose evaluation can differ; None: all.
        Only for calendar grains; row-count chunks change only through their results."""
        if self.full:
            return None
        times = [t for t in (self.data_since, self.previous_as_of) if t is not None]
        return min(window_floor(t, grain) for t in times)

    def grain_unchanged(self, grain: str, *, logged_only: bool = False) -> bool:
        """No new data and no window of `grain` completed since the last check;
        `logged_only`: no new batches (labels that merely arrived by now do not count)."""
        since = self.logged_since if logged_only else self.data_since
        if self.full or since is not None:
            return False
        return window_floor(self.as_of, grain) == window_floor(self.previous_as_of, grain)

    def monitor_bound(self, grain: str) -> datetime | None:
        """Earliest window start (on `grain`) that monitoring must look at; None: all."""
        if self.full:
            return None
        times = [t for t in (self.logged_since, self.previous_as_of) if t is not None]
        return min(window_floor(t, grain) for t in times)

    def nothing(self, grains) -> bool:
        """Nothing to evaluate on any of `grains` (nor any new monitor result)."""
        return not self.new_results and all(self.grain_unchanged(g) for g in grains)

    def describe(self) -> str:
        if self.full:
            return f"full evaluation ({self.reason})"
        parts = []
        if self.data_since is not None:
            parts.append(f"data changed from {self.data_since:%Y-%m-%d %H:%M}")
        if self.new_results:
            parts.append("new monitor results")
        parts.append(f"windows completed since {self.previous_as_of:%Y-%m-%d %H:%M}")
        return "incremental: " + ", ".join(parts)


def window_floor(when: datetime, grain: str) -> datetime:
    """Start of the calendar window of `grain` holding `when` (UTC; ISO weeks on Monday)."""
    when = _utc(when)
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "hour":
        return when.replace(minute=0, second=0, microsecond=0)
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    raise ValueError(f"no calendar window for grain {grain!r}")


def previous_state(store: Store, model: str) -> CheckState | None:
    rows = store.query_all(
        "SELECT as_of, batch_watermark, results_watermark, settings_digest FROM check_state "
        "WHERE model_name = ?",
        [model],
    )
    if not rows:
        return None
    as_of, batches, results, digest = rows[0]
    return CheckState(_utc(as_of), int(batches), _utc(results), digest)


def batch_watermark(store: Store) -> int:
    """Newest committed ingest batch (read under the write lock: no batch is half-written)."""
    with store.write_lock():
        return int(store.query_one("SELECT coalesce(max(batch_id), 0) FROM ingest_batches")[0])


def results_watermark(store: Store) -> datetime:
    """A time no monitor result committed later can predate: results store now(), the
    start of their transaction, which begins under the write lock held here."""
    with store.write_lock():
        return _utc(store.query_one("SELECT now()")[0])


def settings_digest(store: Store, model: str, plan_text: str) -> str:
    """Digest of everything besides logs and results that shapes the model's evaluations."""
    with store.cursor() as cur:
        info = catalog.model_info(cur, model)
        versions = cur.execute(
            "SELECT version, state, revision, registered_at, spec, reference_sha256 "
            "FROM model_versions WHERE model_name = ? ORDER BY version",
            [model],
        ).fetchall()
    payload = json.dumps([_code_digest(), info, versions, plan_text], default=str, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """The library's source: an upgrade may change how a rule judges old windows."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def changes(
    store: Store,
    model: str,
    *,
    as_of: datetime,
    previous: CheckState | None,
    digest: str,
    batches: int,
    force: bool = False,
) -> Changes:
    """Compare the last check's record with now (`batches`: the current batch watermark)."""
    if force:
        return Changes.everything("asked for")
    if previous is None:
        return Changes.everything("no earlier check of this model recorded")
    if previous.settings_digest != digest:
        return Changes.everything("settings, registry states or code changed")
    if as_of < previous.as_of:
        return Changes.everything(f"check time before the last one ({previous.as_of:%Y-%m-%d})")
    logged, arrived = _data_since(store, model, previous, as_of, batches)
    return Changes(
        full=False,
        reason="",
        previous_as_of=previous.as_of,
        logged_since=logged,
        data_since=_earliest([logged, arrived]),
        results_since=previous.results_watermark,
        as_of=as_of,
    )


def new_results(store: Store, model: str, changes: Changes) -> bool:
    """Monitor results computed since the last check (by this check's monitoring too)."""
    return bool(
        store.query_one(
            "SELECT count(*) FROM monitor_results WHERE model_name = ? AND computed_at >= ?",
            [model, changes.results_since],
        )[0]
    )


def _data_since(store: Store, model: str, previous: CheckState, as_of, batches):
    """(earliest event time touched by batches in (previous watermark, batches], earliest
    prediction time of labels that arrived between the two check times)."""
    low, high = previous.batch_watermark, batches
    features = quote_ident(feature_table(model))
    with store.cursor() as cur:
        has_features = cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
            [feature_table(model)],
        ).fetchone()[0]
        times = [
            cur.execute(
                "SELECT min(min_ts) FROM ingest_batches WHERE model_name = ? AND batch_id > ? "
                "AND batch_id <= ? AND kind IN ('predictions', 'business', 'infra')",
                [model, low, high],
            ).fetchone()[0],
            _labelled_since(cur, model, "l.batch_id > ? AND l.batch_id <= ?", [low, high]),
        ]
        arrived = _labelled_since(
            cur, model, "l.labeled_at > ? AND l.labeled_at <= ?", [previous.as_of, as_of]
        )
        if has_features:
            times.append(
                cur.execute(
                    f"SELECT min(p.ts) FROM {features} f JOIN predictions p "
                    "ON p.prediction_id = f.prediction_id AND p.model_name = ? "
                    "WHERE f.batch_id > ? AND f.batch_id <= ?",
                    [model, low, high],
                ).fetchone()[0]
            )
    return _earliest(times), _earliest([arrived])


def _labelled_since(cur, model: str, condition: str, params: list):
    """Earliest prediction time among the model's labels matching `condition` (on `l`)."""
    return cur.execute(
        "SELECT min(p.ts) FROM labels l JOIN predictions p "
        "ON p.prediction_id = l.prediction_id AND p.model_name = l.model_name "
        f"WHERE l.model_name = ? AND {condition}",
        [model, *params],
    ).fetchone()[0]


def _earliest(times) -> datetime | None:
    found = [_utc(t) for t in times if t is not None]
    return min(found) if found else None


def record(store: Store, model: str, state: CheckState) -> None:
    """Remember what this check saw (one transaction, after its evaluations are applied)."""
    with store.transaction() as cur:
        cur.execute("DELETE FROM check_state WHERE model_name = ?", [model])
        cur.execute(
            "INSERT INTO check_state VALUES (?, ?, ?, ?, ?, now())",
            [model, state.as_of, state.batch_watermark, state.results_watermark,
             state.settings_digest],
        )  # fmt: skip


def forget(store: Store, models: list[str]) -> None:
    """Drop the records of `models`: their next check evaluates everything (after a replay,
    which stores evaluations as of other times)."""
    with store.transaction() as cur:
        cur.execute("DELETE FROM check_state WHERE list_contains(?, model_name)", [list(models)])


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
