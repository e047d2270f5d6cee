"""What summary.md and the README may say about speed: the latency protocol in words, latency and
speedup cells with their spread, and the one rule that ranks two models by speed.

latency.py times every model in interleaved rounds; a model's latency is the median of its round
medians and its spread the lowest and highest round median. One model is "faster" or "slower" than
another only where their spreads do not overlap, otherwise "not distinguishable"; over several seeds a
model's spread is pooled over its seeds (the lowest low, the highest high).
"""
from collections import namedtuple

import pandas as pd

# The runtimes, by the prefix of their fields in a record (latency_ms, onnx_latency_low_ms, ...): the name
# shown, the record's field naming the file each times (PyTorch: the checkpoint), and the runtime of the
# baseline its speedups are against (INT8 against the FP32 dense model in ONNX Runtime). The one table of
# runtimes: latency.py times by it, summary.md, the README and the figures name them by it.
Runtime = namedtuple("Runtime", "name file reference")
RUNTIMES = {"latency": Runtime("PyTorch", "checkpoint", "latency"),
            "onnx_latency": Runtime("ONNX Runtime", "onnx_path", "onnx_latency"),
            "int8_latency": Runtime("INT8", "int8_path", "onnx_latency")}
WORDS = {"faster": "faster than", "slower": "slower than", "not distinguishable": "not distinguishable from"}


def speed(low, high, other_low, other_high):
    """'faster' where a model's slowest round median beat the other's fastest, 'slower' the other way
    round, else 'not distinguishable': the rounds' spread is the noise a ranking must exceed."""
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


def verdicts(models, prefix, reference=None, against="baseline"):
    """Per row: the speed verdict of its method and ratio in runtime `prefix` against the model `against`
    in runtime `reference` (default the same); against=None: the same model in `reference` (INT8 against
    its own FP32). "" where a side was not timed in rounds, and for a model against itself."""
    reference = reference or prefix
    found = []
    for method, ratio in zip(models.method, models.ratio):
        rows = models[(models.method == method) & (models.ratio == ratio)]
        other = rows if against is None else models[models.method == against]
        mine, theirs = spread(rows, prefix), spread(other, reference)
        itself = method == against and prefix == reference
        found.append(speed(*mine, *theirs) if mine and theirs and not itself else "")
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


def with_cells(models):
    """Table cells: latency and speedup with their range over the rounds (one seed; numbers, for mean ±
    std, over several; the number alone in a run from before the rounds), and the speed verdicts."""
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
            models[f"{prefix}_vs_baseline"] = verdicts(models, prefix, runtime.reference)
    if "int8_latency_low_ms" in models:
        models["int8_vs_own_fp32"] = verdicts(models, "int8_latency", RUNTIMES["int8_latency"].reference,
                                              against=None)
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
    return (f"Latency: every model timed once all were trained, in {cfg['LATENCY_ROUNDS']} interleaved "
            f"rounds: each round times every model in every runtime once (one video per call on {device}, "
            f"the median of {cfg['LATENCY_TIMED_RUNS']} runs after {cfg['LATENCY_WARMUP_RUNS']} warm-up "
            f"runs), in an order shuffled from round to round with a fixed seed, so that no model always "
            f"goes first. A latency is the median of the model's round medians, with the lowest and highest "
            f"round median in brackets; a speedup's range is the baseline's lowest over the model's highest, "
            f"and the other way round. One model is called faster or slower than another only where their "
            f"ranges do not overlap, else \"not distinguishable\". {runtimes}."
            + (" Not timed yet: the latency phase runs once every model is trained." if pending else "")
            + "\n")
