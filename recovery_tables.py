"""The recovery run's tables (docs/recovery_results.json): the channel allocations and distillation at
each FLOP budget, against the baseline and at equal FLOPs, and what the highest budget shows; and how
its distillation weight was chosen: one run per candidate weight, on validation alone."""
import numpy as np

import claims
import config
import methods
from table_cells import by_model, interval, judged, mean_std

RECOVERY = ["structured_physical", "structured_physical_kd", "structured_physical_global",
            "structured_physical_global_kd", "structured_physical_sensitivity",
            "structured_physical_sensitivity_kd", "scratch", "scratch_kd"]
RECOVERY_DENSE = ["dense_control", "dense_control_kd"]  # the first rows: nothing pruned


def recovery(results):
    """The allocations and distillation at each FLOP budget (the uniform model's ratio): the mean test MAE
    over the seeds, its ratio to the baseline's, the change against the baseline with the verdict of the
    run's rule (at the one margin, config.py's NONINFERIORITY_FRACTION), FLOPs against the uniform
    model's, and the PyTorch speed-up; then what the highest budget shows, and every comparison at equal
    FLOPs."""
    models, table = by_model(results), judged(results)
    versus = {(r.method, r.ratio): r for r in table[table.kind == "vs baseline"].itertuples()}
    base = {r["seed"]: r["test_mae"] for r in models[("baseline", 0.0)]}
    ratios = sorted({ratio for method, ratio in models if method == "structured_physical"})
    lines = ["| budget | model | test MAE, mean ± std | × baseline | ΔMAE vs baseline [95% interval] | "
             "verdict | effective FLOPs (M), × uniform | PyTorch speed-up |", "|" + "---|" * 8]
    dense_flops = results["models"][0]["effective_flops"]
    budgets = [("none (dense)", 0.0, dense_flops, RECOVERY_DENSE)]
    for ratio in ratios:
        uniform = np.mean([r["effective_flops"] for r in models[("structured_physical", ratio)]])
        budget = f"{dense_flops / uniform:.1f}× fewer FLOPs (ratio {ratio:g})"
        budgets.append((budget, ratio, uniform, RECOVERY))
    for budget, ratio, uniform, shown in budgets:
        for method in [m for m in shown if (m, ratio) in models]:
            rows, claim = models[(method, ratio)], versus.get((method, ratio))
            flops = np.mean([r["effective_flops"] for r in rows])
            lines.append("| " + " | ".join([
                budget, methods.label(method), mean_std([r["test_mae"] for r in rows]),
                f"{np.mean([r['test_mae'] / base[r['seed']] for r in rows]):.2f}",
                interval(claim._asdict()) if claim else "", claim.verdict if claim else "",
                f"{flops / 1e6:.0f}, {flops / uniform:.3f}",
                f"{np.mean([r['latency_speedup'] for r in rows]):.2f}×" if "latency_speedup" in rows[0]
                else ""]) + " |")
    text = ("\n".join(lines) + "\n\n" + highest_budget(results, versus, ratios[-1]) + teacher_gap(results)
            + "\n")
    compared = RECOVERY + RECOVERY_DENSE
    pairs = table[(table.kind == "same ratio") & table.method.isin(compared) & table.reference.isin(compared)]
    return text + "\n" + claims.claims_table(pairs)


def teacher_gap(results):
    """What distillation's second target adds: how far the baseline's predictions for the training videos
    are from their labels, against its error on the test videos (means over the seeds)."""
    gaps = {r["seed"]: r["teacher_train_mae"] for r in results["models"] if r.get("teacher_train_mae")}
    if not gaps:
        return ""
    test = np.mean([r["test_mae"] for r in results["models"] if r["method"] == "baseline"])
    return (f" The dense baseline's predictions for the training videos, distillation's second target, are "
            f"{np.mean(list(gaps.values())):.2f} EF points from their labels on average, against its test "
            f"MAE of {test:.2f}.")


def highest_budget(results, versus, ratio):
    """Whether any removed-channel model (an allocation, distilled or not) at the highest budget is shown
    within the margin of the baseline (its non-inferiority test, Holm), at the one margin."""
    fraction, alpha = config.NONINFERIORITY_FRACTION, results["config"].get("ALPHA", config.ALPHA)
    recorded = results["config"].get("NONINFERIORITY_FRACTION", fraction)
    removed = [m for m in RECOVERY if methods.base_method(m) in methods.REMOVED]  # not the small net
    shown = [methods.label(m) for m in removed
             if (m, ratio) in versus and versus[(m, ratio)].p_margin_holm < alpha / 2]
    return (f"At the highest budget (ratio {ratio:g}), by the claims rule (margin {fraction:g} of the "
            f"baseline's MAE, that is within {1 + fraction:.2f}× of it, the one margin"
            + (f"; the run recorded {recorded:g}" if recorded != fraction else "")
            + "; Holm-adjusted within its family, primary or exploratory): "
            + (f"shown for {', '.join(shown)}." if shown else
               "no combination of allocation and distillation is shown within it."))


def distilled_val_maes(run):
    """{distilled method: validation MAE} of one weight's run, at its highest ratio, with the same methods
    fine-tuned on the labels alone (the model each kept: its best epoch on validation)."""
    models = by_model(run)
    ratio = max(ratio for method, ratio in models if method.endswith("_kd"))
    kd = [method for method, r in models if r == ratio and method.endswith("_kd")]
    return ratio, {m: [r["val_mae"] for r in models[(m, ratio)]] for m in kd + [m[:-3] for m in kd]}


def chosen_weight(*runs):
    """The weight whose distilled models have the lowest mean validation MAE (one run per weight)."""
    means = {run["config"]["DISTILLATION_WEIGHT"]: np.mean([np.mean(v) for m, v in distilled_val_maes(run)[1]
                                                            .items() if m.endswith("_kd")]) for run in runs}
    return min(means, key=means.get)


def distillation_weight(*runs):
    """How the distillation weight was chosen: one run per candidate weight, alike in everything else, each
    distilled model's validation MAE at the highest ratio and their mean (the labels alone, weight 0,
    from the same runs' plain models); the lowest mean wins. No test number is read."""
    runs = sorted(runs, key=lambda run: run["config"]["DISTILLATION_WEIGHT"])
    ratio, first = distilled_val_maes(runs[0])
    kd = [m for m in first if m.endswith("_kd")]
    lines = ["| weight w | " + " | ".join(methods.label(m[:-3]) for m in kd) + " | mean |",
             "|" + "---|" * (len(kd) + 2)]
    means = {}
    for w, maes in [(0.0, {m: first[m[:-3]] for m in kd})] + [
            (run["config"]["DISTILLATION_WEIGHT"], distilled_val_maes(run)[1]) for run in runs]:
        values = [np.mean(maes[m]) for m in kd]
        means[w] = np.mean(values)
        lines.append(f"| {w:g}{' (labels alone)' if w == 0 else ''} | "
                     + " | ".join(f"{v:.3f}" for v in values) + f" | {means[w]:.3f} |")
    seeds, chosen = ", ".join(str(s) for s in runs[0]["config"]["SEEDS"]), chosen_weight(*runs)
    plain = ("; the labels alone did better on validation than every weight tried"
             if means[0.0] < means[chosen] else "")
    return ("\n".join(lines) + f"\n\nValidation MAE at ratio {ratio:g}, seed {seeds}, "
            f"{runs[0]['splits']['val']} validation videos. Chosen: w = {chosen:g}{plain}.\n")
