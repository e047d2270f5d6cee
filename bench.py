"""Check the speed claims in a minute, without training: the baseline and every pruned variant,
from random weights, measured in one process with the same functions main.py uses.

    python bench.py                         # the reference input: 32 frames of 112x112
    python bench.py --quick                 # the --quick input
    python bench.py --channels-last false   # contiguous NCHW instead
    python bench.py --onnx-export false     # PyTorch only (ONNX Runtime columns need onnxruntime)
    python bench.py --repeat 3              # three rounds (default --latency-rounds); cells: their median

PyTorch is timed eagerly; ONNX Runtime with its CPU execution provider; every variant in every
runtime in interleaved rounds, as main.py times a run's models (latency.py). The second table compares
each runtime's speedups over its own dense baseline.

    python bench.py --latency-compile true  # also PyTorch through torch.compile with frozen weights

torch.compile is off unless asked for, as in main.py: compiling every variant takes minutes (on a GPU
too), and on a CPU it needs a C++ compiler (without one, bench.py says so and times eagerly).

    python bench.py --data [--quick]        # the data path: check and cache on one thread and on every
                                            # core; batches alone, before and now; training and evaluation
                                            # against their ceilings (bench_data.py says how)
"""
import copy
import os
import sys
import tempfile
import time

import pandas as pd
import torch

import cli  # first: a broken config.py is one message (exit 2)
import bench_data
import latency
import main as experiment
import metrics
import onnx_runtime
from bookkeeping import provenance
import pruners
import methods
import prune_utils
from cli import exits
import processes
from storage import folders
from model import EFRegressionModel


def pruned_variants(cfg):
    """(method, ratio, model): the random-weight baseline and every model main.py's plan prunes from it."""
    torch.manual_seed(cfg.SEED)
    dense = EFRegressionModel(arch=cfg.MODEL)
    variants = [("baseline", 0.0, dense)]
    for method, ratio, _ in experiment.pruning_plan(cfg):
        if method in (methods.CONTROL, methods.SCRATCH, "structured_physical_random"):
            continue  # the dense network again, or structured_physical's architecture: the same latency
        model = pruners.apply(copy.deepcopy(dense), method, ratio, cfg.NUM_FRAMES, cfg.IMAGE_SIZE,
                                  cfg.PHYSICAL_ROUND_TO)
        variants.append((method, ratio, prune_utils.make_permanent(model)))
    return variants


def bench(cfg, device, variants, rounds, onnx_dir=None, compiled=False):
    """Params, FLOPs and latency of every variant, each runtime timed in interleaved rounds as main.py
    times a run's models (latency.rounds): latency_ms is the median of the round medians, _low_ms and
    _high_ms the lowest and highest round; speedups from the medians. Also returns the rounds' readings."""
    rows, runners = [], {}
    precision = processes.precision(device, cfg.AMP)  # as main.py measures: the precision of training
    video = torch.randn(1, cfg.NUM_FRAMES, 3, cfg.IMAGE_SIZE, cfg.IMAGE_SIZE)
    for i, (method, ratio, model) in enumerate(variants):
        nonzero, total = metrics.parameter_counts(model)
        rows.append({"method": method, "ratio": ratio, "params": total, "params_nonzero": nonzero,
                     "params_effective": metrics.effective_parameters(model, cfg.NUM_FRAMES, cfg.IMAGE_SIZE),
                     **metrics.flops(model, cfg.NUM_FRAMES, cfg.IMAGE_SIZE)})
        runners[i, "latency"] = latency.pytorch_runner(model, video, device, cfg.CHANNELS_LAST, precision)
        if compiled:
            runners[i, "compiled_latency"] = latency.pytorch_runner(model, video, device, cfg.CHANNELS_LAST,
                                                                    precision, compiled=True)
        if onnx_dir:
            path = os.path.join(onnx_dir, f"{method}_{ratio:g}.onnx")
            rows[-1]["onnx_gzip_mb"] = onnx_runtime.export(model, path, video)["onnx_gzip_size_mb"]
            runners[i, "onnx_latency"] = latency.onnx_runner(onnx_runtime.session(path), video)
    times = latency.rounds(runners, rounds, cfg.LATENCY_WARMUP_RUNS, cfg.LATENCY_TIMED_RUNS)
    for (i, prefix), measured in times.items():
        rows[i].update({k: v for k, v in latency.summary(prefix, measured).items()
                        if not k.endswith("_round_ms")})
    table = pd.DataFrame(rows)
    base = table.iloc[0]
    table["theoretical_speedup"] = base.flops / table.effective_flops
    table["latency_speedup"] = base.latency_ms / table.latency_ms
    table["speedup_vs_flop_reduction"] = table.latency_speedup / (base.flops / table.flops)
    if compiled:
        table["compiled_speedup"] = base.compiled_latency_ms / table.compiled_latency_ms
    if onnx_dir:
        table["onnx_speedup"] = base.onnx_latency_ms / table.onnx_latency_ms
        table["onnx_vs_eager"] = table.onnx_speedup / table.latency_speedup
        if compiled:
            table["onnx_vs_compiled"] = table.onnx_speedup / table.compiled_speedup
    return table, {key: [median for median, _ in measured] for key, measured in times.items()}


def per_round(times, numerator, denominator, count):
    """One runtime's speedup over another's, variant by variant, in each round (from that round's readings,
    taken moments apart): (lowest, highest) over the rounds."""
    found = []
    for i in range(count):
        ratios = [(times[0, numerator][r] / times[i, numerator][r])
                  / (times[0, denominator][r] / times[i, denominator][r])
                  for r in range(len(times[i, numerator]))]
        found.append((min(ratios), max(ratios)))
    return found


