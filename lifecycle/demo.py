"""A realistic demo dataset with known incidents: `python -m lifecycle demo --db PATH`.

Three models are trained with scikit-learn on generated data, registered from TOML specs with
validation-set reference data, and "served" for `days` days: their predictions, feature logs,
late labels, business events and infrastructure metrics go through the normal ingestion path.
The data covers [end - days, end); the incidents (data/README.md) are dated relative to `end`.

The database is built in a side file and moved into place when complete, so an interrupted
build never leaves a half-filled database where the app looks for one.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from lifecycle import catalog
from lifecycle.identity import DEV_USER, Actor
from lifecycle.ingest import ingest
from lifecycle.spec import parse_spec
from lifecycle.store import Store, resolve_db_path

Progress = Callable[[float, str], None]
DAY = 86_400.0
TRAIN_ROWS = 12_000
REFERENCE_ROWS = 4_000
DEMO_REVIEWERS = ("rita.reviewer@example.com", "sam.reviewer@example.com")
DEMO_DEPLOYER = "dana.deployer@example.com"

# Incidents, in days before the end of the data (see data/README.md).
GRADUAL_DRIFT_START = 35  # credit_risk.debt_ratio mean rises from here to the end
UPSTREAM_BREAK = (50, 48)  # churn.usage_gb mostly null between these two days
UNSEEN_CATEGORY_START = 20  # credit_risk.employment_type "gig_worker" appears
LATENCY_SPIKE_DAY, LATENCY_SPIKE_HOURS = 25, (10, 16)  # delivery_time, UTC hours
CONCEPT_DRIFT_START = 40  # delivery_time: the traffic effect doubles
KPI_DROP_START = 15  # churn conversion falls while accuracy holds

# The registry at the end of the data: churn's candidate is a canary mid-rollout (it answers a
# share of real requests instead of production, and its shadow stops), and credit_risk (high
# risk: two reviewers) and delivery_time (low risk: one) each have a version awaiting review.
CANARY_MODEL = "churn"
CANARY_STEPS = ((10, 0.01), (5, 0.05))  # (days before the end, share): 1%, then 5%


@dataclass
class Timeline:
    """The demo period and when each version served."""

    end: datetime
    days: int

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    @property
    def switch(self) -> datetime:
        """The retired version served before this instant, the production one after."""
        return self.start + timedelta(days=self.days // 3)

    @property
    def shadow_start(self) -> datetime:
        return self.end - timedelta(days=self.days // 3)

    def before_end(self, days: float) -> float:
        """Seconds since start of the instant `days` before the end."""
        return (self.days - days) * DAY


@dataclass
class DemoModel:
    name: str
    task: str
    risk_tier: str
    owner: str
    description: str
    daily_rows: int
    numeric: list[str]
    categorical: dict[str, list[str]]
    versions: list[tuple[str, Callable[[], object], str]]  # (version, estimator factory, note)
    # a newer version registered days before the end and sent for review, never served:
    # (version, estimator factory, note, registrant, days before the end, approvals so far)
    pending: tuple[str, Callable[[], object], str, str, int, tuple[str, ...]] | None = None
    kpis: list[tuple[str, str, str]] = field(default_factory=list)  # (name, unit, description)
    rules: list[tuple[str, str, str]] = field(default_factory=list)  # (name, sql, description)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    sensitive_attribute: str | None = None
    segments: tuple[str, ...] = ()
    latency_median_ms: float = 30.0
    label_delay_days: tuple[float, float] = (1.0, 2.0)
    never_labelled: float = 0.1
    # model card sections (lifecycle.model_card) shared by every version; each version's
    # card adds its training rows and validation metrics
    card: dict[str, str] = field(default_factory=dict)


def _pipeline(model: DemoModel, estimator) -> object:
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = OneHotEncoder(handle_unknown="ignore")
    columns = ColumnTransformer(
        [("num", numeric, model.numeric), ("cat", categorical, list(model.categorical))]
    )
    return make_pipeline(columns, estimator)


def demo_models() -> list[DemoModel]:
    """The demo's models, in build order."""
    return _models()


