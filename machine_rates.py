"""Seconds per unit of work (run_work.UNITS) on this machine, measured through the run's own code for
check_gpu.py --project: training and evaluation videos/s through the real data path (batches.Batches
feeding train.train, bench_data's rounds) against the model's ceiling (the same steps on batches already
on the device) and the share of the steps spent waiting for data; ONNX export and ONNX Runtime scoring
(FP32 and INT8) and INT8 quantization; one video's latency in every runtime; decoding a video; the
per-model bookkeeping (parameter and FLOP counts, checkpoint, file sizes). Without --data-root the data
path runs on synthetic videos (create_sample_data, in a temporary folder); --data-root measures on
a few videos of that folder."""
import copy
import os
import tempfile
import time

import torch

# What a measurement depends on: two configurations alike in these are measured once.
MEASURED = ("DATA_ROOT", "SEED", "NUM_FRAMES", "IMAGE_SIZE", "BATCH_SIZE", "DEVICE", "AMP", "CUDNN_BENCHMARK",
            "CHANNELS_LAST", "CLIPS_ON_DEVICE", "ONNX_EXPORT", "INT8", "INT8_CALIBRATION_METHOD",
            "INT8_REDUCE_RANGE", "INT8_KEEP_FP32", "LATENCY_WARMUP_RUNS", "LATENCY_TIMED_RUNS")


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
    import processes
    from model import EFRegressionModel, save_checkpoint
    torch.manual_seed(cfg.SEED)
    model = EFRegressionModel(55.0, arch=cfg.MODEL)
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


def measure(cfg, device, options, log):
    """Seconds per unit of work (run_work.UNITS) for cfg's input on this machine, and what was measured; the
    INT8 quantization as measured on options.int8_videos calibration videos (see run_work.int8_seconds)."""
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
