"""`python -m lifecycle results`: the per-window figures the monitoring pages draw, as text.

Every number comes from the library's read functions, the same the pages call:
infrastructure, performance and business from lifecycle.layers (`infra_windows`,
`performance_windows` with its intervals and label coverage, `business_windows`), data
quality from `layers.quality_summary` and drift from the stored monitoring results
(lifecycle.drift.results: effect size, p-value, severity per feature and check). Nothing is
computed here; windows without stored drift or quality results need `monitor` first.

Output: `table` (aligned columns for people), `csv` (a header, then one row per window and
subject) or `json` (a list of objects; strict JSON: null for a missing or undefined number,
time stamps ISO 8601 in UTC). The command only reads; while the app holds the database it
runs in the app's process through the request queue (lifecycle.requests), like `report`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from lifecycle import catalog, jsonout, layers
from lifecycle.drift.results import PREDICTION_SUBJECTS
from lifecycle.drift.results import results as stored_results
from lifecycle.drift.windows import check_grain, chunk_size
from lifecycle.names import GRAINS

LAYERS = ("infrastructure", "performance", "business", "quality", "drift")
CALENDAR_LAYERS = ("infrastructure", "performance", "business")  # summaries of the logs
FEATURE_LAYERS = ("quality", "drift")  # stored results with a subject per feature
FORMATS = ("table", "csv", "json")
KEY_COLUMNS = ["window_start", "window_end", "model_version", "variant"]
DRIFT_COLUMNS = [*KEY_COLUMNS, "reference_kind", "check_name", "subject", "method", "statistic",
                 "effect_size", "p_value", "p_adjusted", "threshold", "severity", "response",
                 "n_reference", "n_current", "status", "reason"]  # fmt: skip
QUALITY_COLUMNS = [*KEY_COLUMNS, "tier", "check_name", "subject", "method", "rate", "severity",
                   "response", "n_current", "status", "reason", "examples"]  # fmt: skip
TABLE_CELL = 40  # characters of a text cell in `table` output


class ResultsError(ValueError):
    """A request `results` cannot answer (unknown model, version, feature, ...), named."""


# -- reading -----------------------------------------------------------------------------------


def results_frames(
    store,
    model: str,
    *,
    layer: str | None = None,
    grain: str | None = None,
    version: str | None = None,
    variant: str | None = None,
    feature: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    reference: str = "spec",
) -> tuple[str, dict[str, pd.DataFrame]]:
    """(the grain used, layer -> its per-window frame) for one layer or all five.

    Without `grain`, the model's declared windows decide (lifecycle.monitoring_plan), as on
    the pages. Raises ResultsError for anything it cannot answer."""
    context = _context(store, model)
    if version is not None and version not in [v["version"] for v in context["versions"]]:
        known = ", ".join(v["version"] for v in context["versions"]) or "none"
        raise ResultsError(f"{model} has no version {version!r} (versions: {known})")
    wanted = _layers(layer, feature)
    grain = _grain(store, model, grain, wanted)
    window = {"grain": grain, "since": since, "until": until, "version": version,
              "variant": variant}  # fmt: skip
    frames = {name: READERS[name](store, model, window, reference) for name in wanted}
    if feature is not None:
        _check_feature(model, feature, context, frames)
        frames = {name: f[f["subject"] == feature].reset_index(drop=True)
                  for name, f in frames.items()}  # fmt: skip
    return grain, frames


def _context(store, model: str) -> dict:
    with store.cursor() as cur:
        if catalog.model_info(cur, model) is None:
            known = ", ".join(catalog.model_names(cur)) or "none registered"
            raise ResultsError(f"unknown model {model!r} (known: {known})")
    return layers.model_context(store, model)


def _layers(layer: str | None, feature: str | None) -> tuple[str, ...]:
    if layer is not None and layer not in LAYERS:
        raise ResultsError(f"unknown layer {layer!r}; use one of {', '.join(LAYERS)}")
    if feature is not None:
        if layer is None:
            return FEATURE_LAYERS
        if layer not in FEATURE_LAYERS:
            raise ResultsError(
                f"--feature applies to the {' and '.join(FEATURE_LAYERS)} layers, not {layer} "
                "(its figures are per window, not per feature)"
            )
    return (layer,) if layer else LAYERS


def _grain(store, model: str, grain: str | None, wanted: tuple[str, ...]) -> str:
    calendar_only = [name for name in wanted if name in CALENDAR_LAYERS]
    if grain is not None:
        try:
            check_grain(grain)
        except ValueError as exc:
            raise ResultsError(str(exc)) from exc
        if chunk_size(grain) and calendar_only:
            raise ResultsError(
                f"{grain} windows apply to the drift and quality layers only; "
                f"{', '.join(calendar_only)} use calendar windows ({', '.join(GRAINS)}): "
                "give --layer drift or --layer quality, or a calendar --grain"
            )
        return grain
    from lifecycle.monitoring_plan import MonitoringConfigError, monitoring_plan

    try:
        plan = monitoring_plan(store, model)
    except (KeyError, MonitoringConfigError):
        return "day"
    return plan.layer_grain if calendar_only else plan.default_grain


def _check_feature(
    model: str, feature: str, context: dict, frames: dict[str, pd.DataFrame]
) -> None:
    known = set(context["features"]) | set(PREDICTION_SUBJECTS)
    for frame in frames.values():
        known |= set(frame["subject"])
    if feature not in known:
        raise ResultsError(
            f"unknown feature {feature!r} of {model}; known subjects: {', '.join(sorted(known))}"
        )


def _infrastructure(store, model: str, window: dict, reference: str) -> pd.DataFrame:
    """Requests, errors and latency per window, with each resource metric's mean and max
    (`cpu_util_mean`, `cpu_util_max`, ...) where infrastructure metrics were logged."""
    serving = layers.infra_windows(store, model, **window)
    resources = layers.resource_windows(store, model, **window)
    if resources.empty:
        return serving
    wide = resources.pivot(index=KEY_COLUMNS, columns="metric", values=["value_mean", "value_max"])
    wide.columns = [f"{metric}_{stat.removeprefix('value_')}" for stat, metric in wide.columns]
    wide = wide[sorted(wide.columns)].reset_index()
    merged = serving.merge(wide, on=KEY_COLUMNS, how="outer")
    return merged.sort_values(["window_start", "model_version", "variant"]).reset_index(drop=True)


def _performance(store, model: str, window: dict, reference: str) -> pd.DataFrame:
    return layers.performance_windows(store, model, **window)


def _business(store, model: str, window: dict, reference: str) -> pd.DataFrame:
    return layers.business_windows(store, model, **window)


def _quality(store, model: str, window: dict, reference: str) -> pd.DataFrame:
    frame = layers.quality_summary(store, model, reference=reference, **window)
    frame = frame.assign(reason=[_reason(d) for d in frame["details"]])
    return frame[QUALITY_COLUMNS]


def _drift(store, model: str, window: dict, reference: str) -> pd.DataFrame:
    frames = [
        stored_results(store, model, reference=reference, layer=layer, **window)
        for layer in ("drift", "concept")  # the drift page's rows: data, prediction, concept
    ]
    frame = pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)
    frame = frame.assign(reason=[_reason(d) for d in frame["details"]])
    order = ["window_start", "model_version", "variant", "check_name", "subject"]
    return frame.sort_values(order, kind="stable")[DRIFT_COLUMNS].reset_index(drop=True)


def _reason(details: Any) -> str | None:
    return details.get("reason") if isinstance(details, dict) else None


READERS = {
    "infrastructure": _infrastructure,
    "performance": _performance,
    "business": _business,
    "quality": _quality,
    "drift": _drift,
}


# -- rendering ---------------------------------------------------------------------------------


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as JSON-safe dicts (null for NaN, ISO 8601 UTC time stamps)."""
    return jsonout.plain(frame.astype(object).to_dict("records"))