def _models() -> list[DemoModel]:
    return [
        DemoModel(
            name="credit_risk",
            task="binary_classification",
            risk_tier="high",
            owner="carla.owner@example.com",
            card={
                "intended_use": "Rank consumer loan applications by default risk for the "
                "credit team's underwriters, who make the decision; not for automated refusals.",
                "out_of_scope": "Business loans, applicants outside the lending markets it "
                "was trained on, pricing.",
                "limitations": "Scores move when income or debt reporting changes; the "
                "predicted probabilities follow the training period's default rate.",
                "ethical_considerations": "Age band is an input and the sensitive attribute "
                "the review checks: the rate of predicted defaults per band must meet the 80% "
                "rule (disparate impact); a version that fails it is not approved.",
                "contacts": "credit-risk-oncall@example.com",
            },
            description="Probability that a consumer loan defaults within 12 months.",
            daily_rows=5_000,
            numeric=[
                "income",
                "debt_ratio",
                "credit_history_months",
                "num_open_accounts",
                "loan_amount",
            ],
            categorical={
                "employment_type": [
                    "salaried",
                    "self_employed",
                    "contractor",
                    "unemployed",
                    "retired",
                ],
                "region": ["north", "south", "east", "west"],
                "age_band": ["18-29", "30-49", "50+"],
            },
            versions=[
                ("1.0", lambda: LogisticRegression(C=1.0, max_iter=500), "logistic regression"),
                (
                    "1.1",
                    lambda: HistGradientBoostingClassifier(
                        max_depth=3, max_iter=120, random_state=0
                    ),
                    "gradient boosting, depth 3",
                ),
                (
                    "1.2",
                    lambda: HistGradientBoostingClassifier(
                        max_leaf_nodes=15, learning_rate=0.06, max_iter=200, random_state=0
                    ),
                    "gradient boosting, 15 leaves",
                ),
            ],
            pending=(
                "1.3",
                lambda: HistGradientBoostingClassifier(
                    max_leaf_nodes=15, learning_rate=0.08, max_iter=150, random_state=1
                ),
                "gradient boosting, 15 leaves, learning rate 0.08",
                DEMO_DEPLOYER,
                3,
                DEMO_REVIEWERS[:1],  # one of the two approvals a high-risk model needs
            ),
            rules=[
                ("loan_positive", "loan_amount > 0", "a loan has a positive amount"),
                ("debt_ratio_sane", "debt_ratio BETWEEN 0 AND 5", "debt ratio within [0, 5]"),
            ],
            ranges={
                "income": (0, 2_000_000),
                "debt_ratio": (0, 5),
                "credit_history_months": (0, 600),
                "num_open_accounts": (0, 60),
                "loan_amount": (500, 500_000),
            },
            sensitive_attribute="age_band",
            segments=("online", "branch", "partner"),
            latency_median_ms=35.0,
            label_delay_days=(14.0, 45.0),
            never_labelled=0.15,
        ),
        DemoModel(
            name="churn",
            task="binary_classification",
            risk_tier="low",
            owner="chris.owner@example.com",
            card={
                "intended_use": "Pick subscribers for retention offers in the weekly campaign.",
                "limitations": "Tenure under a month is rare in training; contract changes "
                "shift the score.",
                "ethical_considerations": "Offers are benefits, never penalties; no sensitive "
                "attributes are inputs.",
                "contacts": "growth-analytics@example.com",
            },
            description="Probability that a subscriber cancels within 30 days; drives retention offers.",
            daily_rows=4_000,
            numeric=["tenure_months", "monthly_charges", "support_calls", "usage_gb"],
            categorical={
                "contract": ["monthly", "annual", "two_year"],
                "payment_method": ["card", "bank_transfer", "paypal"],
            },
            versions=[
                ("1.0", lambda: LogisticRegression(C=0.5, max_iter=500), "logistic regression"),
                (
                    "2.0",
                    lambda: HistGradientBoostingClassifier(
                        max_depth=4, max_iter=120, random_state=0
                    ),
                    "gradient boosting, depth 4",
                ),
                (
                    "2.1",
                    lambda: HistGradientBoostingClassifier(
                        max_leaf_nodes=20, learning_rate=0.05, max_iter=220, random_state=0
                    ),
                    "gradient boosting, 20 leaves",
                ),
            ],
            kpis=[("conversion", "share", "retention offer accepted (1) or declined (0)")],
            rules=[("charges_positive", "monthly_charges > 0", "a subscription costs something")],
            ranges={
                "tenure_months": (0, 240),
                "monthly_charges": (0, 500),
                "support_calls": (0, 50),
                "usage_gb": (0, 2_000),
            },
            segments=("web", "app", "call_center"),
            latency_median_ms=20.0,
            label_delay_days=(7.0, 30.0),
            never_labelled=0.10,
        ),
        DemoModel(
            name="delivery_time",
            task="regression",
            risk_tier="low",
            owner="devi.owner@example.com",
            card={
                "intended_use": "Promise delivery times to customers at checkout.",
                "limitations": "Weather and strikes are not inputs; errors grow at peak load.",
                "ethical_considerations": "Promised times affect customer trust, not access to "
                "service; monitored for systematic lateness by region.",
                "contacts": "logistics-ml@example.com",
            },
            description="Minutes from order to delivery, shown to customers as the promised time.",
            daily_rows=4_500,
            numeric=[
                "distance_km",
                "items",
                "hour_of_day",
                "traffic_index",
                "courier_experience_months",
            ],
            categorical={"weather": ["clear", "rain", "snow", "fog"]},
            versions=[
                ("1.0", lambda: Ridge(alpha=1.0), "ridge regression"),
                (
                    "1.1",
                    lambda: HistGradientBoostingRegressor(
                        max_depth=4, max_iter=150, random_state=0
                    ),
                    "gradient boosting, depth 4",
                ),
                (
                    "1.2",
                    lambda: HistGradientBoostingRegressor(
                        max_leaf_nodes=20, learning_rate=0.05, max_iter=250, random_state=0
                    ),
                    "gradient boosting, 20 leaves",
                ),
            ],
            pending=(
                "1.3",
                lambda: HistGradientBoostingRegressor(
                    max_leaf_nodes=20, learning_rate=0.08, max_iter=150, random_state=1
                ),
                "gradient boosting, 20 leaves, learning rate 0.08",
                DEV_USER,  # the app's development identity: four-eyes keeps it from approving
                2,
                (),
            ),
            kpis=[("on_time_delivery", "share", "delivered by the promised time (1) or late (0)")],
            rules=[
                ("hour_valid", "hour_of_day BETWEEN 0 AND 23", "hour of day is 0-23"),
                ("items_positive", "items >= 1", "an order has at least one item"),
            ],
            ranges={
                "distance_km": (0, 60),
                "items": (1, 50),
                "hour_of_day": (0, 23),
                "traffic_index": (0, 10),
                "courier_experience_months": (0, 240),
            },
            segments=("berlin", "hamburg", "munich"),
            latency_median_ms=45.0,
            label_delay_days=(0.02, 0.12),
            never_labelled=0.02,
        ),
    ]


# -- feature and target generators ------------------------------------------------------------
# `t` is seconds since the start of the demo (training data uses t = 0: the healthy regime).


