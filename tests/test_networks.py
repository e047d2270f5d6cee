"""The two networks compared: R(2+1)D-18's losses against its own baseline, and the difference of the two
networks' losses paired by seed and video, one Holm family, only between runs on the same test videos."""
import copy
import json
import os

import numpy as np
import pandas as pd
import pytest

import claims
import methods
import network_tables
import readme_tables
import table_cells
from conftest import ROOT

SEEDS, VIDEOS = (7, 42, 123), 200
RATIOS = {0.5: 0.3e9, 0.7: 0.1e9}  # ratio of removal: its effective FLOPs (the baseline's 1.2e9)


def record(method, ratio, seed, errors, flops=1.2e9):
    return {"method": method, "ratio": ratio, "seed": seed, "test_errors": list(errors),
            "test_mae": float(np.abs(errors).mean()), "test_r2": 0.8, "params_effective": 11e6,
            "effective_flops": flops}


def run(model, losses, rng, ratios=RATIOS):
    """Three seeds of a run of `model`: a baseline and every primary method at each ratio, each method's
    per-video errors its baseline's plus losses[method] and noise."""
    models = []
    for seed in SEEDS:
        base = 4.0 + rng.standard_normal(VIDEOS)
        models.append(record("baseline", 0.0, seed, base))
        for ratio, flops in ratios.items():
            for method in methods.PRIMARY_METHODS:
                errors = base + losses.get((method, ratio), 0.0) + 0.3 * rng.standard_normal(VIDEOS)
                models.append(record(method, ratio, seed, errors, flops=flops))
    return {"config": {"MODEL": model, "SEED": 42, "SEEDS": list(SEEDS)}, "splits": {"test": VIDEOS},
            "identity": {"data": {"filelist": "f", "videos": "v"}}, "models": models}


def test_the_networks_are_compared_by_the_difference_of_their_losses_on_the_same_videos():
    rng = np.random.default_rng(3)
    frame = run(network_tables.FRAME, {}, rng)
    video = run(network_tables.VIDEO, {("structured_physical", 0.7): 1.5, ("scratch", 0.5): 0.02}, rng)
    table, seeds = network_tables.tests(frame, video, alpha=0.05)
    assert seeds == list(SEEDS) and set(table.family) == {network_tables.FAMILY}
    assert len(table) == 2 * len(RATIOS) * len(methods.PRIMARY_METHODS)  # one Holm family of these alone
    assert np.allclose(table.p_holm, claims.holm(table.p.to_numpy()))
    rows = table.set_index(["kind", "method", "ratio"])
    lost = rows.loc[("networks", "structured_physical", 0.7)]
    # the difference of differences, by hand
    by = {(m["method"], m["ratio"], m["seed"]): np.abs(m["test_errors"]) for m in frame["models"]}
    vy = {(m["method"], m["ratio"], m["seed"]): np.abs(m["test_errors"]) for m in video["models"]}
    expected = np.mean([(vy["structured_physical", 0.7, s] - vy["baseline", 0.0, s])
                        - (by["structured_physical", 0.7, s] - by["baseline", 0.0, s]) for s in SEEDS])
    assert lost.change == pytest.approx(expected) and lost.change > 1.3
    assert lost.verdict.startswith("worse") and lost.question == claims.TWO_SIDED
    assert rows.loc[("vs baseline", "structured_physical", 0.7)].verdict.startswith("worse")
    assert rows.loc[("vs baseline", "scratch", 0.5)].question == claims.NON_INFERIORITY
    same = rows.loc[("networks", "scratch", 0.5)]  # a loss of 0.02 on both sides of a margin of 0.4
    assert same.verdict.startswith("equivalent within") and same.ci_low > -same.margin


def test_the_table_has_a_row_per_budget_naming_both_reductions_and_a_column_per_primary_method():
    rng = np.random.default_rng(4)
    frame, video = run(network_tables.FRAME, {}, rng), run(network_tables.VIDEO, {}, rng)
    lines = network_tables.networks(frame, video).splitlines()
    assert lines[0] == "| budget | " + " | ".join(methods.label(m) for m in methods.PRIMARY_METHODS) + " |"
    rows = [line.strip("| ").split(" | ") for line in lines[2:4]]
    assert [row[0] for row in rows] == ["4.00× fewer FLOPs (ratio 0.5; per-frame: 4.00× at ratio 0.5)",
                                        "12.00× fewer FLOPs (ratio 0.7; per-frame: 12.00× at ratio 0.7)"]
    table, _ = network_tables.tests(frame, video, alpha=0.05)
    for row, ratio in zip(rows, RATIOS):
        for shown, method in zip(row[1:], methods.PRIMARY_METHODS, strict=True):
            at = table[(table.method == method) & (table.ratio == ratio)].set_index("kind")
            own, less = at.loc["vs baseline"], at.loc["networks"]
            assert shown == (f"{table_cells.interval(own)} {own.verdict}<br>less the per-frame loss: "
                             f"{table_cells.interval(less)} {less.verdict}")
    assert "Holm over these 16 comparisons alone" in lines[-1] and "**Power**" in lines[-1]


