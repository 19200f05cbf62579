"""Controls and cached reads shared by the monitoring pages (model health, drift).

The selection (model, version, variant, window size, period, reference) lives in widget
state, copied after every run into one shared session entry (CONTEXT) that the other
monitoring pages and Version detail start from, and mirrored into the URL (st.query_params),
so a link from an alert or a chat message opens the same view. A URL that changed since the
last run (a followed link) wins over the widgets' previous state and over the shared entry;
the window size defaults to the model's declared windows (lifecycle.monitoring_plan).

No page computes monitoring results while it runs: missing windows are counted, shown as
such, and computed on request in a background thread of the app's process
(queue_monitoring), with progress on the page.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from lifecycle import catalog, lake_quality, layers, portfolio
from lifecycle.drift import results as stored_results
from lifecycle.drift.windows import chunk_size, grain_label
from lifecycle.monitoring_plan import MonitoringConfigError, MonitoringPlan, monitoring_plan
from ui import runtime
from ui.common import data_version, get_store, setup_running
from ui.text import md

GRAINS = ("hour", "day", "week", "month")
REFERENCES = {
    "spec": "version's reference data",
    "baseline": "baseline window (first 7 days)",
    "previous": "previous window",
}
# periods per grain; row-count chunks take the daily ones
DEFAULT_DAYS = {"hour": 1, "day": 30, "week": 84, "month": 366}
MAX_DAYS = {"hour": 14, "day": 366, "week": 3 * 366, "month": 5 * 366}
GRAIN_WORDS = {"hour": "Hourly", "day": "Daily", "week": "Weekly", "month": "Monthly"}
SEEN = "_monitoring_query_seen"
# The selection shared by Model health, Drift investigation and Version detail. Widget state
# is dropped when its page is left, so the pages copy their selection here after each run.
CONTEXT = "_monitoring_selection"


@dataclass(frozen=True)
class Selection:
    model: str
    version: str
    variant: str
    grain: str
    since: datetime
    until: datetime
    reference: str = "spec"

    def layer_args(self) -> dict:
        return {"grain": self.grain, "since": self.since, "until": self.until}

    @property
    def period_label(self) -> str:
        last = self.until - timedelta(days=1)
        return f"{self.since:%Y-%m-%d} to {last:%Y-%m-%d} (UTC)"


# -- cached reads ---------------------------------------------------------------------------


@st.cache_data(show_spinner=False, ttl=300)
def model_names(data_key: int) -> list[str]:
    with get_store().cursor() as cur:
        return catalog.model_names(cur)


@st.cache_data(show_spinner=False, ttl=300)
def model_context(data_key: int, model: str) -> dict:
    return layers.model_context(get_store(), model)


@st.cache_data(show_spinner=False, ttl=600, max_entries=512)
def layer(name: str, data_key: int, model: str, **kwargs):
    """A lifecycle.layers function's result, cached per data version and arguments."""
    return getattr(layers, name)(get_store(), model, **kwargs)


@st.cache_data(show_spinner=False, ttl=600, max_entries=256)
def stored(data_key: int, results_key: tuple, model: str, **kwargs) -> pd.DataFrame:
    """Stored monitoring results (lifecycle.drift.results), keyed on both data and results."""
    return stored_results(get_store(), model, **kwargs)


@st.cache_data(show_spinner=False, ttl=600, max_entries=256)
def quality(data_key: int, results_key: tuple, model: str, **kwargs) -> pd.DataFrame:
    """Stored data-quality results by tier (lifecycle.layers.quality_summary)."""
    return layers.quality_summary(get_store(), model, **kwargs)


@st.cache_data(show_spinner=False, ttl=600, max_entries=256)
def estimated(data_key: int, results_key: tuple, model: str, **kwargs) -> pd.DataFrame:
    """Stored estimated performance per window (lifecycle.layers.estimated_windows)."""
    return layers.estimated_windows(get_store(), model, **kwargs)


@st.cache_data(show_spinner=False, ttl=300)
def plan(data_key: int, model: str) -> MonitoringPlan | None:
    """The model's declared windows (None when its settings cannot be read)."""
    try:
        return monitoring_plan(get_store(), model)
    except (KeyError, MonitoringConfigError):
        return None


