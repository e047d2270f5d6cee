"""What to know before a long run: torch/CUDA versions, devices, memory, and a tiny timed matmul.

    python check_gpu.py                     # seconds: versions, devices, memory, a timed matmul
    python check_gpu.py --project           # about a minute more on a GPU: what the runs will take here
    python check_gpu.py --project --data-root /data/EchoNet-Dynamic   # measured on a few of its videos
    python check_gpu.py --selftest          # minutes on a GPU: the GPU path end to end, PASS/FAIL per part

--project measures, on this machine and through the run's own code, what the reference run spends its
time on: training and evaluation videos/s through the real data path (batches.Batches feeding
train.train, bench_data's rounds) against the model's ceiling (the same steps on batches already on
the device) and the share of the steps spent waiting for data; ONNX export and ONNX Runtime scoring
(FP32 and INT8) and INT8 quantization; one video's latency in every runtime; decoding a video; the
per-model bookkeeping (parameter and FLOP counts, checkpoint, file sizes). It multiplies these rates
by the work the configuration asks for (work_counts: every model of main.py's plan for every seed)
and prints the projected time of `python main.py` and of `python main.py --quick` phase by phase.
Every other option is main.py's (config.py) and changes the configuration projected:
`python check_gpu.py --project --num-epochs 10` projects `python main.py --num-epochs 10` and
`python main.py --quick --num-epochs 10`. Without --data-root the data path runs on synthetic videos
(create_sample_data, in a temporary folder); --data-root measures on a few videos of that folder and
counts its splits as FileList.csv gives them.

--selftest is what to run first on a new GPU box (gpu_selftest.py says what each part checks): a tiny
main.py run with INT8, the sensitivity, the controls and distillation, its continuation, the GPU tests,
bench.py --data's ceilings and a torchrun start on two GPUs, each ending in a PASS, FAIL or SKIP line;
exit status 0 when none failed. Without a GPU it stops at once (exit 2); --device cpu runs it on the CPU.
"""
import processes
import argparse
import copy
import os
import platform
import sys
import tempfile
import time

import torch
import torchvision

import cli
from cli import exits

PHASES = ("data_preparation", "baseline", "sensitivity", "pruned_models", "latency")  # main.py's clock laps
# The units of work the projection counts, each at its measured seconds per unit.
UNITS = {
    "train_videos": "videos through a training step (batches.Batches feeding train.train)",
    "val_videos": "videos through the validation pass after every training epoch",
    "eval_videos": "other PyTorch evaluation: test passes, the model right after pruning, the sensitivity",
    "recalibration_videos": "BatchNorm recalibration's forward passes (at the evaluation rate)",
    "models": "per-model bookkeeping: parameter, FLOP and effective counts, checkpoint, file sizes",
    "onnx_exports": "ONNX exports, each checked against PyTorch",
    "onnx_videos": "FP32 ONNX Runtime scoring of the test split (paired with INT8)",
    "int8_exports": "INT8 quantizations (pre-processing, calibration, quantize_static, checks)",
    "int8_videos": "INT8 ONNX Runtime scoring of the test split",
    "pytorch_runs": "latency: runs of one video in PyTorch",
    "onnx_runs": "latency: runs of one video in ONNX Runtime (FP32)",
    "int8_runs": "latency: runs of one video in ONNX Runtime (INT8)",
    "decoded_videos": "videos decoded and cached (a first run; a later one reads the cache)",
}
LEFT_OUT = ("writing the sample data (first run only), pruning itself (masks, Torch-Pruning's graph), "
            "bootstrap intervals and results.json writes, loading the models for latency, torch.compile "
            "(--latency-compile), figures; one process (no torchrun); every model at the dense model's rates "
            "(masked models trained 0.7-0.95x as fast on a CPU, physically pruned and scratch ones faster)")


def timed_matmul(device, n=4096, repeats=10, dtype=torch.float32):
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / repeats
    return seconds * 1000, 2 * n ** 3 / seconds / 1e12