def main(argv):
    p = cli.parser(__doc__)
    p.add_argument("--data", action="store_true", help="benchmark the data path instead of the models")
    p.add_argument("--repeat", type=int, default=None, metavar="N",
                   help="rounds; each cell is the median over them (default: --latency-rounds; 3 with "
                        "--data)")
    p.add_argument("--steps", type=int, default=3, metavar="N", help="--data: training batches timed per "
                   "round (default 3; evaluation: one batch of 4x the size, as main.py evaluates)")
    p.add_argument("--output", metavar="FILE", help="also write the models' table, the configuration and the "
                   "environment to this JSON file (readme_tables.py writes the README's speed table from it)")
    cfg = cli.load(argv, p)
    cfg.repeat = (3 if cfg.data else cfg.LATENCY_ROUNDS) if cfg.repeat is None else cfg.repeat
    for name in ("repeat", "steps"):
        if getattr(cfg, name) < 1:
            p.error(f"--{name} must be at least 1")
    if cfg.data:
        return data_main(cfg)
    device = processes.pick_device(cfg.DEVICE)
    steady = device.type == "cpu" and latency.steady_cpu_allocator()
    use_onnx = onnx_runtime.available() if cfg.ONNX_EXPORT is None else cfg.ONNX_EXPORT
    compile_error = latency.compile_error(device) if cfg.LATENCY_COMPILE else "--latency-compile false"
    if cfg.LATENCY_COMPILE and compile_error:
        print(f"torch.compile does not run here ({compile_error}): eager PyTorch only")
    variants = pruned_variants(cfg)
    with tempfile.TemporaryDirectory() as onnx_dir:
        table, times = bench(cfg, device, variants, cfg.repeat, onnx_dir if use_onnx else None,
                             compiled=compile_error is None)
    print(f"{cfg.repeat} interleaved round(s): each times every variant in every runtime once, in an order "
          f"shuffled from round to round; each cell is the median over the rounds, low and high the lowest "
          f"and highest round; input: 1 video of {cfg.NUM_FRAMES} frames {cfg.IMAGE_SIZE}x{cfg.IMAGE_SIZE}; "
          f"device {device}, {torch.get_num_threads()} threads, channels_last {cfg.CHANNELS_LAST}, "
          f"torch {torch.__version__}, "
          f"PyTorch precision {str(processes.precision(device, cfg.AMP)).replace('torch.', '')}, "
          f"CPU malloc thresholds fixed {steady}; "
          f"median and p90 of {cfg.LATENCY_TIMED_RUNS} runs after {cfg.LATENCY_WARMUP_RUNS} warm-up "
          f"runs per round")
    columns = ["method", "ratio", "params_nonzero", "flops", "effective_flops", "latency_ms",
               "latency_low_ms", "latency_high_ms", "latency_p90_ms",
               "theoretical_speedup", "latency_speedup", "speedup_vs_flop_reduction"]
    columns += [c for c in ("onnx_gzip_mb",) if c in table]
    print(table[columns].to_markdown(index=False, floatfmt=".3g"))
    # The same models in each runtime, each against its own dense baseline: does the gain survive?
    runtimes = [c for c in ("latency_ms", "latency_speedup", "compiled_latency_ms", "compiled_speedup",
                            "onnx_latency_ms", "onnx_speedup", "onnx_vs_eager", "onnx_vs_compiled")
                if c in table]
    if len(runtimes) > 2:
        print("\nspeedup by runtime (PyTorch eager, PyTorch compiled, ONNX Runtime CPU):")
        print(table[["method", "ratio"] + runtimes].to_markdown(index=False, floatfmt=".3g"))
    if cfg.repeat > 1 and "onnx_vs_eager" in table:
        spread = table[["method", "ratio"]].copy()
        for column, denominator in (("onnx_vs_eager", "latency"), ("onnx_vs_compiled", "compiled_latency")):
            if column in table:
                spread[f"{column} min"], spread[f"{column} max"] = zip(*per_round(times, "onnx_latency",
                                                                                 denominator, len(table)))
        print("\nONNX Runtime speedup ÷ PyTorch speedup, lowest and highest over the rounds:")
        print(spread.to_markdown(index=False, floatfmt=".2f"))
    if cfg.output:
        write_output(cfg, table, provenance.environment(device, steady))
    return table


def data_main(cfg):
    """`python bench.py --data`: the data path's table (bench_data.py)."""
    device = processes.pick_device(cfg.DEVICE)
    print(f"data path on {cfg.DATA_ROOT}: {cfg.NUM_FRAMES} frames of {cfg.IMAGE_SIZE}x{cfg.IMAGE_SIZE}, "
          f"batch {cfg.BATCH_SIZE}; device {device}, {torch.get_num_threads()} threads, {os.cpu_count()} "
          f"cores, precision {str(processes.precision(device, cfg.AMP)).replace('torch.', '')}; {cfg.steps} "
          f"batches per round, median of {cfg.repeat} rounds", flush=True)
    table = bench_data.bench_data(cfg, device, cfg.steps, cfg.repeat, log=lambda m: print(m, flush=True))
    print(table.astype(object).where(table.notna(), "").to_markdown(index=False, floatfmt=".3g"))
    return table


def write_output(cfg, table, environment):
    """The table as records, beside what produced it, written atomically."""
    options = {k: v for k, v in vars(cfg).items() if k.isupper() or k == "repeat"}
    os.makedirs(os.path.dirname(os.path.abspath(cfg.output)), exist_ok=True)
    folders.write_json(cfg.output, {"config": options, "rounds": cfg.repeat, "environment": environment,
                                         "finished": time.strftime("%Y-%m-%d %H:%M %Z"),
                                         "variants": table.to_dict("records")})
    print(f"written to {cfg.output}")


if __name__ == "__main__":
    exits.run(main, sys.argv[1:], again="run the same command again")
