"""The experiment: train the EF baseline, then prune it by each method at each ratio, fine-tune with
the masks in place, measure everything, and write results/ as each model finishes.

    python main.py                 # the reference configuration
    python main.py --quick         # a few minutes on a laptop CPU, on the built-in sample data
    python main.py --data-root /data/EchoNet-Dynamic --num-epochs 10
"""
import copy
import json
import os
import platform
import random
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import torch
import torchvision
from torch.utils.data import DataLoader
from tqdm import tqdm

import config
import metrics
import prune_utils
import train
import visualize_model_architecture
import visualize_results
from create_sample_data import create_sample_data
from dataset import DataError, EchoNetVideoDataset
from model import EFRegressionModel, load_pretrained, save_checkpoint


def log(message):
    print(message, flush=True)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def environment(device):
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__)), timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    import torch_pruning
    return {
        "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
        "torch_pruning": torch_pruning.__version__, "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "cuda": torch.version.cuda if device.type == "cuda" else None, "git_commit": commit,
    }


def load_data(cfg, device):
    """The three splits as DataLoaders; generates the sample data when DATA_ROOT is its default."""
    if cfg.DATA_ROOT == cfg.SAMPLE_DATA_ROOT and not os.path.isfile(os.path.join(cfg.DATA_ROOT, "FileList.csv")):
        log(f"no data at {cfg.DATA_ROOT}: generating the built-in synthetic sample data first")
        create_sample_data(cfg.DATA_ROOT, cfg.NUM_TRAIN_VIDEOS, cfg.NUM_VAL_VIDEOS, cfg.NUM_TEST_VIDEOS, cfg.SEED, log)
    counts = (cfg.NUM_TRAIN_VIDEOS, cfg.NUM_VAL_VIDEOS, cfg.NUM_TEST_VIDEOS)
    cache = cfg.CACHE_DIR if cfg.CACHE_FRAMES else None
    splits = {s: EchoNetVideoDataset(cfg.DATA_ROOT, s, cfg.NUM_FRAMES, cfg.IMAGE_SIZE, counts, cfg.SEED, cache)
              for s in ("train", "val", "test")}
    if cache:  # decode every video once, here, so a bad video stops the run before any training
        for split in splits.values():
            for i in tqdm(range(len(split)), desc=f"decoding {split.split} videos", leave=False):
                split.clip(i)
    loader = dict(batch_size=cfg.BATCH_SIZE, num_workers=cfg.NUM_WORKERS, pin_memory=device.type == "cuda",
                  persistent_workers=cfg.NUM_WORKERS > 0)
    generator = torch.Generator().manual_seed(cfg.SEED)
    loaders = {name: DataLoader(split, shuffle=name == "train", generator=generator, **loader)
               for name, split in splits.items()}
    return splits, loaders


def measure(model, cfg, device, checkpoint, sample_videos):
    """Every number reported for one model, from the model as saved."""
    nonzero, total = metrics.parameter_counts(model)
    record = {
        **metrics.sparsity(model), "params": total, "params_nonzero": nonzero,
        **metrics.flops(model, cfg.NUM_FRAMES, cfg.IMAGE_SIZE),
        **metrics.latency(model, cfg.NUM_FRAMES, cfg.IMAGE_SIZE, device, cfg.LATENCY_WARMUP_RUNS,
                          cfg.LATENCY_TIMED_RUNS, cfg.CHANNELS_LAST),
        **metrics.file_sizes(checkpoint), "checkpoint": checkpoint,
    }
    if cfg.ONNX_EXPORT:
        record.update(metrics.onnx_metrics(model, checkpoint[:-len(".pt")] + ".onnx", sample_videos,
                                           cfg.LATENCY_WARMUP_RUNS, cfg.LATENCY_TIMED_RUNS))
    return record


def compare_to_baseline(record, baseline):
    record["mae_increase_pct"] = 100 * (record["test_mae"] - baseline["test_mae"]) / baseline["test_mae"]
    record["compression_ratio"] = baseline["params"] / record["params_nonzero"]
    record["theoretical_speedup"] = baseline["flops"] / record["effective_flops"]
    record["latency_speedup"] = baseline["latency_ms"] / record["latency_ms"]
    if "onnx_latency_ms" in record:
        record["onnx_latency_speedup"] = baseline["onnx_latency_ms"] / record["onnx_latency_ms"]
    return record


