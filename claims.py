"""What a claim in summary.md needs: one rule, applied to every comparison of the run.

A change is MAE(model) - MAE(reference), paired: the same test videos of the same training seed. Its
standard error is crossed.py's, from the variance components of the seeds x videos matrix of changes
(seed, video, their interaction), exact and deterministic: the same file gives the same verdicts on every
run. Its reference distribution is Student's t with Satterthwaite's degrees of freedom (one seed: the
videos', V - 1); the 95% interval and every p-value come from it. The bootstrap has no part in a claim:
it remains in metrics.bootstrap_mae for what a claim does not read, one model's MAE interval (an MAE
is skewed where a few videos dominate, and the percentile interval follows the skew) and the per-seed
ΔMAE cells of summary.md's tables and the quick-run table, descriptive.

The question follows the comparison (question()):
- a pruned model against the baseline or the dense control asks non-inferiority, one-sided: does pruning
  lose no more than M? H0 change >= M;
- two methods at the same ratio (removed against its masked twin, pruned against the small net from
  scratch, a criterion against its random control, one allocation against another, distilled against
  plain), and dense against dense, are symmetric: two-sided, equivalence within ±M (both one-sided
  tests, TOST: H0 change <= -M and H0 change >= M, the larger p), better or worse.
The family: the study's primary questions (methods.PRIMARY_PAIRS and PRIMARY_METHODS against the baseline,
stated before the run) are one Holm family; every other comparison of the run is exploratory, a family of
its own. Each test is Holm-adjusted within its family: the test of no change at ALPHA, two-sided;
the margin's test (non-inferiority or equivalence) at ALPHA / 2 per side, which before the adjustment is
the 95% interval lying below M, or within ±M. M = NONINFERIORITY_FRACTION of the baseline's (dense
model's) mean test MAE over the seeds compared: one share of the error the dense model makes, the same
for every run (readme_tables.py judges committed runs at the current one), not a number picked to fit
what a test set can resolve; power.py says what the run resolves.

The words (verdict()), which follow the sign: no "worse" or "non-inferior" for an interval below 0, no
"better" for one above 0:
- "better" / "worse": a difference detected (the test of no change rejects, Holm), the change below /
  above 0; ", by less than M" added where the margin's test bounds it too (either sign for the two-sided
  question, a loss for non-inferiority);
- "equivalent within ±M": two-sided question, equivalence shown, no difference detected;
- "non-inferior within M": one-sided question, non-inferiority shown, no difference detected, and the
  interval reaching 0 or above: a loss beyond M excluded, a gain not shown. An interval wholly below 0
  whose gain Holm does not confirm is "inconclusive": the gain is not shown and a loss word would misread
  it;
- otherwise "inconclusive".
Degenerate statistics give no verdict: a test split under MIN_VIDEOS, or no spread.

Speed has a rule of its own: speed.py.
"""
import math

import numpy as np
import pandas as pd

import config
import crossed
import methods
import power
import student_t

PAIRS = methods.PAIRS  # the method pairs compared at equal ratios (methods.py says why)
# Below 10 test videos a mean's standard error rests on too few values: one video moves the mean by a
# tenth or more of its range, and the t reference assumes a mean near normal.
MIN_VIDEOS = 10
NON_INFERIORITY, TWO_SIDED = "non-inferiority", "two-sided"
PRIMARY, CRITERIA, EXPLORATORY = "primary", "criteria", "exploratory"  # the Holm families


def paired(errors, reference):
    """seeds x videos of |error| - |reference error|: lists of per-video errors, one per seed, matched."""
    return np.stack([np.abs(np.asarray(a, float)) - np.abs(np.asarray(b, float))
                     for a, b in zip(errors, reference)])


def test_all(matrices, margins):
    """[test_diffs of each seeds x videos matrix], those of one shape in one crossed.test call."""
    found = [None] * len(matrices)
    for shape in {m.shape for m in matrices}:
        picked = [i for i, m in enumerate(matrices) if m.shape == shape]
        tested = crossed.test(np.stack([matrices[i] for i in picked]), [margins[i] for i in picked])
        for j, i in enumerate(picked):
            found[i] = {key: float(value[j]) for key, value in tested.items()}
            found[i].update(videos=shape[1], seeds=shape[0])
    return found


