"""The README's result tables, written from result files committed in docs/, never typed.

    python readme_tables.py           # rewrites every generated block of README.md
    python readme_tables.py --check   # exit 1 (naming the blocks) when README.md is not what this writes

A generated block in README.md is

    <!-- generated: TABLE from docs/FILE.json -->
    ...
    <!-- end generated -->

and TABLE one of TABLES below (a table of two runs names both files, comma-separated); each block
ends with the file, commit, machine and date it came from.
To refresh one: copy a run's results/results.json to docs/, then run this script.
"""
import argparse
import json
import os
import re
import sys

import pandas as pd

import claims
import speed

ROOT = os.path.dirname(os.path.abspath(__file__))
BLOCK = re.compile(r"(<!-- generated: (\w+) from (\S+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def name(record):
    return claims.label(record["method"], record["ratio"])  # the names summary.md's claims use


def ms(record, prefix, reference=None, digits=1, speedup=None):
    """'19.8 [19.1–20.3] (1.05×, n.d.)': the median over the latency rounds [lowest–highest round] and the
    speedup over `reference` (a record of the same seed, in runtime `prefix` or, for INT8, ONNX Runtime),
    "n.d." where their ranges overlap (speed.speed). From a run before the rounds: '19.8 (1.05×)'."""
    if f"{prefix}_ms" not in record:
        return ""
    speedup = record[f"{prefix}_speedup"] if speedup is None else speedup
    if f"{prefix}_low_ms" not in record:
        return f"{record[f'{prefix}_ms']:.{digits}f} ({speedup:.2f}×)"
    low, high = record[f"{prefix}_low_ms"], record[f"{prefix}_high_ms"]
    other = "onnx_latency" if prefix == "int8_latency" else prefix
    same = reference is not None and speed.speed(low, high, reference[f"{other}_low_ms"],
                                                 reference[f"{other}_high_ms"]) == "not distinguishable"
    return (f"{record[f'{prefix}_ms']:.{digits}f} [{low:.{digits}f}–{high:.{digits}f}] ({speedup:.2f}×"
            f"{', n.d.' if same else ''})")


def legend(rows):
    """Under a table with latency rounds: what its brackets and "n.d." mean."""
    rounds = next((r["latency_rounds"] for r in rows if "latency_rounds" in r), None)
    if rounds is None:
        return ""
    return (f"\nLatency: the median of {rounds} interleaved rounds [lowest–highest round median]; "
            f"n.d.: the model's range overlaps the reference's (the baseline; for INT8 the FP32 dense model), so the "
            f"two are not distinguishable in speed.\n")


def quick_run(results):
    """Every model of the first seed: accuracy with its intervals, against the baseline and the dense
    control, right after pruning, and its size and speed."""
    seed = results["models"][0]["seed"]
    rows = [r for r in results["models"] if r["seed"] == seed]
    control = any(r["method"] == "dense_control" for r in rows)
    head = ["model", "test MAE [95% interval]", "ΔMAE vs baseline [paired 95% interval]"]
    head += ["ΔMAE vs dense control [paired 95% interval]"] if control else []
    head += ["MAE right after pruning", "sparsity before → after FT", "non-zero params", "effective FLOPs (M)",
             "PyTorch ms (speedup)", "ONNX Runtime ms (speedup)", "checkpoint MB (gzip)"]
    base = None  # each row's reference, the baseline, is not compared with itself
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             f"| mean predictor | {results['mean_predictor']['test_mae']:.2f} |" + " |" * (len(head) - 2)]
    for r in rows:
        cells = [name(r), f"{r['test_mae']:.2f} [{r['test_mae_ci_low']:.2f}, {r['test_mae_ci_high']:.2f}]"]
        cells.append("" if r["method"] == "baseline" else
                     f"{r['mae_diff']:+.2f} [{r['mae_diff_ci_low']:+.2f}, {r['mae_diff_ci_high']:+.2f}]")
        if control:
            cells.append(f"{r['mae_diff_vs_control']:+.2f} [{r['mae_diff_vs_control_ci_low']:+.2f}, "
                         f"{r['mae_diff_vs_control_ci_high']:+.2f}]" if "mae_diff_vs_control" in r else "")
        before = r.get("test_mae_before_fine_tune")
        physical = r["method"] == "structured_physical"
        cells += [f"{before:.2f}" if before is not None and r["method"] not in ("baseline", "dense_control") else "",
                  "removed" if physical else f"{r['sparsity_before_fine_tune']:.3f} → {r['sparsity']:.3f}",
                  f"{r['params_nonzero'] / 1e6:.2f} M", f"{r['effective_flops'] / 1e6:.0f}",
                  ms(r, "latency", base), ms(r, "onnx_latency", base),
                  f"{r['size_mb']:.1f} ({r['gzip_size_mb']:.1f})"]
        lines.append("| " + " | ".join(cells) + " |")
        base = base or r
    return "\n".join(lines) + "\n" + legend(rows)


