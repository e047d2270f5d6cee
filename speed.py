"""What summary.md and the README may say about speed: the latency protocol in words, latency and
speedup cells, and the one rule that ranks a model's speed against a reference's.

latency.py times every model of a run in interleaved rounds (each round times every model of every seed
in every runtime once, in a shuffled order), and a record keeps its round medians in round order
(`<prefix>_round_ms`). A model is compared with its reference (the baseline of its seed; INT8 against
FP32 in ONNX Runtime) round by round: d[s, r] = log(reference's round median / the model's) is the log
speed-up in round r of seed s, both readings taken in the same round, so a load that slows the whole
round cancels. The estimate is the mean of d (exp: the geometric mean of the round speed-ups).

Its standard error is crossed.py's over the seeds x rounds matrix, rounds in the place of videos, and
not a nested one (rounds within seeds, var = seed / S + round / (S R)): a round is one pass over every
model of every seed, so round r is the same stretch of time in every seed, and a load that lasts it and
slows a memory-bound model more than its reference shifts d in every seed alike: a round effect crossed
with the seeds, whose variance the nested model would divide by S R rather than R. Where there is none
(or seeds were timed in separate runs), its component is estimated near 0 and pools away
(crossed.combine), leaving the nested estimate, seed / S + rest / (S R) on S - 1 df. The seed component
is real: each trained model is an instance of its own, and identical architectures timed in different
seeds differ by more than the rounds' noise, so over seeds the seeds, not the rounds, carry a ranking,
and few seeds give few degrees of freedom (with 3, crossed.py's limit: a seed part estimated at 0 by
chance pools away). One seed: the t over its rounds (R - 1 df), a statement about these two trained
models only: how far an instance runs off its architecture shows only over seeds, so one seed can rank
two instances of one architecture (the baseline and the dense control) apart.

The rule: "faster" only where the 95% interval of the speed-up lies wholly above 1 + SPEED_THRESHOLD,
"slower" where it lies wholly below 1 / (1 + SPEED_THRESHOLD), else "not distinguishable": the one-sided
t tests of H0 mean d <= log(1 + SPEED_THRESHOLD) and of H0 mean d >= -log(1 + SPEED_THRESHOLD), each at
ALPHA / 2, Holm-adjusted over the family. A family is one verdict column: every model of the run
against one reference in one runtime (summary.md's "Speed vs baseline", each README table's runtime
column), so the chance of any false ranking in a column is at most ALPHA (tests/test_speed_rule.py
simulates 20 models as fast as the baseline, 5 seeds x 4 rounds). A record without round lists (a file
from before them) is not ranked ("").
"""
import math
from collections import namedtuple

import numpy as np
import pandas as pd

import claims
import config
import crossed

# The runtimes, by the prefix of their fields in a record (latency_ms, onnx_latency_low_ms, ...): the name
# shown, the record's field naming the file each times (PyTorch: the checkpoint), and the runtime of the
# baseline its speedups are against (INT8 against the FP32 dense model in ONNX Runtime). The one table of
# runtimes: latency.py times by it, summary.md, the README and the figures name them by it.
Runtime = namedtuple("Runtime", "name file reference")
RUNTIMES = {"latency": Runtime("PyTorch", "checkpoint", "latency"),
            "onnx_latency": Runtime("ONNX Runtime", "onnx_path", "onnx_latency"),
            "int8_latency": Runtime("INT8", "int8_path", "onnx_latency")}
WORDS = {"faster": "faster than", "slower": "slower than", "not distinguishable": "not distinguishable from"}
# The smallest speed-up worth a verdict: a model is faster only where its speed-up is shown to exceed
# 1 + SPEED_THRESHOLD, slower only below its inverse. A smaller gain is of no use to a deployment, and
# small steady differences in how two models happen to be timed (where they sit in memory) are not
# mistaken for speed.
SPEED_THRESHOLD = 0.05
MARGIN = math.log1p(SPEED_THRESHOLD)  # on the log scale of d
# One comparison: the geometric-mean speed-up with its 95% interval (before Holm), the Holm-adjusted
# p-value of the side the estimate lies on (NaN: not testable) and the verdict.
Comparison = namedtuple("Comparison", "speedup low high p_holm verdict")