def _credit_features(rng, n, t, line: Timeline) -> pd.DataFrame:
    debt = rng.gamma(2.0, 0.18, n)
    onset = line.before_end(GRADUAL_DRIFT_START)
    ramp = np.clip((t - onset) / (GRADUAL_DRIFT_START * DAY), 0, 1)
    debt = debt + np.where(t >= onset, 0.254 * (0.15 + 1.05 * ramp), 0.0)
    employment = rng.choice(
        ["salaried", "self_employed", "contractor", "unemployed", "retired"],
        n,
        p=[0.6, 0.15, 0.12, 0.05, 0.08],
    ).astype(object)
    gig = (t >= line.before_end(UNSEEN_CATEGORY_START)) & (rng.random(n) < 0.08)
    employment[gig] = "gig_worker"
    return pd.DataFrame(
        {
            "income": np.round(rng.lognormal(np.log(55_000), 0.5, n), 0),
            "debt_ratio": np.round(np.clip(debt, 0, 5), 4),
            "credit_history_months": np.round(np.clip(rng.gamma(3.0, 40.0, n), 0, 600)),
            "num_open_accounts": rng.poisson(4, n).astype(float),
            "loan_amount": np.round(np.clip(rng.lognormal(np.log(15_000), 0.7, n), 500, 5e5), 0),
            "employment_type": employment,
            "region": rng.choice(["north", "south", "east", "west"], n),
            "age_band": rng.choice(["18-29", "30-49", "50+"], n, p=[0.25, 0.45, 0.30]),
        }
    )


