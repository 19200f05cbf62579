"""Compute and store a model's monitoring results, window by window, only where inputs changed.

For every (version, variant, window) that holds predictions, two groups of checks run:
- data: univariate feature drift, prediction drift, multivariate drift and the three
  data-quality tiers; their inputs are the window's predictions and feature rows;
- labels: performance drift and the surrogate concept check; their inputs also include
  the labels, which arrive late.
Each group's inputs are fingerprinted (row counts and newest batch ids of the window and of
its reference, the version's settings, the engine version) into `input_version`. A run
recomputes a group only when its fingerprint differs from the stored one, so a re-run over
the same data changes nothing, and a new day of logs costs only the windows it touches.
All sampling is seeded and hash-based, so a recomputation gives identical numbers.

Which windows: a calendar grain (hour, day, week, month) or row-count chunks (`chunk:N`);
without --grain the model's declared windows (lifecycle.monitoring_plan). Only complete
windows are judged: for chunks the trailing one that is not full yet is reported as
pending, not computed.

CLI: `python -m lifecycle monitor --db PATH [--model NAME] [--grain hour|day|week|month|chunk:N]
[--reference spec|baseline|previous]` (parser in lifecycle.commands).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
from threadpoolctl import threadpool_limits

from lifecycle import (
    catalog,
    fairness,
    jsonout,
    lake,
    lake_quality,
    reference_models,
    serving_state,
)
from lifecycle.alerts.config import alert_config
from lifecycle.drift import offload
from lifecycle.drift.config import DriftConfig, drift_config
from lifecycle.drift.engine import (
    ENGINE_VERSION,
    ResultGroup,
    prediction_drift,
    store_groups,
    univariate_drift,
)
from lifecycle.drift.results import result_filter
from lifecycle.drift.results_model import DATA_CHECKS, INSUFFICIENT, LABEL_CHECKS, CheckResult
from lifecycle.drift.windows import (
    HAS_FEATURES,
    KEY,
    REFERENCE_KINDS,
    Sampling,
    Window,
    WindowInputs,
    check_grain,
    chunk_size,
    fingerprint,
    grain_label,
    labelled_relation,
    materialise,
    range_key,
    reference_range,
    reference_relation,
    sample_rows,
    spec_labelled_relation,
    spec_relation,
    window_end,
    window_relation,
)
from lifecycle.engines import Engine
from lifecycle.engines.duckdb_engine import DUCKDB
from lifecycle.layers import ModelTask
from lifecycle.monitoring_plan import MonitorError, monitoring_plan
from lifecycle.progress import Reporter
from lifecycle.quality import RuleInfo, quality_checks, reference_profile
from lifecycle.store import Sql, Store, feature_column, feature_table

SAMPLE_SEED = 20260101  # seeds the hash that picks sample rows (any fixed value works)
CUR_TABLE, REF_TABLE = "_mon_current", "_mon_reference"
REF_LABELS = "_mon_reference_labels"
# Result groups (a window's data or label checks) written per transaction: one statement per
# window made storing a third of the time; a failing window still keeps the ones before it.
STORE_EVERY = 40
_FIT_LOCK = threading.RLock()

Progress = Callable[[int, int, Window, bool], None]


@dataclass
class VersionContext:
    """A version's spec, settings and the fingerprint of everything in them."""

    version: str
    spec: dict[str, Any]
    config: DriftConfig
    rules: list[RuleInfo]
    task: str
    reference_rows: int
    reference_sha256: str

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.config.features]

    @property
    def classifier(self) -> bool:
        return self.task != "regression"

    @property
    def model_task(self) -> ModelTask:
        classes = self.spec.get("classes") or []
        positive = self.spec.get("positive_class")
        negative = next((c for c in classes if c != positive), None)
        return ModelTask(self.task, positive, negative)

    @property
    def tolerance(self) -> dict[str, list[float]]:
        """[alerts.performance.tolerance], which grades estimated performance."""
        return alert_config(self.spec).section("performance")["tolerance"]

    @property
    def settings_key(self) -> int:
        keys = ("task", "features", "rules", "drift", "classes", "positive_class",
                "sensitive_attribute", "sensitive_attributes")  # fmt: skip
        return fingerprint({**{k: self.spec.get(k) for k in keys}, "tolerance": self.tolerance})


