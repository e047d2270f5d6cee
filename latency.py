"""Latency in interleaved rounds: every model of a run timed together, once all of them are trained.

Load on a machine drifts over a run, so models timed minutes apart, each right after its training, were
not comparable: the dense control (the baseline's network) read 7.5 ms against the baseline's 6.7 in
ONNX Runtime. Here each round times every model once in every runtime (warm-up, then
LATENCY_TIMED_RUNS runs of one video: time_runs, the one timing loop), in an order shuffled
from round to round with a fixed seed and rotated so that the first place passes from model to model.
A model's latency is the median of its round medians, and the lowest and highest round median are its
spread. Every round median is kept in round order (`<prefix>_round_ms`): speed.py ranks a model against
its reference round by round, each round's readings taken moments apart.
"""
import copy
import ctypes
import os
import random
import time
from collections import namedtuple

import numpy as np
import torch

import onnx_runtime
import quantize
import speed
import processes
from storage import folders
from model import load_checkpoint, memory_format


def orders(keys, rounds, seed=0):
    """Every round's order: a seeded shuffle, rotated so that round r starts with the r-th key (no key
    always goes first)."""
    keys = list(keys)
    rng = random.Random(seed)
    result = []
    for r in range(rounds):
        order = rng.sample(keys, len(keys))
        first = order.index(keys[r % len(keys)]) if keys else 0
        result.append(order[first:] + order[:first])
    return result


def rounds(runners, count, warmup, runs, seed=0):
    """{key: [(median, p90) ms of each round]} for {key: Runner}: each round times every runner
    once, in the round's order."""
    times = {key: [] for key in runners}
    for order in orders(runners, count, seed):
        for key in order:
            runner = runners[key]
            times[key].append(time_runs(runner.run, warmup, runs, runner.synchronize))
    return times


def summary(prefix, times):
    """A record's fields for one runtime, from its rounds: the median of the round medians, their lowest
    and highest (the spread), the median of the rounds' 90th percentiles, the rounds and each round's
    median."""
    medians = [median for median, _ in times]
    return {f"{prefix}_ms": float(np.median(medians)), f"{prefix}_low_ms": min(medians),
            f"{prefix}_high_ms": max(medians),
            f"{prefix}_p90_ms": float(np.median([p90 for _, p90 in times])),
            f"{prefix}_rounds": len(times), f"{prefix}_round_ms": medians}


def speedups(records):
    """Every record's speedups over the baseline of its seed (`latency_speedup`, `onnx_latency_speedup`,
    `int8_latency_speedup`: INT8 against the FP32 dense model in ONNX Runtime), from the round medians,
    and the range the two spreads allow (`_low`: the baseline's lowest over the model's highest; `_high`:
    the other way round), which holds 1 exactly where the two spreads overlap: a description;
    speed.py ranks with the rounds paired."""
    baselines = {r["seed"]: r for r in records if r["method"] == "baseline"}
    for record in records:
        base = baselines.get(record["seed"], {})
        for prefix, runtime in speed.RUNTIMES.items():
            reference = runtime.reference
            if f"{prefix}_low_ms" not in record or f"{reference}_low_ms" not in base:
                continue
            record[f"{prefix}_speedup"] = base[f"{reference}_ms"] / record[f"{prefix}_ms"]
            record[f"{prefix}_speedup_low"] = base[f"{reference}_low_ms"] / record[f"{prefix}_high_ms"]
            record[f"{prefix}_speedup_high"] = base[f"{reference}_high_ms"] / record[f"{prefix}_low_ms"]
    return records


def runtimes(record):
    """The runtimes a record is timed in: PyTorch, and ONNX Runtime for each file it has."""
    return [prefix for prefix, runtime in speed.RUNTIMES.items() if record.get(runtime.file)]


def untimed(records):
    """The records that lack round latencies in a runtime: the run stopped before or during the latency
    phase (which writes nothing until every model is timed), or a model was trained again."""
    return [r for r in records if any(f"{prefix}_rounds" not in r for prefix in runtimes(r))]


def session_or_export(record, prefix, path, cfg, video, log):
    """The ONNX Runtime session of a record's file. An FP32 ONNX file that is missing or cannot be loaded
    is exported again from the model's checkpoint (the same model: its size fields are updated); an INT8
    file is refused, saying what to do: its record's INT8 numbers were measured on that file."""
    try:
        return quantize.session(path)
    except quantize.QuantizationError as e:
        problem = str(e) if os.path.isfile(path) else f"{path} is missing"
        checkpoint = folders.resolve(cfg.RESULTS_DIR, record["checkpoint"])
        if prefix != "onnx_latency":
            raise quantize.QuantizationError(
                f"{problem}. It is the INT8 export of {record['name']} (seed {record['seed']}), whose INT8 "
                f"numbers in results.json were measured on it, so it is not quantized again behind them. "
                f"Restore it from a backup, or move {checkpoint} aside (that model is then trained and "
                f"measured again), and run the same command.") from None
    log(f"{problem}: exporting {record['name']} (seed {record['seed']}) to ONNX again from {checkpoint}")
    model, _ = load_checkpoint(checkpoint)
    # checked against PyTorch on the timing video; its sizes measured as they first were
    exported = onnx_runtime.export(model, path, video, gzip="onnx_gzip_size_mb" in record)
    record.update({k: exported[k] for k in ("onnx_size_mb", "onnx_gzip_size_mb") if k in exported})
    return quantize.session(path)


