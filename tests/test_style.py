"""The house rules a reader relies on, checked on every file of the project: functions with one job
(at most 60 lines) and calls that name what they pass (at most 6 positional arguments; a starred
list is one). Line length and the rest are ruff's (ruff.toml, run by .ci/run)."""
import ast
import glob
import os

import pytest

from conftest import ROOT

FOLDERS = ("bookkeeping", "cli", "storage", "tests")
SOURCES = sorted(glob.glob(os.path.join(ROOT, "*.py"))
                 + [p for folder in FOLDERS for p in glob.glob(os.path.join(ROOT, folder, "*.py"))])
LONGEST_FUNCTION = 60
MOST_POSITIONAL = 6


def nodes(path):
    with open(path) as f:
        return list(ast.walk(ast.parse(f.read(), path)))


@pytest.mark.parametrize("path", SOURCES, ids=[os.path.relpath(p, ROOT) for p in SOURCES])
def test_functions_have_one_job_and_calls_name_what_they_pass(path):
    long = [f"{n.name} (line {n.lineno}): {n.end_lineno - n.lineno + 1} lines" for n in nodes(path)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > LONGEST_FUNCTION]
    crowded = [f"line {n.lineno}: {len(n.args)} positional arguments" for n in nodes(path)
               if isinstance(n, ast.Call) and len(n.args) > MOST_POSITIONAL]
    assert not long and not crowded, "; ".join(long + crowded)