def run_baseline(cfg, loaders, device, initial_ef, sample_videos):
    seed_everything(cfg.SEED)
    model = EFRegressionModel(initial_ef)
    pretrained, reason = load_pretrained(model, cfg.PRETRAINED, cfg.PRETRAINED_PATH)
    log(f"baseline: ResNet-18 {'with ImageNet weights' if pretrained else 'from random init'} ({reason})")
    history = train.train(model, loaders["train"], loaders["val"], cfg.NUM_EPOCHS, cfg.LEARNING_RATE,
                          device, desc="baseline", log=log)
    checkpoint = os.path.join(cfg.CHECKPOINT_DIR, "baseline.pt")
    save_checkpoint(checkpoint, model, method="baseline", ratio=0.0, num_frames=cfg.NUM_FRAMES,
                    image_size=cfg.IMAGE_SIZE)
    record = {"name": "baseline", "method": "baseline", "ratio": 0.0,
              **prefixed("test_", train.evaluate(model, loaders["test"], device)),
              "val_mae": min(history["val_mae"]), **measure(model, cfg, device, checkpoint, sample_videos),
              "history": history}
    record["sparsity_before_fine_tune"] = record["sparsity"]
    return model, compare_to_baseline(record, record), {"used": pretrained, "reason": reason}


def run_pruned(baseline_model, baseline, method, ratio, cfg, loaders, device, sample_videos):
    """Prune a copy of the trained baseline, fine-tune it (masks in place unless the reference's
    flaw is switched on), make the pruning permanent, measure."""
    name = f"{method}_{ratio:g}"
    seed_everything(cfg.SEED)
    model = prune_utils.apply(copy.deepcopy(baseline_model), method, ratio, cfg.NUM_FRAMES, cfg.IMAGE_SIZE,
                              cfg.PHYSICAL_ROUND_TO)
    if cfg.REMOVE_MASKS_BEFORE_FINE_TUNE:
        prune_utils.make_permanent(model)
    sparsity_before = metrics.sparsity(model)["sparsity"]
    mae_before = train.evaluate(model, loaders["test"], device)["mae"]
    history = train.train(model, loaders["train"], loaders["val"], cfg.FINE_TUNE_EPOCHS,
                          cfg.FINE_TUNE_LEARNING_RATE, device, desc=name, log=log)
    prune_utils.make_permanent(model)
    checkpoint = os.path.join(cfg.CHECKPOINT_DIR, f"{name}.pt")
    save_checkpoint(checkpoint, model, method=method, ratio=ratio, num_frames=cfg.NUM_FRAMES,
                    image_size=cfg.IMAGE_SIZE)
    record = {"name": name, "method": method, "ratio": ratio,
              **prefixed("test_", train.evaluate(model, loaders["test"], device)),
              "val_mae": min(history["val_mae"], default=None), "test_mae_before_fine_tune": mae_before,
              "sparsity_before_fine_tune": sparsity_before,
              "masks_removed_before_fine_tune": cfg.REMOVE_MASKS_BEFORE_FINE_TUNE,
              **measure(model, cfg, device, checkpoint, sample_videos), "history": history}
    return compare_to_baseline(record, baseline)


def prefixed(prefix, values):
    return {prefix + k: v for k, v in values.items()}


# --- writing results -----------------------------------------------------------------------------

def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_results(results, results_dir, figures=()):
    """results.json (everything), results.csv (one row per model) and summary.md."""
    write_atomic(os.path.join(results_dir, "results.json"), json.dumps(results, indent=2))
    rows = pd.DataFrame([{k: v for k, v in r.items() if k != "history"} for r in results["models"]])
    write_atomic(os.path.join(results_dir, "results.csv"), rows.to_csv(index=False))
    summary = summary_markdown(results, [os.path.relpath(f, results_dir) for f in figures])
    write_atomic(os.path.join(results_dir, "summary.md"), summary)
    return summary


