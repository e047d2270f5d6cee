"""The criteria study's table (readme_tables.py): each importance criterion, and learning-rate rewinding,
against group L2 removal fine-tuned plainly, one row per FLOP budget and one column per compared model:
the study's own Holm family (methods.CRITERIA_PAIRS, claims.py), with what that family resolves
(power.py). Every model against the baseline is the headline table of the same run
(verdict_tables.headline). A criterion made again in a run of its own (a chooser fixed) takes its column
from that run, where the two runs' baselines and group L2 models agree video for video (remade)."""
import claims
import config
import methods
import power
from table_cells import judged


def budget(run, method, ratio):
    """'2.2× fewer FLOPs (ratio 0.311)' for the FLOP budget a model's ratio was solved for, else its ratio."""
    record = next(r for r in run["models"] if r["method"] == method and r["ratio"] == ratio)
    speedup = record.get("target_flops_speedup")
    return f"{speedup:.3g}× fewer FLOPs (ratio {ratio:.3g})" if speedup else f"ratio {ratio:.3g}"


def column(method, reference, references):
    """A column's heading: the model, and what it is compared with where the columns differ in that."""
    name = methods.label(method)
    return name if len(references) == 1 else f"{name} − {methods.label(reference)}"


def errors(run, method):
    return {(r["ratio"], r["seed"]): r["test_errors"] for r in run["models"] if r["method"] == method}


def remade(results, again):
    """`results` with the criteria `again` made again (its IMPORTANCE_CRITERIA) taken from `again`: the same
    models but those, so its comparisons are the ones a single run would give. ValueError unless both runs
    have the same data and their baselines and group L2 models agree video for video on every seed and
    ratio, and `again` has each remade criterion's every (ratio, seed) of `results`."""
    if results["identity"]["data"] != again["identity"]["data"]:
        raise ValueError("the run made again has other data (its fingerprint): make it on the same data")
    for method in ("baseline", "structured_physical"):
        first, second = errors(results, method), errors(again, method)
        if not second or any(first.get(key) != values for key, values in second.items()):
            raise ValueError(f"the two runs' {methods.label(method)} models differ on the test videos (or "
                             f"the second has none): make it from the same commit's seeds and machine")
    criteria_again = {f"structured_physical_{name}" for name in again["config"]["IMPORTANCE_CRITERIA"]}
    for method in sorted(criteria_again):
        if not errors(again, method).keys() >= errors(results, method).keys():
            raise ValueError(f"the run made again lacks some of {methods.label(method)}'s seeds or ratios")
    models = [r for r in results["models"] if r["method"] not in criteria_again]
    return {**results, "models": models + [r for r in again["models"] if r["method"] in criteria_again]}


def criteria(results, *again):
    """Budgets down, compared models across: ΔMAE [95% interval] and verdict; then the power sentence.
    With a second run, its remade criteria replace the first run's (remade)."""
    for run in again:
        results = remade(results, run)
    table = judged(results)
    family = table[table.family == claims.CRITERIA].sort_values("ratio", kind="stable")
    if family.empty:
        return "This run compares no importance criterion and no rewinding with group L2 removal.\n"
    pairs = list(dict.fromkeys(zip(family.method, family.reference)))
    references = {reference for _, reference in pairs}
    lines = ["| budget | " + " | ".join(column(m, ref, references) for m, ref in pairs) + " |",
             "|---" * (len(pairs) + 1) + "|"]
    for ratio, rows in family.groupby("ratio", sort=True):
        cells = {(r.method, r.reference): f"{r.change:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}] {r.verdict}"
                 for r in rows.itertuples()}
        lines.append(f"| {budget(results, rows.method.iloc[0], ratio)} | "
                     + " | ".join(cells.get(pair, "") for pair in pairs) + " |")
    against = (f"minus {methods.label(references.pop())}'s, at the same budget and seeds"
               if len(references) == 1 else "minus its column's second model's")
    seeds = sorted({r["seed"] for r in results["models"]})
    alpha = results["config"].get("ALPHA", config.ALPHA)
    remade_words = [f"The column {methods.label(f'structured_physical_{name}')} is from a run made again "
                    f"(its chooser fixed) whose baselines and group L2 models are this run's, video by video."
                    for run in again for name in run["config"]["IMPORTANCE_CRITERIA"]]
    return "\n".join(lines) + "\n\n" + " ".join(
        [f"Each cell: the column's test MAE {against}, in EF points [95% interval], and the verdict.",
         *remade_words,
         f"Seeds {', '.join(map(str, seeds))}; {results['splits']['test']} test videos; the margin M is "
         f"{family.margin.median():.2f} EF points ({config.NONINFERIORITY_FRACTION:.0%} of the baseline's "
         f"MAE). Holm over the {len(family)} comparisons of this family alone.",
         power.sentence(family, alpha)]) + "\n"