def grain_options(data_key: int, model: str, *, chunks: bool) -> tuple[list[str], str]:
    """(window sizes to offer, the default): calendar grains, plus the model's declared
    chunks where the page can show them; the default is its first declared window."""
    declared = plan(data_key, model)
    options = list(GRAINS)
    if declared is None:
        return options, "day"
    if chunks:
        options += [g for g in declared.grains if chunk_size(g)]
    default = declared.default_grain if declared.default_grain in options else None
    return options, default or declared.layer_grain


@st.cache_data(show_spinner=False, ttl=600, max_entries=256)
def coverage(data_key: int, alerts_key: tuple, model: str, **kwargs) -> pd.DataFrame:
    """Evaluation coverage of the alert rules (lifecycle.coverage), keyed on data and alerts."""
    from lifecycle.coverage import evaluation_coverage

    return evaluation_coverage(get_store(), model, **kwargs)


def coverage_section(selection: Selection) -> None:
    """Per layer: checks with a verdict in the period and, where some had none, why. Drift
    or performance without a single verdict is a warning: not evaluated is not healthy."""
    from lifecycle.coverage import KEY_LAYERS, detail

    frame = coverage(data_version(), _alerts_key(), selection.model, since=selection.since,
                     until=selection.until, version=selection.version,
                     variant=selection.variant)  # fmt: skip
    if frame.empty:
        st.info("No alert-rule evaluation in this period: run `python -m lifecycle check`.")
        return
    missing = frame[(frame["state"] == "not evaluated") & frame["layer"].isin(KEY_LAYERS)]
    for row in missing.itertuples(index=False):
        st.warning(f"**Not evaluated - {row.layer}:** {md(detail(row))}.", icon=":material/block:")
    table = frame.assign(detail=[detail(r) for r in frame.itertuples(index=False)])
    with st.expander("Evaluation coverage: checks with a verdict per layer",
                     expanded=not missing.empty):  # fmt: skip
        st.dataframe(
            table[["layer", "state", "grain", "verdicts", "estimated", "insufficient",
                   "windows_without_results", "detail"]],
            hide_index=True, width="stretch", key="coverage_table",
            column_config={  # short headers: the explanation needs the room
                "layer": st.column_config.TextColumn("Layer"),
                "state": st.column_config.TextColumn("State"),
                "grain": st.column_config.TextColumn("Window", width="small"),
                "verdicts": st.column_config.NumberColumn(
                    "Verdicts", width="small", help="Checks with a verdict"),
                "estimated": st.column_config.NumberColumn(
                    "Estimated", width="small",
                    help="Verdicts on performance estimated from the predictions (labels "
                    "pending)"),
                "insufficient": st.column_config.NumberColumn(
                    "Too small", width="small", help="Checks without a verdict: too few rows"),
                "windows_without_results": st.column_config.NumberColumn(
                    "No results", width="small",
                    help="Windows with traffic but no stored evaluation"),
                "detail": st.column_config.TextColumn("Why", width="large"),
            },
        )  # fmt: skip
        st.caption("Alert-rule evaluations of the period's complete windows (written by the "
                   "scheduled check), at the windows the rules use.")  # fmt: skip


def results_key(model: str) -> tuple:
    return layers.results_version(get_store(), model)


# -- controls -------------------------------------------------------------------------------


def _apply_links(keys: tuple[str, ...], page: str) -> None:
    """Copy URL values into widget state: all of them when the page was just opened (a
    followed link or a typed URL), else those that changed since the last run. A page opened
    without them (the sidebar's links carry no query parameters) takes the shared selection."""
    seen = st.session_state.get(SEEN, {})
    # every run writes the selection into the URL: without it, the page was just opened
    arrived = seen.get("_page") != page or "model" not in st.query_params
    for key in keys:
        value = st.query_params.get(key)
        if value is not None and (arrived or value != seen.get(key)):
            st.session_state[key] = value
    if arrived:
        _restore_context()


def _restore_context() -> None:
    """The selection of the last monitoring page, for what the URL does not name; a link
    to another model starts from that model's defaults."""
    context = st.session_state.get(CONTEXT, {})
    linked_model = st.query_params.get("model")
    if linked_model is not None and linked_model != context.get("model"):
        return
    for key, value in context.items():
        in_url = ("from" in st.query_params) if key == "period" else (key in st.query_params)
        if not in_url:
            st.session_state[key] = value


def share_selection(**values) -> None:
    """Record (part of) the shared selection: model, version, variant, grain, period, reference."""
    st.session_state[CONTEXT] = {**st.session_state.get(CONTEXT, {}), **values}


