"""What summary.md and the README may say about speed: the latency protocol in words, latency and
speedup cells with their spread, and the one rule that ranks two models by speed.

latency.py times every model in interleaved rounds; a model's latency is the median of its round
medians and its spread the lowest and highest round median. One model is "faster" or "slower" than
another only where their spreads do not overlap and enough rounds stand behind them that spreads of two
models of the same speed would not so often fail to overlap by chance alone (`chance`, at most ALPHA),
otherwise "not distinguishable"; over several seeds a model's spread is pooled over its seeds (the
lowest low, the highest high) and so are its rounds.
"""
import math
from collections import namedtuple

import pandas as pd

import config

# The runtimes, by the prefix of their fields in a record (latency_ms, onnx_latency_low_ms, ...): the name
# shown, the record's field naming the file each times (PyTorch: the checkpoint), and the runtime of the
# baseline its speedups are against (INT8 against the FP32 dense model in ONNX Runtime). The one table of
# runtimes: latency.py times by it, summary.md, the README and the figures name them by it.
Runtime = namedtuple("Runtime", "name file reference")
RUNTIMES = {"latency": Runtime("PyTorch", "checkpoint", "latency"),
            "onnx_latency": Runtime("ONNX Runtime", "onnx_path", "onnx_latency"),
            "int8_latency": Runtime("INT8", "int8_path", "onnx_latency")}
WORDS = {"faster": "faster than", "slower": "slower than", "not distinguishable": "not distinguishable from"}


def chance(rounds, other_rounds):
    """How often the spreads of two models of the same speed fail to overlap by chance alone, from
    `rounds` and `other_rounds` round medians: with the medians exchangeable, each of their C(n + m, n)
    orders is as likely, and 2 of them separate the two (one all below, one all above). 3 rounds each:
    0.10; 4: 0.029; 5: 0.0079."""
    return 2 / math.comb(rounds + other_rounds, rounds)


def rounds_needed(alpha):
    """The fewest rounds, the same for both models, whose spreads can rank them at `alpha` (chance)."""
    return next(n for n in range(1, 64) if chance(n, n) <= alpha)


def speed(low, high, other_low, other_high, rounds=None, alpha=None):
    """'faster' where a model's slowest round median beat the other's fastest, 'slower' the other way
    round, else 'not distinguishable': the rounds' spread is the noise a ranking must exceed. rounds:
    (the model's, the other's) count of round medians; where so few that spreads of two models of the
    same speed fail to overlap more often than `alpha` (the run's ALPHA), 'not distinguishable' whatever
    the spreads (None: the spreads alone, for a file that does not count its rounds)."""
    alpha = config.ALPHA if alpha is None else alpha
    if rounds is not None and None not in rounds and chance(*rounds) > alpha:
        return "not distinguishable"
    if high < other_low:
        return "faster"
    if low > other_high:
        return "slower"
    return "not distinguishable"


def spread(rows, prefix):
    """(lowest, highest) round median of `prefix` ("latency", "onnx_latency", "int8_latency") over the
    rows (a model's seeds); None where they were not timed in rounds (yet)."""
    low, high = f"{prefix}_low_ms", f"{prefix}_high_ms"
    if rows.empty or low not in rows or high not in rows or rows[[low, high]].isna().any(axis=None):
        return None
    return rows[low].min(), rows[high].max()


def rounds_of(rows, prefix):
    """How many round medians stand behind `prefix`'s spread over the rows (a model's seeds); None where
    the file does not count them."""
    column = f"{prefix}_rounds"
    return None if column not in rows or rows[column].isna().any() else int(rows[column].sum())