def test_diffs(diffs, margin=float("nan")):
    """crossed.test of one seeds x videos matrix, as plain numbers, with its count of videos and seeds."""
    return test_all([np.asarray(diffs, float)], [margin])[0]


def test(errors, reference, margin=float("nan")):
    """test_diffs of MAE(errors) - MAE(reference): lists of per-video errors, one per seed, matched."""
    return test_diffs(paired(errors, reference), margin)


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


def question(kind, method, reference):
    """NON_INFERIORITY for a pruned model against a dense one; TWO_SIDED for a symmetric pair."""
    dense = method in methods.DENSE and reference in methods.DENSE
    return NON_INFERIORITY if kind in ("vs baseline", "vs dense control") and not dense else TWO_SIDED


def verdict(row, alpha):
    """The wording of one comparison (a row of decide's table) from its Holm-adjusted p-values (module
    docstring): never a loss word for an interval below 0, never "better" for one above 0."""
    if row.videos < MIN_VIDEOS:
        return "too few test videos"
    if math.isnan(row.p_holm):
        return "no spread"
    bounded = row.p_margin_holm < alpha / 2  # one-sided, per side: the 95% interval's ends before Holm
    two_sided = row.question == TWO_SIDED
    if row.p_holm < alpha:
        word = "better" if row.change < 0 else "worse"
        return f"{word}, by less than {row.margin:.2f}" if bounded and (two_sided or row.change > 0) else word
    if bounded and two_sided:
        return f"equivalent within ±{row.margin:.2f}"
    if bounded and row.ci_high >= 0:
        return f"non-inferior within {row.margin:.2f}"
    return "inconclusive"


def decide(table, alpha):
    """The table with p_holm, p_margin (non-inferiority's or equivalence's, by the row's question),
    p_margin_holm (Holm over all its rows) and each row's verdict."""
    table = table.copy()
    table["p_margin"] = np.where(table.question == NON_INFERIORITY, table.p_ni, table.p_eq)
    families = table.family if "family" in table else pd.Series("all", index=table.index)
    for _, rows in table.groupby(families, sort=False):
        table.loc[rows.index, "p_holm"] = holm(rows.p)
        table.loc[rows.index, "p_margin_holm"] = holm(rows.p_margin)
    table["verdict"] = [verdict(r, alpha) for r in table.itertuples()]
    return table


def margin(models, seeds, fraction):
    """The non-inferiority margin of a comparison on these seeds: `fraction` of the baseline's mean
    test MAE over them."""
    base = models[(models.method == "baseline") & models.seed.isin(list(seeds))]
    return fraction * float(np.mean([np.abs(np.asarray(e, float)).mean() for e in base.test_errors]))


def primary(kind, method, reference):
    """Whether a comparison is one of the study's primary questions (methods.PRIMARY_PAIRS and _METHODS)."""
    if kind == "vs baseline":
        return method in methods.PRIMARY_METHODS
    return kind == "same ratio" and (method, reference) in methods.PRIMARY_PAIRS


def family_of(kind, method, reference):
    """A comparison's Holm family: the study's primary questions, the criteria study's (each importance
    criterion against group L2 removal, and learning-rate rewinding against plain fine-tuning:
    methods.CRITERIA_PAIRS), or every other comparison."""
    if primary(kind, method, reference):
        return PRIMARY
    return CRITERIA if kind == "same ratio" and (method, reference) in methods.CRITERIA_PAIRS else EXPLORATORY


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


