"""What a claim in summary.md needs: one rule, applied to every comparison of the run.

A change is MAE(model) - MAE(reference), paired: the same test videos of the same training seed. Its
distribution is bootstrapped over seeds and videos together (seeds resampled with replacement, then
videos within each), so with several seeds the interval covers the training seed too.
- "better" or "worse": the two-sided bootstrap test of no change rejects at ALPHA after Holm's
  step-down adjustment over every comparison of the run (each model against the baseline and
  against the dense control, and the methods against each other at equal ratios);
- otherwise "no loss": the one-sided 95% upper bound of the change is below NONINFERIORITY_MARGIN;
- otherwise "inconclusive".

Speed has a rule of its own: speed.py.
"""
import numpy as np
import pandas as pd

import config

NAMES = {"baseline": "baseline", "dense_control": "dense control", "unstructured": "unstructured",
         "structured": "structured (masks)", "structured_physical": "structured (removed)",
         "unstructured_random": "random unstructured", "structured_random": "random structured"}
# method pairs compared at equal ratios: the criterion against its random control, masks against removal
PAIRS = [("unstructured", "unstructured_random"), ("structured", "structured_random"),
         ("structured_physical", "structured"), ("structured_physical", "unstructured"), ("structured", "unstructured")]


def bootstrap_change(errors, reference, samples=2000, seed=0):
    """(change, bootstrap changes) of MAE(errors) - MAE(reference): lists of per-video errors, one per
    seed, matched by seed, each pair over the same videos. Seeds resampled, then videos within each."""
    diffs = np.stack([np.abs(np.asarray(a, float)) - np.abs(np.asarray(b, float)) for a, b in zip(errors, reference)])
    rng = np.random.default_rng(seed)
    seeds, videos = diffs.shape
    chosen = rng.integers(0, seeds, size=(samples, seeds)) if seeds > 1 else np.zeros((samples, 1), int)
    resampled = diffs[chosen[..., None], rng.integers(0, videos, size=(samples, seeds, videos))]
    return float(diffs.mean()), resampled.mean((1, 2))


def test(errors, reference, samples=2000, seed=0):
    """The change, its 95% interval, its one-sided 95% upper bound and the two-sided bootstrap p-value of
    no change (the +1 correction: never 0 from a finite number of resamples)."""
    change, boot = bootstrap_change(errors, reference, samples, seed)
    tail = min((boot <= 0).sum(), (boot >= 0).sum())
    return {"change": change, "ci_low": float(np.percentile(boot, 2.5)), "ci_high": float(np.percentile(boot, 97.5)),
            "upper": float(np.percentile(boot, 95)), "p": min(1.0, 2 * (tail + 1) / (samples + 1))}