def test_each_video_budget_is_paired_with_the_per_frame_ratio_that_cuts_as_many_flops():
    """The video network reaches a FLOP budget at another ratio than the per-frame one: pairs by budget,
    within the budgets' tolerance; a budget the per-frame run lacks is not compared."""
    rng = np.random.default_rng(6)
    frame = run(network_tables.FRAME, {}, rng)
    video = run(network_tables.VIDEO, {("structured_physical", 0.45): 1.0}, rng,
                ratios={0.45: 0.31e9, 0.67: 0.1e9, 0.9: 0.02e9})
    frames, videos = (pd.DataFrame(r["models"]) for r in (frame, video))
    assert network_tables.budgets(frames, videos) == [(0.45, 0.5), (0.67, 0.7)]
    table, _ = network_tables.tests(frame, video, alpha=0.05)
    lost = table[(table.kind == "networks") & (table.method == "structured_physical") & (table.ratio == 0.45)]
    assert lost.frame_ratio.tolist() == [0.5] and lost.change.iloc[0] > 0.8
    alone = run(network_tables.VIDEO, {}, rng, ratios={0.9: 0.02e9})
    with pytest.raises(ValueError, match="no FLOP budget"):
        network_tables.tests(frame, alone, alpha=0.05)


@pytest.mark.parametrize("change", ["data", "network", "seeds"])
def test_runs_that_cannot_be_paired_video_by_video_are_refused(change):
    rng = np.random.default_rng(5)
    frame, video = run(network_tables.FRAME, {}, rng), run(network_tables.VIDEO, {}, rng)
    other = copy.deepcopy(video)
    if change == "data":
        other["identity"]["data"]["videos"] = "w"
    elif change == "network":
        other["config"]["MODEL"] = network_tables.FRAME
    else:
        for m in other["models"]:
            m["seed"] += 1000
    with pytest.raises(ValueError, match={"data": "data", "network": "must be a run of",
                                          "seeds": "share no training seed"}[change]):
        network_tables.tests(frame, other, alpha=0.05)


def tuning_run(rate, val_maes, after=(5.0, 6.0)):
    """A run at fine-tuning rate `rate`: the dense control and removal at one ratio, each with its epochs'
    validation MAE and the model's right after pruning."""
    models = [{"method": "baseline", "ratio": 0.0, "seed": 42, "history": {"val_mae": [4.0]}}]
    for (method, ratio), epochs, before in zip((("dense_control", 0.0), ("structured_physical", 0.5)),
                                               val_maes, after):
        models.append({"method": method, "ratio": ratio, "seed": 42,
                       "history": {"val_mae": list(epochs), "val_mae_after_pruning": before}})
    return {"config": {"MODEL": network_tables.VIDEO, "FINE_TUNE_LEARNING_RATE": rate, "FINE_TUNE_EPOCHS": 3,
                       "SEEDS": [42]}, "splits": {"val": 60}, "models": models}


def test_the_fine_tuning_rate_is_the_one_whose_best_epochs_validate_best_never_the_test():
    runs = [tuning_run(3e-4, ([8.0, 16.0, 5.3], [9.0, 7.0, 6.5])),
            tuning_run(1e-4, ([4.5, 4.2, 4.1], [6.0, 5.5, 5.4])),
            tuning_run(3e-5, ([4.0, 3.9, 3.95], [5.8, 5.7, 5.9]))]
    assert network_tables.chosen_rate(*runs) == 1e-4  # mean 4.75 against 4.8 at 3e-5, 5.9 at 3e-4
    shown = network_tables.fine_tune_rate(*reversed(runs)).splitlines()
    assert shown[0] == "| fine-tuning rate | dense control | coupled channels (removed) 0.5 | mean |"
    assert shown[2:5] == ["| 3e-05 | 3.90 | 5.70 | 4.80 |", "| 0.0001 | 4.10 | 5.40 | 4.75 |",
                          "| 0.0003 | 5.30 | 6.50 | 5.90 |"]
    assert shown[5] == "| right after pruning, recalibrated | 5.00 | 6.00 | 5.50 |"
    assert shown[-1].endswith("Chosen: 0.0001.")


