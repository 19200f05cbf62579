"""No value is quoted into SQL text: a lint over lifecycle/ for f-strings that put a
formatted value between single quotes (`'{value}'`) and for hand-made escaping
(`.replace("'", "''")`). Values are bound as parameters; names go through quote_ident."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "lifecycle"

# (file, enclosing function): why the quoted value is safe there
ALLOWED = {
    # HTML attributes, not SQL: every value passes through html.escape (quotes included)
    ("alerts/report.py", "_status_cell"): "HTML attribute, a fixed CSS class name",
    ("alerts/report.py", "_model_html"): "HTML attributes, html.escape'd",
    # date_trunc's part must be a literal; check_calendar_grain admits only a fixed vocabulary
    ("drift/windows.py", "bucket_sql"): "grain checked against GRAINS",
    # views cannot take parameters (DuckDB does not prepare DDL): a lake view names the
    # variable that holds its files, and its model; both are checked against their patterns
    ("lake.py", "variable"): "a variable name matching lake.VARIABLE",
    ("lake.py", "model_literal"): "a model name matching store.IDENT",
}


def _quoted_values(tree: ast.AST):
    """(line, function, source) of each f-string with a value between single quotes."""
    found = []

    def visit(node, func):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            func = node.name
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            for i, part in enumerate(parts):
                if not isinstance(part, ast.FormattedValue):
                    continue
                before = parts[i - 1] if i else None
                after = parts[i + 1] if i + 1 < len(parts) else None
                if (
                    isinstance(before, ast.Constant)
                    and str(before.value).endswith("'")
                    and isinstance(after, ast.Constant)
                    and str(after.value).startswith("'")
                ):
                    found.append((node.lineno, func, ast.unparse(node)[:100]))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            args = [a.value for a in node.args if isinstance(a, ast.Constant)]
            if node.func.attr == "replace" and args == ["'", "''"]:
                found.append((node.lineno, func, ast.unparse(node)[:100]))
        for child in ast.iter_child_nodes(node):
            visit(child, func)

    visit(tree, "<module>")
    return found


def offences(root: Path = ROOT) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for line, func, source in _quoted_values(ast.parse(path.read_text(encoding="utf-8"))):
            if (rel, func) not in ALLOWED:
                out.append(f"lifecycle/{rel}:{line} in {func}(): {source}")
    return out


def test_no_value_is_quoted_into_sql():
    found = offences()
    assert not found, "values quoted into SQL text (bind them as parameters):\n" + "\n".join(found)


def test_the_lint_catches_quoted_values(tmp_path):
    (tmp_path / "bad.py").write_text(
        "def f(cur, name, v):\n"
        "    cur.execute(f\"SELECT * FROM t WHERE a = '{name}'\")\n"
        "    cur.execute(f\"SELECT '{v}' || 'x'\")\n"
        '    return "\'" + name.replace("\'", "\'\'") + "\'"\n'
        "def ok(cur, name):\n"
        '    cur.execute(f"SELECT * FROM t WHERE a = ?", [name])\n'
    )
    found = offences(tmp_path)
    assert [f.split(" in ")[0] for f in found] == [
        "lifecycle/bad.py:2",
        "lifecycle/bad.py:3",
        "lifecycle/bad.py:4",
    ]


def test_every_allowance_is_still_needed():
    """An allow-list entry whose function no longer quotes anything must go."""
    used = set()
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for _, func, _ in _quoted_values(ast.parse(path.read_text(encoding="utf-8"))):
            used.add((rel, func))
    assert set(ALLOWED) <= used, set(ALLOWED) - used
