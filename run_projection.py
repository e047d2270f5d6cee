"""check_gpu.py --project: this machine measured (machine_rates.py) for the configuration of the command
line and for --quick, the work of each counted (run_work.py), and both projections of `python main.py`'s
time printed phase by phase, with what was measured, what is counted and what is left out."""
import copy

import torch

import cli
from machine_rates import MEASURED, measure
from run_work import PHASES, int8_seconds, phase_totals, project, run_counts, split_sizes

LEFT_OUT = ("writing the sample data (first run only), pruning itself (masks, Torch-Pruning's graph), "
            "bootstrap intervals and results.json writes, loading the models for latency, torch.compile "
            "(--latency-compile), figures; one process (no torchrun); every model at the dense model's rates "
            "(masked models trained 0.7-0.95x as fast on a CPU, physically pruned and scratch ones faster)")


def duration(seconds):
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def measured_lines(cfg, seconds_per, seen):
    lines = [f"training {seen['train']:.3g} videos/s through batches.Batches + train.train, against a "
             f"ceiling of {seen['train_ceiling']:.3g} (batches already on the device): "
             f"{seen['train'] / seen['train_ceiling']:.2f}x, {100 * seen['data_wait_share']:.1f}% of the "
             f"steps' time waiting for data",
             f"evaluation {seen['eval']:.3g} videos/s (ceiling {seen['eval_ceiling']:.3g}); decoding and "
             f"caching {seen['decode']:.3g} videos/s; bookkeeping {seconds_per['models']:.1f} s per model",
             f"latency of one video: PyTorch {1000 * seconds_per['pytorch_runs']:.3g} ms"]
    if "onnx_exports" in seconds_per:
        lines[-1] += f", ONNX Runtime {1000 * seconds_per['onnx_runs']:.3g} ms"
        lines.append(f"ONNX Runtime scoring {1 / seconds_per['onnx_videos']:.3g} videos/s (batches of "
                     f"{4 * cfg.BATCH_SIZE}); ONNX export {seconds_per['onnx_exports']:.1f} s")
    if "int8_exports" in seconds_per:
        lines[-2] += f", INT8 {1000 * seconds_per['int8_runs']:.3g} ms"
        measured, used = seen["int8_export_at"]
        lines[-1] += (f"; INT8 scoring {1 / seconds_per['int8_videos']:.3g} videos/s, quantization "
                      f"{measured:.1f} s on {used} calibration video(s), {seconds_per['int8_exports']:.1f} s "
                      f"projected on {cfg.INT8_CALIBRATION_VIDEOS}")
    return lines


def projection_lines(cfg, counts, projected):
    totals = phase_totals(projected)
    training = sum(p.get("train_videos", 0) + p.get("val_videos", 0) for p in projected.values())
    models = counts["baseline"]["models"] + counts["pruned_models"].get("models", 0)
    lines = [f"{len(cfg.SEEDS)} seed(s) x {models // len(cfg.SEEDS)} models ({models} trained and measured), "
             f"{cfg.NUM_EPOCHS} baseline epochs, {cfg.FINE_TUNE_EPOCHS} fine-tuning epochs: "
             f"{sum(p.get('train_videos', 0) for p in counts.values()):,} training videos, "
             f"{sum(p.get('val_videos', 0) + p.get('eval_videos', 0) for p in counts.values()):,} evaluated"]
    lines += [f"  {phase.replace('_', ' '):<17}{duration(totals[phase]):>9}" for phase in PHASES]
    lines.append(f"  {'total':<17}{duration(sum(totals.values())):>9}   (training and validation "
                 f"{duration(training)})")
    return lines


def project_runs(argv, options, log=print):
    """Measure this machine for the configuration of argv and for --quick, and print both projections.
    Returns {label: (counts, seconds_per, projected)}."""
    import latency
    import onnx_runtime
    import plan_checks
    import processes
    found, measured = {}, {}
    for label, args in (("python main.py", argv), ("python main.py --quick", ["--quick", *argv])):
        cfg = cli.load(args)
        plan_checks.refuse(cfg)  # as main.py: a ratio, budget or allocation the model cannot give
        cfg.ONNX_EXPORT = onnx_runtime.available() if cfg.ONNX_EXPORT is None else cfg.ONNX_EXPORT
        cfg.INT8 = cfg.ONNX_EXPORT if cfg.INT8 is None else cfg.INT8
        device = processes.pick_device(cfg.DEVICE)
        torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK and device.type == "cuda"
        if device.type == "cpu":
            latency.steady_cpu_allocator()  # as main.py times on a CPU
        sizes = split_sizes(cfg)
        log(f"\n{label}{' ' + ' '.join(argv) if argv else ''}: {cfg.NUM_FRAMES} frames of "
            f"{cfg.IMAGE_SIZE}x{cfg.IMAGE_SIZE}, batch {cfg.BATCH_SIZE}, measured on {device} "
            f"({str(processes.precision(device, cfg.AMP)).replace('torch.', '')})")
        key = tuple(repr(getattr(cfg, name)) for name in MEASURED)
        if key not in measured:
            measured[key] = measure(cfg, device, options, log)
        else:
            log("  (the same input as above: measured once)")
        seconds_per, seen = copy.deepcopy(measured[key])
        if cfg.INT8:
            calibrating = min(cfg.INT8_CALIBRATION_VIDEOS, sizes[0])
            seconds_per["int8_exports"] = int8_seconds(*seen["int8_export_at"], calibrating,
                                                       seconds_per["onnx_runs"])
        counts = run_counts(cfg, sizes)
        projected = project(counts, seconds_per)
        for line in measured_lines(cfg, seconds_per, seen):
            log("  measured: " + line)
        log(f"  projected for {'/'.join(map(str, sizes))} train/val/test videos:")
        for line in projection_lines(cfg, counts, projected):
            log("  " + line)
        found[label] = counts, seconds_per, projected
    log("\ncounted: every model main.py trains (baseline, then the plan of methods x ratios with the dense "
        "control, random and scratch controls, for every seed): training epochs and the validation pass "
        "after each, test passes, the passes right after pruning, BatchNorm recalibrations, the layer "
        "sensitivity, ONNX export, INT8 quantization and scoring, per-model bookkeeping, the latency rounds "
        "(warm-up and timed runs in every runtime), decoding the videos once")
    log("left out: " + LEFT_OUT)
    return found
