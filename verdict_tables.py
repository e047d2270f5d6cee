"""The tables of verdicts by the claims rule (claims.py) at the one margin: every comparison of a run,
and the README's headline table of the study over seeds, with how often the model kept is the one
right after pruning and what the design resolves (power.py)."""
import numpy as np

import claims
import config
import power
from table_cells import by_model, judged, mean_std, name


def verdicts(results):
    """Every comparison of the run with its verdict, by the rule summary.md states (claims.py)."""
    table = judged(results)
    primaries = table[table.family == claims.PRIMARY]
    if primaries.empty:
        return claims.rule(results, table) + "\n" + claims.claims_table(table)
    return (claims.rule(results, table) + "\n**The primary questions**\n\n" + claims.claims_table(primaries)
            + "\n**Every other comparison (exploratory)**\n\n"
            + claims.claims_table(table[table.family != claims.PRIMARY]))


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