def int8(results):
    """Every model of the first seed in FP32 and INT8 through ONNX Runtime."""
    seed = results["models"][0]["seed"]
    rows = [r for r in results["models"] if r["seed"] == seed and "int8_test_mae" in r]
    dense = rows[0]["onnx_latency_ms"]
    lines = ["| model | FP32 MAE | INT8 MAE (change [paired 95% interval]) | FP32 ORT ms (vs FP32 dense) | "
             "INT8 ORT ms (vs FP32 dense) | ONNX MB FP32 → INT8 (INT8 gzip) |", "|---|---|---|---|---|---|"]
    for r in rows:
        fp32 = r.get("fp32_onnx_test_mae", r["test_mae"])
        lines.append(f"| {name(r)} | {fp32:.2f} | {r['int8_test_mae']:.2f} ({r['int8_mae_change']:+.2f} "
                     f"[{r['int8_mae_change_ci_low']:+.2f}, {r['int8_mae_change_ci_high']:+.2f}]) | "
                     f"{ms(r, 'onnx_latency', None if r is rows[0] else rows[0], 2, dense / r['onnx_latency_ms'])} | "
                     f"{ms(r, 'int8_latency', rows[0], 2)} | "
                     f"{r['onnx_size_mb']:.1f} → {r['int8_size_mb']:.1f} ({r['int8_gzip_size_mb']:.2f}) |")
    return "\n".join(lines) + "\n" + legend(rows)


def phases(results):
    """Where the run's time went, phase by phase, and each model's training speed."""
    lines = ["| phase | seconds |", "|---|---|"]
    lines += [f"| {phase.replace('_', ' ')} | {seconds:.0f} |" for phase, seconds in results["phases"].items()]
    return "\n".join(lines) + "\n"


def verdicts(results):
    """Every comparison of the run with its verdict, by the rule summary.md states (claims.py)."""
    cfg = results["config"]
    table = claims.claims(pd.DataFrame(results["models"]), cfg.get("BOOTSTRAP_SAMPLES", 2000), cfg.get("ALPHA"),
                          cfg.get("NONINFERIORITY_MARGIN"))
    return claims.rule(results, table) + "\n" + claims.claims_table(table)


def by_model(results):
    """{(method, ratio): [records sorted by seed]} in the run's order."""
    models = {}
    for r in results["models"]:
        models.setdefault((r["method"], r["ratio"]), []).append(r)
    order = {seed: i for i, seed in enumerate(results["config"].get("SEEDS", []))}  # the run's own seed order
    return {key: sorted(rows, key=lambda r: (order.get(r["seed"], len(order)), r["seed"])) for key, rows in models.items()}


def mean_std(values):
    return f"{pd.Series(values).mean():.2f} ± {pd.Series(values).std():.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def seeds(results):
    """Every model of a several-seed run: each seed's test MAE and its ratio to that seed's baseline
    (the accuracy limits are stated as such ratios), the mean ± std, and the change against the
    baseline bootstrapped over seeds and videos, with the verdict of the run's rule."""
    models = by_model(results)
    order = [r["seed"] for r in models[("baseline", 0.0)]]
    base = {r["seed"]: r["test_mae"] for r in models[("baseline", 0.0)]}
    cfg = results["config"]
    table = claims.claims(pd.DataFrame(results["models"]), cfg.get("BOOTSTRAP_SAMPLES", 2000), cfg.get("ALPHA"),
                          cfg.get("NONINFERIORITY_MARGIN"))
    versus = {(r.method, r.ratio): r for r in table[table.kind == "vs baseline"].itertuples()}
    head = ["model"] + [f"seed {s}: test MAE (× baseline)" for s in order] + [
        "mean ± std", "ΔMAE vs baseline [95% interval, seeds and videos]", "verdict (Holm, margin)"]
    floor = results["mean_predictor"]["test_mae"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             "| mean predictor | " + " | ".join(f"{floor:.2f}" for _ in order) + f" | {floor:.2f} | | |"]
    for (method, ratio), rows in models.items():
        cells = [name(rows[0])]
        for r in rows:
            reference = floor if method == "baseline" else base[r["seed"]]
            cells.append(f"{r['test_mae']:.2f} ({r['test_mae'] / reference:.2f}×"
                         + (" the mean predictor)" if method == "baseline" else ")"))
        cells.append(mean_std([r["test_mae"] for r in rows]))
        claim = versus.get((method, ratio))
        cells += [f"{claim.change:+.2f} [{claim.ci_low:+.2f}, {claim.ci_high:+.2f}]", claim.verdict] if claim else ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def schedules(oneshot, gradual):
    """The same models pruned one-shot and gradually, from the same seeds' baselines: validation MAE
    (the model kept) and test MAE, mean ± std over seeds, and gradual minus one-shot on test, paired by
    seed and video, bootstrapped over both, Holm-adjusted over the table's models."""
    first, second = by_model(oneshot), by_model(gradual)
    cfg = oneshot["config"]
    rows = []
    for key, a in first.items():
        b = second.get(key, [])
        common = sorted({r["seed"] for r in a} & {r["seed"] for r in b})
        if key[0] in ("baseline", "dense_control") or not common:
            continue
        a, b = [r for r in a if r["seed"] in common], [r for r in b if r["seed"] in common]
        rows.append((key, a, b, claims.test([r["test_errors"] for r in b], [r["test_errors"] for r in a],
                                            cfg.get("BOOTSTRAP_SAMPLES", 2000))))
    adjusted = claims.holm([test["p"] for *_, test in rows])
    alpha = cfg.get("ALPHA", claims.config.ALPHA)
    margin = cfg.get("NONINFERIORITY_MARGIN", claims.config.NONINFERIORITY_MARGIN)
    lines = ["| model | one-shot: val MAE | gradual: val MAE | one-shot: test MAE | gradual: test MAE | "
             "gradual − one-shot, test [95% interval] | verdict for gradual (Holm over the table, margin) |",
             "|---|---|---|---|---|---|---|"]
    for ((method, ratio), a, b, test), p in zip(rows, adjusted):
        lines.append(f"| {name(a[0])} | {mean_std([r['val_mae'] for r in a])} | {mean_std([r['val_mae'] for r in b])} | "
                     f"{mean_std([r['test_mae'] for r in a])} | {mean_std([r['test_mae'] for r in b])} | "
                     f"{test['change']:+.2f} [{test['ci_low']:+.2f}, {test['ci_high']:+.2f}] | "
                     f"{claims.verdict(test['change'], p, test['upper'], alpha, margin)} |")
    return "\n".join(lines) + "\n"