def shared_selection() -> dict:
    """The selection the monitoring pages share (empty before any was made)."""
    return dict(st.session_state.get(CONTEXT, {}))


def forget_unless_linked(page: str, key: str) -> None:
    """Drop a remembered page value when the page is opened without it in the URL (a link
    that names it, e.g. an alert's `tab`, applies to that visit only)."""
    arrived = st.session_state.get(SEEN, {}).get("_page") != page
    if arrived and key not in st.query_params:
        st.session_state.pop(key, None)


def _valid(key: str, options: list, fallback) -> None:
    if st.session_state.get(key) not in options:
        st.session_state[key] = fallback


def _parse_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def controls(
    page: str,
    *,
    with_reference: bool = False,
    extra_keys: tuple[str, ...] = (),
    chunks: bool = False,
) -> Selection | None:
    """Render the selection row; return the selection, or None if no model has data.
    `chunks`: the page can show row-count chunk windows (drift and quality results)."""
    version_key = data_version()
    models = model_names(version_key)
    if not models:
        st.info(
            "No model is registered yet. Register one with "
            "`python -m lifecycle register --db PATH SPEC.toml`, then ingest its logs."
        )
        return None
    keys = ("model", "version", "variant", "grain", "from", "to", "reference", *extra_keys)
    _apply_links(keys, page)
    # widths that show a version with its state and a whole date range at 1280 px; the
    # reference gets a row of its own rather than squeezing the others
    cols = st.columns([1.1, 1.4, 1.1, 0.8, 1.9])
    _valid("model", models, models[0])
    model = cols[0].selectbox("Model", models, key="model")
    ctx = model_context(version_key, model)
    versions = [v["version"] for v in ctx["versions"]]
    states = {v["version"]: v["state"] for v in ctx["versions"]}
    with_data = [v for v in versions if v in ctx["variants"]] or versions
    _valid("version", versions, ctx["production_version"] or with_data[0])
    version = cols[1].selectbox(
        "Version", versions, key="version", format_func=lambda v: f"{v} ({states[v]})"
    )
    variants = ctx["variants"].get(version) or ["production"]
    _valid("variant", variants, "production" if "production" in variants else variants[0])
    variant = cols[2].selectbox("Variant", variants, key="variant")
    grains, default_grain = grain_options(version_key, model, chunks=chunks)
    _valid("grain", grains, default_grain)
    grain = cols[3].selectbox(
        "Window", grains, key="grain", format_func=grain_label,
        help=f"UTC hours, days, ISO weeks, calendar months, or the model's row-count chunks; "
        f"{md(model)} is declared on {grain_label(default_grain)} windows ([monitoring] in its "
        "spec)",
    )  # fmt: skip
    since, until = _period(cols[4], ctx, grain)
    reference = "spec"
    if with_reference:
        _valid("reference", list(REFERENCES), "spec")
        reference = st.columns([2.5, 3.8])[0].selectbox(
            "Reference", list(REFERENCES), key="reference", format_func=REFERENCES.get
        )
    selection = Selection(model, version, variant, grain, since, until, reference)
    sync_url(selection, page, extra_keys)
    shared = {"model": model, "version": version, "variant": variant, "grain": grain}
    if isinstance(period := st.session_state.get("period"), tuple | list) and len(period) == 2:
        shared["period"] = tuple(period)
    share_selection(**shared, **({"reference": reference} if with_reference else {}))
    _offer_version_span(ctx, selection)
    return selection


def _offer_version_span(ctx: dict, selection: Selection) -> None:
    """A version whose traffic lies outside the period: say so and offer its last days."""
    span = ctx["version_spans"].get(selection.version)
    if span is None:
        st.info(f"Version {md(selection.version)} has no logged predictions yet.")
        return
    first, last = (pd.Timestamp(t) for t in span)
    if last >= pd.Timestamp(selection.since) and first < pd.Timestamp(selection.until):
        return
    days = (selection.until - selection.since).days
    st.info(
        f"Version {md(selection.version)} served from {first:%Y-%m-%d} to {last:%Y-%m-%d}, "
        "outside this period."
    )
    st.button(
        f"Show its last {days} days",
        key="version_period",
        on_click=_set_period,
        args=(last.date() - timedelta(days=days - 1), last.date()),
    )


def _set_period(start: date, stop: date) -> None:
    st.session_state["period"] = (start, stop)


