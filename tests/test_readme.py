"""The README's result tables are the ones readme_tables.py writes from the result files in docs/."""
import json
import os
import re

import numpy as np
import pytest

import allocation
import config
import latency
import methods
import quick_run_tables
import readme_tables
import recovery_tables
from cli import exits
from conftest import ROOT


# One test per document, each its own worker group (tests/conftest.py), so that the workers share them:
# rendering every committed run's claims takes most of a minute.
@pytest.mark.parametrize("path", [pytest.param(path, id=os.path.basename(path), marks=pytest.mark.xdist_group(
    f"document {os.path.basename(path)}")) for path in readme_tables.documents()])
def test_the_readme_tables_are_written_from_the_committed_results(path):
    """README.md and each guide in docs/ are exactly what readme_tables.py writes from docs/*.json."""
    text = open(path, encoding="utf-8").read()
    assert readme_tables.render(text) == text, f"{path} is stale: run python readme_tables.py"


def test_every_table_is_shown_in_a_document():
    names = {b[1] for path in readme_tables.documents()
             for b in readme_tables.BLOCK.findall(open(path, encoding="utf-8").read())}
    assert names == set(readme_tables.TABLES)  # none is left unwritten


def test_a_generated_table_follows_its_result_file(tmp_path):
    results = json.load(open(os.path.join(ROOT, "docs", "quick_results.json")))
    results["models"][1]["test_mae"] = 99.125
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "r.json").write_text(json.dumps(results))
    text = ("before\n<!-- generated: quick_run from docs/r.json -->\nold table\n<!-- end generated -->\n"
            "after\n")
    new = readme_tables.render(text, root=str(tmp_path))
    assert "old table" not in new and "| 99.12 [" in new
    assert new.startswith("before\n") and new.endswith("after\n")
    assert f"commit {results['environment']['git_commit']}" in new


def schedule_twins():
    """The committed quick run, and a copy of it recorded as the same run under the gradual schedule."""
    oneshot = json.load(open(os.path.join(ROOT, "docs", "quick_results.json")))
    gradual = json.loads(json.dumps(oneshot))
    gradual["config"]["PRUNING_SCHEDULE"] = "gradual"
    return oneshot, gradual


def test_the_schedules_table_judges_gradual_net_of_its_own_dense_control(tmp_path):
    """The dense control loses about 0.33 on every video under the gradual schedule, pruning nothing:
    its row is shown, and each method's verdict is on its change net of the control's (per seed and
    video), two-sided. Unstructured 0.8 loses the same 0.33: detected, but equivalent net of the schedule;
    unstructured 0.5 twice as wrong on every video: worse; the models unchanged come out better, net, by
    less than the margin."""
    oneshot, gradual = schedule_twins()
    rng = np.random.default_rng(0)
    found = {(r["method"], r["ratio"]): r for r in gradual["models"]}
    for key in (("dense_control", 0.0), ("unstructured", 0.8)):  # |error| up by 0.33 +- 0.05 on each video
        errors = np.abs(found[key]["test_errors"])
        found[key]["test_errors"] = (errors + 0.33 + 0.05 * rng.standard_normal(len(errors))).tolist()
    found[("unstructured", 0.5)]["test_errors"] = [2 * e for e in found[("unstructured", 0.5)]["test_errors"]]
    for run, file in ((oneshot, "a.json"), (gradual, "b.json")):
        (tmp_path / file).write_text(json.dumps(run))
    text = "<!-- generated: schedules from a.json,b.json -->\n<!-- end generated -->\n"
    lines = readme_tables.render(text, root=str(tmp_path)).splitlines()
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines if line.startswith("| ")}
    base = next(r for r in oneshot["models"] if r["method"] == "baseline")
    margin = f"{0.1 * np.abs(base['test_errors']).mean():.2f}"
    assert rows["dense control"][5].startswith("+0.33 [+0.3") and rows["dense control"][6] == ""
    assert rows["dense control"][7] == f"worse, by less than {margin} |"  # the schedule's own, detected loss
    assert rows["unstructured 0.8"][5].startswith("+0.33 [+0.3")
    assert abs(float(rows["unstructured 0.8"][6].split()[0])) < 0.05  # net of the control: about 0
    assert rows["unstructured 0.8"][7] == f"equivalent within ±{margin} |"
    assert rows["unstructured 0.5"][7] == "worse |"
    unchanged = [label for label in rows if label not in ("model", "dense control", "unstructured 0.5",
                                                          "unstructured 0.8") and not label.startswith("---")]
    assert unchanged and all(rows[label][5] == "+0.00 [+0.00, +0.00]"
                             and rows[label][7] == f"better, by less than {margin} |" for label in unchanged)
    assert "baseline" not in rows and f"Margin M: {margin} EF points" in "\n".join(lines)
    assert sum("from `a.json`" in line or "from `b.json`" in line for line in lines) == 2