def describe():
    """The machine: versions, devices, memory, a timed matmul."""
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}")
    print(f"CUDA build {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
          f"CPU threads {torch.get_num_threads()}")
    if not torch.cuda.is_available():
        print("CUDA is not available: main.py will run on the CPU (use --quick there).")
        ms, tflops = timed_matmul(torch.device("cpu"), n=1024, repeats=3)
        print(f"cpu: 1024x1024 fp32 matmul {ms:.1f} ms ({tflops * 1000:.0f} GFLOP/s)")
        return
    for i in range(torch.cuda.device_count()):
        device = torch.device("cuda", i)
        props = torch.cuda.get_device_properties(device)
        free, total = torch.cuda.mem_get_info(device)
        print(f"cuda:{i} {props.name}, compute capability {props.major}.{props.minor}, "
              f"{total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free), bf16 {processes.native_bf16(device)}")
        for dtype in (torch.float32, torch.bfloat16):
            ms, tflops = timed_matmul(device, dtype=dtype)
            print(f"  4096x4096 {str(dtype).split('.')[-1]} matmul: {ms:.2f} ms ({tflops:.1f} TFLOP/s)")


# --- the arithmetic: work counted from the configuration, times measured rates ----------------------

def work_counts(cfg, sizes, layers, plan, pruning_steps=1):
    """{phase: {unit: count}} (UNITS) of `python main.py` with configuration cfg, as main.run does it.
    sizes: (train, val, test) videos; layers: (prunable layers, of which Conv2d) in the pruning scope,
    and the backbone's coupled channel groups;
    plan: main.pruning_plan(cfg), the (method, ratio) of every model after the baseline, for each seed;
    pruning_steps: seed_models.pruning_steps(cfg). cfg.ONNX_EXPORT and cfg.INT8 are taken as resolved (None
    counts as off). Pure: no measurement, no file."""
    train, val, test = sizes
    onnx, int8 = bool(cfg.ONNX_EXPORT), bool(cfg.INT8)
    recalibration = min(cfg.BN_RECALIBRATION_BATCHES * cfg.BATCH_SIZE, train)  # videos per recalibration
    seeds = len(cfg.SEEDS)

    def model(epochs, val_passes, test_passes, recalibrations):  # one model: trained, evaluated, measured
        return {"train_videos": epochs * train, "val_videos": epochs * val,
                "eval_videos": val_passes * val + test_passes * test,
                "recalibration_videos": recalibrations * recalibration, "models": 1,
                "onnx_exports": int(onnx), "onnx_videos": int(int8) * test, "int8_exports": int(int8),
                "int8_videos": int(int8) * test}

    def add(phase, part):
        for unit, count in part.items():
            counts[phase][unit] = counts[phase].get(unit, 0) + seeds * count
    counts = {phase: {} for phase in PHASES}
    counts["data_preparation"]["decoded_videos"] = train + val + test
    add("baseline", model(cfg.NUM_EPOCHS, 0, 1, 0))  # the test pass after training
    if cfg.SENSITIVITY:  # each layer by L1 weights, each Conv2d by L2 channels, at every ratio; dense as
        prunings = (layers[0] + layers[1]) * len(cfg.SENSITIVITY_RATIOS)  # trained and recalibrated
        add("sensitivity", {"eval_videos": (2 + prunings) * val,
                            "recalibration_videos": (1 + prunings) * recalibration})
    if "sensitivity" in cfg.CHANNEL_ALLOCATIONS:  # each coupled group at every ratio; dense recalibrated
        prunings = layers[2] * len(cfg.SENSITIVITY_RATIOS)
        add("sensitivity", {"eval_videos": (1 + prunings) * val,
                            "recalibration_videos": (1 + prunings) * recalibration})
    for method, *_ in plan:
        if method in ("scratch", "scratch_kd"):  # methods.SCRATCH: NUM_EPOCHS + FINE_TUNE_EPOCHS
            add("pruned_models", model(cfg.NUM_EPOCHS + cfg.FINE_TUNE_EPOCHS, 0, 1, 0))
        elif pruning_steps == 1:  # one-shot: validation and test right after pruning, fine-tuning, test
            add("pruned_models", model(cfg.FINE_TUNE_EPOCHS, 1, 2, 1))
        else:  # gradual: a one-shot copy tested; every step recalibrated, validation after the last; test
            add("pruned_models", model(cfg.FINE_TUNE_EPOCHS, 1, 2, 1 + pruning_steps))
    models = seeds * (1 + len(plan))
    runs = models * cfg.LATENCY_ROUNDS * (cfg.LATENCY_WARMUP_RUNS + cfg.LATENCY_TIMED_RUNS)
    counts["latency"] = {"pytorch_runs": runs, "onnx_runs": int(onnx) * runs, "int8_runs": int(int8) * runs}
    return counts


def project(counts, seconds_per):
    """{phase: {unit: seconds}}: every count of work_counts times its measured seconds per unit
    (a unit missing from seconds_per is not counted). Pure."""
    return {phase: {unit: count * seconds_per[unit] for unit, count in units.items() if unit in seconds_per}
            for phase, units in counts.items()}