def _period(col, ctx: dict, grain: str) -> tuple[datetime, datetime]:
    last = ctx["last_ts"]
    end = pd.Timestamp(last).date() if last is not None else datetime.now(UTC).date()
    first = pd.Timestamp(ctx["first_ts"]).date() if ctx["first_ts"] is not None else end
    grain = grain if grain in DEFAULT_DAYS else "day"  # chunks: the daily periods
    default = (max(first, end - timedelta(days=DEFAULT_DAYS[grain] - 1)), end)
    start_q, end_q = (_parse_day(st.session_state.get(k)) for k in ("from", "to"))
    if "period" not in st.session_state or (start_q and end_q):
        st.session_state["period"] = (start_q, end_q) if start_q and end_q else default
    for k in ("from", "to"):
        st.session_state.pop(k, None)
    picked = col.date_input("Period (UTC days)", key="period")
    if not isinstance(picked, tuple | list) or len(picked) != 2:
        picked = default  # the user is half-way through choosing a range
    start, stop = sorted(picked)
    if (stop - start).days + 1 > MAX_DAYS[grain]:
        start = stop - timedelta(days=MAX_DAYS[grain] - 1)
        st.caption(
            f"{GRAIN_WORDS[grain]} windows are "
            f"limited to the last {MAX_DAYS[grain]} days of the period "
            f"(from {start})."
        )
    since = datetime.combine(start, time(), tzinfo=UTC)
    until = datetime.combine(stop + timedelta(days=1), time(), tzinfo=UTC)
    return since, until


def shift_period(days: int) -> None:
    """Move the period widget by `days` (a button callback, before the widgets are drawn)."""
    start, stop = st.session_state["period"]
    delta = timedelta(days=days)
    st.session_state["period"] = (start + delta, stop + delta)


def sync_url(selection: Selection, page: str, extra_keys: tuple[str, ...] = ()) -> None:
    params = {
        "model": selection.model,
        "version": selection.version,
        "variant": selection.variant,
        "grain": selection.grain,
        "from": f"{selection.since:%Y-%m-%d}",
        "to": f"{selection.until - timedelta(days=1):%Y-%m-%d}",
    }
    if selection.reference != "spec":
        params["reference"] = selection.reference
    for key in extra_keys:
        value = st.session_state.get(key)
        if value:
            params[key] = str(value)
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)
    st.session_state[SEEN] = {**params, "_page": page}


def set_url_value(key: str, value: str | None) -> None:
    """Record a page-specific selection (feature, window) in the URL."""
    seen = dict(st.session_state.get(SEEN, {}))
    if value:
        st.query_params[key] = value
        seen[key] = value
    else:
        st.query_params.pop(key, None)
        seen.pop(key, None)
    st.session_state[SEEN] = seen


# -- computing missing monitor results, off the request path ---------------------------------


@st.cache_data(show_spinner=False, ttl=600, max_entries=256)
def _unmonitored(data_key: int, results_key: tuple, model: str, **kwargs) -> int:
    return layers.unmonitored_windows(get_store(), model, **kwargs)


# One computation at a time: the app shares two cores with its users.
_MONITOR_LOCK = threading.Lock()


def _job_name(selection: Selection) -> str:
    """One background job per database, model and window size (ui.runtime.start_job)."""
    return f"monitoring {get_store().path} {selection.model} {selection.grain}"


def _selection_args(selection: Selection) -> dict:
    return {
        "grain": selection.grain,
        "reference": selection.reference,
        "since": selection.since,
        "until": selection.until,
        "version": selection.version,
        "variant": selection.variant,
    }


def queue_monitoring(selection: Selection) -> runtime.Job:
    """Start computing the selection's missing windows in a thread of this process (a job
    already running for the same model and window size is returned instead)."""
    store = get_store()
    what = (
        f"{selection.model} {selection.version} {selection.variant}, "
        f"{grain_label(selection.grain)} windows, {selection.period_label}"
    )

    def work(job: runtime.Job) -> str:
        from lifecycle.monitor import monitor_model

        job.report(0.0, f"Waiting for another computation to finish before {what}")
        with _MONITOR_LOCK:

            def show(done: int, total: int, window, computed: bool) -> None:
                job.report(done / max(total, 1), f"Computing {what}: window {done} of {total}")

            run = monitor_model(store, selection.model, progress=show,
                                **_selection_args(selection))  # fmt: skip
        return run.summary()

    return runtime.start_job(_job_name(selection), work)


def join_monitoring(timeout: float = 600) -> None:
    """Wait for every queued computation to end (tests; shutting down)."""
    runtime.wait_jobs("monitoring ", timeout)