def one_shot_again(run):
    run["config"]["PRUNING_SCHEDULE"] = "oneshot"


def fine_tuned_longer(run):
    run["config"]["FINE_TUNE_EPOCHS"] = 5


def baseline_off_on_one_video(run):  # seed 42's baseline is the first record
    run["models"][0]["test_errors"][0] += 0.5


@pytest.mark.parametrize("change, refusal", [(one_shot_again, "the second a gradual one"),
                                             (fine_tuned_longer, "differ in FINE_TUNE_EPOCHS"),
                                             (baseline_off_on_one_video, "seed-42 baselines differ")])
def test_the_schedules_table_refuses_runs_that_do_not_share_their_baselines(tmp_path, change, refusal):
    """The schedules are compared on the same trained baselines: another option, or a baseline that
    differs on one test video (another commit or machine), is refused, naming what differs."""
    oneshot, gradual = schedule_twins()
    change(gradual)
    for run, file in ((oneshot, "a.json"), (gradual, "b.json")):
        (tmp_path / file).write_text(json.dumps(run))
    text = "<!-- generated: schedules from a.json,b.json -->\n<!-- end generated -->\n"
    with pytest.raises(exits.Unreadable, match=refusal):
        readme_tables.render(text, root=str(tmp_path))


INTERVAL = re.compile(r"([+-]\d+\.\d+) \[([+-]\d+\.\d+), ([+-]\d+\.\d+)\]")


JUDGED = ("ΔMAE", "gradual − one-shot", "net of the dense control's")  # the interval columns


def judged_cells(text):
    """(table row, interval cell, verdict cell) of every generated table row with a verdict: the verdict
    column, and the interval it is on (ΔMAE; in the schedules table the net change where shown)."""
    found = []
    for block in readme_tables.BLOCK.finditer(text):
        head = None
        for line in block[4].splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not line.startswith("|"):
                head = None  # between tables
            elif head is None:
                head = cells
            elif not set(line) <= set("|-: "):  # a row, not the separator
                verdict = [i for i, h in enumerate(head) if h.startswith("verdict")]
                judged = [i for i, h in enumerate(head) if any(name in h for name in JUDGED)]
                interval = next((cells[i] for i in reversed(judged) if cells[i]), "")
                if verdict and interval and "×" not in interval:  # not a baseline's own row, nor a speed-up
                    found.append((line, interval, cells[verdict[0]]))
    return found


def test_no_verdict_in_a_committed_table_contradicts_the_sign_of_its_interval():
    """README.md and docs/*.md: no "worse" or "non-inferior" beside an interval wholly below 0, no
    "better" beside one wholly above it."""
    rows = [row for path in readme_tables.documents()
            for row in judged_cells(open(path, encoding="utf-8").read())]
    assert len(rows) > 200 and {verdict for _, _, verdict in rows} >= {"worse", "better", "inconclusive"}
    for line, interval, verdict in rows:
        change, low, high = map(float, INTERVAL.fullmatch(interval).groups())
        assert not (high < 0 and verdict.startswith(("worse", "non-inferior"))), line
        assert not (low > 0 and verdict.startswith("better")), line
    made_up = ("<!-- generated: x from y.json -->\n| a | ΔMAE [95% interval] | verdict |\n|---|---|---|\n"
               "| m | -0.50 [-0.90, -0.10] | worse |\n<!-- end generated -->")
    assert judged_cells(made_up) == [
        ("| m | -0.50 [-0.90, -0.10] | worse |", "-0.50 [-0.90, -0.10]", "worse")]  # the check would see it


