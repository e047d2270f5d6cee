"""`python bench.py --data`: where the time of a training run goes, measured in one process against
ceilings measured in the same run, so the ratios hold on any machine.

- check and cache: every video decoded once into a fresh cache, on one thread, then on every core;
- the data path alone (batches drawn, moved to the device, normalised; no model): the per-video
  DataLoader path of commit c0ad554 (cache file read and normalised per video in workers) and the
  batches drawn from the split's clips array (batches.py);
- training and evaluation: the ceiling (the same model, precision and batch, its batches already
  normalised on the device) and the whole pipeline (batches.py feeding train.train), interleaved
  round by round so a slow spell of a shared machine hits both; the median round is reported;
- the device's arithmetic ceiling: one large matrix product in the training precision, timed in the
  same rounds, against which the training ceiling's FLOP rate (torch.utils.flop_counter's count of a
  training step) is given: how much faster training could get on this device without less work.
"""
import copy
import itertools
import os
import statistics
import tempfile
import time

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, DistributedSampler
from torch.utils.flop_counter import FlopCounterMode

import dataset
import processes
import train
from model import EFRegressionModel, memory_format

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class PerVideo(torch.utils.data.Dataset):
    """The data path before this version, as it was: each item read from its cache file and normalised
    to float in a DataLoader worker, then collated, pinned and copied."""

    def __init__(self, split):
        self.split = split

    def __len__(self):
        return len(self.split)

    def __getitem__(self, index):
        clip = np.load(self.split.cache_path(self.split.names[index]))
        video = torch.from_numpy(clip).permute(0, 3, 1, 2).float().div_(255)
        return (video - MEAN) / STD, torch.tensor(self.split.efs[index])


class First:
    """The first `steps` batches of `batches` (and its epoch and length), to time a few steps only."""

    def __init__(self, batches, steps):
        self.batches, self.steps = batches, steps

    def set_epoch(self, epoch):
        train.set_epoch(self.batches, epoch)

    def __len__(self):
        return min(self.steps, len(self.batches))

    def __iter__(self):
        return itertools.islice(iter(self.batches), len(self))


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def data_rate(batches, device, steps):
    """Videos per second through the data path alone: batches drawn, on the device, normalised."""
    synchronize(device)
    start, videos = time.perf_counter(), 0
    for video, ef in First(batches, steps):
        video.to(device, non_blocking=True), ef.to(device, non_blocking=True)
        videos += len(ef)
    synchronize(device)
    return videos / (time.perf_counter() - start)


def matmul_rate(device, dtype, size, runs=3):
    """GFLOP/s of a size x size matrix product in `dtype` on `device`: the arithmetic ceiling."""
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    a @ b  # warm-up
    synchronize(device)
    start = time.perf_counter()
    for _ in range(runs):
        a @ b
    synchronize(device)
    return runs * 2 * size ** 3 / (time.perf_counter() - start) / 1e9


def training_flops(model, videos):
    """FLOPs of a training step (forward and backward) per video, counted by torch.utils.flop_counter."""
    with FlopCounterMode(display=False) as counter:
        copy.deepcopy(model)(videos).sum().backward()
    return counter.get_total_flops() / len(videos)


def check_and_cache(cfg, threads):
    """Seconds to check and decode every video of the three splits into a fresh cache on `threads`."""
    with tempfile.TemporaryDirectory() as cache:
        counts = (cfg.NUM_TRAIN_VIDEOS, cfg.NUM_VAL_VIDEOS, cfg.NUM_TEST_VIDEOS)
        splits = {s: dataset.EchoNetVideoDataset(cfg.DATA_ROOT, s, cfg.NUM_FRAMES, cfg.IMAGE_SIZE,
                                                 counts=counts, seed=cfg.SEED, cache_dir=cache,
                                                 period=cfg.FRAME_PERIOD)
                  for s in ("train", "val", "test")}
        start = time.perf_counter()
        dataset.decode(splits, cfg.SKIP_BAD_VIDEOS, lambda *_: None, threads)
        return time.perf_counter() - start, sum(len(s) for s in splits.values())


