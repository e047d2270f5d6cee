"""A finished run's results.json is read part by part when the run is started again: every part it reads
(bookkeeping/results_parts.py's table) is checked before any is used, so a damaged one stops the run at
once, naming the part, and leaves the file as it is."""
import json
import os

import pytest

from conftest import ROOT, options
from bookkeeping import results_parts

DAMAGE = {  # what an edit or a foreign tool did: what the message says
    "group sensitivity a string": (lambda r: r.update(group_sensitivity="none"),
                                   "its group_sensitivity is text, not a list of rows"),
    "group rows without seed": (lambda r: r.update(group_sensitivity=[{"group": "conv1", "ratio": 0.5}]),
                                "group_sensitivity[0] lacks channels, removed, seed, val_mae_increase"),
    "layer rows without seed": (lambda r: [row.pop("seed") for row in r["sensitivity"]],
                                "sensitivity[0] lacks seed"),
    "a seed as text": (lambda r: r["sensitivity"][0].update(seed="42"),
                       "sensitivity[0] has seed text, not a whole number"),
    "skipped videos an object": (lambda r: r.update(skipped_videos={}),
                                 "its skipped_videos is an object, not a list of rows"),
    "identity a string": (lambda r: r.update(identity="abc"), "its identity is text, not an object"),
    "identity without data": (lambda r: r["identity"].pop("data"), "identity lacks data"),
    "a test MAE of null": (lambda r: r["models"][1].update(test_mae=None),
                           "models[1] has test_mae null, not a number"),
    "config a list": (lambda r: r.update(config=[]), "its config is a list, not an object"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_part_of_results_json_stops_a_continued_run_naming_it(case, tmp_path, run_here):
    damage, message = DAMAGE[case]
    results = json.load(open(os.path.join(ROOT, "docs", "quick_results.json")))
    damage(results)
    (tmp_path / "results").mkdir()
    path = tmp_path / "results" / "results.json"
    path.write_text(json.dumps(results))
    before = path.read_bytes()
    result = run_here("main.py", *options(data_root="no_data_here", results_dir="results"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"results.json is damaged ({message}" in result.stderr and "--fresh" in result.stderr
    assert path.read_bytes() == before  # left as it is


@pytest.mark.parametrize("name", ["quick_results", "study_results", "recovery_results"])
def test_the_committed_runs_fit_the_table(name):
    assert results_parts.problems(json.load(open(os.path.join(ROOT, "docs", f"{name}.json")))) == []