def phase_totals(projected):
    return {phase: sum(parts.values()) for phase, parts in projected.items()}


def split_sizes(cfg):
    """(train, val, test) videos the run will use: FileList.csv's Split column where it has one, else
    the configured counts (the sample data, or a seeded split of an EchoNet-Dynamic folder)."""
    import dataset
    counts = (cfg.NUM_TRAIN_VIDEOS, cfg.NUM_VAL_VIDEOS, cfg.NUM_TEST_VIDEOS)
    if cfg.DATA_ROOT == cfg.SAMPLE_DATA_ROOT:
        return counts
    filelist = dataset.assign_splits(dataset.read_filelist(cfg.DATA_ROOT), counts, cfg.SEED)
    sizes = tuple(int((filelist.Split == split).sum()) for split in dataset.SPLITS)
    empty = [split for split, size in zip(dataset.SPLITS, sizes) if size == 0]
    if empty:  # here, naming the user's file: the copy measured on would be named otherwise
        path = os.path.join(cfg.DATA_ROOT, "FileList.csv")
        raise dataset.DataError(f"split {empty[0]} of {path} is empty; every split needs at least one video.")
    return sizes


def run_counts(cfg, sizes):
    """work_counts for cfg, with main.py's plan and the model's prunable layers and coupled groups."""
    import allocation
    import main as experiment
    import prune_utils
    import seed_models
    from model import EFRegressionModel
    layers = prune_utils.prunable_layers(EFRegressionModel(), cfg.PRUNING_SCOPE)
    convs = sum(isinstance(m, torch.nn.Conv2d) for _, m in layers)
    groups = len(allocation.ChannelPlan(EFRegressionModel(), cfg.IMAGE_SIZE).channels)
    return work_counts(cfg, sizes, (len(layers), convs, groups), experiment.pruning_plan(cfg),
                       seed_models.pruning_steps(cfg))


# --- the measurements ---------------------------------------------------------------------------

def measurement_data(cfg, folder, videos, log):
    """A small copy of the data for measuring, in `folder`: `videos` (train, val, test) synthetic videos
    (create_sample_data), or the first videos of each split of cfg.DATA_ROOT (its Videos/ linked)."""
    import pandas as pd
    from create_sample_data import create_sample_data
    import dataset
    root = os.path.join(folder, "echonet")
    if cfg.DATA_ROOT == cfg.SAMPLE_DATA_ROOT:
        log(f"no --data-root given: measuring on synthetic videos (create_sample_data, "
            f"{'/'.join(map(str, videos))} train/val/test) in a temporary folder; pass --data-root for "
            f"EchoNet-Dynamic's own decoding speed")
        create_sample_data(root, *videos, seed=cfg.SEED, log=lambda *_: None)
        return root
    counts = (cfg.NUM_TRAIN_VIDEOS, cfg.NUM_VAL_VIDEOS, cfg.NUM_TEST_VIDEOS)
    filelist = dataset.assign_splits(dataset.read_filelist(cfg.DATA_ROOT), counts, cfg.SEED)
    parts = [filelist[filelist.Split == split].head(n) for split, n in zip(("TRAIN", "VAL", "TEST"), videos)]
    os.makedirs(root)
    pd.concat(parts).to_csv(os.path.join(root, "FileList.csv"), index=False)
    os.symlink(os.path.abspath(os.path.join(cfg.DATA_ROOT, "Videos")), os.path.join(root, "Videos"))
    log(f"measuring on the first {'/'.join(map(str, videos))} train/val/test videos of {cfg.DATA_ROOT}")
    return root


