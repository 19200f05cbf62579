"""Spec validation: every malformed spec or reference file is refused by name, writing nothing."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from lifecycle import catalog, cli
from lifecycle.spec import SpecError, parse_spec
from tests.browser import ROOT
from tests.conftest import write_toy_spec

# (what is changed in the toy spec: old text -> new text, fragment the message must contain)
BAD_SPECS = {
    "malformed toml": ('owner = "alice@example.com"', 'owner = "alice', "not valid TOML"),
    "missing owner": ('owner = "alice@example.com"', "", "`owner` is missing"),
    "missing task": ('task = "binary_classification"', "", "`task` is missing"),
    "missing version": ('version = "1.0"', "", "`version` is missing"),
    "missing reference": ('reference = "reference.csv"', "", "`reference` is missing"),
    "bad task": (
        'task = "binary_classification"',
        'task = "ranking"',
        "`task` is 'ranking'; expected one of binary_classification",
    ),
    "bad risk tier": ('risk_tier = "low"', 'risk_tier = "medium"', "`risk_tier` is 'medium'"),
    "bad feature type": (
        'type = "numeric"',
        'type = "float"',
        "`features[1].type` is 'float'; expected one of numeric, categorical",
    ),
    "rule does not parse": ('sql = "x >= 0"', 'sql = "x >= AND 1"', "syntax error"),
    "rule names an unknown column": (
        'sql = "x >= 0"',
        'sql = "weight >= 0"',
        "rule 'x_not_negative' (weight >= 0) does not parse: Binder Error: Referenced column \"weight\"",
    ),
    "rule is not boolean": ('sql = "x >= 0"', 'sql = "x + 1"', "gives DOUBLE, not a boolean"),
    "rule is two statements": (
        'sql = "x >= 0"',
        'sql = "x >= 0; DROP TABLE models"',
        "';' is not allowed",
    ),
    "rule reads another table": (
        'sql = "x >= 0"',
        'sql = "x >= (SELECT count(*) FROM models)"',
        "may not contain a subquery",
    ),
    "rule reads a file": (
        'sql = "x >= 0"',
        "sql = \"x >= 0 AND (SELECT count(*) FROM read_csv('reference.csv')) > 0\"",
        "may not contain a subquery",
    ),
    "rule is an aggregate": ('sql = "x >= 0"', 'sql = "count(x) > 0"', "cannot contain aggregates"),
    "unknown key": (
        'description = "A small model for tests"',
        'descripton = "typo"',
        "`descripton`",
    ),
    "bad range": ("range = [0, 10]", "range = [10, 0]", "`features[1] (x).range` must be"),
    "bad model name": ('name = "toy"', 'name = "Toy Model"', "`name` 'Toy Model' must be"),
}


def _bad_spec(tmp_path, old: str, new: str):
    path = write_toy_spec(tmp_path / "spec")
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _refused(store, spec_path, fragment: str) -> SpecError:
    before = store.row_counts()
    with pytest.raises(SpecError) as info:
        catalog.register_from_file(store, spec_path)
    assert fragment in str(info.value), str(info.value)
    assert store.row_counts() == before  # same tables, same rows
    return info.value


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_a_bad_spec_is_refused_by_name_and_nothing_is_written(store, tmp_path, case):
    old, new, fragment = BAD_SPECS[case]
    _refused(store, _bad_spec(tmp_path, old, new), fragment)
    assert not store.table_exists("features__toy")


def test_every_problem_is_named_at_once():
    text = """