@dataclass
class MonitorRun:
    """What one run did, for the CLI and for schedulers."""

    model: str
    grain: str
    reference: str
    windows: int = 0
    computed: int = 0  # windows whose data checks ran
    label_computed: int = 0  # windows whose label checks ran
    skipped: int = 0  # windows with nothing new
    rows_written: int = 0
    seconds: float = 0.0
    findings: Counter = field(default_factory=Counter)  # severity -> results (written now)
    insufficient: int = 0  # results written now without a verdict (too little data)
    insufficient_example: str | None = None  # one of their reasons: size and minimum
    pending: list[str] = field(default_factory=list)  # chunks not full yet: not judged
    removed: int = 0  # stored chunk results whose boundaries moved (late rows), deleted
    plan: str | None = None  # the model's declared windows, when they chose this grain
    engine: str = "duckdb"  # what listed and read the windows (lifecycle.engines)
    engine_note: str | None = None  # why another engine than the one asked for ran

    def summary(self) -> str:
        found = ", ".join(f"{n} {s}" for s, n in sorted(self.findings.items())) or "none"
        text = (
            f"{self.model}: {self.windows} {grain_label(self.grain)} window(s) vs "
            f"{self.reference} reference; computed {self.computed} (labels "
            f"{self.label_computed}), unchanged {self.skipped}; {self.rows_written} result "
            f"row(s) written; findings in recomputed windows: {found}; {self.seconds:.1f}s"
        )
        if self.insufficient:
            text += (
                f"\n  no verdict (too little data) in {self.insufficient} result(s), e.g. "
                f"{self.insufficient_example}"
            )
        if self.engine_note:
            text += f"\n  {self.engine_note}"
        text += "".join(f"\n  pending: {p}" for p in self.pending)
        if self.removed:
            text += f"\n  {self.removed} result row(s) of chunks whose boundaries moved removed"
        return text

    def to_dict(self) -> dict[str, Any]:
        data = dict(vars(self))
        data["findings"] = dict(self.findings)
        return data


def monitor_model(
    store: Store,
    model: str,
    *,
    grain: str = "day",
    reference: str = "spec",
    version: str | None = None,
    variant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    as_of: datetime | None = None,
    force: bool = False,
    progress: Progress | None = None,
    workers: int = 1,
    newest: bool = False,
    engine: Engine | None = None,
) -> MonitorRun:
    """Compute and store results for the model's windows whose inputs changed.

    `workers` > 1 computes windows in that many threads, their statistics in as many worker
    processes (results are the same: every sample and seed belongs to its window);
    `newest` computes the most recent first.

    `as_of` keeps only windows that ended by then (complete windows); `force` recomputes
    every window. Chunk grains judge full chunks only (see windows.chunk_windows). `engine`
    lists and reads the windows (lifecycle.engines; DuckDB by default); a model that engine
    does not read is monitored by the DuckDB engine, said in the run's `engine_note`.
    Raises KeyError for an unknown model, ValueError for bad arguments.
    """
    check_grain(grain)
    if reference not in REFERENCE_KINDS:
        raise ValueError(f"unknown reference {reference!r}; use one of {REFERENCE_KINDS}")
    started = time.perf_counter()
    run = MonitorRun(model, grain, reference)
    store.refresh_lake()  # a Delta table's newest version, a lake's first files
    with store.cursor() as cur:
        if catalog.model_info(cur, model) is None:
            known = ", ".join(catalog.model_names(cur)) or "none registered"
            raise KeyError(f"unknown model {model!r} (known: {known})")
        engine = _engine_for(cur, engine or DUCKDB, model, grain, reference, run)
        engine.prepare(store, cur, model, grain)
        todo = engine.windows(
            cur, model, grain, version=version, variant=variant, since=since, until=until
        )
        if chunk_size(grain):
            run.removed = _drop_moved_chunks(store, model, grain, reference, todo, version,
                                             variant, since, until)  # fmt: skip
            run.pending = [_pending(w, grain) for w in todo if not w.complete]
            todo = [w for w in todo if w.complete]
        if as_of is not None:
            todo = [w for w in todo if w.window.end <= as_of]
        run.windows = len(todo)
        stored = _stored_fingerprints(cur, model, grain, reference)
        table_types = _feature_log_types(cur, model)
    todo = newest_first(todo) if newest else todo
    if workers > 1 and len(todo) > 1 and engine is DUCKDB:  # a Spark session: one window at a time
        _in_parallel(store, todo, stored, force, reference, table_types, workers, run, progress)
    else:
        with store.cursor() as cur:
            runner = _Runner(store, cur, reference, table_types, engine)
            try:
                for i, inputs in enumerate(todo, start=1):
                    did = _one_window(runner, inputs, stored, force, run)
                    if progress:
                        progress(i, len(todo), inputs.window, did)
            finally:
                runner.close()
    run.seconds = time.perf_counter() - started
    return run