def claims(models, alpha=None, fraction=None):
    """One row per comparison of the run: the change, its interval, margin, p-values and verdict."""
    alpha = config.ALPHA if alpha is None else alpha
    fraction = config.NONINFERIORITY_FRACTION if fraction is None else fraction
    if "test_errors" not in models:
        return pd.DataFrame()
    compared = family(models)
    if not compared:  # the baseline alone, early in a run
        return pd.DataFrame()
    tests = test_all([paired(list(a.test_errors), list(b.test_errors)) for _, a, b in compared],
                     [margin(models, seeds=a.seed, fraction=fraction) for _, a, _ in compared])
    rows = [{"kind": kind, "question": question(kind, a.iloc[0].method, b.iloc[0].method),
             "method": a.iloc[0].method, "ratio": a.iloc[0].ratio, "reference": b.iloc[0].method,
             "reference_ratio": b.iloc[0].ratio, "fraction": fraction,
             "family": family_of(kind, a.iloc[0].method, b.iloc[0].method),
             "params_effective": a.params_effective.mean(),
             "reference_params_effective": b.params_effective.mean(),
             "effective_flops": a.effective_flops.mean(),
             "reference_effective_flops": b.effective_flops.mean(),
             **found} for (kind, a, b), found in zip(compared, tests)]
    return decide(pd.DataFrame(rows), alpha)


def for_run(results, models=None, fraction=None):
    """claims() with the ALPHA the run recorded (results["config"]) and its NONINFERIORITY_FRACTION, or
    `fraction` where given (readme_tables.py: the one margin, config.py's)."""
    cfg = results["config"]
    models = pd.DataFrame(results["models"]) if models is None else models
    return claims(models, alpha=cfg.get("ALPHA"),
                  fraction=cfg.get("NONINFERIORITY_FRACTION") if fraction is None else fraction)


def seed_caveat(seeds):
    """What `seeds` training seeds can and cannot show about the seed."""
    if seeds == 1:
        return ("One training seed: the intervals cover the choice of test videos, not of the seed; a claim "
                "about the method needs several seeds (SEEDS).")
    return (f"With {seeds} training seeds the seed part of a standard error rests on {seeds - 1} degrees of "
            f"freedom: where it is above 0, Satterthwaite's df (column df) fall toward {seeds - 1} and the t "
            f"quantile widens the interval ({float(student_t.ppf(0.975, seeds - 1)):.2f} at df {seeds - 1}, "
            f"1.96 for many); where the seeds agree no less than the interaction predicts, it is 0 and the "
            f"df are the videos'. A seed part estimated at 0 from {seeds} seeds may still be real, which "
            f"makes the extreme tails Holm reads less certain than their level (crossed.py); more seeds "
            f"are the remedy.")


def warnings(table):
    """Why some or all comparisons have no verdict."""
    found = []
    videos = int(table.videos.min())
    if videos < MIN_VIDEOS:
        found.append(f"**No verdicts: {videos} test videos**, below the {MIN_VIDEOS} a mean's standard error "
                     f"needs (claims.MIN_VIDEOS); the intervals describe these videos and nothing more.")
    flat = int(table.p.isna().sum())
    if flat and videos >= MIN_VIDEOS:
        found.append(f"**{flat} comparison(s) without spread** (the same change on every video and seed): "
                     f"no verdict.")
    return found