def measure_training(cfg, device, folder, options, log):
    """Decoding, then training and evaluation through the real data path against the ceiling
    (bench_data.training_and_evaluation). Returns (seconds per unit, what was measured, the splits)."""
    import bench_data
    import dataset
    batch = cfg.BATCH_SIZE
    videos = (options.steps * batch, batch, 4 * batch) if options.videos is None else (options.videos,) * 3
    cfg = copy.copy(cfg)
    cfg.DATA_ROOT = measurement_data(cfg, folder, videos, log)
    # a fresh cache: decoded as a first run decodes
    cfg.CACHE_DIR, cfg.CACHE_FRAMES = os.path.join(folder, "cache"), True
    start = time.perf_counter()
    splits, loaders, _ = dataset.load_data(cfg, device, lambda *_: None)
    decoding = (time.perf_counter() - start) / sum(len(s) for s in splits.values())
    rows = {r["what"]: r for r in bench_data.training_and_evaluation(cfg, device, loaders, options.steps,
                                                                     options.rounds, lambda *_: None)}
    pipeline, evaluation = rows["training, whole pipeline"], rows["evaluation, whole pipeline"]
    seen = {"train": pipeline["videos_per_s"], "eval": evaluation["videos_per_s"], "decode": 1 / decoding,
            "train_ceiling": pipeline["videos_per_s"] / pipeline["x_ceiling"],
            "eval_ceiling": evaluation["videos_per_s"] / evaluation["x_ceiling"],
            "data_wait_share": pipeline["data_wait_share"]}
    seconds_per = {"train_videos": 1 / seen["train"], "val_videos": 1 / seen["eval"],
                   "eval_videos": 1 / seen["eval"], "recalibration_videos": 1 / seen["eval"],
                   "decoded_videos": decoding}
    return seconds_per, seen, splits


def measure_models(cfg, device, folder, splits, int8_videos):
    """One dense model as main.py measures each: bookkeeping (checkpoint, counts, sizes), ONNX export and
    scoring, INT8 quantization on `int8_videos` calibration videos and scoring, and one video's latency
    in each runtime (one round). Returns (seconds per unit, what was measured)."""
    import batches
    import latency
    import measurement
    import onnx_runtime
    import quantize
    from model import EFRegressionModel, save_checkpoint
    torch.manual_seed(cfg.SEED)
    model = EFRegressionModel(55.0)
    test = splits["test"]
    plain = copy.copy(cfg)  # what measurement.measure does besides ONNX and INT8 (timed on their own below)
    plain.ONNX_EXPORT = plain.INT8 = False
    sample = torch.stack([test[i][0] for i in range(min(4, len(test)))])
    scoring = batches.Batches(test.clips, test.efs, 4 * cfg.BATCH_SIZE, torch.device("cpu"))  # as main.py's
    checkpoint = os.path.join(folder, "model.pt")
    start = time.perf_counter()
    save_checkpoint(checkpoint, model, method="baseline", num_frames=cfg.NUM_FRAMES,
                    image_size=cfg.IMAGE_SIZE)
    measurement.measure(model, plain, checkpoint, None)
    seconds_per, seen, sessions = {"models": time.perf_counter() - start}, {}, {}
    runners = {"pytorch_runs": latency.pytorch_runner(model, sample[:1], device, cfg.CHANNELS_LAST,
                                                      processes.precision(device, cfg.AMP))}
    if cfg.ONNX_EXPORT:
        path = os.path.join(folder, "model.onnx")
        start = time.perf_counter()
        onnx_runtime.export(model, path, sample, sizes=False)
        seconds_per["onnx_exports"] = time.perf_counter() - start
        sessions = {"onnx": quantize.session(path)}
        runners["onnx_runs"] = latency.onnx_runner(sessions["onnx"], sample[:1])
    if cfg.INT8:
        int8_path = os.path.join(folder, "model.int8.onnx")
        calibration = quantize.calibration_videos(splits["train"], int8_videos, cfg.SEED)
        start = time.perf_counter()
        quantize.int8_export(path, calibration, int8_path, method=cfg.INT8_CALIBRATION_METHOD,
                             reduce_range=cfg.INT8_REDUCE_RANGE, keep_fp32=cfg.INT8_KEEP_FP32)
        seen["int8_export_at"] = (time.perf_counter() - start, len(calibration))
        sessions["int8"] = quantize.session(int8_path)
        runners["int8_runs"] = latency.onnx_runner(sessions["int8"], sample[:1])
    times = latency.rounds(runners, 1, cfg.LATENCY_WARMUP_RUNS, max(3, min(cfg.LATENCY_TIMED_RUNS, 10)))
    seconds_per.update({unit: measured[0][0] / 1000 for unit, measured in times.items()})
    for name, sess in sessions.items() if cfg.ONNX_EXPORT else ():
        start = time.perf_counter()
        _, target = quantize.predict(sess, scoring)
        seconds_per[f"{name}_videos"] = (time.perf_counter() - start) / len(target)
    return seconds_per, seen


# What a measurement depends on: two configurations alike in these are measured once.
MEASURED = ("DATA_ROOT", "SEED", "NUM_FRAMES", "IMAGE_SIZE", "BATCH_SIZE", "DEVICE", "AMP", "CUDNN_BENCHMARK",
            "CHANNELS_LAST", "CLIPS_ON_DEVICE", "ONNX_EXPORT", "INT8", "INT8_CALIBRATION_METHOD",
            "INT8_REDUCE_RANGE", "INT8_KEEP_FP32", "LATENCY_WARMUP_RUNS", "LATENCY_TIMED_RUNS")