def default_workers() -> int:
    """Workers of a monitoring run unless told: $LIFECYCLE_MONITOR_WORKERS, else 2 on a
    machine with two or more cores, else 1.

    Measured on this project's 2-core machine (bench/README.md, "Worker processes"): threads
    alone did not pay (the statistics hold the GIL: 20 toy windows 5.6-7.2 s on one thread,
    8.7-8.9 s on two), worker processes for the statistics do (11 day windows of the 10M
    lake 31-34 s on one worker, 21 s on two; the first start's last week 31 s -> 23 s).
    More than the cores rarely pays: the queries use every core already."""
    text = os.environ.get("LIFECYCLE_MONITOR_WORKERS", "").strip()
    if text.isdigit():
        return max(1, min(64, int(text)))
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def newest_first(todo: list[WindowInputs]) -> list[WindowInputs]:
    """The windows, most recent first (what a reviewer opens first is ready first)."""
    return sorted(todo, key=lambda i: i.window.start, reverse=True)


def _one_window(runner: _Runner, inputs: WindowInputs, stored, force, run: MonitorRun) -> bool:
    try:
        did = runner.window(inputs, stored, force, run)
    except BrokenProcessPool as exc:
        w = inputs.window
        raise MonitorError(
            f"monitoring {w.model} {w.version} {w.variant} {w.grain} window "
            f"{w.start:%Y-%m-%d %H:%M}: a worker process died or could not start (out of "
            f"memory?); results of earlier windows are kept: {exc}"
        ) from exc
    except (KeyError, ValueError, duckdb.Error) as exc:
        w = inputs.window
        raise MonitorError(
            f"monitoring {w.model} {w.version} {w.variant} {w.grain} window "
            f"{w.start:%Y-%m-%d %H:%M} failed (results of earlier windows are kept): {exc}"
        ) from exc
    if not did:
        run.skipped += 1
    return did


def _in_parallel(store, todo, stored, force, reference, table_types, workers, run, progress):
    """Windows computed by `workers` threads, each with its own cursor (its own temp tables)
    and reference state, sending their pure statistics to `workers` processes
    (lifecycle.drift.offload: DuckDB lets one process hold the file, so the queries stay
    here); results written by this thread in the windows' order, STORE_EVERY windows per
    transaction, so a failure keeps every window before it."""
    local = threading.local()
    runners: list[tuple[_Runner, Any]] = []
    models: dict = {}
    lock = threading.Lock()

    def compute(inputs: WindowInputs) -> tuple[bool, list[ResultGroup], MonitorRun]:
        if not hasattr(local, "runner"):
            cursor = store.cursor()
            local.runner = _Runner(store, cursor.__enter__(), reference, table_types,
                                   models=models)  # fmt: skip
            local.runner.thread_limits = False  # set once for every thread, below
            with lock:
                runners.append((local.runner, cursor))
        part = MonitorRun(run.model, run.grain, run.reference)
        with offload.using(processes):
            did = _one_window(local.runner, inputs, stored, force, part)
        groups, local.runner.pending = local.runner.pending, []
        return did, groups, part

    from lifecycle.drift import concept, multivariate  # noqa: F401 - before the limits (one_thread)

    limits = threadpool_limits(limits=1)
    done = 0
    try:
        with (
            offload.process_pool(workers) as processes,
            ThreadPoolExecutor(workers, thread_name_prefix="monitor") as pool,
        ):
            for start in range(0, len(todo), STORE_EVERY):
                chunk = todo[start : start + STORE_EVERY]
                futures = [pool.submit(compute, inputs) for inputs in chunk]
                groups: list[ResultGroup] = []
                try:
                    for inputs, future in zip(chunk, futures, strict=True):
                        did, found, part = future.result()
                        groups += found
                        _merge(run, part)
                        done += 1
                        if progress:
                            progress(done, len(todo), inputs.window, did)
                finally:
                    for future in futures:
                        future.cancel()
                    if groups:
                        store_groups(store, reference, groups)
    finally:
        limits.restore_original_limits()
        for runner, cursor in runners:
            runner.release()
            cursor.__exit__(None, None, None)


def _merge(run: MonitorRun, part: MonitorRun) -> None:
    for name in ("computed", "label_computed", "skipped", "rows_written", "insufficient"):
        setattr(run, name, getattr(run, name) + getattr(part, name))
    run.findings.update(part.findings)
    run.insufficient_example = run.insufficient_example or part.insufficient_example


def _engine_for(cur, engine: Engine, model: str, grain: str, reference: str, run) -> Engine:
    """`engine` if it reads the model's logs (refusing a grain or reference it cannot
    compute), else the DuckDB engine, with the reason in the run's note."""
    reason = engine.unsupported(cur, model)
    if reason is not None:
        run.engine_note = f"monitored by the DuckDB engine, not {engine.name}: {reason}"
        return DUCKDB
    engine.check_run(grain, reference)
    run.engine = engine.name
    return engine


