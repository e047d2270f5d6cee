"""Latency is timed once every model is trained, in interleaved rounds, each round median kept in round
order, and summary.md ranks speed by the paired rule (tests/test_speed_rule.py)."""
import json

import matplotlib.pyplot as plt
import pandas as pd
import pytest

import edge
import latency
import reports
import visualize_results
from test_claims import model, results


def test_every_round_times_every_model_once_in_an_order_that_changes(monkeypatch):
    called = []
    monkeypatch.setattr(latency, "time_runs",
                        lambda run, warmup, runs, synchronize: (called.append(run()), (1.0, 2.0))[1])
    runners = {name: latency.Runner(lambda name=name: name, lambda: None, {}) for name in "abcde"}
    times = latency.rounds(runners, 4, warmup=1, runs=2)
    orders = [called[i:i + 5] for i in range(0, len(called), 5)]
    assert len(orders) == 4
    assert all(sorted(order) == list("abcde") for order in orders)  # each model once a round
    assert len({tuple(order) for order in orders}) == 4  # the order changes from round to round
    assert len({order[0] for order in orders}) == 4  # and no model always goes first
    assert latency.orders("abcde", 4) == orders  # a fixed seed: the same orders in every run
    assert times == {name: [(1.0, 2.0)] * 4 for name in "abcde"}


def test_a_latency_is_the_median_of_the_round_medians_with_their_lowest_and_highest():
    fields = latency.summary("onnx_latency", [(7.0, 9.0), (6.5, 8.0), (7.5, 7.9)])
    assert fields == {"onnx_latency_ms": 7.0, "onnx_latency_low_ms": 6.5, "onnx_latency_high_ms": 7.5,
                      "onnx_latency_p90_ms": 8.0, "onnx_latency_rounds": 3,
                      "onnx_latency_round_ms": [7.0, 6.5, 7.5]}


def timed(method, seed, ms, low, high, prefix="latency"):
    return {"method": method, "ratio": 0.5, "seed": seed, f"{prefix}_ms": ms, f"{prefix}_low_ms": low,
            f"{prefix}_high_ms": high}


def test_speedups_are_over_the_baseline_of_the_same_seed_and_their_range_holds_1_where_spreads_overlap():
    records = [timed("baseline", 42, 10.0, 9.0, 11.0), timed("baseline", 7, 20.0, 19.0, 21.0),
               timed("structured_physical", 42, 5.0, 4.5, 6.0), timed("dense_control", 7, 20.5, 19.5, 22.0)]
    latency.speedups(records)
    physical, control = records[2], records[3]
    assert physical["latency_speedup"] == 2.0
    assert (physical["latency_speedup_low"], physical["latency_speedup_high"]) == (9.0 / 6.0, 11.0 / 4.5)
    assert control["latency_speedup"] == pytest.approx(20.0 / 20.5)  # seed 7's baseline, not seed 42's
    assert control["latency_speedup_low"] < 1 < control["latency_speedup_high"]
    assert "onnx_latency_speedup" not in physical  # not timed in ONNX Runtime


def test_a_run_is_timed_again_while_a_record_lacks_its_rounds_in_a_runtime():
    done = {"checkpoint": "a.pt", "onnx_path": "a.onnx", "latency_rounds": 3, "onnx_latency_rounds": 3}
    assert latency.untimed([done]) == []
    assert latency.untimed([done, {"checkpoint": "b.pt"}]) == [{"checkpoint": "b.pt"}]
    assert latency.untimed([{**done, "int8_path": "a.int8.onnx"}])  # its INT8 file was never timed