def committed(document, table):
    """The parsed result files a document's generated block of `table` is written from."""
    text = open(os.path.join(ROOT, document), encoding="utf-8").read()
    paths = next(b[2] for b in readme_tables.BLOCK.findall(text) if b[1] == table).split(",")
    return [json.load(open(os.path.join(ROOT, path), encoding="utf-8")) for path in paths]


def test_the_committed_fine_tuning_rate_runs_differ_in_the_rate_alone():
    """The rate runs of docs/results.md differ in FINE_TUNE_LEARNING_RATE alone, made at one commit on one
    machine (a CPU run of one commit differs between hosts), each fine-tuning the same pruned models."""
    runs = committed("docs/results.md", "fine_tune_rate")
    alike = [({k: v for k, v in run["config"].items() if k not in run["config"]["NOT_RESULTS"]
               and k != "FINE_TUNE_LEARNING_RATE"}, run["environment"]["git_commit"],
              run["environment"]["cpu_kernel_flags"], run["environment"]["cpu_count"]) for run in runs]
    assert len(runs) >= 3 and all(a == alike[0] for a in alike)
    assert len({run["config"]["FINE_TUNE_LEARNING_RATE"] for run in runs}) == len(runs)
    right_after = [{k: v for k, (_, v) in network_tables.fine_tuned_val_maes(run).items()} for run in runs]
    assert all(after == right_after[0] for after in right_after)  # one pruned model per row, every rate
    assert all(network_tables.network(run) == network_tables.VIDEO for run in runs)


def test_right_after_pruning_removal_is_shown_beside_random_groups_for_both_networks():
    """What a removed model starts from before fine-tuning, the criterion's against random groups': shown
    where both runs have the random control, left out where either lacks it."""
    rng = np.random.default_rng(7)
    frame, video = run(network_tables.FRAME, {}, rng), run(network_tables.VIDEO, {}, rng)
    frames, videos = (pd.DataFrame(r["models"]) for r in (frame, video))
    pairs = network_tables.budgets(frames, videos)
    assert network_tables.right_after(frames, videos, pairs, list(SEEDS)) == ""  # no random control
    def with_random_control(models, start):
        randoms = models[models.method == "structured_physical"].assign(method="structured_physical_random")
        return pd.concat([models.assign(test_mae_before_fine_tune=start),
                          randoms.assign(test_mae_before_fine_tune=start + 1)])
    frames, videos = with_random_control(frames, 5.0), with_random_control(videos, 9.0)
    said = network_tables.right_after(frames, videos, pairs, list(SEEDS))
    assert "9.00 against 10.00 at 4.00× (per-frame 5.00 against 6.00)" in said
    assert "9.00 against 10.00 at 12.00× (per-frame 5.00 against 6.00)" in said


# What the two networks' runs must share for their losses to differ by the network alone: the training and
# fine-tuning protocol, the data and its splits, the margin. The fine-tuning rate is each network's own,
# chosen on its validation split.
PROTOCOL = ["NUM_FRAMES", "IMAGE_SIZE", "NUM_TRAIN_VIDEOS", "NUM_VAL_VIDEOS", "NUM_TEST_VIDEOS", "BATCH_SIZE",
            "NUM_EPOCHS", "LEARNING_RATE", "LR_SCHEDULE", "FINE_TUNE_EPOCHS", "BN_RECALIBRATION_BATCHES",
            "PRUNING_SCOPE", "PRUNING_SCHEDULE", "PHYSICAL_ROUND_TO", "EQUAL_FLOPS_METHODS",
            "NONINFERIORITY_FRACTION", "SEED"]


def test_the_committed_comparison_runs_the_video_network_at_the_chosen_rate_and_the_study_budgets():
    frame, video = committed("README.md", "networks")
    assert network_tables.network(video) == network_tables.VIDEO
    assert len(network_tables.same_videos(frame, video)) >= 3  # the same test videos, three shared seeds
    assert {k: frame["config"][k] for k in PROTOCOL} == {k: video["config"][k] for k in PROTOCOL}
    rates = committed("docs/results.md", "fine_tune_rate")
    assert video["config"]["FINE_TUNE_LEARNING_RATE"] == network_tables.chosen_rate(*rates)
    frames, videos = pd.DataFrame(frame["models"]), pd.DataFrame(video["models"])
    pairs = network_tables.budgets(frames, videos)  # every video budget is one of the study's
    assert len(pairs) == len(video["config"]["TARGET_FLOPS_SPEEDUPS"])
    studied = frame["config"]["STRUCTURED_PRUNING_RATIOS"]  # and every budget of the study is compared
    assert sorted(frame_ratio for _, frame_ratio in pairs) == sorted(studied)