def feature_drift_suite(
    store: Store,
    model: str,
    window_start: datetime,
    *,
    grain: str = "day",
    version: str | None = None,
    variant: str = "production",
    reference: str = "spec",
    sample_rows: int | None = None,
) -> list[CheckResult]:
    """The univariate feature-drift suite of one window, computed and returned, not stored.

    The same code path as monitor_model's data checks (sampling, tests, BH verdicts);
    used by the bench and handy in a notebook. `sample_rows` overrides the spec's cap.
    """
    end = window_end(window_start, grain)  # calendar grains only
    with store.cursor() as cur:
        # only the row count is needed (it sets the sampling rate): no join with the logs
        found = cur.execute(
            "SELECT model_version, count(*) FROM predictions WHERE model_name = ? "
            "AND variant = ? AND ts >= ? AND ts < ? AND (? IS NULL OR model_version = ?) "
            "GROUP BY 1",
            [model, variant, window_start, end, version, version],
        ).fetchall()
        if len(found) != 1:
            raise ValueError(
                f"{len(found)} {grain} windows of {model} ({version or 'any version'}, "
                f"{variant}) start at {window_start}; expected exactly one"
            )
        window = Window(model, found[0][0], variant, grain, window_start, end)
        runner = _Runner(store, cur, reference, _feature_log_types(cur, model))
        try:
            ctx = runner.context(model, window.version)
            if sample_rows is not None:
                ctx.config = dataclasses.replace(ctx.config, sample_rows=sample_rows)
            results, _, _ = runner.feature_drift(ctx, window, int(found[0][1]))
        finally:
            runner.close()
    return results


def monitor_declared(
    store: Store, model: str, grain: str | None = None, **kwargs
) -> list[MonitorRun]:
    """monitor_model on `grain`, else on each of the model's declared windows
    (lifecycle.monitoring_plan: [monitoring], else [alerts] grain, else day)."""
    if grain is not None:
        return [monitor_model(store, model, grain=grain, **kwargs)]
    plan = monitoring_plan(store, model)
    runs = [monitor_model(store, model, grain=g, **kwargs) for g in plan.grains]
    for run in runs:
        run.plan = plan.describe()
    return runs


def monitor_all(
    store: Store, models: list[str] | None = None, grain: str | None = None, **kwargs
) -> list[MonitorRun]:
    """monitor_declared for each model (all registered models by default)."""
    if models is None:
        with store.cursor() as cur:
            models = catalog.model_names(cur)
    return [run for m in models for run in monitor_declared(store, m, grain, **kwargs)]


def _pending(inputs: WindowInputs, grain: str) -> str:
    w = inputs.window
    return (
        f"{w.version} {w.variant} chunk from {w.start:%Y-%m-%d %H:%M}: {inputs.rows:,} of "
        f"{chunk_size(grain):,} rows, not judged until it is full"
    )


def _drop_moved_chunks(
    store, model, grain, reference, current: list[WindowInputs], version, variant, since, until
) -> int:
    """Delete stored results of chunks that no longer exist: rows logged late (older
    timestamps) move the chunk boundaries after them. One transaction."""
    starts: dict[tuple[str, str], list] = {}
    for w in current:
        if w.complete:
            starts.setdefault((w.window.version, w.window.variant), []).append(w.window.start)
    where, params = result_filter(
        since, until, model_name=model, grain=grain, reference_kind=reference,
        model_version=version, variant=variant,
    )  # fmt: skip
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    keep = [
        f"{v}|{var}|{(s - epoch) // timedelta(microseconds=1)}"
        for (v, var), items in starts.items()
        for s in items
    ]
    where.append("NOT list_contains(?, model_version || '|' || variant || '|' || "
                 "epoch_us(window_start))")  # fmt: skip
    params.append(keep)
    condition = " AND ".join(where)
    with store.write_lock(), store.transaction() as cur:
        stale = cur.execute(
            f"SELECT count(*) FROM monitor_results WHERE {condition}", params
        ).fetchall()[0][0]
        if stale:
            cur.execute(f"DELETE FROM monitor_results WHERE {condition}", params)
    return int(stale)


def _stored_fingerprints(cur, model: str, grain: str, reference: str) -> dict:
    rows = cur.execute(
        "SELECT model_version, variant, window_start, list_contains(?, check_name) AS labels, "
        "min(input_version), max(input_version) FROM monitor_results WHERE model_name = ? "
        "AND grain = ? AND reference_kind = ? GROUP BY ALL",
        [list(LABEL_CHECKS), model, grain, reference],
    ).fetchall()
    out = {}
    for v, var, start, labels, lo, hi in rows:
        # a group written in one transaction shares one fingerprint; if not, recompute it
        out[(v, var, start, "labels" if labels else "data")] = lo if lo == hi else None
    return out


def _feature_log_types(cur, model: str) -> dict[str, str]:
    """Feature-log columns as the specs name them (one name per column) -> SQL type."""
    rows = cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position",
        [feature_table(model)],
    ).fetchall()
    names = {feature_column(n): n for n in catalog.logged_features(cur, model)}
    return {names.get(c, c): t for c, t in rows if c not in ("prediction_id", "batch_id")}