def bench_data(cfg, device, steps=3, rounds=3, log=print):
    """The rows of `python bench.py --data` (see the module's docstring)."""
    cfg = copy.copy(cfg)
    cfg.CACHE_FRAMES = True  # the path before this version read every clip from its cache file
    # generates the sample data where needed, fills CACHE_DIR
    splits, loaders, _ = dataset.load_data(cfg, device, lambda *_: None)
    rows = []
    for threads in (1, None):
        seconds, videos = check_and_cache(cfg, threads)
        rows.append({"what": f"check and cache, {threads or os.cpu_count()} thread(s)",
                     "videos_per_s": videos / seconds, "seconds": seconds, "videos": videos})
    rows[1]["x_one_thread"] = rows[1]["videos_per_s"] / rows[0]["videos_per_s"]
    log(f"check and cache: {rows[0]['seconds']:.1f} s on one thread, {rows[1]['seconds']:.1f} s on every "
        f"core")
    before = DataLoader(PerVideo(splits["train"]), batch_size=cfg.BATCH_SIZE,
                        pin_memory=device.type == "cuda",
                        num_workers=min(8, os.cpu_count()) if device.type == "cuda" else 0,
                        sampler=DistributedSampler(PerVideo(splits["train"]), 1, 0, shuffle=True,
                                                   seed=cfg.SEED))
    rates = [(data_rate(before, device, 4 * steps), data_rate(loaders["train"], device, 4 * steps))
             for _ in range(rounds)]  # interleaved, like every ceiling below
    per_video, batched = (statistics.median(r[i] for r in rates) for i in (0, 1))
    rows += [{"what": "data path alone, per video (DataLoader, as at c0ad554)", "videos_per_s": per_video},
             {"what": "data path alone, batches (this version)", "videos_per_s": batched,
              "x_per_video": batched / per_video}]
    log(f"data path alone: {per_video:.0f} videos/s per video, {batched:.0f} videos/s in batches")
    rows += training_and_evaluation(cfg, device, loaders, steps, rounds, log)
    return pd.DataFrame(rows)


def training_and_evaluation(cfg, device, loaders, steps, rounds, log):
    """Ceiling against whole pipeline, for training steps and for an evaluation pass, in `rounds`."""
    ready = [(v.clone(), e.clone()) for v, e in First(loaders["train"], steps)]  # on the device, normalised
    # 4x the batch: as many videos
    evaluation = [(v.clone(), e.clone()) for v, e in First(loaders["test"], 1)]
    torch.manual_seed(cfg.SEED)
    model = EFRegressionModel(55.0, arch=cfg.MODEL)
    layout = memory_format(model, cfg.CHANNELS_LAST) if cfg.CHANNELS_LAST else torch.contiguous_format
    model.to(device, memory_format=layout)

    one_video = [(evaluation[0][0][:1], evaluation[0][1][:1])]  # the validation pass after the epoch: untimed

    def fit(batches):
        history = train.train(copy.deepcopy(model), batches, one_video, 1, cfg.LEARNING_RATE, device,
                              desc="bench", log=lambda *_: None, amp=cfg.AMP, channels_last=cfg.CHANNELS_LAST)
        return (history["train_videos"] / history["train_seconds"],
                history["data_wait_seconds"] / history["train_seconds"])

    def evaluate(batches):
        result = train.evaluate(model, batches, device, cfg.AMP)
        return result["videos"] / result["seconds"]
    fit(ready[:1]), evaluate(evaluation)  # warm-up: cuDNN's autotuner, the allocator
    dtype, size = processes.precision(device, cfg.AMP), 8192 if device.type == "cuda" else 2048
    timed = {"train ceiling": [], "train pipeline": [], "wait": [], "eval ceiling": [], "eval pipeline": [],
             "matmul": []}
    for round_ in range(rounds):
        timed["train ceiling"].append(fit(ready)[0])
        rate, wait = fit(First(loaders["train"], steps))
        timed["train pipeline"].append(rate), timed["wait"].append(wait)
        timed["eval ceiling"].append(evaluate(evaluation))
        timed["eval pipeline"].append(evaluate(First(loaders["test"], 1)))
        timed["matmul"].append(matmul_rate(device, dtype, size))
        log(f"round {round_ + 1}/{rounds}: training {timed['train pipeline'][-1]:.2f} videos/s against a "
            f"ceiling of {timed['train ceiling'][-1]:.2f}; evaluation {timed['eval pipeline'][-1]:.1f} "
            f"against {timed['eval ceiling'][-1]:.1f}")
    median = {k: statistics.median(v) for k, v in timed.items()}
    trained = median["train ceiling"] * training_flops(model, ready[0][0]) / 1e9
    log(f"training ceiling {trained:.1f} GFLOP/s against {median['matmul']:.1f} GFLOP/s for a {size}x{size} "
        f"matrix product: {trained / median['matmul']:.2f}x the device's arithmetic ceiling")
    return [{"what": f"matrix product {size}x{size}, {str(dtype).replace('torch.', '')} (arithmetic ceiling)",
             "gflop_per_s": median["matmul"]},
            {"what": "training ceiling (batches already on the device)",
             "videos_per_s": median["train ceiling"], "gflop_per_s": trained,
             "x_matmul": trained / median["matmul"]},
            {"what": "training, whole pipeline", "videos_per_s": median["train pipeline"],
             "x_ceiling": median["train pipeline"] / median["train ceiling"],
             "data_wait_share": median["wait"]},
            {"what": "evaluation ceiling (batches already on the device)",
             "videos_per_s": median["eval ceiling"]},
            {"what": "evaluation, whole pipeline", "videos_per_s": median["eval pipeline"],
             "x_ceiling": median["eval pipeline"] / median["eval ceiling"]}]
