"""The criteria study's table (readme_tables.py): each importance criterion, and learning-rate rewinding,
against group L2 removal fine-tuned plainly, one row per FLOP budget and one column per compared model:
the study's own Holm family (methods.CRITERIA_PAIRS, claims.py), with what that family resolves
(power.py). Every model against the baseline is the headline table of the same run
(verdict_tables.headline)."""
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


def criteria(results):
    """Budgets down, compared models across: ΔMAE [95% interval] and verdict; then the power sentence."""
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
    return "\n".join(lines) + "\n\n" + " ".join(
        [f"Each cell: the column's test MAE {against}, in EF points [95% interval], and the verdict.",
         f"Seeds {', '.join(map(str, seeds))}; {results['splits']['test']} test videos; the margin M is "
         f"{family.margin.median():.2f} EF points ({config.NONINFERIORITY_FRACTION:.0%} of the baseline's "
         f"MAE). Holm over the {len(family)} comparisons of this family alone.",
         power.sentence(family, alpha)]) + "\n"