def test_a_table_from_a_run_timed_in_rounds_shows_each_spread_and_ranks_only_beyond_it(tmp_path):
    """A run timed in rounds shows [lowest–highest round] and the speed-up paired round by round with its
    95% interval and verdict: the dense control is slower than the baseline in every round, yet by less
    than 5%, so not distinguishable; a runtime without rounds (a run from before them) keeps its single
    readings, unranked."""
    results = json.load(open(os.path.join(ROOT, "docs", "quick_results.json")))
    rounds = {"baseline": [10.0, 10.3, 9.8, 10.0], "dense_control": [10.2, 10.4, 9.9, 10.2],
              "structured_physical": [3.0, 3.1, 2.9, 3.0]}  # ms in each of 4 rounds (at 0.5)
    for record in results["models"]:  # the others as the baseline
        shown = record["method"] if record["ratio"] in (0.0, 0.5) else "baseline"
        timed = rounds.get(shown, rounds["baseline"])
        record.update(latency.summary("latency", [(ms, 0) for ms in timed]))
        for key in ("onnx_latency_low_ms", "onnx_latency_high_ms", "onnx_latency_rounds",
                    "onnx_latency_round_ms"):
            record.pop(key, None)  # ONNX Runtime timed once, as before the rounds
        record["onnx_latency_speedup"] = 1.0
    latency.speedups(results["models"])
    table = quick_run_tables.quick_run(results).splitlines()
    base, control = table[3], table[4]
    physical = next(line for line in table if line.startswith("| coupled channels (removed) 0.5 "))
    assert "| 10.0 [9.8–10.3] (1.00×) |" in base
    assert "| 10.2 [9.9–10.4] (0.99× [0.98, 0.99], n.d.) |" in control
    assert "| 3.0 [2.9–3.1] (3.34× [3.30, 3.38], faster) |" in physical
    assert "interleaved rounds" in table[-1] and "lies wholly above 1.05" in table[-1]
    assert f"| {results['models'][0]['onnx_latency_ms']:.1f} (1.00×) |" in base


def test_the_committed_quick_run_ranks_removed_channels_faster_and_no_mask_from_8_rounds():
    """The committed quick run: one seed, 8 rounds (with 3 the old rule, ranges apart, could rank no
    model; at 4, 3 degrees of freedom, Holm left a 3.8x speed-up unranked). Paired round by round, coupled
    removal and its random control at ratio 0.5 are faster than the baseline in both runtimes, and no
    masked model (the dense model's shapes) is ranked either way."""
    results = json.load(open(os.path.join(ROOT, "docs", "quick_results.json")))
    assert results["config"]["LATENCY_ROUNDS"] == 8 and len({r["seed"] for r in results["models"]}) == 1
    lines = quick_run_tables.quick_run(results).splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    timed = [head.index("PyTorch ms (speedup)"), head.index("ONNX Runtime ms (speedup)")]
    cells = {row[0]: [row[i] for i in timed] for row in
             ([c.strip() for c in line.strip("|").split("|")] for line in lines[3:] if line.startswith("| "))}
    removed = ["coupled channels (removed) 0.5", "random coupled channels (removed) 0.5"]
    masked = [name for name in cells
              if name.startswith(("unstructured", "per-layer", "coupled channels (masks)"))]
    assert all(cell.endswith(", faster)") for name in removed for cell in cells[name])
    assert len(masked) == 15 and all(cell.endswith(", n.d.)") for name in masked for cell in cells[name])


