"""The README's result tables are the ones readme_tables.py writes from the result files in docs/."""
import json
import os

import latency
import readme_tables
from conftest import ROOT


def test_the_readme_tables_are_written_from_the_committed_results():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    blocks = readme_tables.BLOCK.findall(text)
    assert {b[1] for b in blocks} >= {"quick_run", "int8", "phases", "claims", "seeds", "schedules", "speed"}
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


def test_the_schedules_table_pairs_two_runs_by_seed_and_video_and_words_the_change_by_the_rule(tmp_path):
    """Gradual's unstructured 0.5 twice as wrong on every video: "worse"; every other model the same
    on every video: a change of 0 whose upper bound is below the margin, "no loss"."""
    oneshot = json.load(open(os.path.join(ROOT, "docs", "quick_results.json")))
    gradual = json.loads(json.dumps(oneshot))
    worse = next(r for r in gradual["models"] if r["method"] == "unstructured" and r["ratio"] == 0.5)
    worse["test_errors"] = [2 * e for e in worse["test_errors"]]
    for run, file in ((oneshot, "a.json"), (gradual, "b.json")):
        (tmp_path / file).write_text(json.dumps(run))
    text = "<!-- generated: schedules from a.json,b.json -->\n<!-- end generated -->\n"
    lines = readme_tables.render(text, root=str(tmp_path)).splitlines()
    rows = {line.split(" | ")[0].strip("| "): line for line in lines if line.startswith("| ")}
    assert rows["unstructured 0.5"].endswith("| worse |")
    pruned = [label for label in rows if label not in ("model", "unstructured 0.5") and not label.startswith("---")]
    assert pruned and all(rows[label].endswith("+0.00 [+0.00, +0.00] | no loss |") for label in pruned)
    assert "baseline" not in rows and "dense control" not in rows
    assert sum("from `a.json`" in line or "from `b.json`" in line for line in lines) == 2


def test_a_table_from_a_run_timed_in_rounds_shows_each_spread_and_ranks_only_beyond_it(tmp_path):
    """A run timed in rounds shows [lowest–highest round] and marks a speedup whose range overlaps the
    baseline's "n.d."; a runtime without rounds (a run from before them) keeps its single readings."""
    results = json.load(open(os.path.join(ROOT, "docs", "quick_results.json")))
    middle = {"baseline": 10.0, "dense_control": 10.2, "structured_physical": 3.0}  # ms; others like the baseline
    for record in results["models"]:  # PyTorch in 3 rounds, ±3%: the dense control's overlaps the baseline's
        ms = middle.get(record["method"], 10.0)
        record.update(latency.summary("latency", [(0.97 * ms, 0), (ms, 0), (1.03 * ms, 0)]))
        for key in ("onnx_latency_low_ms", "onnx_latency_high_ms", "onnx_latency_rounds", "onnx_latency_round_ms"):
            record.pop(key, None)  # ONNX Runtime timed once, as before the rounds
        record["onnx_latency_speedup"] = 1.0
    latency.speedups(results["models"])
    table = readme_tables.quick_run(results).splitlines()
    base, control = table[3], table[4]
    physical = next(line for line in table if line.startswith("| structured (removed) 0.5 "))
    assert "| 10.0 [9.7–10.3] (1.00×) |" in base
    assert "| 10.2 [9.9–10.5] (0.98×, n.d.) |" in control and "| 3.0 [2.9–3.1] (3.33×) |" in physical
    assert "interleaved rounds" in table[-1] and f"| {results['models'][0]['onnx_latency_ms']:.1f} (1.00×) |" in base