def holm(pvalues):
    """Holm's step-down adjusted p-values (Holm 1979), in the given order: the k-th smallest times
    (m - k + 1), made monotone, at most 1. Controls the family-wise error rate."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    result = np.empty_like(p)
    result[order] = np.minimum(adjusted, 1.0)
    return result


def verdict(change, p_adjusted, upper, alpha, margin):
    if p_adjusted < alpha:
        return "better" if change < 0 else "worse"
    return "no loss" if upper < margin else "inconclusive"


def family(models):
    """Every comparison of the run as (kind, a rows, b rows): each model against the baseline and the
    dense control, and the method pairs at equal ratios; rows sorted by seed, on seeds both have."""
    def rows(method, ratio=None):
        picked = models[(models.method == method) & ((models.ratio == ratio) if ratio is not None else True)]
        return picked.sort_values("seed")
    found = []
    for (method, ratio), _ in models[models.method != "baseline"].groupby(["method", "ratio"], sort=False):
        found.append(("vs baseline", rows(method, ratio), rows("baseline")))
        if method != "dense_control" and (models.method == "dense_control").any():
            found.append(("vs dense control", rows(method, ratio), rows("dense_control")))
    for a, b in PAIRS:
        for ratio in sorted(set(models[models.method == a].ratio) & set(models[models.method == b].ratio)):
            found.append(("same ratio", rows(a, ratio), rows(b, ratio)))
    matched = []
    for kind, a, b in found:
        seeds = sorted(set(a.seed) & set(b.seed))
        matched.append((kind, a[a.seed.isin(seeds)], b[b.seed.isin(seeds)]))
    return [(kind, a, b) for kind, a, b in matched if len(a)]


def claims(models, samples=2000, alpha=None, margin=None):
    """One row per comparison of the run: the change, its interval, the p-values and the verdict."""
    alpha = config.ALPHA if alpha is None else alpha
    margin = config.NONINFERIORITY_MARGIN if margin is None else margin
    if "test_errors" not in models:
        return pd.DataFrame()
    rows = []
    for kind, a, b in family(models):
        first, second = a.iloc[0], b.iloc[0]
        rows.append({"kind": kind, "method": first.method, "ratio": first.ratio, "reference": second.method,
                     "reference_ratio": second.ratio, "seeds": len(a),
                     "params_nonzero": a.params_nonzero.mean(), "reference_params_nonzero": b.params_nonzero.mean(),
                     "effective_flops": a.effective_flops.mean(), "reference_effective_flops": b.effective_flops.mean(),
                     **test(list(a.test_errors), list(b.test_errors), samples)})
    if not rows:  # the baseline alone, early in a run
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table.p)
    table["verdict"] = [verdict(r.change, r.p_holm, r.upper, alpha, margin) for r in table.itertuples()]
    return table


def rule(results, table):
    cfg = results["config"]
    alpha, margin = cfg.get("ALPHA", config.ALPHA), cfg.get("NONINFERIORITY_MARGIN", config.NONINFERIORITY_MARGIN)
    seeds = int(table.seeds.max()) if len(table) else 1
    over = "seeds and test videos together (seeds, then videos within each)" if seeds > 1 else (
        "the test videos; one training seed, so this covers the choice of test videos, not of the seed")
    return (f"**The rule for every claim.** A change is the model's test MAE minus its reference's, paired by seed "
            f"and video, bootstrapped over {over}. \"better\" or \"worse\": the two-sided bootstrap test of no "
            f"change rejects at α = {alpha:g} after Holm's adjustment over all {len(table)} comparisons of this run; "
            f"else \"no loss\" where the one-sided 95% upper bound of the change is below the non-inferiority "
            f"margin of {margin:g} EF points (NONINFERIORITY_MARGIN); else \"inconclusive\". No other wording "
            f"ranks models by accuracy here.\n")


def label(method, ratio):
    return NAMES.get(method, method) + ("" if method in ("baseline", "dense_control") else f" {ratio:g}")


def claims_table(table):
    """The markdown table of every comparison, with the sizes of both sides."""
    shown = pd.DataFrame({
        "model": [label(r.method, r.ratio) for r in table.itertuples()],
        "against": [label(r.reference, r.reference_ratio) for r in table.itertuples()],
        "ΔMAE [95% interval]": [f"{r.change:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]" for r in table.itertuples()],
        "upper 95% bound": table.upper.map("{:+.2f}".format), "p (Holm)": table.p_holm.map("{:.3g}".format),
        "verdict": table.verdict,
        "non-zero params (M)": [f"{r.params_nonzero / 1e6:.2f} vs {r.reference_params_nonzero / 1e6:.2f}"
                                for r in table.itertuples()],
        "effective FLOPs (G)": [f"{r.effective_flops / 1e9:.3g} vs {r.reference_effective_flops / 1e9:.3g}"
                                for r in table.itertuples()]})
    return shown.to_markdown(index=False) + "\n"


def paragraphs(results, table):
    """The rule, the table, and the same-ratio comparisons grouped by verdict."""
    if table.empty:
        return []
    pairs = table[table.kind == "same ratio"]
    grouped = [f"{v}: " + "; ".join(f"{label(r.method, r.ratio)} against {NAMES.get(r.reference, r.reference)} "
                                    f"({r.change:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}])"
                                    for r in pairs[pairs.verdict == v].itertuples())
               for v in ("better", "worse", "no loss", "inconclusive") if (pairs.verdict == v).any()]
    return [rule(results, table), "\n## Claims: every comparison of the run\n", claims_table(table),
            "**Comparisons at the same ratio** (sizes in the table above: the same ratio is not the same size). "
            + (". ".join(grouped) if grouped else "none") + "."]