def summary_markdown(results, figures=()):
    models = pd.DataFrame(results["models"])
    env, floor = results["environment"], results["mean_predictor"]
    lines = ["# ef-prune results\n",
             f"Data: {results['config']['DATA_ROOT']}, {results['splits']['train']}/{results['splits']['val']}/"
             f"{results['splits']['test']} train/val/test videos of {results['config']['NUM_FRAMES']} frames "
             f"{results['config']['IMAGE_SIZE']}×{results['config']['IMAGE_SIZE']}. ImageNet weights: "
             f"{'yes' if results['pretrained']['used'] else 'no'} ({results['pretrained']['reason']}).\n",
             f"Environment: {env['device']} ({env['device_name']}), {env['torch_threads']} threads, "
             f"python {env['python']}, torch {env['torch']}, torchvision {env['torchvision']}, "
             f"torch-pruning {env['torch_pruning']}, commit {env['git_commit'] or 'none'}.\n",
             f"Mean predictor (always the training mean, EF {floor['ef']:.1f}): test MAE {floor['test_mae']:.2f}.\n"]
    tables = [
        ("Table 1. Baseline", ["baseline"],
         {"test_mae": "MAE", "test_rmse": "RMSE", "test_r2": "R²", "params": "Params", "flops": "FLOPs",
          "latency_ms": "Latency (ms)", "size_mb": "Size (MB)"}),
        ("Table 2. Unstructured pruning (global L1)", ["unstructured"],
         {"ratio": "Ratio", "sparsity_before_fine_tune": "Sparsity before FT", "sparsity": "Sparsity after FT",
          "test_mae": "MAE", "mae_increase_pct": "MAE +%", "compression_ratio": "Compression",
          "latency_ms": "Latency (ms)", "latency_speedup": "Speedup", "gzip_size_mb": "gzip (MB)"}),
        ("Table 3. Structured pruning (L2 channels): masked vs physically removed",
         ["structured", "structured_physical"],
         {"method": "Method", "ratio": "Ratio", "sparsity": "Sparsity", "test_mae": "MAE",
          "mae_increase_pct": "MAE +%", "params_nonzero": "Params (non-zero)", "compression_ratio": "Compression",
          "flops": "FLOPs", "theoretical_speedup": "Theor. speedup", "latency_ms": "Latency (ms)",
          "latency_speedup": "Speedup", "size_mb": "Size (MB)"}),
    ]
    if "onnx_latency_ms" in models:
        tables.append(("Table 4. ONNX Runtime (CPU execution provider)", list(models.method.unique()),
                       {"method": "Method", "ratio": "Ratio", "onnx_latency_ms": "ORT latency (ms)",
                        "onnx_latency_speedup": "ORT speedup", "latency_speedup": "PyTorch speedup",
                        "onnx_size_mb": "ONNX (MB)", "onnx_gzip_size_mb": "ONNX gzip (MB)",
                        "onnx_max_abs_diff": "max |ORT − PyTorch| (EF %)"}))
    for title, methods, columns in tables:
        rows = models[models.method.isin(methods)]
        if rows.empty:
            continue
        table = rows[list(columns)].rename(columns=columns)
        lines += [f"\n## {title}\n", table.to_markdown(index=False, floatfmt=".4g") + "\n"]
    lines += ["\n## What the numbers show\n"] + [p + "\n" for p in method_paragraphs(models, floor["test_mae"])]
    if figures:
        lines += ["\n## Figures\n"] + [f"- [{os.path.basename(f)}]({f})" for f in figures if f.endswith(".png")]
    return "\n".join(lines)


def span(values, fmt):
    low, high = min(values), max(values)
    return format(low, fmt) if format(low, fmt) == format(high, fmt) else f"{low:{fmt}}–{high:{fmt}}"


def method_paragraphs(models, mean_mae):
    """One paragraph per method, every statement computed from the rows."""
    base = models[models.method == "baseline"].iloc[0]
    beat = "below" if base.test_mae < mean_mae else "not below"
    paragraphs = [f"**Baseline.** Test MAE {base.test_mae:.2f}, {base.test_mae / mean_mae:.2f}× the mean "
                  f"predictor's {mean_mae:.2f} ({beat} it); R² {base.test_r2:.3f}; {base.latency_ms:.1f} ms per video."]
    names = {"unstructured": "Unstructured (global L1, masks)", "structured": "Structured (L2 channels, masks)",
             "structured_physical": "Structured (L2 channels, removed with Torch-Pruning)"}
    for method, name in names.items():
        rows = models[models.method == method]
        if rows.empty:
            continue
        worse = int((rows.test_mae >= mean_mae).sum())
        text = (f"**{name}.** At ratios {span(rows.ratio, 'g')}, test MAE {span(rows.test_mae, '.2f')} "
                f"({span(rows.mae_increase_pct, '+.0f')}% vs the baseline); {worse} of {len(rows)} "
                f"{'is' if worse == 1 else 'are'} no better than the mean predictor. ")
        if method != "structured_physical":
            held = (rows.sparsity - rows.sparsity_before_fine_tune).abs().max()
            text += (f"Sparsity {span(rows.sparsity_before_fine_tune, '.3f')} after pruning and "
                     f"{span(rows.sparsity, '.3f')} after fine-tuning (largest change {held:.4f}). ")
        text += (f"Non-zero parameters {span(rows.params_nonzero / 1e6, '.2f')} M of {base.params / 1e6:.2f} M "
                 f"(compression {span(rows.compression_ratio, '.2f')}×); executed FLOPs "
                 f"{span(rows.flops / 1e9, '.2f')} G of {base.flops / 1e9:.2f} G; measured latency speedup "
                 f"{span(rows.latency_speedup, '.2f')}× against a theoretical {span(rows.theoretical_speedup, '.2f')}×; "
                 f"checkpoint {span(rows.size_mb, '.1f')} MB ({span(rows.gzip_size_mb, '.1f')} MB gzipped) "
                 f"vs {base.size_mb:.1f} MB ({base.gzip_size_mb:.1f} MB).")
        paragraphs.append(text)
    return paragraphs