def weight_run(weight, val_maes):
    """A run of one candidate distillation weight: {method: validation MAE} at ratio 0.7, seed 42."""
    models = [{"method": "baseline", "ratio": 0.0, "seed": 42, "val_mae": 3.0}]
    models += [{"method": m, "ratio": 0.7, "seed": 42, "val_mae": v} for m, v in val_maes.items()]
    return {"config": {"DISTILLATION_WEIGHT": weight, "SEEDS": [42]}, "splits": {"val": 60}, "models": models}


def test_the_distillation_weight_is_the_one_with_the_lowest_mean_validation_mae():
    plain = {"structured_physical": 4.9, "structured_physical_global": 5.9}
    runs = [weight_run(0.25, {**plain, "structured_physical_kd": 4.9, "structured_physical_global_kd": 6.3}),
            weight_run(0.5, {**plain, "structured_physical_kd": 5.1, "structured_physical_global_kd": 5.9}),
            weight_run(1.0, {**plain, "structured_physical_kd": 4.0, "structured_physical_global_kd": 9.0})]
    assert recovery_tables.chosen_weight(*runs) == 0.5  # means 5.6, 5.5, 6.5: not the best single model's
    table = recovery_tables.distillation_weight(*reversed(runs)).splitlines()
    assert table[2] == "| 0 (labels alone) | 4.900 | 5.900 | 5.400 |"
    assert [line.split(" | ")[0] for line in table[3:6]] == ["| 0.25", "| 0.5", "| 1"]
    assert table[-1].endswith("Chosen: w = 0.5; the labels alone did better on validation than every weight "
                              "tried.")


def test_the_recovery_run_distils_with_the_weight_chosen_on_validation():
    """The weight runs differ in the weight alone, made at one commit on one machine (a CPU run of one commit
    differs between hosts); the committed result run used the weight they chose, and config.py's default is
    that weight."""
    text = open(os.path.join(ROOT, "docs", "results.md"), encoding="utf-8").read()
    paths = next(b[2] for b in readme_tables.BLOCK.findall(text) if b[1] == "distillation_weight").split(",")
    runs = [json.load(open(os.path.join(ROOT, path))) for path in paths]
    alike = [({k: v for k, v in run["config"].items() if k not in run["config"]["NOT_RESULTS"]
               and k != "DISTILLATION_WEIGHT"}, run["environment"]["git_commit"],
              run["environment"]["cpu_kernel_flags"], run["environment"]["cpu_count"]) for run in runs]
    assert len(runs) > 2 and all(a == alike[0] for a in alike)
    recovery = json.load(open(os.path.join(ROOT, "docs", "recovery_results.json")))
    chosen = recovery_tables.chosen_weight(*runs)
    assert recovery["config"]["DISTILLATION_WEIGHT"] == chosen == config.DISTILLATION_WEIGHT
    assert {r["distillation_weight"] for r in recovery["models"] if r["method"].endswith("_kd")} == {chosen}


def test_the_committed_recovery_run_compares_the_allocations_at_equal_flops():
    """In the result run, every allocated model, distilled or not, is within FLOPS_TOLERANCE of the uniform
    model's effective FLOPs, seed by seed and budget by budget; every method of its table is there."""
    recovery = json.load(open(os.path.join(ROOT, "docs", "recovery_results.json")))
    uniform = {(r["ratio"], r["seed"]): r["effective_flops"] for r in recovery["models"]
               if r["method"] == "structured_physical"}
    base = methods.base_method
    allocated = [r for r in recovery["models"] if base(r["method"]) in methods.ALLOCATED]
    assert {base(r["method"]) for r in allocated} == set(methods.ALLOCATED)
    assert len(allocated) == 2 * len(methods.ALLOCATED) * len(uniform)  # with and without distillation
    for r in allocated:
        assert abs(r["effective_flops"] / uniform[(r["ratio"], r["seed"])] - 1) <= allocation.FLOPS_TOLERANCE
    shown = recovery_tables.RECOVERY + recovery_tables.RECOVERY_DENSE
    assert {r["method"] for r in recovery["models"]} >= set(shown)
    assert len(recovery["config"]["SEEDS"]) >= 3 and recovery["config"]["NUM_TEST_VIDEOS"] >= 1000