def time_models(records, cfg, device, video, log):
    """The latency phase: every model of the run loaded (PyTorch from its checkpoint, ONNX Runtime
    sessions of its FP32 and INT8 files), timed in cfg.LATENCY_ROUNDS interleaved rounds on `video`
    (1, T, 3, H, W), and each record given its fields and speedups. Returns the seconds it took."""
    start = time.perf_counter()
    dtype = processes.precision(device, cfg.AMP)
    runners = {}
    for i, record in enumerate(records):
        for prefix in runtimes(record):
            path = folders.resolve(cfg.RESULTS_DIR, record[speed.RUNTIMES[prefix].file])
            if prefix == "latency":
                model, _ = load_checkpoint(path)
                runners[i, prefix] = pytorch_runner(model, video, device, cfg.CHANNELS_LAST, dtype,
                                                    cfg.LATENCY_COMPILE)
            else:
                session = session_or_export(record, prefix, path, cfg, video, log)
                runners[i, prefix] = onnx_runner(session, video)
    loaded = time.perf_counter() - start
    times = rounds(runners, cfg.LATENCY_ROUNDS, cfg.LATENCY_WARMUP_RUNS, cfg.LATENCY_TIMED_RUNS)
    for (i, prefix), measured in times.items():
        setup = runners[i, prefix].setup
        records[i].update(summary(prefix, measured), **(
            {**setup, "latency_runs": cfg.LATENCY_TIMED_RUNS} if prefix == "latency"
            else {f"{prefix.split('_')[0]}_threads": setup["threads"]}))
    speedups(records)
    seconds = time.perf_counter() - start
    log(f"latency: {len(records)} models, {len(runners)} model-runtime pairs in {cfg.LATENCY_ROUNDS} "
        f"interleaved rounds of {cfg.LATENCY_TIMED_RUNS} runs after {cfg.LATENCY_WARMUP_RUNS} warm-up runs, "
        f"{seconds:.0f} s ({loaded:.0f} s loading)" + (
            "; median of the rounds (lowest–highest round), speedup over the baseline:" if cfg.VERBOSE else
            "; each model's in summary.md and results.csv"))
    for record in records if cfg.VERBOSE else []:
        log(f"  {record['name']} (seed {record['seed']}): " + ", ".join(
            f"{speed.RUNTIMES[p].name} {record[f'{p}_ms']:.3g} ms "
            f"({record[f'{p}_low_ms']:.3g}–{record[f'{p}_high_ms']:.3g}), "
            f"{record.get(f'{p}_speedup', float('nan')):.2f}x" for p in runtimes(record)))
    return seconds


# --- how one model is timed -------------------------------------------------------------

def time_runs(run, warmup, runs, synchronize=lambda: None):
    """Median and 90th percentile milliseconds of run(), after warm-up: the one timing loop."""
    times = []
    for i in range(warmup + runs):
        synchronize()
        start = time.perf_counter()
        run()
        synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times)), float(np.percentile(times, 90))


Runner = namedtuple("Runner", "run synchronize setup")
Runner.__doc__ = """What latency times: run() takes one video through one model, synchronize() waits for the
device around it, setup says how (fields for the record). latency.rounds times runners in rounds."""


def pytorch_runner(model, video, device, channels_last=True, dtype=torch.float32, compiled=False):
    """PyTorch's runner: one video (1, T, 3, H, W) through a copy of the model in eval and inference mode,
    in the precision of training (autocast dtype; fp32 on CPU), CUDA-synchronised on a GPU. compiled:
    through torch.compile with frozen weights, so BatchNorm is folded and activations fused, as a
    deployment runtime runs the model; compiled here, outside any timed run."""
    model = copy.deepcopy(model).eval().to(device)
    if channels_last:
        model = model.to(memory_format=memory_format(model, channels_last))
    if compiled:
        # Static shapes, and room in dynamo's cache (shared by every model of the class) for one more
        # entry per model: models timed in interleaved rounds then never recompile, and none runs eagerly
        # (or, with fullgraph, fails) once the cache is full.
        torch._dynamo.config.recompile_limit += 1
        model = torch.compile(model, fullgraph=True, dynamic=False, options={"freezing": True})
    video = video.to(device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    def run():
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            model(video)
    if compiled:
        run()
    return Runner(run, sync, {"latency_device": str(device), "latency_threads": torch.get_num_threads(),
                              "latency_channels_last": channels_last,
                              "latency_precision": str(dtype).replace("torch.", ""),
                              "latency_compiled": compiled})


def onnx_runner(session, video):
    """ONNX Runtime's runner: one video through a session (of an FP32 or an INT8 file) on the CPU."""
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(
        np.asarray(video.cpu() if torch.is_tensor(video) else video, dtype=np.float32))}
    return Runner(lambda: session.run(None, feed), lambda: None,
                  {"threads": session.get_session_options().intra_op_num_threads})


def compile_error(device):
    """None where torch.compile works on `device`, else why not (on a CPU it needs a C++ compiler)."""
    try:
        torch.compiler.reset()
        torch.compile(lambda x: (2 * x).relu() + 1)(torch.zeros(8, device=device))  # a generated kernel
        return None
    except Exception as e:  # the backends raise many types; the reason is what the user needs
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"


def steady_cpu_allocator():
    """Make CPU timings repeatable. glibc adapts its mmap threshold and returns freed memory to the
    OS as it goes, so PyTorch's large activations page-fault on some runs and not on others: the
    dense model's latency at 32x112x112 swung between 80 and 96 ms from one repeat to the next, and
    76-78 ms with both thresholds fixed. ONNX Runtime has its own arena and did not move.
    True when set (Linux with glibc), False elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))
    except (OSError, AttributeError):
        return False