# --- the experiment ------------------------------------------------------------------------------

def main(argv):
    cfg = config.load(argv)
    device = train.pick_device(cfg.DEVICE)
    if cfg.ONNX_EXPORT is None:
        cfg.ONNX_EXPORT = metrics.onnx_available()
        if not cfg.ONNX_EXPORT:
            log("onnxruntime is not installed: no ONNX export or ONNX Runtime timing (pip install onnx onnxruntime)")
    elif cfg.ONNX_EXPORT and not metrics.onnx_available():
        raise config.ConfigError("ONNX_EXPORT is on but onnxruntime is not installed: pip install onnx onnxruntime")
    for folder in (cfg.RESULTS_DIR, cfg.CHECKPOINT_DIR):
        os.makedirs(folder, exist_ok=True)
    splits, loaders = load_data(cfg, device)
    train_efs, test_efs = splits["train"].efs, splits["test"].efs
    mean_ef, mean_mae = metrics.mean_predictor_mae(train_efs, test_efs)
    log(f"{len(splits['train'])}/{len(splits['val'])}/{len(splits['test'])} train/val/test videos from "
        f"{cfg.DATA_ROOT}; device {device}; mean predictor test MAE {mean_mae:.2f}")
    results = {"config": vars(cfg), "environment": environment(device),
               "splits": {name: len(split) for name, split in splits.items()},
               "mean_predictor": {"ef": mean_ef, "test_mae": mean_mae}, "models": []}

    # a few real test videos, to check each ONNX export against PyTorch
    sample_videos = torch.stack([splits["test"][i][0] for i in range(min(4, len(splits["test"])))])
    start = time.perf_counter()
    baseline_model, baseline, results["pretrained"] = run_baseline(cfg, loaders, device, mean_ef, sample_videos)
    results["models"].append(baseline)
    write_results(results, cfg.RESULTS_DIR)
    log(f"baseline: test MAE {baseline['test_mae']:.2f} (mean predictor {mean_mae:.2f}), "
        f"R² {baseline['test_r2']:.3f}, {baseline['latency_ms']:.1f} ms/video")

    methods = [("unstructured", cfg.UNSTRUCTURED_PRUNING_RATIOS), ("structured", cfg.STRUCTURED_PRUNING_RATIOS)]
    if cfg.PHYSICAL_STRUCTURED_PRUNING:
        methods.append(("structured_physical", cfg.STRUCTURED_PRUNING_RATIOS))
    for method, ratios in methods:
        for ratio in ratios:
            record = run_pruned(baseline_model, baseline, method, ratio, cfg, loaders, device, sample_videos)
            results["models"].append(record)
            write_results(results, cfg.RESULTS_DIR)
            log(f"{record['name']}: sparsity {record['sparsity_before_fine_tune']:.3f} -> {record['sparsity']:.3f}, "
                f"test MAE {record['test_mae']:.2f} ({record['mae_increase_pct']:+.1f}%), "
                f"{record['params_nonzero']:,} non-zero params, {record['latency_ms']:.1f} ms/video "
                f"({record['latency_speedup']:.2f}x)")
    results["seconds"] = time.perf_counter() - start
    write_results(results, cfg.RESULTS_DIR)
    figures = []
    if cfg.DRAW_FIGURES:
        physical = [r["checkpoint"] for r in results["models"] if r["method"] == "structured_physical"]
        figures = visualize_results.draw_all(cfg.RESULTS_DIR, cfg.FIGURES_DIR)
        figures += visualize_model_architecture.draw_checkpoints(physical, cfg.FIGURES_DIR)
    log("\n" + write_results(results, cfg.RESULTS_DIR, figures))
    log(f"done in {results['seconds'] / 60:.1f} min; results in {cfg.RESULTS_DIR}/")
    return results


def error_message(e):
    # an error raised in a DataLoader worker arrives wrapped in the worker's traceback text
    text = str(e).strip()
    return text.splitlines()[-1].split("DataError: ", 1)[-1] if "Traceback" in text else text


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (config.ConfigError, DataError) as e:
        print(f"error: {error_message(e)}", file=sys.stderr)
        sys.exit(2)