class _Runner:
    """Runs the checks of windows on one cursor, reusing per-version reference state."""

    def __init__(self, store: Store, cur, reference: str, table_types: dict[str, str],
                 engine=DUCKDB, models: dict | None = None):  # fmt: skip
        self.store, self.cur, self.reference = store, cur, reference
        self.table_types = table_types
        self.engine = engine
        self.presampled = False  # the engine staged a sample of the window: no second one
        self.contexts: dict[str, VersionContext] = {}
        # version -> fitted reference models; shared by the threads of a parallel run
        self.models: dict[str, reference_models.VersionModels] = {} if models is None else models
        self.spec_state: dict[str, Any] = {}  # version -> cached spec-reference state
        self.thread_limits = None
        self.pending: list[ResultGroup] = []  # results not written yet (see _store)
        self.labelled_version, self.labelled_ref = None, None  # _spec_labelled_sample's

    def one_thread(self) -> None:
        """BLAS and OpenMP on one thread until close(). The per-window models (domain
        classifier, surrogate) fit a few thousand rows: one thread is as fast, and OpenMP
        threads spinning on a busy 2-core box were 5x slower. Set once per run, when a
        window is first computed (each call scans the loaded libraries: 1.3 s per 360
        windows), after loading scikit-learn so that its OpenMP runtime is limited too."""
        if self.thread_limits is None:
            from lifecycle.drift import concept, multivariate  # noqa: F401

            self.thread_limits = threadpool_limits(limits=1)
        # False: the caller limits threads for every runner (lifecycle.monitor._in_parallel)

    def flush(self) -> None:
        """Write the queued results (one transaction)."""
        if self.pending:
            store_groups(self.store, self.reference, self.pending)
            self.pending = []

    def close(self) -> None:
        """Write what is queued (also when a window failed: earlier results are kept)."""
        try:
            self.flush()
        finally:
            self.release()

    def release(self) -> None:
        if self.thread_limits:
            self.thread_limits.restore_original_limits()
        for t in (CUR_TABLE, REF_TABLE, f"{REF_TABLE}_spec", REF_LABELS):
            self.cur.execute(f"DROP TABLE IF EXISTS {t}")

    def context(self, model: str, version: str) -> VersionContext:
        if version not in self.contexts:
            spec = catalog.version_spec(self.cur, model, version)
            rows, sha = self.cur.execute(
                "SELECT reference_rows, reference_sha256 FROM model_versions "
                "WHERE model_name = ? AND version = ?",
                [model, version],
            ).fetchall()[0]
            self.contexts[version] = VersionContext(
                version=version,
                spec=spec,
                config=drift_config(spec),
                rules=[RuleInfo(r["name"], r["sql"]) for r in spec.get("rules", [])],
                task=spec["task"],
                reference_rows=int(rows),
                reference_sha256=sha,
            )
        return self.contexts[version]

    def reference_models(self, model: str, ctx: VersionContext):
        """The version's performance estimator and importance profile (fitted once per
        process); the profile is stored for pages the first time a run needs it."""
        with _FIT_LOCK:  # threads of a parallel run wait for one fit instead of repeating it
            return self._reference_models(model, ctx)

    def _reference_models(self, model: str, ctx: VersionContext):
        if ctx.version not in self.models:
            found = reference_models.version_models(
                self.cur, model, ctx.version, ctx.model_task, ctx.config.features
            )
            if reference_models.stored_profile(self.cur, model, ctx.version) is None:
                with self.store.write_lock(), self.store.transaction() as cur:
                    reference_models.store_profile(cur, model, ctx.version, found.profile)
            self.models[ctx.version] = found
        return self.models[ctx.version]

    # -- fingerprints ------------------------------------------------------------

    def reference_key(self, ctx: VersionContext, window: Window) -> tuple:
        if self.reference == "spec":
            return ("spec", ctx.reference_sha256, ctx.reference_rows)
        rng = reference_range(self.cur, self.reference, window, ctx.config.baseline)
        if rng is None:
            return (self.reference, None)
        key = range_key(self.cur, window.model, window.version, window.variant, *rng)
        return (self.reference, rng[0].isoformat(), rng[1].isoformat(), key)

    def window(self, inputs: WindowInputs, stored: dict, force: bool, run: MonitorRun) -> bool:
        w = inputs.window
        ctx = self.context(w.model, w.version)
        ref_key = self.reference_key(ctx, w)
        common = (ENGINE_VERSION, ctx.settings_key, ref_key)
        data_fp = fingerprint("data", *common, inputs.data_key)
        label_fp = fingerprint("labels", *common, inputs.label_key)
        data = force or stored.get((w.version, w.variant, w.start, "data")) != data_fp
        labels = ctx.config.concept and (
            force or stored.get((w.version, w.variant, w.start, "labels")) != label_fp
        )
        if not (data or labels):
            return False
        self.one_thread()
        # the engine makes the window readable under the usual names (lifecycle.engines),
        # from the start of the reference range when the reference is earlier traffic
        since = w.start
        if self.reference != "spec":
            rng = reference_range(self.cur, self.reference, w, ctx.config.baseline)
            since = min(since, rng[0]) if rng else since
        cap = ctx.config.sample_rows
        with self.engine.staged(self.cur, inputs, cap, SAMPLE_SEED, since=since) as sampled:
            self.presampled = sampled
            try:
                if data:
                    results = self.data_checks(ctx, inputs)
                    self._store(w, DATA_CHECKS, data_fp, results, run)
                    run.computed += 1
                if labels:
                    results = self.label_checks(ctx, w)
                    self._store(w, LABEL_CHECKS, label_fp, results, run)
                    run.label_computed += 1
            finally:
                self.presampled = False
        return True

    def _store(self, window, checks, fp, results: list[CheckResult], run: MonitorRun) -> None:
        """Queue one group's results; every STORE_EVERY groups they are written together."""
        self.pending.append(ResultGroup(window, checks, fp, results))
        if len(self.pending) >= STORE_EVERY:
            self.flush()
        run.rows_written += len(results)
        for r in results:
            if r.severity not in (None, "none"):
                run.findings[r.severity] += 1
            if r.status == INSUFFICIENT:
                run.insufficient += 1
                if run.insufficient_example is None:
                    reason = r.details.get("reason", "too little data")
                    run.insufficient_example = (
                        f"{r.check} {r.subject} in the {grain_label(window.grain)} window of "
                        f"{window.start:%Y-%m-%d %H:%M}: {reason}"
                    )

    # -- data checks ---------------------------------------------------------------

    def data_checks(self, ctx: VersionContext, inputs: WindowInputs) -> list[CheckResult]:
        w, config = inputs.window, ctx.config
        # every logged column, so columns outside this version's spec show up in the schema tier
        logged = [c for c in self.table_types if c not in ctx.feature_names]
        results, ref_table, ref_rel = self.feature_drift(ctx, w, inputs.rows, logged)
        results += prediction_drift(
            self.cur,
            ref_table,
            CUR_TABLE,
            config,
            classifier=ctx.classifier,
            ref_cache=self._ref_cache("prediction"),
        )
        if config.multivariate:
            results.append(self.multivariate(ctx, w, ref_table))
        models = self.reference_models(w.model, ctx)
        results = reference_models.with_impact(
            results, models.profile, config.thresholds, config.min_importance
        )
        results += reference_models.estimated_performance(
            self.cur, CUR_TABLE, models, ctx.model_task, ctx.tolerance
        )
        profile = self.reference_profile(ctx, ref_table, ref_rel)
        if self._sampling(inputs.rows, config).active:
            cur_rel = window_relation(w, list(self.table_types))
        else:  # the whole window is in CUR_TABLE already: no second join with the logs
            cur_rel = Sql(f"SELECT * FROM {CUR_TABLE}")
        results += quality_checks(
            self.cur, cur_rel, config.features, ctx.rules, profile, self.table_types, config
        )
        results.append(serving_state.serving_state_check(self.cur, w, self._governed(w.model)))
        results.append(lake_quality.source_read_check(self.cur, w, self._lake_sources(w.model)))
        results += fairness.fairness_checks(self.cur, w, ctx.spec, ctx.model_task)
        return [r for r in results if r is not None]

    def _lake_sources(self, model: str) -> dict:
        """The model's external sources, kind -> lake.Source (cached for the run)."""
        cache = self.__dict__.setdefault("_sources", {})
        if model not in cache:
            cache[model] = lake.external_kinds(self.cur, model)
        return cache[model]

    def _governed(self, model: str):
        """When the model was first promoted through the registry, None if never (cached
        for the run)."""
        cache = self.__dict__.setdefault("_governed_since", {})
        if model not in cache:
            cache[model] = serving_state.governed_since(self.cur, model)
        return cache[model]

    def feature_drift(self, ctx: VersionContext, w: Window, rows: int, logged=()):
        """Univariate drift of every feature: (results, reference table, reference SQL).

        `rows` is the window's prediction count. Leaves the current window's sample in
        CUR_TABLE for the checks that follow, with the `logged` columns too unless sampled.
        """
        config = ctx.config
        cap = config.sample_rows
        sampling = self._sampling(rows, config)
        columns = ctx.feature_names + ([] if sampling.active else list(logged))
        materialise(self.cur, CUR_TABLE, window_relation(w, columns, sampling))
        ref_table, ref_rel, ref_rows = self.reference_sample(ctx, w)
        context = {
            "rows_current": rows,
            "rows_reference": ref_rows,
            "sampled": rows > cap or ref_rows > cap,
        }
        results = univariate_drift(
            self.cur,
            ref_table,
            CUR_TABLE,
            config.features,
            config,
            context=context,
            ref_cache=self._ref_cache("features"),
        )
        return results, ref_table, ref_rel

    def _sampling(self, rows: int, config: DriftConfig) -> Sampling:
        """How the window's rows on the cursor are sampled: not again when the engine
        staged a sample (rows and the `sampled` flag still report the whole window)."""
        return Sampling(rows, None if self.presampled else config.sample_rows, SAMPLE_SEED)

    def reference_sample(self, ctx: VersionContext, w: Window):
        """(sample table, full relation, rows) of the reference; the spec's sample is cached."""
        config, names = ctx.config, ctx.feature_names
        rel = reference_relation(self.cur, self.reference, w, names, config.baseline)
        if self.reference == "spec":
            table = f"{REF_TABLE}_spec"
            if self.spec_state.get("version") != ctx.version:
                rows = ctx.reference_rows
                sampling = Sampling(rows, config.sample_rows, SAMPLE_SEED)
                materialise(self.cur, table, spec_relation(w.model, w.version, names, sampling))
                self.spec_state = {"version": ctx.version, "rows": rows}
            return table, rel, self.spec_state["rows"]
        rows = int(rel.execute(self.cur, "SELECT count(*) FROM (", ")").fetchall()[0][0])
        sampling = Sampling(rows, config.sample_rows, SAMPLE_SEED)
        materialise(
            self.cur,
            REF_TABLE,
            reference_relation(self.cur, self.reference, w, names, config.baseline, sampling),
        )
        return REF_TABLE, rel, rows

    def _ref_cache(self, part: str) -> dict | None:
        """Reference summaries kept across windows: only the spec reference stays the same
        (spec_state is reset whenever the version changes)."""
        if self.reference != "spec":
            return None
        return self.spec_state.setdefault(f"reference:{part}", {})

    def reference_profile(self, ctx: VersionContext, ref_table: str, ref_rel: Sql):
        """The reference's quality profile; computed once per version for the spec reference."""
        if self.reference == "spec" and "profile" in self.spec_state:
            return self.spec_state["profile"]
        profile = reference_profile(self.cur, ref_rel, ref_table, ctx.config.features)
        if self.reference == "spec":
            self.spec_state["profile"] = profile
        return profile

    def multivariate(self, ctx: VersionContext, w: Window, ref_table: str) -> CheckResult:
        # scikit-learn is imported where it is used: the CLI and the bench stay light
        from lifecycle.drift.multivariate import domain_classifier, too_few_rows

        config, names = ctx.config, ctx.feature_names
        # small windows: the verdict is "too few rows" whatever the rows are; skip fetching them
        sizes = [min(self._rows_with_features(t), config.multivariate_sample)
                 for t in (ref_table, CUR_TABLE)]  # fmt: skip
        too_few = too_few_rows(*sizes, config.features, config)
        if too_few is not None:
            return too_few
        seed = w.seed("multivariate")
        ref = sample_rows(
            self.cur, ref_table, names, config.multivariate_sample, seed, HAS_FEATURES
        )
        cur = sample_rows(
            self.cur, CUR_TABLE, names, config.multivariate_sample, seed, HAS_FEATURES
        )
        return offload.call(domain_classifier, ref, cur, config.features, config, seed)

    def _rows_with_features(self, table: str) -> int:
        """Rows of a sample table that have a feature record (the spec reference's: once)."""
        key = f"rows_with_features:{table}"
        if self.reference == "spec" and key in self.spec_state:
            return self.spec_state[key]
        rows = self.cur.execute(f"SELECT count(*) FROM {table} WHERE {HAS_FEATURES}").fetchall()
        if self.reference == "spec" and table != CUR_TABLE:
            self.spec_state[key] = int(rows[0][0])
        return int(rows[0][0])

    # -- label checks ------------------------------------------------------------------

    def label_checks(self, ctx: VersionContext, w: Window) -> list[CheckResult]:
        from lifecycle.drift import concept  # scikit-learn, imported where it is used

        config, names = ctx.config, ctx.feature_names
        seed = w.seed("labels")
        cur_rel = labelled_relation(w.model, w.version, w.variant, w.start, w.end, names)
        current = self._labelled_sample(cur_rel, config.label_sample, seed)
        if self.reference == "spec":
            ref = self._spec_labelled_sample(w, names, config.label_sample, seed)
        else:
            rng = reference_range(self.cur, self.reference, w, config.baseline)
            start, end = rng if rng else (w.start, w.start)
            ref_rel = labelled_relation(w.model, w.version, w.variant, start, end, names)
            ref = self._labelled_sample(ref_rel, config.label_sample, seed)
        features, task = config.features, ctx.task
        return [
            offload.call(concept.performance_drift, ref, current, task, config, seed),
            offload.call(concept.surrogate_check, current, features, task, config, seed),
        ]

    def _spec_labelled_sample(self, w: Window, names: list[str], limit: int, seed: int):
        """_labelled_sample of the spec reference: its labelled rows reach pandas once per
        version; each window then only asks SQL for its sample order."""
        if self.labelled_version != w.version:
            relation = spec_labelled_relation(w.model, w.version, names)
            relation.execute(
                self.cur,
                f"CREATE OR REPLACE TEMP TABLE {REF_LABELS} AS SELECT *, "
                f"row_number() OVER (ORDER BY {KEY}) - 1 AS _pos FROM (",
                ")",
            )
            self.labelled_ref = self.cur.execute(
                f"SELECT * EXCLUDE (_pos) FROM {REF_LABELS} ORDER BY _pos"
            ).df()
            self.labelled_version = w.version
        order = self.cur.execute(
            f"SELECT _pos FROM {REF_LABELS} ORDER BY hash({KEY}, {int(seed)}), {KEY} "
            f"LIMIT {int(limit)}"
        ).fetchnumpy()["_pos"]
        return self.labelled_ref.iloc[order].reset_index(drop=True)

    def _labelled_sample(self, relation: Sql, limit: int, seed: int):
        return relation.execute(
            self.cur,
            "SELECT * FROM (",
            f") ORDER BY hash({KEY}, {int(seed)}), {KEY} LIMIT {int(limit)}",
        ).df()