name = "m"
task = "clustering"
risk_tier = "none"
version = "1"
reference = "r.csv"
[[features]]
name = "a"
type = "numeric"
[[rules]]
name = "r1"
sql = "b > 0"
"""
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="inline.toml")
    problems = info.value.problems
    assert any("`owner` is missing" in p for p in problems)
    assert any("`task` is 'clustering'" in p for p in problems)
    assert any("`risk_tier` is 'none'" in p for p in problems)
    assert any('column "b"' in p for p in problems)
    assert str(info.value).startswith("spec inline.toml is not valid")


def test_a_duplicate_version_is_refused(toy_store, tmp_path):
    again = write_toy_spec(tmp_path / "again", version="1.0", seed=3)
    _refused(toy_store, again, "version '1.0' of model 'toy' is already registered")
    assert catalog.version_names(toy_store._con, "toy") == ["1.0"]


def test_a_second_version_is_registered_beside_the_first(toy_store, tmp_path):
    catalog.register_from_file(toy_store, write_toy_spec(tmp_path / "v2", version="2.0"))
    assert list(catalog.list_versions(toy_store, "toy")["version"]) == ["1.0", "2.0"]
    counts = toy_store.row_counts()
    assert counts["reference__toy"] == 400 and counts["audit_log"] == 2


def _rewrite_reference(spec_path, change) -> None:
    ref = spec_path.parent / "reference.csv"
    frame = pd.read_csv(ref)
    change(frame).to_csv(ref, index=False)


def _text_in_x(frame: pd.DataFrame) -> pd.DataFrame:
    frame["x"] = frame["x"].astype(str)
    frame.loc[[4, 9], "x"] = ["abc", "n/a"]
    return frame


BAD_REFERENCES = {
    "feature column missing": (
        lambda f: f.drop(columns=["color"]),
        "reference file lacks column(s): color",
    ),
    "actual missing": (lambda f: f.drop(columns=["actual"]), "lacks column(s): actual"),
    "numeric feature holds text": (
        _text_in_x,
        "reference column `x` must be numeric; 2 value(s) are not, first rows: "
        "row 5 ('abc'), row 10 ('n/a')",
    ),
    "column not in the schema": (
        lambda f: f.assign(weight=1.0),
        "reference file has column(s) not in the feature schema: weight",
    ),
    "label outside the classes": (
        lambda f: f.assign(actual=f["actual"].where(f.index != 2, 7)),
        "reference column `actual` has 1 label(s) not in classes ['0', '1'], first rows: row 3",
    ),
    "too few rows": (lambda f: f.head(10), "reference file has 10 row(s); at least 50"),
}


@pytest.mark.parametrize("case", list(BAD_REFERENCES))
def test_a_reference_file_that_does_not_match_the_schema_is_refused(store, tmp_path, case):
    change, fragment = BAD_REFERENCES[case]
    spec_path = write_toy_spec(tmp_path / "spec")
    _rewrite_reference(spec_path, change)
    error = _refused(store, spec_path, fragment)
    assert error.source.endswith("reference.csv")
    assert not store.table_exists("features__toy")


def test_a_missing_reference_file_is_refused(store, tmp_path):
    spec_path = write_toy_spec(tmp_path / "spec")
    (spec_path.parent / "reference.csv").unlink()
    _refused(store, spec_path, "reference.csv does not exist")


def test_a_parquet_reference_file_is_accepted(store, tmp_path):
    spec_path = write_toy_spec(tmp_path / "spec")
    pd.read_csv(spec_path.parent / "reference.csv").to_parquet(spec_path.parent / "ref.parquet")
    text = spec_path.read_text().replace('"reference.csv"', '"ref.parquet"')
    spec_path.write_text(text)
    assert catalog.register_from_file(store, spec_path)["reference_rows"] == 200


def test_an_interrupted_registration_writes_nothing(store, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(catalog, "append_audit", fail)
    before = store.row_counts()
    with pytest.raises(RuntimeError, match="power cut"):
        catalog.register_from_file(store, write_toy_spec(tmp_path / "spec"))
    assert store.row_counts() == before
    assert not store.table_exists("features__toy") and not store.table_exists("reference__toy")


# -- through the command line -----------------------------------------------------------------


def _main(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "case", ["malformed toml", "bad risk tier", "rule names an unknown column"]
)
def test_cli_register_refuses_a_bad_spec(store, tmp_path, capsys, case):
    old, new, fragment = BAD_SPECS[case]
    before = store.row_counts()
    code, out, err = _main(capsys, "register", "--db", store.path, _bad_spec(tmp_path, old, new))
    assert code == 2 and not out
    assert err.startswith("error: spec ") and fragment in err
    assert store.row_counts() == before


def test_cli_register_refuses_a_duplicate_version_and_a_bad_reference(store, tmp_path, capsys):
    spec_path = write_toy_spec(tmp_path / "spec")
    code, out, _ = _main(capsys, "register", "--db", store.path, spec_path)
    assert code == 0 and "registered toy 1.0 with 200 reference rows" in out
    before = store.row_counts()
    code, _, err = _main(capsys, "register", "--db", store.path, spec_path)
    assert code == 2 and "version '1.0' of model 'toy' is already registered" in err
    v2 = write_toy_spec(tmp_path / "v2", version="2.0")
    _rewrite_reference(v2, lambda f: f.drop(columns=["x"]))
    code, _, err = _main(capsys, "register", "--db", store.path, v2)
    assert code == 2 and "reference file lacks column(s): x" in err
    assert store.row_counts() == before


def test_python_m_lifecycle_register_exits_non_zero_naming_the_problem(tmp_path):
    old, new, fragment = BAD_SPECS["rule names an unknown column"]
    db = tmp_path / "cli.duckdb"
    run = subprocess.run(
        [sys.executable, "-m", "lifecycle", "register", "--db", db, _bad_spec(tmp_path, old, new)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert fragment in run.stderr and "Traceback" not in run.stderr
    from lifecycle.store import Store

    with Store(db) as s:
        assert s.row_counts()["models"] == 0 and s.row_counts()["audit_log"] == 0


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        (
            'task = "binary_classification"',
            'task = "regression"',
            "model 'toy' is registered as binary_classification, this spec says regression",
        ),
        (
            'type = "categorical"\nvalues = ["red", "green", "blue"]',
            'type = "numeric"',
            "feature 'color' is categorical in earlier versions, numeric here",
        ),
    ],
    ids=["task", "feature type"],
)
def test_a_new_version_may_not_change_the_task_or_a_feature_type(
    toy_store, tmp_path, old, new, fragment
):
    path = write_toy_spec(tmp_path / "v2", version="2.0")
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    _refused(toy_store, path, fragment)
