"""Check the speed claims in a minute, without training: the baseline and every pruned variant,
from random weights, measured in one process with the same functions main.py uses.

    python bench.py                         # the reference input: 32 frames of 112x112
    python bench.py --quick                 # the --quick input
    python bench.py --channels-last false   # contiguous NCHW instead
"""
import copy
import sys

import pandas as pd
import torch

import config
import metrics
import prune_utils
import train
from model import EFRegressionModel


def bench(cfg, device):
    torch.manual_seed(cfg.SEED)
    dense = EFRegressionModel()
    variants = [("baseline", 0.0, dense)]
    methods = [("unstructured", cfg.UNSTRUCTURED_PRUNING_RATIOS), ("structured", cfg.STRUCTURED_PRUNING_RATIOS),
               ("structured_physical", cfg.STRUCTURED_PRUNING_RATIOS)]
    for method, ratios in methods:
        for ratio in ratios:
            model = prune_utils.apply(copy.deepcopy(dense), method, ratio, cfg.NUM_FRAMES, cfg.IMAGE_SIZE)
            variants.append((method, ratio, prune_utils.make_permanent(model)))
    rows = []
    for method, ratio, model in variants:
        nonzero, total = metrics.parameter_counts(model)
        rows.append({"method": method, "ratio": ratio, "params": total, "params_nonzero": nonzero,
                     **metrics.flops(model, cfg.NUM_FRAMES, cfg.IMAGE_SIZE),
                     **metrics.latency(model, cfg.NUM_FRAMES, cfg.IMAGE_SIZE, device, cfg.LATENCY_WARMUP_RUNS,
                                       cfg.LATENCY_TIMED_RUNS, cfg.CHANNELS_LAST)})
    table = pd.DataFrame(rows)
    base = table.iloc[0]
    table["theoretical_speedup"] = base.flops / table.effective_flops
    table["latency_speedup"] = base.latency_ms / table.latency_ms
    table["speedup_vs_flop_reduction"] = table.latency_speedup / (base.flops / table.flops)
    return table


def main(argv):
    cfg = config.load(argv)
    device = train.pick_device(cfg.DEVICE)
    table = bench(cfg, device)
    print(f"input: 1 video of {cfg.NUM_FRAMES} frames {cfg.IMAGE_SIZE}x{cfg.IMAGE_SIZE}; device {device}, "
          f"{torch.get_num_threads()} threads, channels_last {cfg.CHANNELS_LAST}, torch {torch.__version__}; "
          f"median and p90 of {cfg.LATENCY_TIMED_RUNS} runs after {cfg.LATENCY_WARMUP_RUNS} warm-up runs")
    columns = ["method", "ratio", "params_nonzero", "flops", "effective_flops", "latency_ms", "latency_p90_ms",
               "theoretical_speedup", "latency_speedup", "speedup_vs_flop_reduction"]
    print(table[columns].to_markdown(index=False, floatfmt=".3g"))
    return table


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except config.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
