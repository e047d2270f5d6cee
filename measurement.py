"""What is measured as each model finishes, and where a run's time goes. Latency is not measured here:
every model is timed at the end of the run, in interleaved rounds (latency.py)."""
import time

import methods
import metrics
import onnx_runtime
import quantize


def measure(model, cfg, checkpoint, inputs, method=None):
    """Every number reported for one model as it finishes, from the model as saved (by the main process
    alone), and the seconds each part took (`seconds_<part>`). inputs: sample_videos (to check the ONNX
    export), calibration (training videos, for INT8) and test (the whole test split, for the INT8 model).
    method: the model's, for INT8_METHODS (None: quantized whenever INT8 is on)."""
    clock = Clock()
    nonzero, total = metrics.parameter_counts(model)
    record = {**metrics.sparsity(model), "params": total, "params_nonzero": nonzero,
              "params_effective": metrics.effective_parameters(model, cfg.NUM_FRAMES, cfg.IMAGE_SIZE),
              **metrics.flops(model, cfg.NUM_FRAMES, cfg.IMAGE_SIZE), "checkpoint": checkpoint}
    clock.lap("pytorch")
    if cfg.ONNX_EXPORT:
        record.update(onnx_runtime.export(model, checkpoint[:-len(".pt")] + ".onnx", inputs.sample_videos,
                                          sizes=False))
        clock.lap("onnx")
    if quantized(cfg, method):
        int8_path = checkpoint[:-len(".pt")] + ".int8.onnx"
        quantize.int8_export(record["onnx_path"], inputs.calibration, int8_path,
                             method=cfg.INT8_CALIBRATION_METHOD, reduce_range=cfg.INT8_REDUCE_RANGE,
                             keep_fp32=cfg.INT8_KEEP_FP32)
        record.update(quantize.int8_metrics(int8_path, inputs.test, fp32_path=record["onnx_path"],
                                            gzip=cfg.GZIP_SIZES))
        clock.lap("int8")
    # the files' sizes (gzip: compressed side by side, one per core)
    sizes = metrics.file_sizes_of([checkpoint] + ([record["onnx_path"]] if cfg.ONNX_EXPORT else []),
                                  gzip=cfg.GZIP_SIZES)
    record.update(sizes[0])
    if cfg.ONNX_EXPORT:
        record.update(onnx_runtime.size_fields(sizes[1]))
    clock.lap("sizes")
    return {**record, **{f"seconds_{phase}": seconds for phase, seconds in clock.laps.items()}}


def quantized(cfg, method):
    """Whether a model of `method` is quantized to INT8: INT8 on, and INT8_METHODS empty or naming the
    method (a distilled or rewound model by its method's name)."""
    base = methods.base_method(method) if method else method
    return bool(cfg.INT8) and (not cfg.INT8_METHODS or method is None or base in cfg.INT8_METHODS)


def compare_to_baseline(record, baseline, cfg, control=None):
    """Changes against the baseline of the same seed; the MAE's 95% intervals over the same test videos.
    With the dense control of the same seed, the MAE's change against it too (paired likewise). The
    speedups come after the latency phase (latency.speedups)."""
    record.update(metrics.bootstrap_mae(record["test_errors"], baseline["test_errors"],
                                        cfg.BOOTSTRAP_SAMPLES))
    if control is not None and record is not control:
        record["mae_diff_vs_control"] = record["test_mae"] - control["test_mae"]
        record["mae_diff_vs_control_ci_low"], record["mae_diff_vs_control_ci_high"] = \
            metrics.paired_difference_interval(record["test_errors"], control["test_errors"],
                                               cfg.BOOTSTRAP_SAMPLES)
    record["mae_increase_pct"] = 100 * (record["test_mae"] - baseline["test_mae"]) / baseline["test_mae"]
    record["compression_ratio"] = baseline["params"] / record["params_effective"]
    record["theoretical_speedup"] = baseline["flops"] / record["effective_flops"]
    if "int8_test_mae" in record:  # INT8 against its own FP32 ONNX model on the same videos
        fp32 = "fp32_onnx_test_mae" if "fp32_onnx_test_errors" in record else "test_mae"
        record["int8_mae_change"] = record["int8_test_mae"] - record[fp32]
        record["int8_mae_change_ci_low"], record["int8_mae_change_ci_high"] = \
            metrics.paired_difference_interval(record["int8_test_errors"],
                                               record[fp32.replace("mae", "errors")], cfg.BOOTSTRAP_SAMPLES)
    return record


class Clock:
    """Seconds per phase: lap(name) adds the time since the last lap to `laps[name]`."""

    def __init__(self):
        self.laps, self.last = {}, time.perf_counter()

    def lap(self, name):
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self.last
        self.last = now
        return self.laps[name]


def time_line(record):
    """Where one model's time went, for the log."""
    parts = ", ".join(f"{name} {record[f'seconds_{name}']:.1f} s" for name in ("pytorch", "onnx", "int8")
                      if f"seconds_{name}" in record)
    return (f"{record['name']} (seed {record['seed']}): trained in {record['seconds_training']:.1f} s "
            f"({record['train_videos_per_s']:.1f} videos/s, {100 * record['data_wait_share']:.1f}% waiting "
            f"for data; validation {record['eval_videos_per_s']:.0f} videos/s), measured in {parts}")


def speed(history):
    """Where a training run's time went: videos/s trained and evaluated, the share spent waiting for data."""
    return {"seconds_training_steps": history["train_seconds"],
            "train_videos_per_s": history["train_videos"] / max(history["train_seconds"], 1e-9),
            "data_wait_share": history["data_wait_seconds"] / max(history["train_seconds"], 1e-9),
            "eval_videos_per_s": history.get("eval_videos", 0) / max(history.get("eval_seconds", 0.0), 1e-9)}