def round_lists(records, prefix):
    """{seed: round medians in round order} of `prefix` over the records (a model's seeds: dicts); None
    where one lacks them (a file from before them, or a runtime not timed)."""
    found = {}
    for record in records:
        rounds = record.get(f"{prefix}_round_ms")
        if not isinstance(rounds, (list, tuple, np.ndarray)) or len(rounds) == 0:
            return None
        found[record.get("seed")] = list(rounds)  # bench.py's variants: one run, no seed
    return found or None


def log_speedups(mine, theirs):
    """The seeds x rounds matrix d = log(reference's round median / the model's), each round of a seed
    against the same round of the same seed, over the seeds both have; None where they share none or
    their rounds differ in number (not timed together: no pairing)."""
    seeds = [seed for seed in mine if seed in theirs]
    if not seeds or len({len(mine[s]) for s in seeds} | {len(theirs[s]) for s in seeds}) != 1:
        return None
    return (np.log(np.array([theirs[s] for s in seeds], float))
            - np.log(np.array([mine[s] for s in seeds], float)))


def tested(d):
    """(mean d, 95% interval's low and high, p) of (..., seeds, rounds) matrices, elementwise: p the
    one-sided p-value of the side the mean lies on (H0 mean d <= MARGIN where it is above 0, H0 mean d
    >= -MARGIN where below), NaN with fewer than 2 rounds or no spread at all."""
    d = np.asarray(d, float)
    if d.shape[-1] < 2:
        nothing = np.full(d.shape[:-2], np.nan)
        return d.mean((-2, -1)), nothing, nothing, nothing
    found = crossed.test(d)
    change, se, df = found["change"], found["se"], found["df"]
    with np.errstate(invalid="ignore", divide="ignore"):
        p = crossed.tail((np.abs(change) - MARGIN) / se, df)
    return change, found["ci_low"], found["ci_high"], p


def ranked(change, p, alpha=None):
    """(Holm-adjusted p, verdicts) of one family along the last axis (a simulation: one run per row):
    ranked where the adjusted p of the side the mean lies on is below alpha / 2, the end of a 95%
    interval. A NaN p (not testable) counts in the family and ranks nothing. alpha: the run's ALPHA."""
    alpha = config.ALPHA if alpha is None else alpha
    p_holm = np.apply_along_axis(claims.holm, -1, np.asarray(p, float))
    return p_holm, np.where(p_holm < alpha / 2, np.where(np.asarray(change) > 0, "faster", "slower"),
                            "not distinguishable")


def family(pairs, alpha=None):
    """One family's Comparisons: pairs of ({seed: rounds} of the model, of its reference), None or with a
    side None where not timed in rounds (None out, and not in the family). alpha: the run's ALPHA."""
    matrices = [None if pair is None or None in pair else log_speedups(*pair) for pair in pairs]
    shapes = {}
    for i, d in enumerate(matrices):
        if d is not None:
            shapes.setdefault(d.shape, []).append(i)
    found = {}
    for indices in shapes.values():  # the comparisons of one design in one call
        found.update(zip(indices, zip(*tested(np.stack([matrices[i] for i in indices])))))
    order = sorted(found)
    if not order:
        return [None] * len(pairs)
    p_holm, verdicts = ranked([found[i][0] for i in order], [found[i][3] for i in order], alpha)
    judged = {i: Comparison(*np.exp(found[i][:3]).tolist(), float(p), str(v))
              for i, p, v in zip(order, p_holm, verdicts)}
    return [judged.get(i) for i in range(len(pairs))]


