"""The study's primary questions answered, one line each, at each FLOP budget (each ratio of coupled removal,
whose effective FLOPs the other methods of the question are pruned to): the verdict of the claims rule and
its interval, from the primary family alone (methods.PRIMARY_PAIRS, PRIMARY_METHODS; claims.py): the README's
first table.
"""
import numpy as np
import pandas as pd

import claims
import config
import methods
import power
import speed

QUESTIONS = [  # (method, reference, the question in words); "baseline" as the reference: its loss
    ("structured_physical", "unstructured_flops", "removal − unstructured at equal FLOPs"),
    ("structured_physical", "structured_flops", "removal − per-layer channel masks at equal FLOPs"),
    ("structured_physical", "scratch", "removal − the small net trained from scratch"),
    ("structured_physical", "baseline", "removal − the dense baseline"),
    ("unstructured_flops", "baseline", "unstructured at removal's FLOPs − the dense baseline"),
    ("structured_flops", "baseline", "per-layer masks at removal's FLOPs − the dense baseline"),
    ("scratch", "baseline", "small net from scratch − the dense baseline"),
]


def rows(table, models, questions=QUESTIONS):
    """[(budget words, question, change [interval], verdict)] of every primary comparison in `table` (of
    `questions`)
    (claims.claims' table), budgets from the least pruned, then removal's speed-up over the baseline in
    each runtime timed in rounds (speed.py's rule, its family every model of the run, as summary.md's);
    `models`: the run's records (a DataFrame), for the FLOPs each budget names and the speed."""
    if "family" not in table or not (table.family == claims.PRIMARY).any():
        return []
    primaries = table[table.family == claims.PRIMARY]
    dense = models[models.method == "baseline"].effective_flops.mean()
    speeds = {prefix: speed.compared(models, prefix) for prefix in ("latency", "onnx_latency")
              if f"{prefix}_round_ms" in models}
    found = []
    for ratio in sorted(primaries.ratio.unique()):
        removed = models[(models.method == "structured_physical") & (models.ratio == ratio)]
        flops = removed.effective_flops.mean()
        budget = f"{dense / flops:.1f}× fewer FLOPs ({flops / 1e6:.0f} M; removal ratio {ratio:g})"
        for method, reference, words in questions:
            picked = primaries[(primaries.method == method) & (primaries.reference == reference)
                               & (primaries.ratio == ratio)]
            for r in picked.itertuples():
                change = f"{r.change:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
                found.append((budget, words, change, r.verdict))
                budget = ""  # the budget named once, on its first line
        for prefix, compared in speeds.items():
            comparison = compared.get(("structured_physical", ratio))
            if comparison is not None:
                found.append((budget, f"removal's speed-up over the baseline, {speed.RUNTIMES[prefix].name}",
                              speed.interval(comparison, "×"), comparison.verdict))
    return found


def markdown(table, models):
    """The primary answers as a markdown table; a sentence where the run asked none of them."""
    found = rows(table, models)
    if not found:
        return ("This run asks none of the primary questions (it has no coupled removal beside "
                f"{', '.join(methods.label(m) for m in methods.PRIMARY_METHODS[1:])}).\n")
    lines = ["| budget | question: first − second | ΔMAE, or speed-up [95% interval] | verdict |",
             "|---|---|---|---|"]
    lines += [f"| {budget} | {words} | {change} | {verdict} |" for budget, words, change, verdict in found]
    return "\n".join(lines) + "\n"


def flops_matched(models):
    """The largest distance between a FLOP-matched model's effective FLOPs and its removal's, over every
    ratio and seed (a share): what "equal FLOPs" means in this run."""
    found = []
    for method in ("unstructured_flops", "structured_flops", "scratch"):
        for (ratio, seed), row in models[models.method == method].groupby(["ratio", "seed"]):
            removed = models[(models.method == "structured_physical") & (models.ratio == ratio)
                             & (models.seed == seed)]
            if len(removed):
                found.append(abs(row.effective_flops.iloc[0] / removed.effective_flops.iloc[0] - 1))
    return float(np.max(found)) if found else float("nan")


def readme(results):
    """The README's first table (readme_tables.py's "primary" block): the answers at the one margin, the run's
    seeds and test videos, how equal "equal FLOPs" is, and what the primary family resolves (power.py)."""
    table = claims.for_run(results, fraction=config.NONINFERIORITY_FRACTION)
    models = pd.DataFrame(results["models"])
    primaries = table[table.family == claims.PRIMARY]
    seeds = sorted(models.seed.unique())
    matched = flops_matched(models)
    margin = f"{primaries.margin.median():.2f}" if len(primaries) else "none"
    return markdown(table, models) + "\n" + " ".join([
        f"Seeds {', '.join(map(str, seeds))}; {results['splits']['test']} test videos; the margin M "
        f"{margin} EF points ({config.NONINFERIORITY_FRACTION:g} of the baseline's MAE); Holm over the "
        f"{len(primaries)} primary questions alone.",
        f"Each FLOP-matched model is within {matched:.1%} of its removal's effective FLOPs."
        if np.isfinite(matched) else "",
        power.sentence(primaries, results["config"].get("ALPHA", config.ALPHA)) if len(primaries) else ""]
    ).strip() + "\n"


def terminal(results):
    """The lines a run ends with at the terminal: at each budget, the primary questions between methods
    (the losses against the baseline are in summary.md) and removal's speed-up in each runtime; then what
    the design resolves. [] where the run asks none of them."""
    table = claims.for_run(results)
    models = pd.DataFrame(results["models"])
    lines, budget = [], ""
    for named, words, change, verdict in rows(table, models, questions=QUESTIONS[:3]):
        if named and named != budget:
            budget = named
            lines.append(budget)
        lines.append(f"  {words}: {change}, {verdict}")
    primaries = table[table.family == claims.PRIMARY] if "family" in table else table.iloc[:0]
    if lines and len(primaries):
        alpha = results["config"].get("ALPHA", config.ALPHA)
        lines.append(power.sentence(primaries, alpha).replace("**", ""))  # plain text at the terminal
    return lines