def rule(results, table):
    """summary.md's statement of the rule for this run's table: the test, the questions, the words, the
    margin (and the run's own where it recorded another), the power, the seeds."""
    alpha = results["config"].get("ALPHA", config.ALPHA)
    recorded = results["config"].get("NONINFERIORITY_FRACTION", config.NONINFERIORITY_FRACTION)
    fraction = float(table.fraction.iloc[0]) if len(table) else recorded
    seeds = int(table.seeds.max()) if len(table) else 1
    low, high = (table.margin.min(), table.margin.max()) if len(table) else (float("nan"),) * 2
    shown = f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}–{high:.2f}"
    other = (f" (the run recorded {recorded:g}; its comparisons are judged here at the one margin)"
             if recorded != fraction else "")
    over = (f"seeds and test videos, crossed (the same {int(table.videos.max())} videos for every seed)"
            if seeds > 1 else "the test videos")
    text = (f"**The rule for every claim.** A change is the model's test MAE minus its reference's, paired "
            f"by seed and video; its standard error from the variance components over {over}, its "
            f"interval and p-values from Student's t with Satterthwaite's df; each test Holm-adjusted within "
            f"its family: {families(table)}. The margin M is {fraction:g} "
            f"(NONINFERIORITY_FRACTION) of the baseline's mean test MAE over the seeds compared (here "
            f"{shown} EF points){other}. Against the baseline or the dense control a pruned model is asked "
            f"non-inferiority (p beyond M: H0 change ≥ M); two methods at the same ratio, or two dense "
            f"models, are asked two-sided (p beyond M: equivalence, the larger p of H0 change ≤ −M and H0 "
            f"change ≥ M); the margin's test at {alpha / 2:g} per side. \"better\" / \"worse\": the test "
            f"of no change rejects at α = {alpha:g} (a difference detected), the change below / above 0 "
            f"(\", by less than M\": the margin's test bounds it too); \"equivalent within ±M\": "
            f"two-sided, equivalence shown, no difference detected; \"non-inferior within M\": "
            f"non-inferiority shown, no difference detected, the interval reaching 0 or above (a loss "
            f"beyond M excluded, a gain not shown; an interval wholly below 0 that Holm does not confirm is "
            f"inconclusive); else \"inconclusive\". No other wording ranks models by accuracy here.")
    primaries = table[table.family == PRIMARY] if "family" in table else table.iloc[:0]
    return " ".join([text, power.sentence(primaries if len(primaries) else table, alpha), seed_caveat(seeds),
                     *(warnings(table) if len(table) else [])]).strip() + "\n"


def families(table):
    """'the 12 primary questions (...) and 40 exploratory comparisons', as the rule states them."""
    count = int((table.family == PRIMARY).sum()) if "family" in table else 0
    stated = ("coupled removal against unstructured and per-layer masks at its effective FLOPs and against "
              "the small net from scratch, and each of them against the baseline, at each ratio of removal")
    criteria = int((table.family == CRITERIA).sum()) if "family" in table else 0
    also = (f", the {criteria} comparisons of the criteria study (each importance criterion with group L2 "
            f"removal, and learning-rate rewinding with plain fine-tuning: a family of their own)"
            if criteria else "")
    if not count:
        return (f"all {len(table) - criteria} comparisons of this run{also} (none of the primary questions, "
                f"{stated}, was run)")
    return (f"the {count} primary questions, stated before the run ({stated}){also}, and the "
            f"{len(table) - count - criteria} exploratory comparisons")


def label(method, ratio):
    return methods.label(method) + ("" if method in methods.DENSE else f" {ratio:g}")


def p_cell(p):
    """A p-value as shown: the t reference is not read literally far into its tail."""
    return "" if math.isnan(p) else "<1e-6" if p < 1e-6 else f"{p:.3g}"


def claims_table(table):
    """The markdown table of every comparison, with the sizes of both sides."""
    shown = pd.DataFrame({
        "model": [label(r.method, r.ratio) for r in table.itertuples()],
        "against": [label(r.reference, r.reference_ratio) for r in table.itertuples()],
        "ΔMAE [95% interval]": [f"{r.change:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
                                for r in table.itertuples()],
        "df": table.df.map(lambda df: "" if math.isnan(df) else f"{df:.3g}"),
        "margin M": table.margin.map("{:.2f}".format), "p (Holm)": table.p_holm.map(p_cell),
        "p beyond M (Holm)": table.p_margin_holm.map(p_cell), "verdict": table.verdict,
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
    primaries, criteria = table[table.family == PRIMARY], table[table.family == CRITERIA]
    shown = ["\n## Claims: the primary questions\n", claims_table(primaries)] if len(primaries) else []
    shown += (["\n## Claims: each importance criterion against group L2 removal, and learning-rate rewinding "
               "against plain fine-tuning (a family of their own)\n",
               claims_table(criteria)] if len(criteria) else [])
    others = table[table.family == EXPLORATORY]
    return [rule(results, table), *shown, "\n## Claims: every other comparison (exploratory)\n",
            claims_table(others),
            "**Comparisons at the same ratio** (sizes in the table above: the same ratio is not the same "
            "size). " + (". ".join(grouped) if grouped else "none") + "."]