def compared(models, prefix, reference=None, against="baseline", alpha=None):
    """{(method, ratio): Comparison or None} of every model of the run in runtime `prefix` against the
    model `against` in runtime `reference` (default the same), one family; against=None: each model against
    itself in `reference` (INT8 against its own FP32). A model against itself is left out."""
    reference = reference or prefix
    keys, pairs = [], []
    for (method, ratio), rows in models.groupby(["method", "ratio"], sort=False):
        if method == against and prefix == reference:
            continue
        other = rows if against is None else models[models.method == against]
        keys.append((method, ratio))
        pairs.append((round_lists(rows.to_dict("records"), prefix),
                      round_lists(other.to_dict("records"), reference)))
    return dict(zip(keys, family(pairs, alpha)))


def verdicts(models, prefix, reference=None, against="baseline", alpha=None):
    """Per row: the speed verdict of its method and ratio (compared); "" where a side was not timed in
    rounds, and for a model against itself."""
    found = compared(models, prefix, reference, against, alpha)
    return [getattr(found.get((m, r)), "verdict", "") for m, r in zip(models.method, models.ratio)]


def spread(rows, prefix):
    """(lowest, highest) round median of `prefix` ("latency", "onnx_latency", "int8_latency") over the
    rows (a model's seeds): descriptive; None where they were not timed in rounds (yet)."""
    low, high = f"{prefix}_low_ms", f"{prefix}_high_ms"
    if rows.empty or low not in rows or high not in rows or rows[[low, high]].isna().any(axis=None):
        return None
    return rows[low].min(), rows[high].max()


def words(ratios, found, reference="the baseline"):
    """'faster than the baseline at 0.5 and 0.7; not distinguishable from the baseline at 0.3'."""
    groups = {}
    for ratio, verdict in zip(ratios, found):
        if verdict:
            groups.setdefault(verdict, []).append(f"{ratio:g}")
    return "; ".join(f"{WORDS[v]} {reference} at {' and '.join(groups[v])}" for v in WORDS if v in groups)


def cell(middle, low, high, fmt):
    """'6.71 (6.5–6.9)': the median over the rounds and its range; '' where not timed yet."""
    return f"{middle:{fmt}} ({low:{fmt}}–{high:{fmt}})" if pd.notna(low) else ""


def interval(comparison, unit=""):
    """'1.93 [1.85, 2.01]': a speed-up with its 95% interval over the rounds (and seeds)."""
    shown = f"{comparison.speedup:.2f}{unit}"
    return shown + (f" [{comparison.low:.2f}, {comparison.high:.2f}]" if np.isfinite(comparison.low) else "")


def speedup_cells(models, prefix, found, seeds):
    """A runtime's speedup cells: the paired speed-up with its interval where the model was compared in
    rounds (the reference itself: 1.00); else the median's over the spread (one seed), or numbers for mean
    ± std."""
    middle, low, high = f"{prefix}_speedup", f"{prefix}_speedup_low", f"{prefix}_speedup_high"
    if any(found.values()):
        return [interval(c) if (c := found.get((m, r))) else "1.00" if m == "baseline" else ""
                for m, r in zip(models.method, models.ratio)]
    if seeds > 1 or low not in models:
        return models[middle]
    return [cell(m, lo, hi, ".2f") for m, lo, hi in zip(models[middle], models[low], models[high])]


