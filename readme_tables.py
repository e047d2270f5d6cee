"""The README's and the guides' (docs/*.md) result tables and measured numbers, written from result
files committed in docs/, never typed.

    python readme_tables.py           # rewrites every generated block of README.md and docs/*.md
    python readme_tables.py --check   # exit 1 (naming the blocks) when a document is not what this writes,
                                      # 2 when a result file it names cannot be read

A generated block is

    <!-- generated: TABLE from docs/FILE.json -->
    ...
    <!-- end generated -->

and TABLE one of TABLES below (a table of two runs names both files, comma-separated); each block
ends with the file, commit, machine and date it came from.
To refresh one: copy a run's results/results.json to docs/, then run this script.
"""
import argparse
import glob
import json
import os
import re
import sys

import numpy as np
import pandas as pd

import answers
import claims
import config
import methods
import power
import speed
from cli import exits
from storage import folders
from bookkeeping import results_parts

ROOT = os.path.dirname(os.path.abspath(__file__))
BLOCK = re.compile(r"(<!-- generated: (\w+) from (\S+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def name(record):
    return claims.label(record["method"], record["ratio"])  # the names summary.md's claims use


SHORT = {"faster": "faster", "slower": "slower", "not distinguishable": "n.d."}


def ms(record, prefix, compared=None, digits=1, speedup=None):
    """'19.8 [19.1–20.3] (1.93× [1.85, 2.01], faster)': the median over the latency rounds [lowest–highest
    round], and the speed-up over the reference paired round by round with its 95% interval and verdict
    (compared: speed.Comparison); where not compared (the reference itself, a file without round lists)
    the ratio of the medians alone. From a run before the rounds: '19.8 (1.05×)'."""
    if f"{prefix}_ms" not in record:
        return ""
    speedup = record[f"{prefix}_speedup"] if speedup is None else speedup
    if f"{prefix}_low_ms" not in record:
        return f"{record[f'{prefix}_ms']:.{digits}f} ({speedup:.2f}×)"
    low, high = record[f"{prefix}_low_ms"], record[f"{prefix}_high_ms"]
    said = (f"{speedup:.2f}×" if compared is None
            else f"{speed.interval(compared, '×')}, {SHORT[compared.verdict]}")
    return f"{record[f'{prefix}_ms']:.{digits}f} [{low:.{digits}f}–{high:.{digits}f}] ({said})"


def column(rows, prefix, reference, alpha=None):
    """Every row's speed.Comparison against the record `reference` in runtime `prefix` (INT8: against its
    FP32 in ONNX Runtime), one Holm family: a table's column. None for the reference itself."""
    other = speed.RUNTIMES[prefix].reference if prefix in speed.RUNTIMES else prefix
    return speed.family([None if r is reference and prefix == other else
                         (speed.round_lists([r], prefix), speed.round_lists([reference], other))
                         for r in rows], alpha)


def legend(rows, alpha, compared=True):
    """Under a table with latency rounds: what its brackets, speed-ups and verdicts mean (compared: any
    speed-up was paired round by round; else the file keeps no round medians in round order)."""
    rounds = next((r["latency_rounds"] for r in rows if "latency_rounds" in r), None)
    if rounds is None:
        return ""
    alpha = config.ALPHA if alpha is None else alpha
    said = (f"Speed-up: {speed.rule(alpha)} n.d.: not distinguishable."
            if compared else "Speed-up: the ratio of the medians; the file keeps no round medians in "
                             "round order, so no speed-up is ranked (speed.py).")
    return f"\nLatency: the median of {rounds} interleaved rounds [lowest–highest round median]. {said}\n"


def quick_run(results):
    """Every model of the first seed: accuracy with its intervals, against the baseline and the dense
    control, right after pruning, and its size and speed."""
    seed, alpha = results["models"][0]["seed"], results["config"].get("ALPHA")
    rows = [r for r in results["models"] if r["seed"] == seed]
    control = any(r["method"] == "dense_control" for r in rows)
    head = ["model", "test MAE [95% interval]", "ΔMAE vs baseline [paired 95% interval]"]
    head += ["ΔMAE vs dense control [paired 95% interval]"] if control else []
    head += ["MAE right after pruning", "sparsity before → after FT", "effective params",
             "effective FLOPs (M)", "PyTorch ms (speedup)", "ONNX Runtime ms (speedup)",
             "checkpoint MB (gzip)"]
    paired = {p: column(rows, p, rows[0], alpha) for p in ("latency", "onnx_latency")}  # vs the baseline
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             f"| mean predictor | {results['mean_predictor']['test_mae']:.2f} |" + " |" * (len(head) - 2)]
    for i, r in enumerate(rows):
        cells = [name(r), f"{r['test_mae']:.2f} [{r['test_mae_ci_low']:.2f}, {r['test_mae_ci_high']:.2f}]"]
        cells.append("" if r["method"] == "baseline" else
                     f"{r['mae_diff']:+.2f} [{r['mae_diff_ci_low']:+.2f}, {r['mae_diff_ci_high']:+.2f}]")
        if control:
            cells.append(f"{r['mae_diff_vs_control']:+.2f} [{r['mae_diff_vs_control_ci_low']:+.2f}, "
                         f"{r['mae_diff_vs_control_ci_high']:+.2f}]" if "mae_diff_vs_control" in r else "")
        before = r.get("test_mae_before_fine_tune")
        physical = r["method"] == "structured_physical"
        cells += [f"{before:.2f}" if before is not None and r["method"] not in methods.DENSE else "",
                  "removed" if physical else f"{r['sparsity_before_fine_tune']:.3f} → {r['sparsity']:.3f}",
                  f"{r['params_effective'] / 1e6:.2f} M", f"{r['effective_flops'] / 1e6:.0f}",
                  ms(r, "latency", paired["latency"][i]), ms(r, "onnx_latency", paired["onnx_latency"][i]),
                  f"{r['size_mb']:.1f} ({r['gzip_size_mb']:.1f})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + legend(rows, alpha, any(paired["latency"] + paired["onnx_latency"]))


def int8(results):
    """Every model of the first seed in FP32 and INT8 through ONNX Runtime."""
    seed, alpha = results["models"][0]["seed"], results["config"].get("ALPHA")
    rows = [r for r in results["models"] if r["seed"] == seed and "int8_test_mae" in r]
    dense = rows[0]["onnx_latency_ms"]
    columns = [column(rows, p, rows[0], alpha) for p in ("onnx_latency", "int8_latency")]  # vs FP32 dense
    lines = ["| model | FP32 MAE | INT8 MAE (change [paired 95% interval]) | FP32 ORT ms (vs FP32 dense) | "
             "INT8 ORT ms (vs FP32 dense) | ONNX MB FP32 → INT8 (INT8 gzip) |", "|---|---|---|---|---|---|"]
    for r, fp32_speed, int8_speed in zip(rows, *columns):
        fp32 = r.get("fp32_onnx_test_mae", r["test_mae"])
        lines.append(f"| {name(r)} | {fp32:.2f} | {r['int8_test_mae']:.2f} ({r['int8_mae_change']:+.2f} "
                     f"[{r['int8_mae_change_ci_low']:+.2f}, {r['int8_mae_change_ci_high']:+.2f}]) | "
                     f"{ms(r, 'onnx_latency', fp32_speed, 2, dense / r['onnx_latency_ms'])} | "
                     f"{ms(r, 'int8_latency', int8_speed, 2)} | "
                     f"{r['onnx_size_mb']:.1f} → {r['int8_size_mb']:.1f} ({r['int8_gzip_size_mb']:.2f}) |")
    return "\n".join(lines) + "\n" + legend(rows, alpha, any(sum(columns, [])))


def phases(results):
    """Where the run's time went, phase by phase, and each model's training speed."""
    lines = ["| phase | seconds |", "|---|---|"]
    lines += [f"| {phase.replace('_', ' ')} | {seconds:.0f} |"
              for phase, seconds in results["phases"].items()]
    return "\n".join(lines) + "\n"


def judged(results):
    """claims.for_run at the one margin, config.py's NONINFERIORITY_FRACTION, whatever the run recorded."""
    return claims.for_run(results, fraction=config.NONINFERIORITY_FRACTION)


def verdicts(results):
    """Every comparison of the run with its verdict, by the rule summary.md states (claims.py)."""
    table = judged(results)
    primaries = table[table.family == claims.PRIMARY]
    if primaries.empty:
        return claims.rule(results, table) + "\n" + claims.claims_table(table)
    return (claims.rule(results, table) + "\n**The primary questions**\n\n" + claims.claims_table(primaries)
            + "\n**Every other comparison (exploratory)**\n\n"
            + claims.claims_table(table[table.family != claims.PRIMARY]))


def by_model(results):
    """{(method, ratio): [records sorted by seed]} in the run's order."""
    models = {}
    for r in results["models"]:
        models.setdefault((r["method"], r["ratio"]), []).append(r)
    order = {seed: i for i, seed in enumerate(results["config"].get("SEEDS", []))}  # the run's own seed order
    return {key: sorted(rows, key=lambda r: (order.get(r["seed"], len(order)), r["seed"]))
            for key, rows in models.items()}


def mean_std(values):
    if len(values) <= 1:
        return f"{values[0]:.2f}"
    return f"{pd.Series(values).mean():.2f} ± {pd.Series(values).std():.2f}"


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
    first, second = by_model(oneshot), by_model(gradual)
    found = schedule_tests(oneshot, first, second)
    tests = pd.DataFrame([net or change for _, _, change, net in found]).assign(question=claims.TWO_SIDED)
    decided = claims.decide(tests, oneshot["config"].get("ALPHA", config.ALPHA))
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
            f"within ±M, better or worse (\", by less than M\": within ±M as well).\n")