def monitoring_status(selection: Selection) -> int:
    """Say how many of the selection's windows have no stored results and offer to compute
    them in the background; while that runs, show its progress (the page shows what is
    stored meanwhile and reruns when it ends). Returns the number of missing windows (1
    while a computation runs: its count is known only to the job)."""
    if setup_running():  # the first-start setup is computing them (its banner is on top)
        return 0
    job = runtime.job(_job_name(selection))
    if job is not None and job.running:
        _job_progress(_job_name(selection))
        return 1
    if job is not None and job.error:
        st.error(f"Computing the monitoring results failed: {md(job.error)}")
    missing = _unmonitored(
        data_version(), results_key(selection.model), selection.model,
        **_selection_args(selection),
    )  # fmt: skip
    if missing:
        with st.container(border=True, key="monitoring_offer"):
            st.markdown(
                f"**{missing} window(s) of this selection are not computed yet**: the page shows "
                "the stored results only. Computing runs in the background; the page updates "
                "when it is done."
            )
            st.button(
                f"Compute the {missing} missing window(s)", key="monitoring_compute",
                icon=":material/play_arrow:", on_click=queue_monitoring, args=(selection,),
            )  # fmt: skip
    return missing


@st.fragment(run_every=1.0)
def _job_progress(name: str) -> None:
    job = runtime.job(name)
    if job is None or not job.running:
        st.rerun()  # the whole page, with the new results
    st.progress(job.fraction, text=md(job.text))


# -- portfolio (Overview) -------------------------------------------------------------------


def _light(label: str, checks: str) -> str:
    """A layer cell: its status and, when it was evaluated at all, checks with a verdict."""
    return f"{label} · {checks}" if checks else label


LIGHTS = {  # status -> (label, background colour of the cell); no verdict is never green
    "critical": ("critical", "#f4c7c3"),
    "warning": ("warning", "#fde3b0"),
    "ok": ("ok", "#cdebd6"),
    "not evaluated": ("not evaluated", "#d6d6d6"),
    "awaiting labels": ("awaiting labels", "#e8eef5"),
    "no KPI": ("no KPI declared", "#ffffff"),
}
EVALUATION_COLOURS = {"not evaluated": "#d6d6d6", "partly evaluated": "#f1f1f1"}
PORTFOLIO_DAYS = (1, 7, 30)  # period choices; 7 by default


@st.cache_data(show_spinner=False, ttl=300)
def _last_prediction(data_key: int):
    return portfolio.last_prediction_at(get_store())


@st.cache_data(show_spinner=False, ttl=300)
def _portfolio(data_key: int, alerts_key: tuple, since: datetime | None) -> pd.DataFrame:
    return layers.portfolio_health(get_store(), since=since)


def _alerts_key() -> tuple:
    store = get_store()
    if not store.table_exists("alert_evaluations"):
        return (0, None)
    return tuple(
        store.query_all(
            "SELECT (SELECT count(*) FROM alert_evaluations), (SELECT max(updated_at) FROM alerts)"
        )[0]
    )