def render(frames: dict[str, pd.DataFrame], fmt: str, *, grain: str = "") -> str:
    if fmt == "json":
        if len(frames) == 1:
            return jsonout.dumps(records(next(iter(frames.values()))))
        rows = [{"layer": name, **row} for name, f in frames.items() for row in records(f)]
        return jsonout.dumps(rows)
    if fmt == "csv":
        (frame,) = frames.values()  # several layers: refused before reading (their columns differ)
        return to_csv(frame)
    if fmt != "table":
        raise ResultsError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    sections = []
    for name, frame in frames.items():
        body = to_table(frame) if len(frame) else _nothing(name, grain)
        sections.append(f"== {name} ==\n{body}" if len(frames) > 1 else body)
    return "\n\n".join(sections)


def _nothing(layer: str, grain: str) -> str:
    text = f"(no {layer} results at {grain} windows"
    if layer in FEATURE_LAYERS:
        text += "; they are stored by `python -m lifecycle monitor`"
    return text + ")"


def to_csv(frame: pd.DataFrame) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(frame.columns)
    for row in records(frame):
        writer.writerow([_csv_cell(v) for v in row.values()])
    return out.getvalue().rstrip("\n")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    return value


def to_table(frame: pd.DataFrame) -> str:
    """Aligned columns: numbers right-aligned to 4 significant digits, '-' for none."""
    columns = list(frame.columns)
    cells = [[_table_cell(v) for v in row.values()] for row in records(frame)]
    numeric = [
        all(isinstance(v, int | float) or v is None for v in frame[c].astype(object))
        and not pd.api.types.is_bool_dtype(frame[c])
        for c in columns
    ]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(columns), *(line(r) for r in cells)])


