"""Check the speed claims in a minute, without training: the baseline and every pruned variant,
from random weights, measured in one process with the same functions main.py uses.

    python bench.py                         # the reference input: 32 frames of 112x112
    python bench.py --quick                 # the --quick input
    python bench.py --channels-last false   # contiguous NCHW instead
    python bench.py --onnx-export false     # PyTorch only (ONNX Runtime columns need onnxruntime)

    python bench.py --data [--quick]        # the data pipeline: training and evaluation videos/s and
                                            # the share of each step spent waiting for data, cache off/on
"""
import copy
import os
import sys
import tempfile
import time

import pandas as pd
import torch

import config
import metrics
import prune_utils
import train
from model import EFRegressionModel


def bench(cfg, device, onnx_dir=None):
    torch.manual_seed(cfg.SEED)
    dense = EFRegressionModel()
    variants = [("baseline", 0.0, dense)]
    methods = [("unstructured", cfg.UNSTRUCTURED_PRUNING_RATIOS), ("structured", cfg.STRUCTURED_PRUNING_RATIOS),
               ("structured_physical", cfg.STRUCTURED_PRUNING_RATIOS)]
    for method, ratios in methods:
        for ratio in ratios:
            model = prune_utils.apply(copy.deepcopy(dense), method, ratio, cfg.NUM_FRAMES, cfg.IMAGE_SIZE,
                                      cfg.PHYSICAL_ROUND_TO)
            variants.append((method, ratio, prune_utils.make_permanent(model)))
    rows = []
    video = torch.randn(1, cfg.NUM_FRAMES, 3, cfg.IMAGE_SIZE, cfg.IMAGE_SIZE)
    for method, ratio, model in variants:
        nonzero, total = metrics.parameter_counts(model)
        rows.append({"method": method, "ratio": ratio, "params": total, "params_nonzero": nonzero,
                     **metrics.flops(model, cfg.NUM_FRAMES, cfg.IMAGE_SIZE),
                     **metrics.latency(model, cfg.NUM_FRAMES, cfg.IMAGE_SIZE, device, cfg.LATENCY_WARMUP_RUNS,
                                       cfg.LATENCY_TIMED_RUNS, cfg.CHANNELS_LAST)})
        if onnx_dir:
            onnx = metrics.onnx_metrics(model, os.path.join(onnx_dir, f"{method}_{ratio:g}.onnx"), video,
                                        cfg.LATENCY_WARMUP_RUNS, cfg.LATENCY_TIMED_RUNS)
            rows[-1].update(onnx_latency_ms=onnx["onnx_latency_ms"], onnx_gzip_mb=onnx["onnx_gzip_size_mb"])
    table = pd.DataFrame(rows)
    base = table.iloc[0]
    table["theoretical_speedup"] = base.flops / table.effective_flops
    table["latency_speedup"] = base.latency_ms / table.latency_ms
    table["speedup_vs_flop_reduction"] = table.latency_speedup / (base.flops / table.flops)
    if onnx_dir:
        table["onnx_speedup"] = base.onnx_latency_ms / table.onnx_latency_ms
    return table


def bench_data(cfg, device):
    """One training epoch and one evaluation pass through the same loops and loaders as main.py,
    without and with the decoded-frame cache."""
    import main as experiment
    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        for cache in (False, True):
            run_cfg = copy.copy(cfg)
            run_cfg.CACHE_FRAMES, run_cfg.CACHE_DIR = cache, cache_dir
            start = time.perf_counter()
            splits, loaders, _ = experiment.load_data(run_cfg, device)  # checks every video; fills the cache
            prepare = time.perf_counter() - start
            torch.manual_seed(cfg.SEED)
            model = EFRegressionModel(55.0)
            history = train.train(model, loaders["train"], loaders["val"], 1, cfg.LEARNING_RATE, device,
                                  desc="bench", log=lambda *_: None, amp=cfg.AMP)
            start = time.perf_counter()
            videos = train.evaluate(model, loaders["test"], device, cfg.AMP)["videos"]
            evaluation = time.perf_counter() - start
            rows.append({"cache": cache, "check_and_cache_s": prepare,
                         "train_videos_per_s": history["train_videos"] / history["train_seconds"],
                         "data_wait_share": history["data_wait_seconds"] / history["train_seconds"],
                         "eval_videos_per_s": videos / evaluation,
                         "workers": loaders["train"].num_workers})
    return pd.DataFrame(rows)


def main(argv):
    if "--data" in argv:
        argv = [a for a in argv if a != "--data"]
        cfg = config.load(argv)
        device = train.pick_device(cfg.DEVICE)
        table = bench_data(cfg, device)
        print(f"data pipeline on {cfg.DATA_ROOT}: {cfg.NUM_FRAMES} frames {cfg.IMAGE_SIZE}x{cfg.IMAGE_SIZE}, "
              f"batch {cfg.BATCH_SIZE}; device {device}, {torch.get_num_threads()} threads, "
              f"precision {str(train.precision(device, cfg.AMP)).replace('torch.', '')}")
        print(table.to_markdown(index=False, floatfmt=".3g"))
        return table
    cfg = config.load(argv)
    device = train.pick_device(cfg.DEVICE)
    use_onnx = metrics.onnx_available() if cfg.ONNX_EXPORT is None else cfg.ONNX_EXPORT
    with tempfile.TemporaryDirectory() as onnx_dir:
        table = bench(cfg, device, onnx_dir if use_onnx else None)
    print(f"input: 1 video of {cfg.NUM_FRAMES} frames {cfg.IMAGE_SIZE}x{cfg.IMAGE_SIZE}; device {device}, "
          f"{torch.get_num_threads()} threads, channels_last {cfg.CHANNELS_LAST}, torch {torch.__version__}; "
          f"median and p90 of {cfg.LATENCY_TIMED_RUNS} runs after {cfg.LATENCY_WARMUP_RUNS} warm-up runs")
    columns = ["method", "ratio", "params_nonzero", "flops", "effective_flops", "latency_ms", "latency_p90_ms",
               "theoretical_speedup", "latency_speedup", "speedup_vs_flop_reduction"]
    columns += [c for c in ("onnx_latency_ms", "onnx_speedup", "onnx_gzip_mb") if c in table]
    print(table[columns].to_markdown(index=False, floatfmt=".3g"))
    return table


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except config.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
