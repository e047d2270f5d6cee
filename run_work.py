"""The work `python main.py` does, counted from its configuration, and its time at measured rates
(check_gpu.py --project): every model of main.py's plan for every seed in units of work (UNITS), phase
by phase (main.py's clock laps), each unit times its seconds measured on this machine (machine_rates.py).
The counting and the projection are pure; split_sizes reads the data folder's FileList.csv, run_counts
builds the model to count its layers."""
import os


import methods
import seed_models


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


def work_counts(cfg, sizes, layers, plan, pruning_steps=1):
    """{phase: {unit: count}} (UNITS) of `python main.py` with configuration cfg, as main.run does it.
    sizes: (train, val, test) videos; layers: (prunable layers, of which convolutions, 2D or 3D) in the
    pruning scope, and the backbone's coupled channel groups;
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
    if cfg.SENSITIVITY:  # each layer by L1 weights, each convolution by L2 channels, at every ratio; dense as
        prunings = (layers[0] + layers[1]) * len(cfg.SENSITIVITY_RATIOS)  # trained and recalibrated
        add("sensitivity", {"eval_videos": (2 + prunings) * val,
                            "recalibration_videos": (1 + prunings) * recalibration})
    if "sensitivity" in cfg.CHANNEL_ALLOCATIONS:  # each coupled group at every ratio; dense recalibrated
        prunings = layers[2] * len(cfg.SENSITIVITY_RATIOS)
        add("sensitivity", {"eval_videos": (1 + prunings) * val,
                            "recalibration_videos": (1 + prunings) * recalibration})
    for method, ratio, *_ in plan:
        if methods.from_scratch(method):  # seed_models.scratch_epochs: Scratch-E's or Scratch-B's
            add("pruned_models", model(seed_models.scratch_epochs(cfg, method, ratio), 0, 1, 0))
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
    from model import CONVS, EFRegressionModel
    dense = EFRegressionModel(arch=cfg.MODEL)
    layers = prune_utils.prunable_layers(dense, cfg.PRUNING_SCOPE)
    convs = sum(isinstance(m, CONVS) for _, m in layers)
    groups = len(allocation.ChannelPlan(dense, cfg.IMAGE_SIZE, cfg.NUM_FRAMES).channels)
    return work_counts(cfg, sizes, (len(layers), convs, groups), experiment.pruning_plan(cfg),
                       seed_models.pruning_steps(cfg))


def int8_seconds(measured, used, calibrating, seconds_per_video):
    """One INT8 quantization on `calibrating` videos, from one on `used` videos that took `measured` s:
    calibration runs the FP32 model, augmented with every tensor's min and max, on one video at a
    time, so each further video is taken to cost one FP32 ONNX Runtime run of one video."""
    return measured + max(0, calibrating - used) * seconds_per_video