def verdicts(models, prefix, reference=None, against="baseline", alpha=None):
    """Per row: the speed verdict of its method and ratio in runtime `prefix` against the model `against`
    in runtime `reference` (default the same); against=None: the same model in `reference` (INT8 against
    its own FP32). "" where a side was not timed in rounds, and for a model against itself. alpha: the
    run's ALPHA (speed)."""
    reference = reference or prefix
    found = []
    for method, ratio in zip(models.method, models.ratio):
        rows = models[(models.method == method) & (models.ratio == ratio)]
        other = rows if against is None else models[models.method == against]
        mine, theirs = spread(rows, prefix), spread(other, reference)
        itself = method == against and prefix == reference
        counts = (rounds_of(rows, prefix), rounds_of(other, reference))
        found.append(speed(*mine, *theirs, rounds=counts, alpha=alpha) if mine and theirs and not itself
                     else "")
    return found


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


def with_cells(models, alpha=None):
    """Table cells: latency and speedup with their range over the rounds (one seed; numbers, for mean ±
    std, over several; the number alone in a run from before the rounds), and the speed verdicts (alpha:
    the run's ALPHA)."""
    models, seeds = models.copy(), models.seed.nunique()
    for prefix, runtime in RUNTIMES.items():
        for middle, low, high, fmt in ((f"{prefix}_ms", f"{prefix}_low_ms", f"{prefix}_high_ms", ".3g"),
                                       (f"{prefix}_speedup", f"{prefix}_speedup_low",
                                        f"{prefix}_speedup_high", ".2f")):
            if middle in models:
                models[middle.replace("_ms", "") + "_cell"] = (
                    models[middle] if seeds > 1 or low not in models
                    else [cell(m, lo, hi, fmt)
                          for m, lo, hi in zip(models[middle], models[low], models[high])])
        if f"{prefix}_low_ms" in models:  # INT8 against the FP32 dense model, as its speedup
            models[f"{prefix}_vs_baseline"] = verdicts(models, prefix, runtime.reference, alpha=alpha)
    if "int8_latency_low_ms" in models:
        models["int8_vs_own_fp32"] = verdicts(models, "int8_latency", RUNTIMES["int8_latency"].reference,
                                              against=None, alpha=alpha)
    return models


def pytorch_mode(models):
    compiled = "latency_compiled" in models and models.latency_compiled.fillna(False).astype(bool).all()
    return "compiled (torch.compile, weights frozen)" if compiled else "eager"


def protocol(results, models):
    """summary.md's "Latency:" line: how latency was timed (in a run from before the rounds, once per
    model)."""
    cfg, device = results["config"], results["environment"]["device"]
    runtimes = f"PyTorch {pytorch_mode(models)}" + (
        "; ONNX Runtime with its CPU execution provider" + (", FP32 and INT8" if cfg.get("INT8") else "")
        if cfg.get("ONNX_EXPORT") else "")
    if not cfg.get("LATENCY_ROUNDS"):
        return (f"Latency: one video per call on {device}, median of {cfg['LATENCY_TIMED_RUNS']} runs "
                f"after {cfg['LATENCY_WARMUP_RUNS']} warm-up runs, each model timed once, right after its "
                f"training; {runtimes}.\n")
    pending = "latency_rounds" not in models or models.latency_rounds.isna().any()
    alpha = cfg.get("ALPHA", config.ALPHA)
    return (f"Latency: every model timed once all were trained, in {cfg['LATENCY_ROUNDS']} interleaved "
            f"rounds: each round times every model in every runtime once (one video per call on {device}, "
            f"the median of {cfg['LATENCY_TIMED_RUNS']} runs after {cfg['LATENCY_WARMUP_RUNS']} warm-up "
            f"runs), in an order shuffled from round to round with a fixed seed, so that no model always "
            f"goes first. A latency is the median of the model's round medians, with the lowest and highest "
            f"round median in brackets; a speedup's range is the baseline's lowest over the model's highest, "
            f"and the other way round. One model is called faster or slower than another only where their "
            f"ranges do not overlap and enough rounds stand behind them (two models of the same speed fail "
            f"to overlap by chance alone at most {alpha:g} of the time: at least {rounds_needed(alpha)} "
            f"rounds each, pooled over the seeds; for each comparison, not adjusted over the run's "
            f"comparisons as the accuracy claims are), else \"not distinguishable\". {runtimes}."
            + (" Not timed yet: the latency phase runs once every model is trained." if pending else "")
            + "\n")