def interval(test):
    return f"{test['change']:+.2f} [{test['ci_low']:+.2f}, {test['ci_high']:+.2f}]"


def speed_table(bench):
    """bench.py --output: every variant's size, executed FLOPs and latency in each runtime, the median of
    the interleaved rounds [lowest–highest], and its speedup over the dense baseline, paired round by
    round and ranked (speed.py) where the file keeps its round medians (bench.py's files do not)."""
    variants, alpha = bench["variants"], bench["config"].get("ALPHA")
    base = variants[0]
    runtimes = [(p, title) for p, title in (("latency", "PyTorch eager"),
                                            ("compiled_latency", "PyTorch compiled"),
                                            ("onnx_latency", speed.RUNTIMES["onnx_latency"].name))
                if f"{p}_ms" in base]
    counted = "params_effective" if "params_effective" in base else "params_nonzero"  # older files: non-zero
    lines = [f"| model | {counted.replace('params_', '')} params | FLOPs executed (G) | theoretical "
             f"speedup | " + " | ".join(f"{title} ms (speedup)" for _, title in runtimes) + " |",
             "|" + "---|" * (4 + len(runtimes))]
    paired = {p: column(variants, p, base, alpha) for p, _ in runtimes}
    for i, v in enumerate(variants):
        cells = [name(v), f"{v[counted] / 1e6:.2f} M", f"{v['flops'] / 1e9:.1f}",
                 f"{v['theoretical_speedup']:.2f}"]
        cells += [ms(v, p, paired[p][i], speedup=base[f"{p}_ms"] / v[f"{p}_ms"]) for p, _ in runtimes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + legend([{"latency_rounds": bench["rounds"]}], alpha,
                                           any(sum(paired.values(), [])))


def headline(results):
    """The README's first table: every model's mean test MAE over the seeds, its change against the
    baseline (crossed standard error) with its verdict, and its size counted one way for every method;
    then how many kept models are the one right after pruning, and what the design resolves (power.py)."""
    table = judged(results)
    versus = {(r.method, r.ratio): r for r in table[table.kind == "vs baseline"].itertuples()}
    lines = ["| model | test MAE, mean over seeds | ΔMAE vs baseline [95% interval] | verdict | "
             "effective params (M) | effective FLOPs (M) |", "|---|---|---|---|---|---|"]
    for (method, ratio), rows in by_model(results).items():
        claim = versus.get((method, ratio))
        cells = [name(rows[0]), mean_std([r["test_mae"] for r in rows]),
                 f"{claim.change:+.2f} [{claim.ci_low:+.2f}, {claim.ci_high:+.2f}]" if claim else "",
                 claim.verdict if claim else "",
                 f"{np.mean([r['params_effective'] for r in rows]) / 1e6:.2f}",
                 f"{np.mean([r['effective_flops'] for r in rows]) / 1e6:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    seeds = sorted({r["seed"] for r in results["models"]})
    return "\n".join(lines) + "\n\n" + " ".join(
        [f"Seeds {', '.join(map(str, seeds))}; {results['splits']['test']} test videos.", kept_line(results),
         power.sentence(table, results["config"].get("ALPHA", config.ALPHA))]) + "\n"


def kept_line(results):
    """Fine-tuning keeps its best epoch by validation, the model right after pruning competing (main.py):
    how often that model won, so "fine-tuned" is not read where it was not."""
    pruned = [r for r in results["models"] if "val_mae_after_pruning" in r.get("history", {})]
    kept = [r for r in pruned if r["history"].get("best_epoch") == 0]
    return (f"{len(kept)} of the {len(pruned)} one-shot pruned models kept are the model right after pruning "
            f"and recalibration (no fine-tuning epoch beat it on validation)"
            + (f": {', '.join(sorted({name(r) for r in kept}))}." if kept else "."))


def run_time(results):
    """How long the run took, phase by phase, as it measured itself, and on what."""
    env, phases = results["environment"], results["phases"]
    parts = ", ".join(f"{phase.replace('_', ' ')} {seconds:.0f} s" for phase, seconds in phases.items())
    return (f"The quick run took {sum(phases.values()) / 60:.1f} min on {machine(env)}, data generation "
            f"included ({parts}; `results.json`'s `phases`). CPUs with as many cores can take several times "
            f"longer ([troubleshooting](docs/troubleshooting.md)); `python check_gpu.py --project` projects "
            f"the time on yours.\n")


def machine(env):
    """'cpu (2 cores, Intel(R) Xeon(R) Processor)': the device, and the CPU model where the run recorded it
    (in `cpu_model`, or with the INT8 features before that)."""
    cpu = env.get("cpu_model") or env.get("cpu_int8", {}).get("cpu_model")
    return (f"{env.get('device_name') or env['device']} ({env['cpu_count']} cores"
            f"{', ' + cpu if cpu else ''})")


RECOVERY = ["structured_physical", "structured_physical_kd", "structured_physical_global",
            "structured_physical_global_kd", "structured_physical_sensitivity",
            "structured_physical_sensitivity_kd", "scratch", "scratch_kd"]
RECOVERY_DENSE = ["dense_control", "dense_control_kd"]  # the first rows: nothing pruned


def recovery(results, highest_only=False):
    """The allocations and distillation at each FLOP budget (the uniform model's ratio): the mean test MAE
    over the seeds, its ratio to the baseline's, the change against the baseline with the verdict of the
    run's rule (at the one margin, config.py's NONINFERIORITY_FRACTION), FLOPs against the uniform
    model's, and the PyTorch speed-up; then what the highest budget shows, and every comparison at equal FLOPs
    (highest_only: the highest budget's rows and what it shows)."""
    models, table = by_model(results), judged(results)
    versus = {(r.method, r.ratio): r for r in table[table.kind == "vs baseline"].itertuples()}
    base = {r["seed"]: r["test_mae"] for r in models[("baseline", 0.0)]}
    ratios = sorted({ratio for method, ratio in models if method == "structured_physical"})
    ratios = ratios[-1:] if highest_only else ratios
    lines = ["| budget | model | test MAE, mean ± std | × baseline | ΔMAE vs baseline [95% interval] | "
             "verdict | effective FLOPs (M), × uniform | PyTorch speed-up |", "|" + "---|" * 8]
    dense_flops = results["models"][0]["effective_flops"]
    budgets = [] if highest_only else [("none (dense)", 0.0, dense_flops, RECOVERY_DENSE)]
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
    if highest_only:
        return text
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


TABLES = {"quick_run": quick_run, "int8": int8, "phases": phases, "claims": verdicts,
          "schedules": schedules, "speed": speed_table, "headline": headline,
          "run_time": run_time, "recovery": recovery,
          "recovery_headline": lambda results: recovery(results, highest_only=True),
          "distillation_weight": distillation_weight, "primary": answers.readme}


def stamp(results, path):
    env = results["environment"]
    return (f"\n<sub>Written by `python readme_tables.py` from `{path}`: commit "
            f"{env.get('git_commit') or 'none'}, {env.get('device_name') or env['device']} "
            f"({env['cpu_count']} cores, {env['torch_threads']} threads), torch {env['torch']}, "
            f"{results.get('finished', 'date not recorded')}.</sub>\n")


# What a table reads of its result files, beyond results_parts.PARTS (bench.py --output's file for speed)
BENCH_PARTS = {"config": (results_parts.OBJECT, {}), "variants": (
    "a list of variants", {"method": results_parts.TEXT, "ratio": results_parts.NUMBER})}


def read_run(root, path, table, document):
    """A block's result file (`path`, as the block names it, from `root`), parsed and checked against what
    its table reads; Unreadable naming the file (not the document) and what to do."""
    named = f"{path} (the {table} block of {document})"
    try:
        with open(os.path.join(root, path), encoding="utf-8") as f:
            run = json.load(f)
    except OSError as e:
        raise exits.Unreadable(f"{named} cannot be read ({e.strerror or e}); copy a run's results.json "
                               f"there, or fix the block's file name") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise exits.Unreadable(f"{named} is not JSON ({e}): cut off or edited; copy the run's results.json "
                               f"there again") from None
    parts, required = (BENCH_PARTS, ("config", "variants")) if table == "speed" else (
        results_parts.PARTS, results_parts.REQUIRED)
    problems = results_parts.problems(run, parts, required)
    rows = run.get("variants" if table == "speed" else "models") if isinstance(run, dict) else None
    if not problems and not rows:
        problems = ["it holds no model"]
    if problems:
        raise exits.Unreadable(f"{named} is not a result file this table reads ({'; '.join(problems)}); copy "
                               f"the run's results.json there")
    return run


def render(text, root=ROOT, document="the document"):
    """README text with every generated block written again from its result file(s) (comma-separated).
    A block naming an unknown table, a result file that cannot be read, or one its table cannot be made
    from (damaged, or another run's: a tiny run's has no latency rounds) is Unreadable, naming it."""
    def block(match):
        table, paths = match[2], match[3].split(",")
        if table not in TABLES:
            raise exits.Unreadable(f"{document}: a generated block names the table {table!r}, which "
                                   f"readme_tables.py does not write; use one of {', '.join(TABLES)}")
        runs = [read_run(root, path, table, document) for path in paths]
        try:
            return match[1] + TABLES[table](*runs) + "".join(map(stamp, runs, paths)) + match[5]
        except Exception as e:  # noqa: BLE001 (a table reads many fields of many records: any may be off)
            raise exits.Unreadable(f"{', '.join(paths)} (the {table} block of {document}) cannot give its "
                                   f"table ({type(e).__name__}: {e}); it is damaged, or not the result file "
                                   f"of the run this table shows: copy that run's results.json there"
                                   ) from None
    return BLOCK.sub(block, text)


def documents(root=ROOT):
    """README.md and every guide in docs/: the documents a reader meets."""
    guides = sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    return [os.path.join(root, "README.md"), *guides]


def main(argv):
    """0: every document current (or rewritten); exits.STALE (--check): a block is not what its result files
    give; a result file that cannot be read ends through exits.run, exits.BAD_INPUT, naming it."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true",
                   help=f"only check that every document is current (exit {exits.STALE} if not, "
                        f"{exits.BAD_INPUT} if a result file cannot be read)")
    args = p.parse_args(argv)
    stale = []
    for path in documents():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        name = os.path.relpath(path, ROOT)
        new = render(text, root=ROOT, document=name)
        if args.check:
            stale += [f"{name}: {m[2]}" for m, n in zip(BLOCK.finditer(text), BLOCK.finditer(new))
                      if m[0] != n[0]]
        elif new != text:
            folders.write_text(path, new)
            print(f"{name}: {len(BLOCK.findall(text))} generated block(s) written")
    if args.check:
        print("stale: " + ", ".join(stale) if stale else "every generated block is current")
    return exits.STALE if stale else 0


if __name__ == "__main__":
    exits.run(main, sys.argv[1:], again="run the same command again")
