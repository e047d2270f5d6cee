"""What a claim in summary.md needs: one rule, applied to every comparison of the run.

A change is MAE(model) - MAE(reference), paired: the same test videos of the same training seed.

The bootstrap is crossed (the pigeonhole bootstrap, Owen 2007): each replicate resamples the seeds
with replacement and, once, the videos, and that one video resample is shared by every seed
(diffs[chosen_seeds][:, chosen_videos]). Every seed is scored on the same test videos, so a video
that is hard for the pruned model is hard for it under every seed: the per-video effect is common
to the seeds. Resampling videos independently inside each seed (a nested bootstrap) averages that
effect away over the seeds and gives an interval too narrow by up to sqrt(seeds) where it dominates;
the crossed one keeps it (its variance: seed part / seeds + video part / videos + interaction /
(seeds x videos)). With one seed it is the ordinary bootstrap over videos. With few seeds the seed
level is under-covered all the same: resampling 3 seeds draws from 3 values, so the intervals
are about these seeds (rule() says so).

p-values come from a normal approximation, z = change / bootstrap standard deviation: the change is
a mean over hundreds of paired video errors, near normal by the central limit theorem, and the
crossed bootstrap supplies its standard error. The percentile p-value, 2(tail + 1)/(B + 1), cannot
fall below 2/(B + 1) (0.001 at B = 2000), and Holm multiplies the smallest by the family's size
(42 comparisons: 0.042), so every significant verdict sat at that floor; the normal tail resolves
p-values well below α / m. The 95% interval shown stays the bootstrap's percentile interval.
- "better": the two-sided test of no change rejects at ALPHA after Holm's step-down adjustment
  over every comparison of the run (each model against the baseline and against the dense control,
  and the methods against each other at equal ratios), the change below 0;
- non-inferiority within a margin M: the one-sided test of H0 change >= M (p = Phi((change - M) / sd))
  rejects at ALPHA / 2 = 0.025 after Holm's adjustment over the same family (before the adjustment,
  the same as the two-sided 95% interval's upper end below M). M = NONINFERIORITY_FRACTION of the
  baseline's (dense model's) mean test MAE over the seeds compared: a stated share of the error the
  dense model makes, not a number picked to fit what this test set can resolve. videos_needed()
  says how many test videos would resolve it;
- "worse": a change above 0 detected (Holm), non-inferiority not shown;
- "non-inferior within M": non-inferiority shown for a change detected (Holm) or whose 95% interval
  excludes 0: a small loss that is real but within the margin;
- "no loss": non-inferiority shown and the 95% interval containing 0; never for an interval beside 0;
- otherwise "inconclusive".
Degenerate statistics give no verdict: a test split under MIN_VIDEOS, or no bootstrap spread.

Speed has a rule of its own: speed.py.
"""
import math
from statistics import NormalDist

import numpy as np
import pandas as pd

import config
import methods

PAIRS = methods.PAIRS  # the method pairs compared at equal ratios (methods.py says why)
# Below 10 test videos the bootstrap of a mean says nothing: the resampled means take few distinct
# values, their spread is biased low by sqrt((n - 1) / n) (0.87 at 4 videos), one video moves the
# mean by a tenth or more of its range, and the normal approximation of the p-values has no ground.
MIN_VIDEOS = 10
# Below 5 seeds the rule says what the seed level cannot show: a t interval over S seeds would be
# T975[S - 1] / 1.96 times the normal one the bootstrap approximates, and the bootstrap's variance
# over S resampled seeds is (S - 1) / S of theirs (3 seeds: 4.30 / 1.96 * sqrt(3 / 2) = 2.7 times).
MIN_SEEDS = 5
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776}  # Student's t, 97.5% quantile, by degrees of freedom
POWER = 0.80  # videos_needed(): the power to show non-inferiority of a model that truly loses nothing


def paired(errors, reference):
    """seeds x videos of |error| - |reference error|: lists of per-video errors, one per seed, matched."""
    return np.stack([np.abs(np.asarray(a, float)) - np.abs(np.asarray(b, float))
                     for a, b in zip(errors, reference)])