def _credit_target(rng, x: pd.DataFrame, t, line: Timeline) -> np.ndarray:
    employment_effect = (
        x["employment_type"]
        .map(
            {
                "salaried": 0.0,
                "self_employed": 0.2,
                "contractor": 0.3,
                "unemployed": 1.0,
                "retired": 0.0,
                "gig_worker": 0.6,
            }
        )
        .to_numpy(float)
    )
    logit = (
        -1.2
        + 3.0 * (x["debt_ratio"].to_numpy() - 0.36)
        - 0.8 * (np.log(x["income"].to_numpy()) - np.log(55_000))
        - 0.005 * (x["credit_history_months"].to_numpy() - 120)
        + 0.12 * (x["num_open_accounts"].to_numpy() - 4)
        + 0.35 * (np.log(x["loan_amount"].to_numpy()) - np.log(15_000))
        + employment_effect
        + np.where(x["age_band"].to_numpy() == "18-29", 0.2, 0.0)
    )
    return (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(int)


def _churn_features(rng, n, t, line: Timeline) -> pd.DataFrame:
    usage = np.round(np.clip(rng.lognormal(np.log(20), 0.8, n), 0, 2000), 2)
    start, stop = (line.before_end(d) for d in UPSTREAM_BREAK)
    broken = (t >= start) & (t < stop) & (rng.random(n) < 0.9)
    usage = np.where(broken, np.nan, usage)
    return pd.DataFrame(
        {
            "tenure_months": np.round(np.clip(rng.gamma(2.0, 15.0, n), 0, 240)),
            "monthly_charges": np.round(np.clip(rng.normal(70, 25, n), 15, 200), 2),
            "support_calls": rng.poisson(1.5, n).astype(float),
            "usage_gb": usage,
            "contract": rng.choice(["monthly", "annual", "two_year"], n, p=[0.55, 0.3, 0.15]),
            "payment_method": rng.choice(["card", "bank_transfer", "paypal"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def _churn_target(rng, x: pd.DataFrame, t, line: Timeline) -> np.ndarray:
    contract = x["contract"].map({"monthly": 0.8, "annual": -0.4, "two_year": -1.2}).to_numpy(float)
    usage = np.log(np.nan_to_num(x["usage_gb"].to_numpy(float), nan=20.0) + 1)
    logit = (
        -1.0
        - 0.04 * (x["tenure_months"].to_numpy() - 30)
        + 0.015 * (x["monthly_charges"].to_numpy() - 70)
        + 0.45 * (x["support_calls"].to_numpy() - 1.5)
        - 0.5 * (usage - np.log(21))
        + contract
    )
    return (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(int)


def _delivery_features(rng, n, t, line: Timeline, hours=None) -> pd.DataFrame:
    # training rows follow the same daily cycle as served requests
    hours = rng.choice(24, size=n, p=_DIURNAL) if hours is None else hours
    rush = np.isin(hours, [7, 8, 12, 17, 18, 19])
    return pd.DataFrame(
        {
            "distance_km": np.round(np.clip(rng.gamma(2.0, 2.5, n), 0.1, 60), 2),
            "items": (rng.poisson(2.0, n) + 1).astype(float),
            "hour_of_day": hours.astype(float),
            "traffic_index": np.round(np.clip(rng.beta(2, 3, n) * 10 + 2.0 * rush, 0, 10), 2),
            "courier_experience_months": np.round(np.clip(rng.gamma(2.0, 12.0, n), 0, 240)),
            "weather": rng.choice(["clear", "rain", "snow", "fog"], n, p=[0.6, 0.25, 0.05, 0.1]),
        }
    )


def _delivery_target(rng, x: pd.DataFrame, t, line: Timeline) -> np.ndarray:
    traffic_effect = np.where(t >= line.before_end(CONCEPT_DRIFT_START), 3.6, 1.8)
    weather = (
        x["weather"].map({"clear": 0.0, "rain": 4.0, "snow": 10.0, "fog": 3.0}).to_numpy(float)
    )
    minutes = (
        12.0
        + 3.2 * x["distance_km"].to_numpy()
        + 1.5 * x["items"].to_numpy()
        + traffic_effect * x["traffic_index"].to_numpy()
        + weather
        - 0.08 * np.minimum(x["courier_experience_months"].to_numpy(), 60)
        + rng.normal(0, 4.0, len(x))
    )
    return np.round(np.maximum(minutes, 5.0), 1)


GENERATORS = {
    "credit_risk": (_credit_features, _credit_target),
    "churn": (_churn_features, _churn_target),
    "delivery_time": (_delivery_features, _delivery_target),
}


# -- building ----------------------------------------------------------------------------------


@dataclass
class DemoSummary:
    path: Path
    start: datetime
    end: datetime
    predictions: int
    seconds: float

    def text(self) -> str:
        return (
            f"demo database {self.path}: {self.predictions:,} predictions across 3 models, "
            f"{self.start:%Y-%m-%d} to {self.end:%Y-%m-%d} (UTC), built in {self.seconds:.1f} s"
        )


def default_end() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def build_demo(
    path: str | os.PathLike,
    *,
    days: int = 90,
    seed: int = 0,
    end: datetime | None = None,
    progress: Progress | None = None,
    finish: Callable[[Store], None] | None = None,
) -> DemoSummary:
    """Build the demo database at `path` (which must not exist yet).

    `finish(store)` runs on the complete database before it is moved into place: what it
    writes is part of the atomic build (the app records its pending setup this way)."""
    if days < 7:
        raise ValueError("the demo needs at least 7 days")
    target = Path(path)
    if target.exists():
        raise FileExistsError(f"{target} already exists; the demo only builds a new database")
    began = time.monotonic()
    line = Timeline(end=end or default_end(), days=days)
    report = progress or (lambda fraction, message: None)
    partial = target.with_name(target.name + ".building")
    wal = Path(str(partial) + ".wal")
    for leftover in (partial, wal):  # of a build killed before its clean-up ran
        leftover.unlink(missing_ok=True)
    total = 0
    try:
        # scikit-learn single-threaded: OpenMP threads spinning on a shared machine made
        # fitting and scoring dozens of times slower (the same finding as in monitor.py)
        with (
            threadpool_limits(limits=1),
            Store(partial) as store,
            tempfile.TemporaryDirectory() as folder,
            _generators(len(_models())) as pool,
        ):
            models = _models()
            # every model trained and served at once (no database needed), each registered
            # and ingested here in build order as soon as it is ready
            served = [pool.submit(_fit_and_serve, i, seed, line, Path(folder))
                      for i in range(len(models))]  # fmt: skip
            for index, (model, future) in enumerate(zip(models, served, strict=True)):
                report(index / len(models), f"{model.name}: training "
                       f"{len(model.versions) + bool(model.pending)} versions and serving "
                       f"{line.days} days of traffic")  # fmt: skip
                specs, logs = future.result()
                report((index + 0.6) / len(models),
                       f"{model.name}: ingesting {len(logs['predictions']):,} predictions")  # fmt: skip
                total += _register_and_ingest(store, model, specs, logs)
            report(0.99, "recording the lifecycle history")
            seed_lifecycle(store, line)
            if finish is not None:
                finish(store)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
        wal.unlink(missing_ok=True)
    report(1.0, "done")
    return DemoSummary(target, line.start, line.end, total, time.monotonic() - began)


@contextmanager
def _generators(models: int):
    """Worker processes that train and serve the models side by side (one per core, at most
    one per model); on a single core, everything runs here."""
    workers = min(models, os.cpu_count() or 1)
    if workers < 2:
        yield _InPlace()
        return
    from lifecycle.drift import offload

    with offload.process_pool(workers) as pool:
        yield pool


class _InPlace:
    """The pool interface, computing each task when it is submitted."""

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future


def _fit_and_serve(index: int, seed: int, line: Timeline, folder: Path):
    """One model's versions trained (specs with their reference files in `folder`) and its
    traffic served; no database. `seed` and the model's index seed two generators: one for
    everything the demo had before it had a canary and versions awaiting review, one for
    those, so the older rows stay exactly as they were."""
    model = _models()[index]
    rng, extra_rng = np.random.default_rng([seed, index]), np.random.default_rng([seed, index, 1])
    with threadpool_limits(limits=1):
        specs, fitted = _train(model, model.versions, rng, line, folder)
        if model.pending:
            pending, _ = _train(model, [model.pending[:3]], extra_rng, line, folder)
            specs += [(version, text, model.pending[3]) for version, text, _ in pending]
        logs = _serve(model, fitted, rng, line, extra_rng)
    return specs, logs


def _register_and_ingest(store, model: DemoModel, specs, logs: dict) -> int:
    """Register the versions ([(version, spec text, registrant or None for the owner)]) and
    ingest the served logs through the normal path; returns the number of predictions."""
    for version, text, registrant in specs:
        actor = Actor(registrant, frozenset({"deployer"})) if registrant else None
        spec = parse_spec(text, source=f"demo {model.name} {version}")
        catalog.register(store, spec, actor=actor)
    for kind in ("predictions", "features", "labels", "business", "infra"):
        frame = logs.get(kind)
        if frame is not None and len(frame):
            ingest(store, model.name, kind, frame, source_name=f"demo generator ({kind})")
    return len(logs["predictions"])


def _train(model, versions, rng, line, folder) -> tuple[list[tuple[str, str, None]], dict]:
    """Fit and validate `versions` [(version, factory, note)]: their spec texts (reference
    data written to `folder`) and fitted pipelines."""
    features, target = GENERATORS[model.name]
    specs, fitted = [], {}
    for version, factory, note in versions:
        n = TRAIN_ROWS + REFERENCE_ROWS
        x = features(rng, n, np.zeros(n), line)
        y = target(rng, x, np.zeros(n), line)
        train_x, ref_x = x.iloc[:TRAIN_ROWS], x.iloc[TRAIN_ROWS:].reset_index(drop=True)
        train_y, ref_y = y[:TRAIN_ROWS], y[TRAIN_ROWS:]
        estimator = factory()
        pipeline = _pipeline(model, estimator).fit(train_x, train_y)
        fitted[version] = pipeline
        score, label = _predict(model, pipeline, ref_x)
        metrics = _validation_metrics(model, ref_y, score, label)
        reference = ref_x.assign(
            prediction=score,
            predicted_label=label,
            actual=ref_y if model.task == "regression" else ref_y.astype(str),
            segment=rng.choice(model.segments, len(ref_x)),
        )
        ref_path = folder / f"{model.name}-{version}.parquet"
        reference.to_parquet(ref_path, index=False)
        fingerprint = hashlib.sha256(pd.util.hash_pandas_object(train_x).values.tobytes())
        spec_text = _spec_toml(model, version, note, estimator, metrics, ref_path)
        spec_text = spec_text.replace("@FINGERPRINT@", "sha256:" + fingerprint.hexdigest())
        specs.append((version, spec_text, None))
    return specs, fitted


def _predict(model: DemoModel, pipeline, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    if model.task == "regression":
        return np.round(pipeline.predict(x), 2), None
    score = np.round(pipeline.predict_proba(x)[:, 1], 5)
    return score, np.where(score >= 0.5, "1", "0")


def _validation_metrics(model: DemoModel, y, score, label) -> dict[str, float]:
    if model.task == "regression":
        return {
            "mae": round(float(mean_absolute_error(y, score)), 4),
            "rmse": round(float(root_mean_squared_error(y, score)), 4),
        }
    return {
        "roc_auc": round(float(roc_auc_score(y, score)), 4),
        "accuracy": round(float(accuracy_score(y.astype(str), label)), 4),
    }


def _toml_value(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return '"none"'
    return _toml_value(str(value))


def _card_toml(model: DemoModel, note: str, metrics: dict) -> list[str]:
    """The version's [model_card]: the model's sections plus its training and evaluation."""
    if not model.card:
        return []
    scores = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, float))
    card = {
        **model.card,
        "training_data": f"{TRAIN_ROWS:,} historical requests with their outcomes, simulated "
        f"for the demo; {note}.",
        "evaluation": f"{REFERENCE_ROWS:,} held-out rows (the reference set): {scores}.",
    }
    lines = ["", "[model_card]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in card.items()]
    return [*lines, f"owners = [{_toml_value(model.owner)}]"]


def _spec_toml(model, version, note, estimator, metrics, ref_path) -> str:
    params = {
        k: v
        for k, v in estimator.get_params().items()
        if isinstance(v, int | float | str | bool) and not k.startswith("verbose")
    }
    lines = [
        f"name = {_toml_value(model.name)}",
        f"task = {_toml_value(model.task)}",
        f"owner = {_toml_value(model.owner)}",
        f"risk_tier = {_toml_value(model.risk_tier)}",
        f"description = {_toml_value(model.description)}",
        f"version = {_toml_value(version)}",
        f"reference = {_toml_value(str(ref_path))}",
    ]
    if model.task != "regression":
        lines += ['classes = ["0", "1"]', 'positive_class = "1"']
    if model.sensitive_attribute:
        lines.append(f"sensitive_attribute = {_toml_value(model.sensitive_attribute)}")
    lines += [
        "",
        "[training]",
        'data_fingerprint = "@FINGERPRINT@"',
        f"algorithm = {_toml_value(type(estimator).__name__ + ' (' + note + ')')}",
        f"rows = {TRAIN_ROWS}",
        "parameters = { " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in params.items()) + " }",
        "validation_metrics = { "
        + ", ".join(f"{k} = {_toml_value(v)}" for k, v in metrics.items())
        + " }",
    ]
    lines += _card_toml(model, note, metrics)
    for name in model.numeric:
        lines += ["", "[[features]]", f"name = {_toml_value(name)}", 'type = "numeric"']
        if name in model.ranges:
            low, high = model.ranges[name]
            lines.append(f"range = [{low}, {high}]")
    for name, values in model.categorical.items():
        lines += ["", "[[features]]", f"name = {_toml_value(name)}", 'type = "categorical"']
        lines.append("values = [" + ", ".join(_toml_value(v) for v in values) + "]")
    for name, unit, description in model.kpis:
        lines += ["", "[[kpis]]", f"name = {_toml_value(name)}", f"unit = {_toml_value(unit)}"]
        lines.append(f"description = {_toml_value(description)}")
    for name, sql, description in model.rules:
        lines += ["", "[[rules]]", f"name = {_toml_value(name)}", f"sql = {_toml_value(sql)}"]
        lines.append(f"description = {_toml_value(description)}")
    return "\n".join(lines) + "\n"


# -- serving simulation ------------------------------------------------------------------------

# Share of a day's requests per UTC hour: quiet nights, busy late mornings and evenings.
_DIURNAL = np.array(
    [
        *(1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 4, 4.2),  # 00-11 h UTC
        *(4.5, 4.2, 4, 3.8, 3.8, 4, 4.5, 4.8, 4.2, 3.2, 2.4, 1.6),  # 12-23 h UTC
    ]
)
_DIURNAL = _DIURNAL / _DIURNAL.sum()


def _timestamps(rng, model: DemoModel, line: Timeline) -> np.ndarray:
    """Seconds since start for every request, sorted; weekends are quieter."""
    day_index = np.arange(line.days)
    weekday = (pd.Timestamp(line.start).day_of_week + day_index) % 7
    volume = model.daily_rows * np.where(weekday >= 5, 0.8, 1.0) * rng.normal(1.0, 0.04, line.days)
    counts = np.maximum(volume.round().astype(int), 1)
    days = np.repeat(day_index, counts)
    hours = rng.choice(24, size=len(days), p=_DIURNAL)
    seconds = days * DAY + hours * 3600 + rng.uniform(0, 3600, len(days))
    return np.sort(seconds)


def _serve(
    model: DemoModel, fitted: dict, rng, line: Timeline, extra_rng
) -> dict[str, pd.DataFrame]:
    """Every request's logs. `extra_rng` draws what the canary adds, so the rows generated
    without it stay exactly what they were before the demo had a canary."""
    features, target = GENERATORS[model.name]
    t = _timestamps(rng, model, line)
    n = len(t)
    ts = pd.Timestamp(line.start) + pd.to_timedelta(t, unit="s")
    if model.name == "delivery_time":
        x = _delivery_features(rng, n, t, line, hours=ts.hour.to_numpy())
    else:
        x = features(rng, n, t, line)
    y = target(rng, x, t, line)
    request_id = np.array([f"{model.name[:2]}-{i:07d}" for i in range(n)], dtype=object)
    segment = rng.choice(model.segments, n)
    retired, production, candidate = (v for v, _, _ in model.versions)
    switch = (pd.Timestamp(line.switch) - pd.Timestamp(line.start)).total_seconds()
    shadow_from = (pd.Timestamp(line.shadow_start) - pd.Timestamp(line.start)).total_seconds()

    version = np.where(t < switch, retired, production)
    score = np.empty(n)
    label = np.empty(n, dtype=object) if model.task != "regression" else None
    for name in (retired, production):
        rows = version == name
        if rows.any():
            s, lab = _predict(model, fitted[name], x[rows])
            score[rows] = s
            if label is not None:
                label[rows] = lab
    served = _requests(
        model, rng, line, t, ts, request_id, version, "production", score, label, segment
    )
    shadow_rows = np.flatnonzero(t >= shadow_from)
    shadow_x = x.iloc[shadow_rows]
    s, lab = _predict(model, fitted[candidate], shadow_x)
    shadow = _requests(
        model,
        rng,
        line,
        t[shadow_rows],
        ts[shadow_rows],
        request_id[shadow_rows],
        np.full(len(shadow_rows), candidate, dtype=object),
        "shadow",
        s,
        lab,
        segment[shadow_rows],
    )
    predictions = pd.concat([served, shadow], ignore_index=True)
    feature_log = pd.concat(
        [
            x.assign(prediction_id=served["prediction_id"].to_numpy()),
            shadow_x.assign(prediction_id=shadow["prediction_id"].to_numpy()),
        ],
        ignore_index=True,
    )
    actual = np.concatenate([y, y[shadow_rows]])
    logs = {
        "predictions": predictions,
        "features": feature_log,
        "labels": _labels(model, rng, predictions, actual, line),
        "business": _business(model, rng, served, y, line),
        "infra": _infra(model, rng, line),
    }
    if model.name != CANARY_MODEL:
        return logs
    requests = _Traffic(t, ts, x, y, request_id, segment)
    return _with_canary(model, fitted[candidate], candidate, extra_rng, line, logs, requests)


@dataclass
class _Traffic:
    """Every request of a model: arrival (seconds since start and timestamp), inputs, truth."""

    t: np.ndarray
    ts: pd.DatetimeIndex
    x: pd.DataFrame
    y: np.ndarray
    request_id: np.ndarray
    segment: np.ndarray


def _canary_share(t: np.ndarray, line: Timeline) -> np.ndarray:
    """The canary's share of traffic at each instant (0 before the first step)."""
    share = np.zeros(len(t))
    for days, step in CANARY_STEPS:
        share[t >= line.before_end(days)] = step
    return share


def _with_canary(model, pipeline, candidate, rng, line, logs, traffic: _Traffic) -> dict:
    """From the first canary step the candidate answers its share of requests (variant
    canary) instead of production, with its own labels, KPI events and infrastructure
    metrics; its shadow stops. Rows of other requests are kept as generated."""
    rows = np.flatnonzero(rng.random(len(traffic.t)) < _canary_share(traffic.t, line))
    x = traffic.x.iloc[rows]
    score, label = _predict(model, pipeline, x)
    canary = _requests(
        model, rng, line, traffic.t[rows], traffic.ts[rows], traffic.request_id[rows],
        np.full(len(rows), candidate, dtype=object), "canary", score, label,
        traffic.segment[rows],
    )  # fmt: skip
    start = pd.Timestamp(line.end - timedelta(days=CANARY_STEPS[0][0]))
    predictions = logs["predictions"]
    replaced = set(("p-" + pd.Series(traffic.request_id[rows], dtype=object)).tolist())
    replaced |= set(
        predictions.loc[
            (predictions["variant"] == "shadow") & (predictions["ts"] >= start), "prediction_id"
        ]
    )

    def kept(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[~frame["prediction_id"].isin(replaced)]

    infra = logs["infra"]
    stopped = (infra["variant"] == "shadow") & (infra["ts"] >= start)
    business = logs["business"]
    new_business = _business(model, rng, canary, traffic.y[rows], line)
    return {
        "predictions": pd.concat([kept(predictions), canary], ignore_index=True),
        "features": pd.concat(
            [kept(logs["features"]), x.assign(prediction_id=canary["prediction_id"].to_numpy())],
            ignore_index=True,
        ),
        "labels": pd.concat(
            [kept(logs["labels"]), _labels(model, rng, canary, traffic.y[rows], line)],
            ignore_index=True,
        ),
        "business": None
        if business is None
        else pd.concat([kept(business), new_business], ignore_index=True),
        "infra": pd.concat(
            [infra[~stopped], _infra_series(model, rng, line, candidate, "canary", start)],
            ignore_index=True,
        ),
    }


def _in_latency_spike(t: np.ndarray, line: Timeline) -> np.ndarray:
    day_start = line.before_end(LATENCY_SPIKE_DAY)
    first, last = LATENCY_SPIKE_HOURS
    return (t >= day_start + first * 3600) & (t < day_start + last * 3600)


def _requests(model, rng, line, t, ts, request_id, version, variant, score, label, segment):
    n = len(t)
    latency = rng.lognormal(np.log(model.latency_median_ms), 0.35, n)
    if variant != "production":  # the candidate is a larger model
        latency *= 1.15
    error = rng.random(n) < 0.002
    if model.name == "delivery_time":
        spike = _in_latency_spike(t, line)
        latency = np.where(spike, latency * rng.uniform(6, 10, n), latency)
        error |= spike & (rng.random(n) < 0.15)
    prefix = {"production": "p", "shadow": "s", "canary": "c"}[variant]
    return pd.DataFrame(
        {
            "prediction_id": [f"{prefix}-{r}" for r in request_id],
            "request_id": request_id,
            "model_version": version,
            "ts": ts,
            "variant": variant,
            "prediction": np.where(error, np.nan, score),
            "predicted_label": None if label is None else np.where(error, None, label),
            "latency_ms": np.round(latency, 2),
            "status": np.where(error, "error", "ok"),
            "segment": segment,
        }
    )


def _labels(model, rng, predictions: pd.DataFrame, actual: np.ndarray, line: Timeline):
    """Labels arrive after a delay; some never do, and none after the end of the data."""
    n = len(predictions)
    low, high = model.label_delay_days
    delay = pd.to_timedelta(rng.uniform(low, high, n) * DAY, unit="s")
    labeled_at = predictions["ts"] + delay
    if model.task == "regression":  # the label is the delivery itself: its duration plus a scan
        labeled_at = predictions["ts"] + pd.to_timedelta(actual * 60 + delay.total_seconds(), "s")
    arrives = (rng.random(n) >= model.never_labelled) & (labeled_at < pd.Timestamp(line.end))
    return pd.DataFrame(
        {
            "prediction_id": predictions["prediction_id"].to_numpy()[arrives],
            "actual": actual[arrives]
            if model.task == "regression"
            else actual[arrives].astype(str),
            # the UTC series as it is (to_numpy() would build a Timestamp object per row)
            "labeled_at": labeled_at[arrives].reset_index(drop=True),
        }
    )


def _business(model, rng, served: pd.DataFrame, y: np.ndarray, line: Timeline):
    """KPI events tied to served predictions (retention offers, delivery promises)."""
    ok = served["status"].to_numpy() == "ok"
    end = pd.Timestamp(line.end)
    if model.name == "churn":
        offered = ok & (served["predicted_label"].to_numpy() == "1")
        ts = served["ts"][offered] + pd.to_timedelta(rng.uniform(1, 72, offered.sum()), "h")
        drop = ts >= pd.Timestamp(line.end - timedelta(days=KPI_DROP_START))
        accepted = rng.random(offered.sum()) < np.where(drop, 0.15, 0.30)
        frame = pd.DataFrame(
            {
                "prediction_id": served["prediction_id"][offered].to_numpy(),
                "ts": ts.reset_index(drop=True),
                "kpi": "conversion",
                "value": accepted.astype(float),
            }
        )
    elif model.name == "delivery_time":
        promised = served["prediction"].to_numpy()[ok] + 10.0
        ts = served["ts"][ok] + pd.to_timedelta(y[ok] * 60, "s")
        frame = pd.DataFrame(
            {
                "prediction_id": served["prediction_id"][ok].to_numpy(),
                "ts": ts.reset_index(drop=True),
                "kpi": "on_time_delivery",
                "value": (y[ok] <= promised).astype(float),
            }
        )
    else:
        return None
    return frame[frame["ts"] < end].reset_index(drop=True)


def _infra(model, rng, line: Timeline) -> pd.DataFrame:
    """cpu_util (%), memory_mb and replicas every 15 minutes per serving version/variant."""
    retired, production, candidate = (v for v, _, _ in model.versions)
    return pd.concat(
        [
            _infra_series(model, rng, line, retired, "production", line.start, line.switch),
            _infra_series(model, rng, line, production, "production", line.switch),
            _infra_series(model, rng, line, candidate, "shadow", line.shadow_start),
        ],
        ignore_index=True,
    )


def _infra_series(model, rng, line: Timeline, version, variant, since, until=None):
    """One version's metrics while it served as `variant`, from `since` to `until` (or the end)."""
    t = np.arange(0, line.days * DAY, 900.0)
    ts = pd.Timestamp(line.start) + pd.to_timedelta(t, unit="s")
    rows = np.asarray(ts >= pd.Timestamp(since)) & np.asarray(ts < pd.Timestamp(until or line.end))
    n = int(rows.sum())
    load = _DIURNAL[ts.hour.to_numpy()][rows] * 24
    cpu = 25 + 30 * load + rng.normal(0, 3, n)
    if model.name == "delivery_time" and variant == "production":
        cpu = np.where(_in_latency_spike(t[rows], line), 96 + rng.normal(0, 1.5, n), cpu)
    replicas = np.where(load > 1.2, 4.0, 3.0) if variant == "production" else np.full(n, 1.0)
    memory = 900 + 40 * load + rng.normal(0, 15, n)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "ts": ts[rows],
                    "model_version": version,
                    "variant": variant,
                    "metric": metric,
                    "value": np.round(value, 2),
                }
            )
            for metric, value in (
                ("cpu_util", np.clip(cpu, 1, 100)),
                ("memory_mb", memory),
                ("replicas", replicas),
            )
        ],
        ignore_index=True,
    )


# -- lifecycle history -------------------------------------------------------------------------


def seed_lifecycle(store: Store, line: Timeline) -> None:
    """Give each model its history through the registry's state machine: first version
    retired, second in production, third in shadow (churn's then in canary, CANARY_STEPS),
    a fourth, where the model has one, awaiting review; every step approved by reviewers who
    did not register the version, audited at the time it happened in the demo's story."""
    from lifecycle import registry

    deployer = Actor(DEMO_DEPLOYER, frozenset({"deployer"}))
    reviewers = [Actor(name, frozenset({"reviewer"})) for name in DEMO_REVIEWERS]
    admin = Actor("alex.admin@example.com", frozenset({"admin"}))
    day = timedelta(days=1)
    for model in _models():
        retired, production, candidate = (v for v, _, _ in model.versions)
        registered = {
            retired: line.start - 7 * day,
            production: line.switch - 10 * day,
            candidate: line.shadow_start - 5 * day,
        }
        if model.pending:
            registered[model.pending[0]] = line.end - model.pending[4] * day
        with store.transaction() as cur:  # registration happened earlier in the story
            for version, when in registered.items():
                cur.execute(
                    "UPDATE model_versions SET registered_at = ?, state_changed_at = ? "
                    "WHERE model_name = ? AND version = ?",
                    [when, when, model.name, version],
                )
            cur.execute(
                "UPDATE audit_log SET ts = v.registered_at FROM model_versions v "
                "WHERE audit_log.action = 'register' AND audit_log.model_name = v.model_name "
                "AND audit_log.version = v.version AND v.model_name = ?",
                [model.name],
            )
            cur.execute(  # the cards came with the specs
                "UPDATE model_cards SET written_at = v.registered_at FROM model_versions v "
                "WHERE model_cards.model_name = v.model_name AND model_cards.version = v.version "
                "AND model_cards.revision = 1 AND v.model_name = ?",
                [model.name],
            )
        quorum = registry.QUORUM[model.risk_tier]

        def review(version, when, note, name=model.name, quorum=quorum):
            registry.request_approval(store, deployer, name, version, reason=note, at=when)
            for index, reviewer in enumerate(reviewers[:quorum]):
                registry.approve(
                    store, reviewer, name, version, reason="review pack checked",
                    at=when + (index + 1) * timedelta(hours=4),
                )  # fmt: skip
            registry.promote(store, deployer, name, version, reason="shadow evaluation",
                             at=when + day)  # fmt: skip

        review(retired, registered[retired] + day, "initial release")
        registry.switch(store, deployer, model.name, retired, reason="initial release",
                        at=line.start)  # fmt: skip
        review(production, registered[production] + day, "better validation metrics")
        try:
            registry.switch(store, deployer, model.name, production,
                            reason="replaces " + retired, at=line.switch)  # fmt: skip
        except registry.GateBlocked as blocked:  # recorded as an admin's override
            registry.switch(
                store, admin, model.name, production, at=line.switch, override_gates=True,
                reason=f"replaces {retired}; accepted despite: {blocked}",
            )  # fmt: skip
        registry.retire(store, deployer, model.name, retired,
                        reason=f"{production} is trusted; standby released",
                        at=line.switch + 14 * day, confirm=True)  # fmt: skip
        # the candidate's shadow traffic starts at shadow_start
        review(candidate, line.shadow_start - day, "candidate for " + production)
        if model.name == CANARY_MODEL:
            _canary_steps(store, deployer, model.name, candidate, line)
        if model.pending:
            _awaiting_review(store, model, registered[model.pending[0]], reviewers)


def _canary_steps(store: Store, deployer, model: str, version: str, line: Timeline) -> None:
    """Shadow -> canary at each of CANARY_STEPS' shares, on their days."""
    from lifecycle import registry

    previous = None
    for days, share in CANARY_STEPS:
        reason = (
            f"no breach at {previous:.0%}; next step"
            if previous
            else "shadow agreement checked; canary starts"
        )
        registry.promote(store, deployer, model, version, share=share, reason=reason,
                         at=line.end - timedelta(days=days))  # fmt: skip
        previous = share


def _awaiting_review(store: Store, model: DemoModel, registered: datetime, reviewers) -> None:
    """The registrant sends the pending version for review; its approvals so far follow."""
    from lifecycle import registry

    version, _factory, _note, registrant, _days, approvers = model.pending
    requester = Actor(registrant, frozenset({"deployer"}))
    asked = registered + timedelta(hours=2)
    reason = f"candidate to replace {model.versions[1][0]}; review pack attached"
    registry.request_approval(store, requester, model.name, version, at=asked, reason=reason)
    for index, name in enumerate(approvers):
        reviewer = next(r for r in reviewers if r.name == name)
        registry.approve(store, reviewer, model.name, version, reason="review pack checked",
                         at=asked + (index + 1) * timedelta(hours=20))  # fmt: skip


# -- command line ------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    path = resolve_db_path(args.db)
    end = None
    if args.end:
        try:
            end = datetime.strptime(args.end, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            print(f"error: --end {args.end!r} is not a date YYYY-MM-DD", file=sys.stderr)
            return 2

    from lifecycle.progress import Reporter

    reporter = Reporter()  # a line rewritten on a terminal, one line per step in a log

    def show(fraction: float, message: str) -> None:
        reporter.message(f"demo [{fraction:4.0%}] {message}")

    try:
        summary = build_demo(path, days=args.days, seed=args.seed, end=end, progress=show)
    except (FileExistsError, ValueError) as exc:
        reporter.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reporter.close()
    print(summary.text())
    return 0


def is_demo(store: Store) -> bool:
    """Whether the database holds demo data (its batches came from this generator)."""
    row = store.query_one(
        "SELECT count(*) FROM ingest_batches WHERE source LIKE 'demo generator (%'"
    )
    return bool(row and row[0])