def measure(cfg, device, options, log):
    """Seconds per unit of work (UNITS) for cfg's input on this machine, and what was measured; the
    INT8 quantization as measured on options.int8_videos calibration videos (see int8_seconds)."""
    import dataset
    with tempfile.TemporaryDirectory(prefix="check-gpu-") as folder:
        try:
            seconds_per, seen, splits = measure_training(cfg, device, folder, options, log)
        except dataset.DataError as e:  # found in the copy measured on: the user's file is the one to fix
            if cfg.DATA_ROOT == cfg.SAMPLE_DATA_ROOT:  # synthetic videos of our own
                raise
            copy_root = os.path.join(folder, "echonet")
            raise dataset.DataError(str(e).replace(copy_root, cfg.DATA_ROOT.rstrip(os.sep))) from None
        more, also = measure_models(cfg, device, folder, splits, options.int8_videos)
    return {**seconds_per, **more}, {**seen, **also}


def int8_seconds(measured, used, calibrating, seconds_per_video):
    """One INT8 quantization on `calibrating` videos, from one on `used` videos that took `measured` s:
    calibration runs the FP32 model, augmented with every tensor's min and max, on one video at a
    time, so each further video is taken to cost one FP32 ONNX Runtime run of one video."""
    return measured + max(0, calibrating - used) * seconds_per_video


# --- what it prints ----------------------------------------------------------------------------

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


def own_options(p):
    """check_gpu's options (the others are main.py's)."""
    p.add_argument("--project", action="store_true", help="measure this machine (about a minute on a GPU) "
                   "and project the time of python main.py and python main.py --quick, with the other "
                   "options given")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="--project: training batches timed per round (default 3 on a GPU, 2 on a CPU)")
    p.add_argument("--rounds", type=int, default=None, metavar="N", help="--project: interleaved rounds of "
                   "pipeline and ceiling, their median taken (default 3 on a GPU, 1 on a CPU)")
    p.add_argument("--videos", type=int, default=None, metavar="N", help="--project: videos per split "
                   "decoded for measuring (default: steps x batch for training, one batch for validation, "
                   "4 x batch for test)")
    p.add_argument("--int8-videos", type=int, default=4, metavar="N", help="--project: calibration videos "
                   "of the INT8 quantization timed (default 4; each further one projected at an ONNX Runtime "
                   "run's time)")
    p.add_argument("--selftest", action="store_true", help="check this GPU box end to end (minutes): one "
                   "PASS, FAIL or SKIP line a part and a summary; exit status 0 when no part failed; with "
                   "--device cpu, on the CPU at tiny sizes (gpu_selftest.py)")
    p.add_argument("--selftest-out", metavar="PATH", help="--selftest: also write every part's verdict and "
                   "numbers to this JSON file, part by part")
    p.add_argument("--selftest-skip", default="", metavar="PARTS", help="--selftest: leave out these parts, "
                   "comma-separated (environment, end_to_end, continuation, gpu_tests, data_path, torchrun)")
    return p


def main(argv=()):
    """The machine described; with --project, both runs projected (project_runs' result)."""
    argv = list(argv)
    p = own_options(cli.parser(__doc__))
    options = cli.load(argv, p)  # --help, and every option checked
    for name in ("steps", "rounds", "videos", "int8_videos"):
        if getattr(options, name) is not None and getattr(options, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if options.selftest:  # its parts, verdicts and exit status are gpu_selftest.py's
        import gpu_selftest
        own = own_options(argparse.ArgumentParser(add_help=False, allow_abbrev=False))
        sys.exit(gpu_selftest.selftest(options, own.parse_known_args(argv)[1]))  # main.py's options given
    describe()
    if not options.project:
        return None
    gpu = torch.cuda.is_available()
    options.steps = options.steps or (3 if gpu else 2)
    options.rounds = options.rounds or (3 if gpu else 1)
    own = own_options(argparse.ArgumentParser(add_help=False, allow_abbrev=False))
    _, run_args = own.parse_known_args(argv)  # main.py's options, for the two configurations projected
    return project_runs(run_args, options)


if __name__ == "__main__":  # a GPU that is there but cannot be used (driver, out of memory): MACHINE
    exits.run(main, sys.argv[1:], again="run the same command again", machine=(RuntimeError,))