def bootstrap(diffs, samples=2000, seed=0):
    """Crossed bootstrap means of a seeds x videos matrix: seeds resampled with replacement, and one
    video resample per replicate shared by all its seeds (Owen 2007)."""
    rng = np.random.default_rng(seed)
    seeds, videos = diffs.shape
    chosen_seeds = rng.integers(0, seeds, size=(samples, seeds))
    chosen_videos = rng.integers(0, videos, size=(samples, videos))
    return diffs[chosen_seeds[:, :, None], chosen_videos[:, None, :]].mean((1, 2))


def bootstrap_change(errors, reference, samples=2000, seed=0):
    """(change, crossed bootstrap changes) of MAE(errors) - MAE(reference), paired by seed and video."""
    diffs = paired(errors, reference)
    return float(diffs.mean()), bootstrap(diffs, samples, seed)


def normal_cdf(z):
    return 0.5 * math.erfc(-z / math.sqrt(2))  # erfc: accurate far into the tail, where 1 - erf is not


def test_diffs(diffs, samples=2000, seed=0, margin=float("nan")):
    """The change (mean of the seeds x videos matrix), its 95% percentile interval, its bootstrap
    standard deviation, the two-sided p-value of no change and the one-sided p-value of H0 change >=
    margin (normal approximations; NaN without bootstrap spread), and the per-video spread of the
    change (the seeds' mean per video) from which videos_needed() works."""
    boot = bootstrap(diffs, samples, seed)
    change, sd = float(diffs.mean()), float(boot.std(ddof=1))
    spread = sd > 1e-12 * (1 + abs(change))  # the same error on every video: nothing to resample
    nan = float("nan")
    return {"change": change, "ci_low": float(np.percentile(boot, 2.5)),
            "ci_high": float(np.percentile(boot, 97.5)), "sd": sd,
            "p": math.erfc(abs(change / sd) / math.sqrt(2)) if spread else nan,
            "p_ni": normal_cdf((change - margin) / sd) if spread else nan, "margin": margin,
            "videos": diffs.shape[1],
            "sd_video": float(diffs.mean(0).std(ddof=1)) if diffs.shape[1] > 1 else nan}


def test(errors, reference, samples=2000, seed=0, margin=float("nan")):
    """test_diffs of MAE(errors) - MAE(reference): lists of per-video errors, one per seed, matched."""
    return test_diffs(paired(errors, reference), samples, seed, margin)


def holm(pvalues):
    """Holm's step-down adjusted p-values (Holm 1979), in the given order: the k-th smallest times
    (m - k + 1), made monotone, at most 1. Controls the family-wise error rate. A NaN (a comparison
    that could not be tested) stays NaN but still counts in m: the family is what was looked at."""
    p = np.asarray(pvalues, float)
    missing = np.isnan(p)
    p = np.where(missing, 1.0, p)
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    result = np.empty_like(p)
    result[order] = np.minimum(adjusted, 1.0)
    result[missing] = np.nan
    return result


def verdict(change, ci_low, ci_high, p_holm, p_ni_holm, margin, alpha, videos):
    """The wording of one comparison from its Holm-adjusted p-values (module docstring)."""
    if videos < MIN_VIDEOS:
        return "too few test videos"
    if math.isnan(p_holm):
        return "no bootstrap spread"
    detected = p_holm < alpha
    if detected and change < 0:
        return "better"
    within = p_ni_holm < alpha / 2  # one-sided: the upper end of a two-sided 1 - alpha interval
    if detected or not ci_low <= 0 <= ci_high:
        if within:
            return f"non-inferior within {margin:.2f}"
        return "worse" if detected else "inconclusive"
    return "no loss" if within else "inconclusive"


def decide(table, alpha):
    """The table with p_holm, p_ni_holm (Holm over all its rows) and each row's verdict."""
    table = table.copy()
    table["p_holm"], table["p_ni_holm"] = holm(table.p), holm(table.p_ni)
    table["verdict"] = [verdict(change=r.change, ci_low=r.ci_low, ci_high=r.ci_high, p_holm=r.p_holm,
                                p_ni_holm=r.p_ni_holm, margin=r.margin, alpha=alpha, videos=r.videos)
                        for r in table.itertuples()]
    return table


