"""The README's result tables are the ones readme_tables.py writes from the result files in docs/."""
import json
import os

import readme_tables
from conftest import ROOT


def test_the_readme_tables_are_written_from_the_committed_results():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    blocks = readme_tables.BLOCK.findall(text)
    assert {b[1] for b in blocks} >= {"quick_run", "int8"}
    assert readme_tables.render(text) == text, "README.md is stale: run python readme_tables.py"


def test_a_generated_table_follows_its_result_file(tmp_path):
    results = json.load(open(os.path.join(ROOT, "docs", "quick_results.json")))
    results["models"][1]["test_mae"] = 99.125
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "r.json").write_text(json.dumps(results))
    text = "before\n<!-- generated: quick_run from docs/r.json -->\nold table\n<!-- end generated -->\nafter\n"
    new = readme_tables.render(text, root=str(tmp_path))
    assert "old table" not in new and "| 99.12 [" in new and new.startswith("before\n") and new.endswith("after\n")
    assert f"commit {results['environment']['git_commit']}" in new