def _table_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "-"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | dict):
        value = json.dumps(value, separators=(",", ":"))
    text = str(value)
    if len(text) == 20 and text.endswith(":00Z") and text[10] == "T":  # a time stamp
        return f"{text[:10]} {text[11:16]}"
    return text if len(text) <= TABLE_CELL else text[: TABLE_CELL - 3] + "..."


# -- command line ------------------------------------------------------------------------------


def cmd_results(args) -> int:
    from lifecycle import requests
    from lifecycle.store import resolve_db_path

    db_path = resolve_db_path(args.db)
    if not db_path.exists():
        print(f"error: no database at {db_path}", file=sys.stderr)
        return 2
    if args.format == "csv" and args.layer is None:
        print("error: --format csv needs --layer (each layer has its own columns)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        since, until = _period(args.since, args.until)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    params = {"kind": "results", "error_exit": 2, "model": args.model, "version": args.version,
              "variant": args.variant, "grain": args.grain, "layer": args.layer,
              "feature": args.feature, "reference": args.reference, "format": args.format,
              "since": since.isoformat() if since else None,
              "until": until.isoformat() if until else None}  # fmt: skip
    return requests.run(db_path, params, wait=args.wait)


def _period(since_text: str | None, until_text: str | None):
    """(since, until) in UTC from --from / --to: ISO dates or times; a date given to --to
    names the whole day (--to 2026-03-31 includes March 31)."""
    from lifecycle.commands import utc_time

    def parse(option: str, text: str | None) -> datetime | None:
        if text is None:
            return None
        try:
            return utc_time(text)
        except ValueError:
            raise ValueError(
                f"{option} {text!r} is not a date or time (YYYY-MM-DD or ISO 8601)"
            ) from None

    since, until = parse("--from", since_text), parse("--to", until_text)
    if until is not None and len(until_text.strip()) == 10:
        until += timedelta(days=1)
    if since is not None and until is not None and until <= since:
        raise ValueError(f"--to {until_text} is not after --from {since_text}")
    return since, until


def serve_request(store, params: dict):
    """Read and render the requested results (here, or in the app's process)."""
    from lifecycle.commands import utc_time
    from lifecycle.requests import Outcome

    times = {k: utc_time(params[k]) if params.get(k) else None for k in ("since", "until")}
    try:
        grain, frames = results_frames(
            store, params["model"], layer=params.get("layer"), grain=params.get("grain"),
            version=params.get("version"), variant=params.get("variant"),
            feature=params.get("feature"), reference=params.get("reference") or "spec",
            **times,
        )  # fmt: skip
    except (ResultsError, layers.LayerError) as exc:
        return Outcome(2, stderr=f"error: {exc}")
    text = render(frames, params.get("format") or "table", grain=grain)
    note = f"{params['model']}: {grain} windows" if params.get("format") == "table" else ""
    return Outcome(0, stdout=text, stderr=note)
