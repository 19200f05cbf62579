"""A corpus of bad input: malformed specs, reference files and log batches of every kind.

Each case runs the CLI in-process (`lifecycle.cli.main`) and asserts the exit code (2: the
input was refused), a message that names what is wrong and where (the file, the column or
key), and that no table changed (row count and a content hash of every table).
"""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifecycle.cli import main
from tests.conftest import TOY_SPEC, toy_predictions, write_toy_spec

pytestmark = pytest.mark.slow  # about 80 s on two cores

PRED_HEADER = "prediction_id,model_version,ts,prediction,predicted_label,latency_ms,status,segment"
PRED_ROW = "q{i},1.0,2026-02-01T00:0{i}:00Z,0.7,1,12,ok,web"


def pred_csv(*rows: str, header: str = PRED_HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


GOOD_PREDS = [PRED_ROW.format(i=i) for i in range(3)]


@dataclass
class Case:
    id: str
    kind: str  # register | predictions | labels | features | business | infra
    content: str | bytes | pa.Table | None = None  # the batch, or the spec's reference
    suffix: str = ".csv"
    spec: str | bytes | None = None  # register: the spec text (default: the toy spec 2.0)
    expect: list[str] = field(default_factory=list)  # substrings of the message
    model: str = "toy"
    code: int = 2


def spec_text(**replace: str) -> str:
    text = textwrap.dedent(TOY_SPEC.format(version="2.0"))
    for old, new in replace.items():
        old = old.replace("__", " ")
        assert old in text, old
        text = text.replace(old, new)
    return text


def with_spec(extra: str) -> str:
    return spec_text() + "\n" + textwrap.dedent(extra)


REF_HEADER = "x,color,prediction,predicted_label,actual"


def ref_csv(row: str | None = None, n: int = 200, header: str = REF_HEADER, at: int = 7) -> str:
    rows = [f"{i % 10}.5,red,0.{i % 9 + 1},1,{i % 2}" for i in range(n)]
    if row is not None:
        rows[at] = row
    return "\n".join([header, *rows]) + "\n"


def arrow(**columns) -> pa.Table:
    return pa.table(columns)


def _pred_arrow(**override) -> pa.Table:
    base = {
        "prediction_id": ["q0", "q1"],
        "model_version": ["1.0", "1.0"],
        "ts": pa.array(
            [pd.Timestamp("2026-02-01T00:00Z"), pd.Timestamp("2026-02-01T00:01Z")],
            pa.timestamp("us", tz="UTC"),
        ),
        "prediction": [0.2, 0.8],
    }
    base.update(override)
    return pa.table(base)


CASES: list[Case] = []


def case(*args, **kw):
    CASES.append(Case(*args, **kw))


# -- specs ----------------------------------------------------------------------------------
case("spec_binary_garbage", "register", spec=b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01", expect=["UTF-8"])
case("spec_empty", "register", spec="", expect=["`name` is missing"])
case("spec_not_toml", "register", spec="name = \n[[[", expect=["not valid TOML"])
case("spec_nul_bytes", "register", spec='name = "a\x00b"\n', expect=["NUL"])
case("spec_latin1", "register", spec="name = 'caf\xe9'".encode("latin-1"), expect=["UTF-8"])
case("spec_name_missing", "register", spec=spec_text(**{'name = "toy"': ""}), expect=["`name`"])
case(
    "spec_name_upper",
    "register",
    spec=spec_text(**{'name = "toy"': 'name = "Toy"'}),
    expect=["'Toy'"],
)
case(
    "spec_name_quote",
    "register",
    spec=spec_text(**{'name = "toy"': 'name = "t\'y"'}),
    expect=["`name`"],
)
case(
    "spec_name_number",
    "register",
    spec=spec_text(**{'name = "toy"': "name = 7"}),
    expect=["`name`"],
)
case(
    "spec_unknown_key",
    "register",
    spec='colour = "red"\n' + spec_text(),
    expect=["unknown key `colour`"],
)
case(
    "spec_bad_task",
    "register",
    spec=spec_text(binary_classification="ranking"),
    expect=["`task`", "ranking"],
)
case(
    "spec_bad_tier",
    "register",
    spec=spec_text(**{'risk_tier = "low"': 'risk_tier = "extreme"'}),
    expect=["`risk_tier`"],
)
case(
    "spec_version_space",
    "register",
    spec=spec_text(**{'version = "2.0"': 'version = "2 0"'}),
    expect=["`version`"],
)
case(
    "spec_version_long",
    "register",
    spec=spec_text(**{'version = "2.0"': f'version = "{"9" * 41}"'}),
    expect=["`version`"],
)
case(
    "spec_version_dup",
    "register",
    spec=spec_text(**{'version = "2.0"': 'version = "1.0"'}),
    expect=["already registered"],
)
case(
    "spec_no_reference",
    "register",
    spec=spec_text(**{'reference = "reference.csv"': ""}),
    expect=["`reference`"],
)
case(
    "spec_reference_absent",
    "register",
    spec=spec_text(**{"reference.csv": "nowhere.csv"}),
    expect=["nowhere.csv", "does not exist"],
)
case(
    "spec_no_features", "register", spec=spec_text().split("[[features]]")[0], expect=["`features`"]
)
case(
    "spec_feature_type",
    "register",
    spec=spec_text(**{'type = "numeric"': 'type = "float"'}),
    expect=["features[1]"],
)
case(
    "spec_feature_dup", "register", spec=spec_text(**{'name = "color"': 'name = "x"'}), expect=["x"]
)
case(
    "spec_feature_case_dup",
    "register",
    spec=spec_text(**{'name = "color"': 'name = "X"'}),
    expect=["'x' and 'X' differ only in case", "rename one"],
)
case(
    "spec_feature_reserved",
    "register",
    spec=spec_text(**{'name = "color"': 'name = "Prediction_ID"'}),
    expect=["'Prediction_ID' is reserved", "rename the feature"],
)
case(
    "spec_feature_control_char",
    "register",
    spec=spec_text(**{'name = "color"': 'name = "col\\nor"'}),
    expect=["control characters"],
)
case(
    "spec_feature_renamed_case",
    "register",
    spec=spec_text(**{'name = "color"': 'name = "Color"'}),
    expect=["'Color' was 'color' in earlier versions", "use 'color'"],
)
case(
    "spec_range_reversed",
    "register",
    spec=spec_text(**{"range = [0, 10]": "range = [10, 0]"}),
    expect=["features[1] (x).range"],
)
case(
    "spec_range_nan",
    "register",
    spec=spec_text(**{"range = [0, 10]": "range = [0, nan]"}),
    expect=["features[1] (x).range"],
)
case(
    "spec_range_inf",
    "register",
    spec=spec_text(**{"range = [0, 10]": "range = [-inf, inf]"}),
    expect=["features[1] (x).range"],
)
case(
    "spec_range_text",
    "register",
    spec=spec_text(**{"range = [0, 10]": 'range = ["a", "b"]'}),
    expect=["features[1] (x).range"],
)
case(
    "spec_values_empty",
    "register",
    spec=spec_text(**{'values = ["red", "green", "blue"]': "values = []"}),
    expect=["features[2] (color).values"],
)
case(
    "spec_values_numbers",
    "register",
    spec=spec_text(**{'values = ["red", "green", "blue"]': "values = [1, 2]"}),
    expect=["features[2] (color).values"],
)
case(
    "spec_kpi_name",
    "register",
    spec=spec_text(**{'name = "conversion"': 'name = "Conversion\\tRate"'}),
    expect=["KPI name", "control characters"],
)
case(
    "spec_kpi_direction",
    "register",
    spec=with_spec('[[kpis]]\nname = "revenue"\ndirection = "up"'),
    expect=["kpis[2].direction"],
)
case(
    "spec_rule_syntax",
    "register",
    spec=spec_text(**{'sql = "x >= 0"': 'sql = "x >>= 0"'}),
    expect=["x_not_negative", "does not parse"],
)
case(
    "spec_rule_semicolon",
    "register",
    spec=spec_text(**{'sql = "x >= 0"': 'sql = "x >= 0; DROP TABLE models"'}),
    expect=["x_not_negative", "';'"],
)
case(
    "spec_rule_unknown_column",
    "register",
    spec=spec_text(**{'sql = "x >= 0"': 'sql = "y >= 0"'}),
    expect=["x_not_negative"],
)
case(
    "spec_rule_file_read",
    "register",
    spec=spec_text(
        **{'sql = "x >= 0"': "sql = \"x >= (SELECT count(*) FROM read_csv('/etc/passwd'))\""}
    ),
    expect=["x_not_negative"],
)
case(
    "spec_rule_not_boolean",
    "register",
    spec=spec_text(**{'sql = "x >= 0"': 'sql = "x + 1"'}),
    expect=["x_not_negative", "boolean"],
)
case(
    "spec_classes_numbers",
    "register",
    spec="classes = [0, 1]\n" + spec_text(),
    expect=["`classes`"],
)
case(
    "spec_three_binary_classes",
    "register",
    spec=spec_text(
        **{'reference = "reference.csv"': 'reference = "reference.csv"\nclasses = ["a", "b", "c"]'}
    ),
    expect=["exactly two"],
)
case(
    "spec_positive_unknown",
    "register",
    spec=spec_text(
        **{'reference = "reference.csv"': 'reference = "reference.csv"\npositive_class = "yes"'}
    ),
    expect=["`positive_class`", "'yes'"],
)
case(
    "spec_multiclass_two",
    "register",
    spec=spec_text(binary_classification="multiclass_classification"),
    expect=["multiclass"],
)
case(
    "spec_regression_classes",
    "register",
    spec=spec_text(
        **{
            "binary_classification": "regression",
            'reference = "reference.csv"': 'reference = "reference.csv"\nclasses = ["0", "1"]',
        }
    ),
    expect=["regression"],
)
case(
    "spec_sensitive_unknown",
    "register",
    spec=spec_text(
        **{
            'reference = "reference.csv"': 'reference = "reference.csv"\nsensitive_attribute = "age"'
        }
    ),
    expect=["`sensitive_attribute`", "'age'"],
)
case(
    "spec_training_scalar",
    "register",
    spec=spec_text(**{"[training]": "training = 3\n[unused]"}),
    expect=["unknown key `unused`"],
)
case(
    "spec_drift_scalar",
    "register",
    spec=spec_text(**{'reference = "reference.csv"': 'reference = "reference.csv"\ndrift = 5'}),
    expect=["`drift` must be a table"],
)
case(
    "spec_drift_bad_key",
    "register",
    spec=with_spec("[drift]\nsample_rowz = 5"),
    expect=["sample_rowz"],
)
case(
    "spec_monitoring_bad_grain",
    "register",
    spec=with_spec('[monitoring]\ngrains = ["fortnight"]'),
    expect=["fortnight"],
)
case(
    "spec_owner_missing",
    "register",
    spec=spec_text(**{'owner = "alice@example.com"': ""}),
    expect=["`owner`"],
)
case(
    "spec_description_number",
    "register",
    spec=spec_text(**{'description = "A small model for tests"': "description = 42"}),
    expect=["`description`"],
)
case(
    "spec_huge_version",
    "register",
    spec=spec_text(**{'version = "2.0"': f'version = "{"v" * 100_000}"'}),
    expect=["`version`"],
)

# -- reference files ------------------------------------------------------------------------
R = "register"
case(
    "ref_missing_feature",
    R,
    ref_csv(header="color,prediction,predicted_label,actual", n=0) + "red,0.5,1,1\n" * 200,
    expect=["reference file", "lacks column(s): x"],
)
case(
    "ref_missing_prediction",
    R,
    "x,color,actual\n" + "1,red,1\n" * 200,
    expect=["reference file", "prediction"],
)
case(
    "ref_extra_column",
    R,
    ref_csv(header=REF_HEADER + ",zip", n=0) + "1,red,0.5,1,1,9\n" * 200,
    expect=["reference file", "zip"],
)
case("ref_too_few_rows", R, ref_csv(n=10), expect=["reference file", "row(s)"])
case("ref_text_in_numeric", R, ref_csv("abc,red,0.5,1,1"), expect=["reference column `x`", "abc"])
case("ref_nan_feature", R, ref_csv("nan,red,0.5,1,1"), expect=["reference column `x`", "NaN"])
case(
    "ref_inf_prediction",
    R,
    ref_csv("1,red,inf,1,1"),
    expect=["reference column `prediction`", "infinite"],
)
case("ref_huge_number", R, ref_csv("1e400,red,0.5,1,1"), expect=["reference column `x`"])
case(
    "ref_score_42",
    R,
    ref_csv("1,red,42.0,1,1"),
    expect=["reference column `prediction`", "[0, 1]", "42"],
)
case(
    "ref_score_negative",
    R,
    ref_csv("1,red,-0.1,1,1"),
    expect=["reference column `prediction`", "[0, 1]"],
)
case(
    "ref_unknown_class",
    R,
    ref_csv("1,red,0.5,1,maybe"),
    expect=["reference column `actual`", "maybe"],
)
case("ref_empty_file", R, "", expect=["reference file", "empty"])
case("ref_header_only", R, REF_HEADER + "\n", expect=["reference file", "0 row(s)"])
case("ref_semicolon", R, ref_csv(n=200).replace(",", ";"), expect=["reference file", "';'"])
case("ref_tab", R, ref_csv(n=200).replace(",", "\t"), expect=["reference file", "tab"])
case("ref_binary_garbage", R, bytes(range(256)) * 8, expect=["reference file"])
case("ref_wrong_suffix", R, ref_csv(), suffix=".json", expect=["reference file", ".json"])
case(
    "ref_nested_list",
    R,
    arrow(x=[[1.0]] * 200, color=["red"] * 200, prediction=[0.5] * 200, actual=["1"] * 200),
    suffix=".parquet",
    expect=["reference file", "`x`", "lists"],
)
case(
    "ref_struct",
    R,
    arrow(x=[1.0] * 200, color=[{"a": "red"}] * 200, prediction=[0.5] * 200, actual=["1"] * 200),
    suffix=".parquet",
    expect=["`color`"],
)
case(
    "ref_corrupt_parquet",
    R,
    b"PAR1" + b"\x00" * 64 + b"PAR1",
    suffix=".parquet",
    expect=["reference file", "cannot read"],
)
case("ref_unicode_number", R, ref_csv("١٢,red,0.5,1,1"), expect=["reference column `x`"])

# -- predictions ----------------------------------------------------------------------------
P = "predictions"
case(
    "pred_missing_id",
    P,
    pred_csv("1.0,2026-02-01T00:00:00Z,0.5,1,1,ok,web", header=PRED_HEADER.split(",", 1)[1]),
    expect=["prediction_id"],
)
case("pred_missing_ts", P, "prediction_id,model_version\nq1,1.0\n", expect=["ts"])
case(
    "pred_bad_ts",
    P,
    pred_csv("q1,1.0,yesterday,0.5,1,1,ok,web"),
    expect=["column `ts`", "yesterday"],
)
case(
    "pred_naive_ts",
    P,
    pred_csv("q1,1.0,2026-02-01 00:00:00,0.5,1,1,ok,web"),
    code=0,  # taken as UTC, and the report says so (tests/test_real_logs.py)
)
case(
    "pred_ts_year_0",
    P,
    pred_csv("q1,1.0,0000-13-45T00:00:00Z,0.5,1,1,ok,web"),
    expect=["column `ts`"],
)
case(
    "pred_unknown_version",
    P,
    pred_csv("q1,9.9,2026-02-01T00:00:00Z,0.5,1,1,ok,web"),
    expect=["model_version", "9.9"],
)
case(
    "pred_unknown_variant",
    P,
    "prediction_id,model_version,ts,variant\nq1,1.0,2026-02-01T00:00:00Z,blue\n",
    expect=["variant", "blue"],
)
case(
    "pred_unknown_status",
    P,
    pred_csv("q1,1.0,2026-02-01T00:00:00Z,0.5,1,1,maybe,web"),
    expect=["status", "maybe"],
)
case(
    "pred_score_above_one",
    P,
    pred_csv("q1,1.0,2026-02-01T00:00:00Z,1.5,1,1,ok,web"),
    expect=["prediction", "[0, 1]"],
)
case(
    "pred_score_text",
    P,
    pred_csv("q1,1.0,2026-02-01T00:00:00Z,high,1,1,ok,web"),
    expect=["prediction", "high"],
)
case(
    "pred_negative_latency",
    P,
    pred_csv("q1,1.0,2026-02-01T00:00:00Z,0.5,1,-3,ok,web"),
    expect=["latency_ms", "negative"],
)
case(
    "pred_unknown_label",
    P,
    pred_csv("q1,1.0,2026-02-01T00:00:00Z,0.5,maybe,1,ok,web"),
    expect=["predicted_label", "maybe"],
)
case("pred_dup_in_batch", P, pred_csv(GOOD_PREDS[0], GOOD_PREDS[0]), expect=["duplicate", "q0"])
case(
    "pred_dup_stored",
    P,
    pred_csv("p1,1.0,2026-02-01T00:00:00Z,0.5,1,1,ok,web"),
    expect=["already stored", "p1"],
)
case(
    "pred_other_model",
    P,
    "prediction_id,model_version,ts,model_name\nq1,1.0,2026-02-01T00:00:00Z,other\n",
    expect=["model_name"],
)
case(
    "pred_extra_column",
    P,
    "prediction_id,model_version,ts,colour\nq1,1.0,2026-02-01T00:00:00Z,red\n",
    expect=["unexpected column", "colour"],
)
case("pred_empty_file", P, "", expect=["empty"])
case("pred_header_only", P, PRED_HEADER + "\n", expect=["no rows"])
case("pred_semicolon", P, pred_csv(*GOOD_PREDS).replace(",", ";"), expect=["';'"])
case(
    "pred_null_id",
    P,
    pred_csv(",1.0,2026-02-01T00:00:00Z,0.5,1,1,ok,web"),
    expect=["prediction_id", "no value"],
)
case(
    "pred_nested_id",
    P,
    _pred_arrow(prediction_id=[["a"], ["b"]]),
    suffix=".parquet",
    expect=["`prediction_id`", "lists"],
)
case(
    "pred_struct_column",
    P,
    _pred_arrow(segment=[{"a": 1}, {"a": 2}]),
    suffix=".parquet",
    expect=["`segment`"],
)
case("pred_binary_garbage", P, b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, expect=["not UTF-8"])
case("pred_wrong_suffix", P, pred_csv(*GOOD_PREDS), suffix=".xlsx", expect=[".xlsx"])
case("pred_nan_string", P, pred_csv("q1,1.0,2026-02-01T00:00:00Z,NaN,1,1,ok,web"), code=0)
case(
    "pred_unknown_model",
    P,
    pred_csv(*GOOD_PREDS),
    model="nobody",
    expect=["unknown model", "nobody"],
)
case(
    "pred_unicode_ts",
    P,
    pred_csv("q1,1.0,２０２６-02-01T00:00:00Z,0.5,1,1,ok,web"),
    expect=["column `ts`"],
)
case(
    "pred_huge_text",
    P,
    pred_csv(f"q1,1.0,2026-02-01T00:00:00Z,0.5,{'y' * 200_000},1,ok,web"),
    expect=["predicted_label"],
)
case(
    "pred_int_version_parquet",
    P,
    _pred_arrow(model_version=[1, 1]),
    suffix=".parquet",
    expect=["model_version"],
)
case("pred_bool_score", P, _pred_arrow(prediction=[True, False]), suffix=".parquet", code=0)
case(
    "pred_quoted_header",
    P,
    '"prediction_id","model_version","ts"\n"q1","1.0","garbage"\n',
    expect=["column `ts`"],
)
case(
    "pred_unclosed_quote",
    P,
    'prediction_id,model_version,ts\n"q1,1.0,2026-02-01T00:00:00Z\n',
    expect=["cannot read"],
)
case(
    "pred_ragged_first_row",
    P,
    "prediction_id,model_version,ts\nq1,1.0,2026-02-01T00:00:00Z,extra,more\n",
    expect=["cannot read", "fields"],
)
case(
    "pred_ragged_middle_row",
    P,
    "prediction_id,model_version,ts\nq0,1.0,2026-02-01T00:00:00Z\nq1,1.0,2026-02-01T00:00:00Z,x\nq2,1.0,2026-02-01T00:00:00Z\n",
    expect=["cannot read", "fields"],
)

# -- labels ---------------------------------------------------------------------------------
LB = "labels"
LH = "prediction_id,actual,labeled_at"
case(
    "label_missing_actual",
    LB,
    "prediction_id,labeled_at\np1,2026-02-02T00:00:00Z\n",
    expect=["actual"],
)
case(
    "label_unknown_class", LB, f"{LH}\np1,maybe,2026-02-02T00:00:00Z\n", expect=["actual", "maybe"]
)
case("label_bad_time", LB, f"{LH}\np1,1,soon\n", expect=["labeled_at", "soon"])
case(
    "label_unknown_id",  # its naive time is fine (UTC); the id is not
    LB,
    f"{LH}\nzz1,1,2026-02-02 00:00\n",
    expect=[
        "1 row(s) refer to prediction ids that toy never logged, e.g. zz1",
        "--allow-unknown-ids",
    ],
)
case(
    "label_dup_in_batch",
    LB,
    f"{LH}\np1,1,2026-02-02T00:00:00Z\np1,0,2026-02-02T00:00:00Z\n",
    expect=["duplicate", "p1"],
)
case("label_dup_stored", LB, f"{LH}\np0,1,2026-02-02T00:00:00Z\n", expect=["already stored", "p0"])
case(
    "label_extra_column",
    LB,
    f"{LH},note\np1,1,2026-02-02T00:00:00Z,x\n",
    expect=["unexpected column", "note"],
)
case("label_semicolon", LB, f"{LH}\np1,1,2026-02-02T00:00:00Z\n".replace(",", ";"), expect=["';'"])
case("label_empty", LB, "", expect=["empty"])
case(
    "label_nested",
    LB,
    arrow(prediction_id=["p1"], actual=[["1"]], labeled_at=["2026-02-02T00:00:00Z"]),
    suffix=".parquet",
    expect=["`actual`", "lists"],
)
case("label_null_id", LB, f"{LH}\n,1,2026-02-02T00:00:00Z\n", expect=["prediction_id", "no value"])
case(
    "label_other_model",
    LB,
    f"{LH},model_name\np1,1,2026-02-02T00:00:00Z,nobody\n",
    expect=["model_name"],
)
case(
    "label_injection_class",
    LB,
    f"{LH}\np1,\"1' OR '1'='1\",2026-02-02T00:00:00Z\n",
    expect=["actual", "OR"],
)

# -- features -------------------------------------------------------------------------------
F = "features"
case("feat_missing_id", F, "x,color\n1,red\n", expect=["prediction_id"])
case("feat_unknown_column", F, "prediction_id,x,size\np1,1,9\n", expect=["size", "feature schema"])
case("feat_text_numeric", F, "prediction_id,x,color\np1,abc,red\n", expect=["feature `x`", "abc"])
case("feat_dup_in_batch", F, "prediction_id,x\np1,1\np1,2\n", expect=["duplicate", "p1"])
case("feat_dup_stored", F, "prediction_id,x\np0,1\n", expect=["already stored", "p0"])
case(
    "feat_nested",
    F,
    arrow(prediction_id=["p1"], x=[[1.0, 2.0]]),
    suffix=".parquet",
    expect=["`x`", "lists"],
)
case(
    "feat_map",
    F,
    pa.table(
        {
            "prediction_id": ["p1"],
            "color": pa.array([[("a", "b")]], pa.map_(pa.string(), pa.string())),
        }
    ),
    suffix=".parquet",
    expect=["`color`"],
)
case("feat_null_id", F, "prediction_id,x\n,1\n", expect=["prediction_id", "no value"])
case("feat_semicolon", F, "prediction_id;x\np1;1,5\n", expect=["';'"])
case("feat_empty", F, "", expect=["empty"])

# -- business -------------------------------------------------------------------------------
B = "business"
case(
    "biz_unknown_kpi",
    B,
    "ts,kpi,value\n2026-02-01T00:00:00Z,revenue,1\n",
    expect=["kpi", "revenue"],
)
case(
    "biz_value_text",
    B,
    "ts,kpi,value\n2026-02-01T00:00:00Z,conversion,lots\n",
    expect=["value", "lots"],
)
case("biz_missing_kpi", B, "ts,value\n2026-02-01T00:00:00Z,1\n", expect=["kpi"])
case("biz_bad_ts", B, "ts,kpi,value\nnever,conversion,1\n", expect=["column `ts`", "never"])
case(
    "biz_null_value",
    B,
    "ts,kpi,value\n2026-02-01T00:00:00Z,conversion,\n",
    expect=["value", "no value"],
)
case(
    "biz_nested",
    B,
    arrow(ts=["2026-02-01T00:00:00Z"], kpi=[["conversion"]], value=[1.0]),
    suffix=".parquet",
    expect=["`kpi`", "lists"],
)
case(
    "biz_kpi_injection",
    B,
    'ts,kpi,value\n2026-02-01T00:00:00Z,"conversion\' OR 1=1 --",1\n',
    expect=["kpi", "OR 1=1"],
)

# -- infra ----------------------------------------------------------------------------------
INF = "infra"
IH = "ts,model_version,metric,value"
case(
    "infra_unknown_version",
    INF,
    f"{IH}\n2026-02-01T00:00:00Z,7.0,cpu,1\n",
    expect=["model_version", "7.0"],
)
case("infra_value_text", INF, f"{IH}\n2026-02-01T00:00:00Z,1.0,cpu,hot\n", expect=["value", "hot"])
case(
    "infra_dup_in_batch",
    INF,
    f"{IH}\n2026-02-01T00:00:00Z,1.0,cpu,1\n2026-02-01T00:00:00Z,1.0,cpu,2\n",
    expect=["more than once", "cpu"],
)
case(
    "infra_dup_stored",
    INF,
    f"{IH}\n2026-01-01T00:00:00Z,1.0,cpu,1\n",
    expect=["already stored", "cpu"],
)
case(
    "infra_bad_variant",
    INF,
    f"{IH},variant\n2026-02-01T00:00:00Z,1.0,cpu,1,purple\n",
    expect=["variant", "purple"],
)
case(
    "infra_missing_metric",
    INF,
    "ts,model_version,value\n2026-02-01T00:00:00Z,1.0,1\n",
    expect=["metric"],
)
case("infra_tab", INF, f"{IH}\n2026-02-01T00:00:00Z,1.0,cpu,1\n".replace(",", "\t"), expect=["tab"])


# -- the harness ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_db(tmp_path_factory) -> Path:
    """toy 1.0 registered, 100 predictions (p0..p99) with features, 10 labels, one infra row."""
    folder = tmp_path_factory.mktemp("corpus")
    db = folder / "base.duckdb"
    assert main(["register", "--db", str(db), str(write_toy_spec(folder / "spec"))]) == 0
    preds = toy_predictions(100)
    rng = np.random.default_rng(2)
    batches = {
        "predictions": preds,
        "features": pd.DataFrame(
            {"prediction_id": preds["prediction_id"], "x": rng.uniform(0, 10, 100), "color": "red"}
        ),
        "labels": pd.DataFrame(
            {
                "prediction_id": [f"p{i}" for i in range(10)],
                "actual": "1",
                "labeled_at": pd.Timestamp("2026-01-02", tz="UTC"),
            }
        ),
        "infra": pd.DataFrame(
            {
                "ts": [pd.Timestamp("2026-01-01", tz="UTC")],
                "model_version": "1.0",
                "metric": "cpu",
                "value": 1.0,
            }
        ),
    }
    for kind, frame in batches.items():
        path = folder / f"{kind}.parquet"
        frame.to_parquet(path)
        assert main(["ingest", "--db", str(db), "--model", "toy", "--kind", kind, str(path)]) == 0
    return db


def snapshot(db: Path) -> dict[str, tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1"
            ).fetchall()
        ]
        return {
            t: tuple(con.execute(f'SELECT count(*), sum(hash(x)) FROM "{t}" x').fetchall()[0])
            for t in tables
        }
    finally:
        con.close()


def write(path: Path, content) -> None:
    if isinstance(content, pa.Table):
        pq.write_table(content, path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def run_case(c: Case, db: Path, folder: Path) -> list[str]:
    """The argv of the case, after writing its files; returns the names the message must show."""
    if c.kind == "register":
        ref = folder / f"reference{c.suffix}"
        write(ref, c.content if c.content is not None else ref_csv())
        spec_source = c.spec if c.spec is not None else spec_text()
        if isinstance(spec_source, str) and c.suffix != ".csv":
            spec_source = spec_source.replace("reference.csv", ref.name)
        spec = folder / "model.toml"
        write(spec, spec_source)
        where = ref.name if c.content is not None else spec.name
        return [["register", "--db", str(db), str(spec)], where]
    batch = folder / f"batch{c.suffix}"
    write(batch, c.content)
    return [
        ["ingest", "--db", str(db), "--model", c.model, "--kind", c.kind, str(batch)],
        batch.name,
    ]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(c: Case, base_db, tmp_path, capsys):
    db = tmp_path / "db.duckdb"
    shutil.copyfile(base_db, db)
    before = snapshot(db)
    argv, where = run_case(c, db, tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    if c.code == 0:  # accepted on purpose (NaN scores kept as missing, naive times as UTC)
        assert code == 0, err
        return
    assert code == c.code, f"exit {code}, expected {c.code}:\n{err}{out}"
    assert where in err, f"the message does not say where ({where}):\n{err}"
    for text in c.expect:
        assert text in err, f"{text!r} not in the message:\n{err}"
    for internal in ("Traceback", "TransactionContext", "Error: Parser", "duckdb.", "np.float"):
        assert internal not in err, err
    assert snapshot(db) == before


def test_the_corpus_is_large():
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)
