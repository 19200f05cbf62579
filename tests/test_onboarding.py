"""docs/onboarding.md, run exactly as written on generated data of the shape it describes:
feature names with capitals and a space, pandas' ns UTC timestamps, float labels, logs in a
date-partitioned landing folder. Its Python blocks run with the DataFrames it starts from,
its TOML block is written where it says, every command of its bash blocks runs in a fresh
folder (where the project's app.py, pages/, ui/ and .streamlit/ are linked, as if it were
the project folder), and each text block must match the output of the commands before it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.browser import CHROMIUM, ROOT, free_port, screenshot, wait_until_idle

GUIDE = ROOT / "docs" / "onboarding.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)

FEATURES = ["MedInc", "HouseAge", "AveRooms", "Ocean Proximity"]
# `check` exits 1 for active warnings, 2 for critical alerts: what a scheduler acts on
EXIT_CODES = {"check": (0, 1, 2)}

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def housing(rng, n: int, shift: float = 0.0) -> pd.DataFrame:
    """California-housing-like inputs; the model's score is the label's true probability."""
    medinc = rng.lognormal(1.3 + shift, 0.45, n)
    age = rng.integers(1, 53, n).astype(float)
    rooms = rng.normal(5.3, 1.2, n).clip(1, 12)
    ocean = rng.choice(
        ["<1H OCEAN", "INLAND", "NEAR BAY", "NEAR OCEAN"], n, p=[0.44, 0.32, 0.11, 0.13]
    )
    logit = 1.1 * (medinc - 3.9) + 0.02 * (age - 28) + 0.9 * (ocean != "INLAND") - 0.6
    score = 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {"MedInc": medinc, "HouseAge": age, "AveRooms": rooms, "Ocean Proximity": ocean,
         "prediction": score, "actual": (rng.uniform(size=n) < score).astype(float)}
    )  # fmt: skip


def starting_frames() -> dict[str, pd.DataFrame]:
    """What the guide starts from: 3,000 validation rows; 28 days from 1 Nov 2026 of about
    300 predictions a day, incomes higher in the last week; 80% of labels three days late,
    those arrived by 29 Nov."""
    rng = np.random.default_rng(2026)
    validation = housing(rng, 3000)
    days = []
    for d in range(28):
        n = int(rng.poisson(300))
        day = housing(rng, n, shift=0.35 if d >= 21 else 0.0)
        seconds = np.sort(rng.uniform(0, 86_400, n))
        day["ts"] = (pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(days=d)
                     + pd.to_timedelta(seconds, unit="s"))  # fmt: skip
        days.append(day)
    traffic = pd.concat(days, ignore_index=True)
    traffic["prediction_id"] = [f"req-{i:06d}" for i in range(len(traffic))]
    traffic["model_version"] = "1.0"
    late = traffic.sample(frac=0.8, random_state=1)
    labels = pd.DataFrame({"prediction_id": late["prediction_id"], "actual": late["actual"],
                           "labeled_at": late["ts"] + pd.Timedelta(days=3)})  # fmt: skip
    assert traffic["ts"].dtype == "datetime64[ns, UTC]" and labels["actual"].dtype == float
    return {
        "validation": validation,
        "predictions": traffic[["prediction_id", "model_version", "ts", "prediction"]],
        "features": traffic[["prediction_id", *FEATURES]],
        "labels": labels[labels["labeled_at"] < pd.Timestamp("2026-11-29", tz="UTC")],
    }


def matches(expected: str, output: str) -> list[str]:
    """Lines of `expected` (… = anything) that match no line of `output`."""
    lines = output.splitlines()
    missing = []
    for want in filter(None, (x.rstrip() for x in expected.splitlines())):
        pattern = re.compile(".*".join(map(re.escape, want.split("…"))) + "$")
        if not any(pattern.match(line.rstrip()) for line in lines):
            missing.append(want)
    return missing


def project_folder(tmp_path: Path) -> Path:
    for name in ("app.py", "pages", "ui", ".streamlit"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def run_command(line: str, cwd: Path) -> str:
    args = shlex.split(line)
    assert args[:3] == ["python", "-m", "lifecycle"], line
    done = subprocess.run(
        [sys.executable, *args[1:]],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    allowed = EXIT_CODES.get(args[3], (0,))
    assert done.returncode in allowed, f"{line}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def serve(line: str, cwd: Path):
    """The guide's `VAR=... streamlit run app.py`, on a free port (8501 may be taken)."""
    *assignments, program, run, script = shlex.split(line)
    assert (program, run, script) == ("streamlit", "run", "app.py"), line
    env = {**os.environ, "PYTHONPATH": str(ROOT), **dict(a.split("=", 1) for a in assignments)}
    port = free_port()
    streamlit = [sys.executable, "-m", "streamlit", run, script, "--server.port", str(port)]
    log = open(cwd / "streamlit.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(streamlit, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return proc, url, log
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (
            cwd / "streamlit.log"
        ).read_text()
        time.sleep(0.3)


def test_the_onboarding_guide_runs_as_written(tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    folder = project_folder(tmp_path)
    monkeypatch.chdir(folder)
    blocks = BLOCK.findall(GUIDE.read_text(encoding="utf-8"))
    assert [b[0] for b in blocks].count("bash") >= 4
    namespace = starting_frames()
    output, app = "", None
    for language, info, body in blocks:
        if language == "python":
            exec(compile(body, str(GUIDE), "exec"), namespace)  # the guide's own code
        elif language == "toml":
            target = dict(re.findall(r"(\w+)=(\S+)", info))["file"]
            (folder / target).write_text(body, encoding="utf-8")
        elif language == "bash":
            output = ""
            for line in filter(None, body.splitlines()):
                if "streamlit run" in line:
                    app = serve(line, folder)
                else:
                    output += run_command(line, folder)
        elif language == "text":
            assert not matches(body, output), (matches(body, output), output)
    assert app is not None, "the guide ends by opening the console"
    proc, url, log = app
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": 1920, "height": 1000})
            page.goto(url)
            wait_until_idle(page, 120_000)
            # the model's name shown to a person (the data grids' cells are hidden to the DOM)
            page.get_by_text("house_value").filter(visible=True).first.wait_for(timeout=60_000)
            screenshot(page, "onboarding-overview")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
