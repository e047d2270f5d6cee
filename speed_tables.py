"""The latency cells of every table that shows speed, and bench.py --output's speed table: the median
over the latency rounds with its spread, and the speed-up over the reference, paired round by round and
ranked by speed.py's rule where the result file keeps its round medians."""
import config
import speed
from table_cells import name

SHORT = {"faster": "faster", "slower": "slower", "not distinguishable": "n.d."}


def ms(record, prefix, compared=None, digits=1, speedup=None):
    """'19.8 [19.1–20.3] (1.93× [1.85, 2.01], faster)': the median over the latency rounds [lowest–highest
    round], and the speed-up over the reference paired round by round with its 95% interval and verdict
    (compared: speed.Comparison); where not compared (the reference itself, a file without round lists)
    the ratio of the medians alone. From a run before the rounds: '19.8 (1.05×)'."""
    if f"{prefix}_ms" not in record:
        return ""
    speedup = record[f"{prefix}_speedup"] if speedup is None else speedup
    if f"{prefix}_low_ms" not in record:
        return f"{record[f'{prefix}_ms']:.{digits}f} ({speedup:.2f}×)"
    low, high = record[f"{prefix}_low_ms"], record[f"{prefix}_high_ms"]
    said = (f"{speedup:.2f}×" if compared is None
            else f"{speed.interval(compared, '×')}, {SHORT[compared.verdict]}")
    return f"{record[f'{prefix}_ms']:.{digits}f} [{low:.{digits}f}–{high:.{digits}f}] ({said})"


def column(rows, prefix, reference, alpha=None):
    """Every row's speed.Comparison against the record `reference` in runtime `prefix` (INT8: against its
    FP32 in ONNX Runtime), one Holm family: a table's column. None for the reference itself."""
    other = speed.RUNTIMES[prefix].reference if prefix in speed.RUNTIMES else prefix
    return speed.family([None if r is reference and prefix == other else
                         (speed.round_lists([r], prefix), speed.round_lists([reference], other))
                         for r in rows], alpha)


def legend(rows, alpha, compared=True):
    """Under a table with latency rounds: what its brackets, speed-ups and verdicts mean (compared: any
    speed-up was paired round by round; else the file keeps no round medians in round order)."""
    rounds = next((r["latency_rounds"] for r in rows if "latency_rounds" in r), None)
    if rounds is None:
        return ""
    alpha = config.ALPHA if alpha is None else alpha
    said = (f"Speed-up: {speed.rule(alpha)} n.d.: not distinguishable."
            if compared else "Speed-up: the ratio of the medians; the file keeps no round medians in "
                             "round order, so no speed-up is ranked (speed.py).")
    return f"\nLatency: the median of {rounds} interleaved rounds [lowest–highest round median]. {said}\n"


def speed_table(bench):
    """bench.py --output: every variant's size, executed FLOPs and latency in each runtime, the median of
    the interleaved rounds [lowest–highest], and its speedup over the dense baseline, paired round by
    round and ranked (speed.py) where the file keeps its round medians (bench.py's files do not)."""
    variants, alpha = bench["variants"], bench["config"].get("ALPHA")
    base = variants[0]
    runtimes = [(p, title) for p, title in (("latency", "PyTorch eager"),
                                            ("compiled_latency", "PyTorch compiled"),
                                            ("onnx_latency", speed.RUNTIMES["onnx_latency"].name))
                if f"{p}_ms" in base]
    counted = "params_effective" if "params_effective" in base else "params_nonzero"  # older files: non-zero
    lines = [f"| model | {counted.replace('params_', '')} params | FLOPs executed (G) | theoretical "
             f"speedup | " + " | ".join(f"{title} ms (speedup)" for _, title in runtimes) + " |",
             "|" + "---|" * (4 + len(runtimes))]
    paired = {p: column(variants, p, base, alpha) for p, _ in runtimes}
    for i, v in enumerate(variants):
        cells = [name(v), f"{v[counted] / 1e6:.2f} M", f"{v['flops'] / 1e9:.1f}",
                 f"{v['theoretical_speedup']:.2f}"]
        cells += [ms(v, p, paired[p][i], speedup=base[f"{p}_ms"] / v[f"{p}_ms"]) for p, _ in runtimes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + legend([{"latency_rounds": bench["rounds"]}], alpha,
                                           any(sum(paired.values(), [])))