# -- command line ---------------------------------------------------------------------


def cmd_monitor(args: argparse.Namespace) -> int:
    from lifecycle import requests
    from lifecycle.store import resolve_db_path

    db_path = resolve_db_path(args.db)
    if not db_path.exists():
        print(f"error: no database at {db_path}", file=sys.stderr)
        return 2
    params = {"kind": "monitor", "error_exit": 2, "model": args.model, "grain": args.grain,
              "reference": args.reference, "version": args.version, "variant": args.variant,
              "json": args.json, "force": args.force, "workers": args.workers,
              "engine": args.engine, "spark_master": args.spark_master}  # fmt: skip
    for name in ("since", "until", "as_of"):
        value = getattr(args, name)
        params[name] = value.isoformat() if value else None
    return requests.run(db_path, params, wait=args.wait)


def serve_request(store, params: dict):
    """Monitor the requested models (here, with a progress line, or in the app's process)."""
    from lifecycle.commands import utc_time
    from lifecycle.engines import EngineError, make_engine
    from lifecycle.requests import Outcome

    with store.cursor() as cur:
        models = [params["model"]] if params.get("model") else catalog.model_names(cur)
    times = {k: utc_time(params[k]) if params.get(k) else None for k in ("since", "until", "as_of")}
    runs = []
    reporter = Reporter() if params.get("here") else None
    try:  # one engine (one Spark session) for every model of the request
        engine = make_engine(params.get("engine") or "duckdb", params.get("spark_master"))
    except EngineError as exc:
        return Outcome(2, stderr=f"error: {exc}")
    workers = params.get("workers") or default_workers()
    try:
        with offload.kept_pool(workers):  # one set of worker processes for the request
            for model in models:
                try:
                    runs += monitor_declared(
                        store, model, params.get("grain"), reference=params["reference"],
                        version=params.get("version"), variant=params.get("variant"),
                        force=params.get("force", False), **times, engine=engine,
                        workers=workers,
                        progress=_progress_line(model, reporter) if reporter else None,
                    )  # fmt: skip
                except (KeyError, ValueError, MonitorError) as exc:
                    return Outcome(2, stderr=f"error: {exc}")
                finally:
                    if reporter:
                        reporter.close()  # end the terminal's progress line
    finally:
        engine.close()
    if params.get("json"):
        return Outcome(0, stdout=jsonout.dumps([r.to_dict() for r in runs]))
    lines, described = [], set()
    for run in runs:
        if run.plan and run.model not in described:
            lines.append(f"{run.model}: monitored on {run.plan}")
            described.add(run.model)
        lines.append(run.summary())
    return Outcome(0, stdout="\n".join(lines))


def _progress_line(model: str, reporter) -> Progress:
    """Progress of one model's windows through `reporter` (lifecycle.progress): a line
    rewritten on a terminal, a bounded number of log lines elsewhere."""
    counts: dict[str, Counter] = {}

    def show(done: int, total: int, window: Window, computed: bool) -> None:
        seen = counts.setdefault(window.grain, Counter())
        if done == 1:
            seen.clear()  # a new run over this grain
        seen["computed" if computed else "unchanged"] += 1
        reporter.step(
            f"monitor {model} {window.grain}",
            done,
            total,
            f"window {done}/{total} ({seen['computed']} computed, {seen['unchanged']} "
            f"unchanged; last {window.version} {window.variant} {window.start:%Y-%m-%d %H:%M})",
        )

    return show
