"""One-shot against gradual pruning: the same models pruned both ways from the same seeds' baselines
(two result files), each method judged on its change net of the dense control's, two-sided, at the
one margin (docs/methodology.md)."""
import numpy as np
import pandas as pd

import claims
import config
import power
from table_cells import by_model, interval, mean_std, name


def same_baselines(oneshot, gradual):
    """ValueError unless the runs are a one-shot and a gradual run of one configuration (but the schedule)
    on the same data, whose baselines agree video for video on every shared seed: the schedules are
    compared on the same trained models, so the runs must come from one commit on one machine."""
    schedules = [run["config"].get("PRUNING_SCHEDULE", "oneshot") for run in (oneshot, gradual)]
    if schedules != ["oneshot", "gradual"]:
        raise ValueError(f"the first file must be a one-shot run, the second a gradual one; they are "
                         f"{' and '.join(schedules)}")
    ignored = set(config.NOT_RESULTS) | {"PRUNING_SCHEDULE"}
    differ = sorted(k for k in oneshot["config"].keys() | gradual["config"].keys()
                    if k not in ignored and oneshot["config"].get(k) != gradual["config"].get(k))
    if differ or oneshot["identity"]["data"] != gradual["identity"]["data"]:
        raise ValueError(f"the two runs differ in {', '.join(differ) or 'their data (its fingerprint)'}: "
                         f"run both with the same options, --pruning-schedule aside")
    first, second = ({r["seed"]: r["test_errors"] for r in run["models"] if r["method"] == "baseline"}
                     for run in (oneshot, gradual))
    for seed in sorted(first.keys() & second.keys()):
        if first[seed] != second[seed]:
            raise ValueError(f"the two runs' seed-{seed} baselines differ on the test videos: make both runs "
                             f"from one clean commit on one machine")


def gradual_minus_oneshot(first, second, key):
    """{seed: |gradual error| - |one-shot error| per test video} of one model, on the seeds both runs have."""
    a, b = ({r["seed"]: r for r in run.get(key, [])} for run in (first, second))
    return {s: claims.paired([b[s]["test_errors"]], [a[s]["test_errors"]])[0] for s in a if s in b}


def schedule_tests(oneshot, first, second):
    """[(key, seeds, change, net change or None)]: each model's gradual - one-shot test and, but for the
    dense control's own, the same net of the control's (a difference in differences, per seed and video)."""
    fraction = config.NONINFERIORITY_FRACTION  # the one margin
    models = pd.DataFrame(oneshot["models"])
    control = gradual_minus_oneshot(first, second, ("dense_control", 0.0))
    found = []
    for key in first:
        diffs = gradual_minus_oneshot(first, second, key)
        if key[0] == "baseline" or not diffs:
            continue
        seeds = sorted(diffs)
        change = claims.test_diffs(np.stack([diffs[s] for s in seeds]),
                                   margin=claims.margin(models, seeds=seeds, fraction=fraction))
        net, both = None, sorted(set(seeds) & set(control))
        if key[0] != "dense_control" and both:
            net = claims.test_diffs(np.stack([diffs[s] - control[s] for s in both]),
                                    margin=claims.margin(models, seeds=both, fraction=fraction))
        found.append((key, seeds, change, net))
    return found


def schedules(oneshot, gradual):
    """The same models pruned one-shot and gradually, from the same seeds' baselines: validation MAE
    (the model kept) and test MAE, mean ± std over seeds, and gradual minus one-shot on test, paired by
    seed and video, crossed standard error. The dense control, pruning nothing, also goes through the
    gradual schedule (its recalibrations, its optimizer restarts): its change is what the schedule costs
    without pruning, so each method's verdict is on its change net of the control's. One schedule against
    the other is asked two-sided, at the one margin; Holm over the verdicts shown (the control's own change
    and every method's net change), by the rule of claims.py."""
    same_baselines(oneshot, gradual)
    first, second = by_model(oneshot), by_model(gradual)
    found = schedule_tests(oneshot, first, second)
    tests = pd.DataFrame([net or change for _, _, change, net in found]).assign(question=claims.TWO_SIDED)
    alpha = oneshot["config"].get("ALPHA", config.ALPHA)
    decided = claims.decide(tests, alpha)
    lines = ["| model | one-shot: val MAE | gradual: val MAE | one-shot: test MAE | gradual: test MAE | "
             "gradual − one-shot, test [95% interval] | net of the dense control's [95% interval] | "
             "verdict (Holm over the table; the control: its change, the others: the net change) |",
             "|---|---|---|---|---|---|---|---|"]
    for (key, seeds, change, net), verdict in zip(found, decided.verdict):
        a, b = ([r for r in run[key] if r["seed"] in seeds] for run in (first, second))
        cells = [name(a[0])] + [mean_std([r[column] for r in rows]) for column in ("val_mae", "test_mae")
                                for rows in (a, b)]  # one-shot, gradual; validation, then test
        cells += [interval(change), interval(net) if net else "", verdict]
        lines.append("| " + " | ".join(cells) + " |")
    margins = ", ".join(decided.margin.map("{:.2f}".format).unique())
    return ("\n".join(lines) + f"\n\nMargin M: {margins} EF points (NONINFERIORITY_FRACTION "
            f"{config.NONINFERIORITY_FRACTION:g}, the one margin, of the one-shot run's baseline test MAE "
            f"over the seeds compared). One schedule against the other is asked two-sided: equivalent "
            f"within ±M, better or worse (\", by less than M\": within ±M as well).\n\n"
            + power.sentence(decided, alpha) + "\n")