def portfolio_section() -> None:
    """Health per model and layer over the last days, each row leading to its health page."""
    dv = data_version()
    if not model_names(dv):
        return
    st.subheader("Model health")
    days = st.segmented_control(
        "Period", PORTFOLIO_DAYS, default=7, key="portfolio_days",
        format_func=lambda d: f"last {d} day{'s' if d > 1 else ''}",
    ) or 7  # fmt: skip
    last = _last_prediction(dv)
    since = None
    if last is not None:
        end = pd.Timestamp(last).floor("D") + pd.Timedelta(days=1)
        since = (end - pd.Timedelta(days=days)).to_pydatetime()
    frame = _portfolio(dv, _alerts_key(), since)
    st.caption(
        f"Worst alert-rule outcome per layer over the last {days} day(s) of data "
        "(production version and traffic) with the checks that had a verdict (e.g. 21/28: "
        "7 had too little data), active alerts, and when data last arrived. A layer without "
        "a single verdict is *not evaluated* (grey, never ok); a model whose drift or "
        "performance was not evaluated says so in *Evaluated*. Performance marked "
        "*(estimated)* rests on performance estimated from the predictions while their "
        "labels are pending. "
        "Choose a row to open that model's health page on the same days."
    )
    labels = {status: label for status, (label, _) in LIGHTS.items()}
    colours = dict(LIGHTS.values())
    table = frame.assign(**{layer: [_light(labels[s], c) for s, c in
                                    zip(frame[layer], frame[f"{layer}_checks"], strict=True)]
                            for layer in layers.PORTFOLIO_LAYERS})  # fmt: skip
    # a performance verdict from estimates (labels pending) says so in its cell
    table["performance"] = [
        cell.replace(" · ", " (estimated) · ", 1) if basis == "estimated" and " · " in cell
        else cell + " (estimated)" if basis == "estimated" else cell
        for cell, basis in zip(table["performance"], frame["performance_basis"], strict=True)
    ]  # fmt: skip
    layer_columns = [
        c
        for layer in layers.PORTFOLIO_LAYERS
        for c in (
            [layer, "performance_estimate"]
            if layer == "performance" and frame["performance_estimate"].astype(bool).any()
            else [layer]
        )
    ]  # the estimate (labels pending) beside the verdict it explains
    columns = ["model", "production_version", "evaluation", *layer_columns,
               "critical_alerts", "warning_alerts", "last_received"]  # fmt: skip
    styled = (
        table[columns]
        .style.map(
            lambda v: (
                "background-color: "
                + colours.get(v.split(" · ")[0].removesuffix(" (estimated)"), "#ffffff")
            ),
            subset=list(layers.PORTFOLIO_LAYERS),
        )
        .map(
            lambda v: f"background-color: {EVALUATION_COLOURS.get(v, '#ffffff')}",
            subset=["evaluation"],
        )
    )
    event = st.dataframe(
        styled,
        hide_index=True, width="stretch", key="portfolio", on_select="rerun",
        selection_mode="single-row",
        # widths fit "critical · 595/700" and "partly evaluated": a styled frame is not
        # sized to its cells; the model column stays in view when the table scrolls
        column_config={
            "model": st.column_config.TextColumn("Model", width=110, pinned=True),
            "production_version": st.column_config.TextColumn("Production", width=85),
            "evaluation": st.column_config.TextColumn(
                "Evaluated", width=135, help="not evaluated: drift or performance had no "
                "verdict in the period (too little data, or no check ran); partly: some "
                "windows had none"),
            **{layer: st.column_config.TextColumn(layer.replace("_", " ").capitalize(),
                                                  width=190 if layer == "performance" else 150)
               for layer in layers.PORTFOLIO_LAYERS},
            "performance_estimate": st.column_config.TextColumn(
                "Performance estimate", width=250, help="Labels pending: the headline metric "
                "estimated from the period's production predictions"),
            "critical_alerts": st.column_config.NumberColumn("Critical alerts", width=100),
            "warning_alerts": st.column_config.NumberColumn("Warning alerts", width=100),
            "last_received": st.column_config.DatetimeColumn(
                "Last batch received (UTC)", format="YYYY-MM-DD HH:mm", width=170),
        },
    )  # fmt: skip
    period = {}
    if since is not None:  # the health page opens on the same days
        period = {"from": f"{since:%Y-%m-%d}", "to": f"{pd.Timestamp(last):%Y-%m-%d}"}
    rows = event.selection.rows if event is not None else []
    if rows:
        model = table.iloc[rows[0]]["model"]
        st.switch_page("pages/model_health.py", query_params={"model": model, **period})
    cols = st.columns(len(frame))
    for col, model in zip(cols, frame["model"], strict=True):
        col.page_link(
            "pages/model_health.py",
            label=f"{md(model)} health",
            icon=":material/monitor_heart:",
            query_params={"model": model, **period},
        )


def lake_sources_section(model: str) -> None:
    """Where a lake model's logs are read from, and (on demand: it reads every file) what
    the lake holds: files, rows, rows that fit no window, values that did not parse."""
    declared = lake_quality.declared_sources(get_store(), model)
    if not declared:
        return
    with st.expander(f"Logs read in place from a lake ({len(declared)} source(s))"):
        st.markdown(
            "\n".join(f"- **{d['kind']}**: {d['format']} at {md(d['path'])}" for d in declared)
        )
        st.caption(
            "Each window's `source_read` result counts its unreadable values and duplicate "
            "ids (docs/lake.md). The whole-lake check reads every file."
        )
        if st.button("Check the whole lake now", key="lake_status", icon=":material/search:"):
            with st.spinner("Reading every file of the lake..."):
                st.dataframe(lake_quality.status_frame(get_store(), model), hide_index=True)