def margin(models, seeds, fraction):
    """The non-inferiority margin of a comparison on these seeds: `fraction` of the baseline's mean
    test MAE over them."""
    base = models[(models.method == "baseline") & models.seed.isin(list(seeds))]
    return fraction * float(np.mean([np.abs(np.asarray(e, float)).mean() for e in base.test_errors]))


def videos_needed(table):
    """Test videos that would give POWER to show non-inferiority of a model that truly loses nothing,
    n = ((z_0.975 + z_POWER) sd_video / M)^2, for the median comparison of the run (sd_video: the
    per-video spread of its change). Before Holm's adjustment, which asks for more; None without one."""
    ratio = (table.sd_video / table.margin).dropna() if len(table) else pd.Series(dtype=float)
    if ratio.empty:
        return None
    z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(POWER)
    return math.ceil(float(((z * ratio) ** 2).median()))


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


def claims(models, samples=2000, alpha=None, fraction=None):
    """One row per comparison of the run: the change, its interval, margin, p-values and verdict."""
    alpha = config.ALPHA if alpha is None else alpha
    fraction = config.NONINFERIORITY_FRACTION if fraction is None else fraction
    if "test_errors" not in models:
        return pd.DataFrame()
    rows = []
    for kind, a, b in family(models):
        first, second = a.iloc[0], b.iloc[0]
        rows.append({"kind": kind, "method": first.method, "ratio": first.ratio, "reference": second.method,
                     "reference_ratio": second.ratio, "seeds": len(a),
                     "params_effective": a.params_effective.mean(),
                     "reference_params_effective": b.params_effective.mean(),
                     "effective_flops": a.effective_flops.mean(),
                     "reference_effective_flops": b.effective_flops.mean(),
                     **test(list(a.test_errors), list(b.test_errors), samples=samples,
                            margin=margin(models, seeds=a.seed, fraction=fraction))})
    if not rows:  # the baseline alone, early in a run
        return pd.DataFrame()
    return decide(pd.DataFrame(rows), alpha)


def for_run(results, models=None):
    """claims() with the settings the run recorded (results["config"]), defaults for those it lacks."""
    cfg = results["config"]
    models = pd.DataFrame(results["models"]) if models is None else models
    return claims(models, samples=cfg.get("BOOTSTRAP_SAMPLES", config.BOOTSTRAP_SAMPLES),
                  alpha=cfg.get("ALPHA"), fraction=cfg.get("NONINFERIORITY_FRACTION"))


def seed_caveat(seeds):
    """What the bootstrap over `seeds` training seeds can and cannot show about the seed."""
    if seeds == 1:
        return ("One training seed: the intervals cover the choice of test videos, not of the seed; a claim "
                "about the method needs several seeds (SEEDS).")
    if seeds >= MIN_SEEDS:
        return ""
    factor = T975[seeds - 1] / NormalDist().inv_cdf(0.975) * math.sqrt(seeds / (seeds - 1))
    return (f"Only {seeds} training seeds: resampling them draws from {seeds} values, so the bootstrap "
            f"under-covers the seed-to-seed spread (a t interval over {seeds} seeds would give that part "
            f"{factor:.1f} times the width). The intervals are about these {seeds} seeds on other test "
            f"videos of this kind, not about training seeds in general; that needs at least {MIN_SEEDS}.")


def warnings(table):
    """Why some or all comparisons have no verdict."""
    found = []
    videos = int(table.videos.min())
    if videos < MIN_VIDEOS:
        found.append(f"**No verdicts: {videos} test videos**, below the {MIN_VIDEOS} a bootstrap of a "
                     f"mean needs (claims.MIN_VIDEOS); the intervals describe these videos and nothing more.")
    flat = int(table.p.isna().sum())
    if flat and videos >= MIN_VIDEOS:
        found.append(f"**{flat} comparison(s) without bootstrap spread** (the same error on every video): "
                     f"no verdict.")
    return found