def speed_table(bench):
    """bench.py --output: every variant's size, executed FLOPs and latency in each runtime, the median of
    the interleaved rounds [lowest–highest], and its speedup over the dense baseline ("n.d." where the
    two ranges overlap)."""
    variants = bench["variants"]
    base = variants[0]
    runtimes = [(p, title) for p, title in (("latency", "PyTorch eager"), ("compiled_latency", "PyTorch compiled"),
                                            ("onnx_latency", "ONNX Runtime")) if f"{p}_ms" in base]
    lines = ["| model | non-zero params | FLOPs executed (G) | theoretical speedup | "
             + " | ".join(f"{title} ms (speedup)" for _, title in runtimes) + " |", "|" + "---|" * (4 + len(runtimes))]
    for v in variants:
        cells = [name(v), f"{v['params_nonzero'] / 1e6:.2f} M", f"{v['flops'] / 1e9:.1f}", f"{v['theoretical_speedup']:.2f}"]
        cells += [ms(v, p, None if v is base else base, speedup=base[f"{p}_ms"] / v[f"{p}_ms"]) for p, _ in runtimes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + legend([{"latency_rounds": bench["rounds"]}])


TABLES = {"quick_run": quick_run, "int8": int8, "phases": phases, "claims": verdicts, "seeds": seeds,
          "schedules": schedules, "speed": speed_table}


def stamp(results, path):
    env = results["environment"]
    return (f"\n<sub>Written by `python readme_tables.py` from `{path}`: commit {env.get('git_commit') or 'none'}, "
            f"{env.get('device_name') or env['device']} ({env['cpu_count']} cores, {env['torch_threads']} threads), "
            f"torch {env['torch']}, {results.get('finished', 'date not recorded')}.</sub>\n")


def render(text, root=ROOT):
    """README text with every generated block written again from its result file(s) (comma-separated)."""
    def block(match):
        paths = match[3].split(",")
        runs = []
        for path in paths:
            with open(os.path.join(root, path)) as f:
                runs.append(json.load(f))
        return match[1] + TABLES[match[2]](*runs) + "".join(map(stamp, runs, paths)) + match[5]
    return BLOCK.sub(block, text)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only check that README.md is current (exit 1 if not)")
    args = p.parse_args(argv)
    path = os.path.join(ROOT, "README.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        new = render(text)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: a generated block of {path} cannot be written ({type(e).__name__}: {e}); check the result "
              f"file it names", file=sys.stderr)
        return 2
    if args.check:
        stale = [m[2] for m, n in zip(BLOCK.finditer(text), BLOCK.finditer(new)) if m[0] != n[0]]
        print(f"README.md: {'stale: ' + ', '.join(stale) if stale else 'every generated table is current'}")
        return 1 if stale else 0
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(new)
    os.replace(path + ".tmp", path)
    print(f"README.md: {len(BLOCK.findall(text))} generated table(s) written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
