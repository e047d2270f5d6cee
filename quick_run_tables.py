"""The quick run's tables (docs/quick_results.json): every model of its first seed with its accuracy,
size and speed; the same models in FP32 and INT8 through ONNX Runtime; and where the run's time went,
on what machine."""
import methods
from speed_tables import column, legend, ms
from table_cells import name


def quick_run(results):
    """Every model of the first seed: accuracy with its intervals, against the baseline and the dense
    control, right after pruning, and its size and speed."""
    seed, alpha = results["models"][0]["seed"], results["config"].get("ALPHA")
    rows = [r for r in results["models"] if r["seed"] == seed]
    control = any(r["method"] == "dense_control" for r in rows)
    head = ["model", "test MAE [95% interval]", "ΔMAE vs baseline [paired 95% interval]"]
    head += ["ΔMAE vs dense control [paired 95% interval]"] if control else []
    head += ["MAE right after pruning", "sparsity before → after FT", "effective params",
             "effective FLOPs (M)", "PyTorch ms (speedup)", "ONNX Runtime ms (speedup)",
             "checkpoint MB (gzip)"]
    paired = {p: column(rows, p, rows[0], alpha) for p in ("latency", "onnx_latency")}  # vs the baseline
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             f"| mean predictor | {results['mean_predictor']['test_mae']:.2f} |" + " |" * (len(head) - 2)]
    for i, r in enumerate(rows):
        cells = [name(r), f"{r['test_mae']:.2f} [{r['test_mae_ci_low']:.2f}, {r['test_mae_ci_high']:.2f}]"]
        cells.append("" if r["method"] == "baseline" else
                     f"{r['mae_diff']:+.2f} [{r['mae_diff_ci_low']:+.2f}, {r['mae_diff_ci_high']:+.2f}]")
        if control:
            cells.append(f"{r['mae_diff_vs_control']:+.2f} [{r['mae_diff_vs_control_ci_low']:+.2f}, "
                         f"{r['mae_diff_vs_control_ci_high']:+.2f}]" if "mae_diff_vs_control" in r else "")
        before = r.get("test_mae_before_fine_tune")
        physical = r["method"] == "structured_physical"
        cells += [f"{before:.2f}" if before is not None and r["method"] not in methods.DENSE else "",
                  "removed" if physical else f"{r['sparsity_before_fine_tune']:.3f} → {r['sparsity']:.3f}",
                  f"{r['params_effective'] / 1e6:.2f} M", f"{r['effective_flops'] / 1e6:.0f}",
                  ms(r, "latency", paired["latency"][i]), ms(r, "onnx_latency", paired["onnx_latency"][i]),
                  f"{r['size_mb']:.1f} ({r['gzip_size_mb']:.1f})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + legend(rows, alpha, any(paired["latency"] + paired["onnx_latency"]))


def int8(results):
    """Every model of the first seed in FP32 and INT8 through ONNX Runtime."""
    seed, alpha = results["models"][0]["seed"], results["config"].get("ALPHA")
    rows = [r for r in results["models"] if r["seed"] == seed and "int8_test_mae" in r]
    dense = rows[0]["onnx_latency_ms"]
    columns = [column(rows, p, rows[0], alpha) for p in ("onnx_latency", "int8_latency")]  # vs FP32 dense
    lines = ["| model | FP32 MAE | INT8 MAE (change [paired 95% interval]) | FP32 ORT ms (vs FP32 dense) | "
             "INT8 ORT ms (vs FP32 dense) | ONNX MB FP32 → INT8 (INT8 gzip) |", "|---|---|---|---|---|---|"]
    for r, fp32_speed, int8_speed in zip(rows, *columns):
        fp32 = r.get("fp32_onnx_test_mae", r["test_mae"])
        lines.append(f"| {name(r)} | {fp32:.2f} | {r['int8_test_mae']:.2f} ({r['int8_mae_change']:+.2f} "
                     f"[{r['int8_mae_change_ci_low']:+.2f}, {r['int8_mae_change_ci_high']:+.2f}]) | "
                     f"{ms(r, 'onnx_latency', fp32_speed, 2, dense / r['onnx_latency_ms'])} | "
                     f"{ms(r, 'int8_latency', int8_speed, 2)} | "
                     f"{r['onnx_size_mb']:.1f} → {r['int8_size_mb']:.1f} ({r['int8_gzip_size_mb']:.2f}) |")
    return "\n".join(lines) + "\n" + legend(rows, alpha, any(sum(columns, [])))


def phases(results):
    """Where the run's time went, phase by phase, and each model's training speed."""
    lines = ["| phase | seconds |", "|---|---|"]
    lines += [f"| {phase.replace('_', ' ')} | {seconds:.0f} |"
              for phase, seconds in results["phases"].items()]
    return "\n".join(lines) + "\n"


def run_time(results):
    """How long the run took, phase by phase, as it measured itself, and on what."""
    env, phases = results["environment"], results["phases"]
    parts = ", ".join(f"{phase.replace('_', ' ')} {seconds:.0f} s" for phase, seconds in phases.items())
    return (f"The quick run took {sum(phases.values()) / 60:.1f} min on {machine(env)}, data generation "
            f"included ({parts}; `results.json`'s `phases`). CPUs with as many cores can take several times "
            f"longer ([troubleshooting](docs/troubleshooting.md)); `python check_gpu.py --project` projects "
            f"the time on yours.\n")


def machine(env):
    """'cpu (2 cores, Intel(R) Xeon(R) Processor)': the device, and the CPU model where the run recorded it
    (in `cpu_model`, or with the INT8 features before that)."""
    cpu = env.get("cpu_model") or env.get("cpu_int8", {}).get("cpu_model")
    return (f"{env.get('device_name') or env['device']} ({env['cpu_count']} cores"
            f"{', ' + cpu if cpu else ''})")