def with_cells(models, alpha=None):
    """Table cells: latency with its range over the rounds (one seed; numbers, for mean ± std, over
    several; the number alone in a run from before the rounds), the paired speed-up with its interval, and
    the speed verdicts, one family per verdict column (alpha: the run's ALPHA)."""
    models, seeds = models.copy(), models.seed.nunique()
    for prefix, runtime in RUNTIMES.items():
        middle, low, high = f"{prefix}_ms", f"{prefix}_low_ms", f"{prefix}_high_ms"
        if middle in models:
            models[f"{prefix}_cell"] = (models[middle] if seeds > 1 or low not in models else
                                        [cell(m, lo, hi, ".3g")
                                         for m, lo, hi in zip(models[middle], models[low], models[high])])
        # INT8 against the FP32 dense model, as its speedup; one family per column
        found = compared(models, prefix, runtime.reference, alpha=alpha) if low in models else {}
        if low in models:
            models[f"{prefix}_vs_baseline"] = [getattr(found.get((m, r)), "verdict", "")
                                               for m, r in zip(models.method, models.ratio)]
        if f"{prefix}_speedup" in models:
            models[f"{prefix}_speedup_cell"] = speedup_cells(models, prefix, found, seeds)
    if "int8_latency_low_ms" in models:
        models["int8_vs_own_fp32"] = verdicts(models, "int8_latency", RUNTIMES["int8_latency"].reference,
                                              against=None, alpha=alpha)
    return models


def pytorch_mode(models):
    compiled = "latency_compiled" in models and models.latency_compiled.fillna(False).astype(bool).all()
    return "compiled (torch.compile, weights frozen)" if compiled else "eager"


def rule(alpha):
    """The ranking rule in words, for summary.md and the README's legends: "A speed-up is ..." """
    return (f"the geometric mean, over the rounds and seeds, of the model's speed-up over its reference "
            f"timed in the same round of the same seed (the baseline; for INT8 the FP32 dense model in ONNX "
            f"Runtime), with its 95% interval (standard error over seeds x rounds, as the accuracy claims' "
            f"over seeds x videos, Student's t; with one seed over its rounds, of these two trained models "
            f"alone). A model is called faster only where that interval, widened by Holm's adjustment over "
            f"its column (every model against one reference in one runtime), lies wholly above "
            f"{1 + SPEED_THRESHOLD:g} (a speed-up of at least {SPEED_THRESHOLD:.0%}), slower where it lies "
            f"wholly below 1/{1 + SPEED_THRESHOLD:g}, else not distinguishable: each side a one-sided test "
            f"at ALPHA {alpha:g} / 2 (speed.py).")


def protocol(results, models):
    """summary.md's "Latency:" line: how latency was timed (in a run from before the rounds, once per
    model) and how speed is ranked."""
    cfg, device = results["config"], results["environment"]["device"]
    runtimes = f"PyTorch {pytorch_mode(models)}" + (
        "; ONNX Runtime with its CPU execution provider" + (", FP32 and INT8" if cfg.get("INT8") else "")
        if cfg.get("ONNX_EXPORT") else "")
    if not cfg.get("LATENCY_ROUNDS"):
        return (f"Latency: one video per call on {device}, median of {cfg['LATENCY_TIMED_RUNS']} runs "
                f"after {cfg['LATENCY_WARMUP_RUNS']} warm-up runs, each model timed once, right after its "
                f"training; {runtimes}.\n")
    pending = "latency_rounds" not in models or models.latency_rounds.isna().any()
    unpaired = "latency_round_ms" not in models or models.latency_round_ms.isna().any()
    return (f"Latency: every model timed once all were trained, in {cfg['LATENCY_ROUNDS']} interleaved "
            f"rounds: each round times every model in every runtime once (one video per call on {device}, "
            f"the median of {cfg['LATENCY_TIMED_RUNS']} runs after {cfg['LATENCY_WARMUP_RUNS']} warm-up "
            f"runs), in an order shuffled from round to round with a fixed seed, so that no model always "
            f"goes first. A latency is the median of the model's round medians, with the lowest and highest "
            f"round median in brackets. A speed-up is {rule(cfg.get('ALPHA', config.ALPHA))} {runtimes}."
            + (" Not timed yet: the latency phase runs once every model is trained." if pending else
               " These records keep no round medians in round order: no speed is ranked." if unpaired
               else "") + "\n")