def rule(results, table):
    cfg = results["config"]
    alpha = cfg.get("ALPHA", config.ALPHA)
    fraction = cfg.get("NONINFERIORITY_FRACTION", config.NONINFERIORITY_FRACTION)
    seeds = int(table.seeds.max()) if len(table) else 1
    over = ("seeds and test videos, crossed (seeds resampled, one video resample shared by every seed)"
            if seeds > 1 else "the test videos")
    low, high = (table.margin.min(), table.margin.max()) if len(table) else (float("nan"),) * 2
    shown = f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}–{high:.2f}"
    needed = videos_needed(table)
    resolve = (f" With this run's per-video spread, about {needed} test videos would give {POWER:.0%} power "
               f"to show non-inferiority of a model that truly loses nothing (before Holm's adjustment); "
               f"this run has {int(table.videos.max())}." if needed else "")
    text = (f"**The rule for every claim.** A change is the model's test MAE minus its reference's, paired "
            f"by seed and video, bootstrapped over {over}; its p-values from the normal approximation "
            f"z = change / bootstrap sd, Holm-adjusted over all {len(table)} comparisons of this run. The "
            f"margin M is {fraction:g} (NONINFERIORITY_FRACTION) of the baseline's mean test MAE over the "
            f"seeds compared (here {shown} EF points); non-inferiority is shown where the one-sided test of "
            f"a change ≥ M rejects at {alpha / 2:g}. \"better\": the two-sided test of no change rejects at "
            f"α = {alpha:g}, change below 0; \"worse\": it rejects, change above 0, non-inferiority not "
            f"shown; \"non-inferior within M\": non-inferiority shown for a change detected or whose 95% "
            f"interval excludes 0; \"no loss\": non-inferiority shown and the 95% interval containing 0; "
            f"else \"inconclusive\". No other wording ranks models by accuracy here.{resolve}")
    return " ".join([text, seed_caveat(seeds), *(warnings(table) if len(table) else [])]).strip() + "\n"


def label(method, ratio):
    return methods.label(method) + ("" if method in methods.DENSE else f" {ratio:g}")


def p_cell(p):
    """A p-value as shown: the normal approximation is not read literally far into its tail."""
    return "" if math.isnan(p) else "<1e-6" if p < 1e-6 else f"{p:.3g}"


def claims_table(table):
    """The markdown table of every comparison, with the sizes of both sides."""
    shown = pd.DataFrame({
        "model": [label(r.method, r.ratio) for r in table.itertuples()],
        "against": [label(r.reference, r.reference_ratio) for r in table.itertuples()],
        "ΔMAE [95% interval]": [f"{r.change:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
                                for r in table.itertuples()],
        "margin M": table.margin.map("{:.2f}".format), "p (Holm)": table.p_holm.map(p_cell),
        "p change ≥ M (Holm)": table.p_ni_holm.map(p_cell), "verdict": table.verdict,
        "effective params (M)": [f"{r.params_effective / 1e6:.2f} vs {r.reference_params_effective / 1e6:.2f}"
                                for r in table.itertuples()],
        "effective FLOPs (G)": [f"{r.effective_flops / 1e9:.3g} vs {r.reference_effective_flops / 1e9:.3g}"
                                for r in table.itertuples()]})
    return shown.to_markdown(index=False) + "\n"


def paragraphs(results, table):
    """The rule, the table, and the same-ratio comparisons grouped by verdict."""
    if table.empty:
        return []
    pairs = table[table.kind == "same ratio"]
    grouped = [f"{v}: " + "; ".join(f"{label(r.method, r.ratio)} against "
                                    f"{methods.label(r.reference)} "
                                    f"({r.change:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}])"
                                    for r in pairs[pairs.verdict == v].itertuples())
               for v in pairs.verdict.unique()]
    return [rule(results, table), "\n## Claims: every comparison of the run\n", claims_table(table),
            "**Comparisons at the same ratio** (sizes in the table above: the same ratio is not the same "
            "size). " + (". ".join(grouped) if grouped else "none") + "."]