@pytest.fixture(scope="module")
def summary():
    """A run of one seed timed in 4 rounds. The dense control runs about 12% slower than the baseline in
    three rounds and as fast in the fourth: not distinguishable from it, where a single reading (7.5
    against 6.7 ms) misled before the rounds."""
    found = results([model("baseline", 0.0, [4.0] * 100), model("dense_control", 0.0, [4.1] * 100),
                     model("unstructured", 0.5, [4.2] * 100), model("unstructured", 0.9, [4.3] * 100),
                     model("structured", 0.5, [4.4] * 100)])
    spans = {"baseline": (6.71, 6.5, 6.9), "dense_control": (7.51, 6.6, 7.7), "unstructured": (3.0, 2.9, 3.1),
             "structured": (8.0, 7.5, 8.5)}
    for record in found["models"]:
        ms, low, high = (6.6, 6.4, 6.8) if record["ratio"] == 0.9 else spans[record["method"]]
        record.update(latency.summary("latency", [(low, low), (ms, ms), (ms, ms), (high, high)]))
    latency.speedups(found["models"])
    found["config"]["LATENCY_ROUNDS"] = 4
    return reports.summary_markdown(found)


def test_the_summary_shows_each_latency_with_its_spread_and_ranks_only_beyond_it(summary):
    assert "in 4 interleaved rounds" in summary and "2 runs after 1 warm-up runs" in summary
    assert "lies wholly above 1.05 (a speed-up of at least 5%)" in summary  # the rule, stated
    assert "Holm's adjustment over its column" in summary and "ALPHA 0.05 / 2" in summary
    assert "| 6.71 (6.5–6.9) " in summary and "| 7.51 (6.6–7.7) " in summary
    assert "faster than the baseline at 0.5; not distinguishable from the baseline at 0.9" in summary
    assert "slower than the baseline at 0.5" in summary
    row = next(line for line in summary.splitlines()
               if line.startswith("| unstructured ") and " 0.9 |" in line)
    assert "| 6.6 (6.4–6.8) " in row  # Table 2's latency, with its spread (its verdict: in the paragraph)
    control = next(line for line in summary.splitlines() if line.startswith("| dense_control "))
    assert "| not distinguishable " in control  # Table 1's "Speed vs baseline"


def test_the_fastest_at_each_accuracy_level_is_faster_beyond_the_spread():
    points = pd.DataFrame({"label": ["accurate", "close", "fast"], "mae": [3.9, 4.0, 4.5],
                           "latency_ms": [6.7, 6.4, 1.3], "latency_ms_low": [6.5, 6.2, 1.2],
                           "latency_ms_high": [6.9, 6.6, 1.4]})
    assert edge.pareto(points, "latency_ms").label.tolist() == ["fast", "accurate"]
    readings = points.drop(columns=["latency_ms_low", "latency_ms_high"])  # one reading: 0.3 ms would rank
    assert edge.pareto(readings, "latency_ms").label.tolist() == ["fast", "close", "accurate"]


def test_reports_and_figures_of_a_run_not_timed_yet(tiny_run, tmp_path, monkeypatch):
    """Records are written as each model finishes, before the latency phase: nothing breaks on them."""
    out, _ = tiny_run

    def unsaved(fig, figures_dir, name):  # which figures are drawn, not their files (test_figures)
        plt.close(fig)
        return [f"{figures_dir}/{name}.png"]
    monkeypatch.setattr(visualize_results, "save", unsaved)
    found = json.load(open(out / "results" / "results.json"))
    for record in found["models"]:
        for key in [k for k in record if "latency" in k or k.endswith("_threads")]:
            del record[key]
        record["checkpoint"] = str(out / "results" / record["checkpoint"])  # the figures read the models
    summary = reports.write_results(found, str(tmp_path))
    assert "Not timed yet" in summary and "latency not timed yet" in summary and "Table 5" in summary
    assert "Fastest at each accuracy level: not timed yet" in summary
    drawn = {p.rsplit("/", 1)[1]
             for p in visualize_results.draw_all(str(tmp_path), str(tmp_path / "figures"))}
    assert "mae_vs_compression.png" in drawn and "latency.png" not in drawn and "edge.png" not in drawn
