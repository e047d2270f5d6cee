"""Write a small synthetic dataset in EchoNet-Dynamic's exact layout, with a learnable EF signal.

    DATA_ROOT/FileList.csv   FileName,EF,ESV,EDV,FrameHeight,FrameWidth,FPS,NumberOfFrames,Split
    DATA_ROOT/Videos/<FileName>.avi   112x112 MJPG, grayscale-looking 3-channel frames

Each video is an apical-view-like sector with speckle noise and a beating left ventricle (a
prolate-ellipsoid cavity inside a myocardial wall). The cavity volume goes from EDV to ESV every
beat, so EF = (EDV - ESV) / EDV * 100 is visible in the frames. EF is drawn like EchoNet's
(mean 55.7, sd 12.4, clipped to 10-85); low-EF hearts are dilated (larger EDV), as in patients.
Heart rate, phase, position, size, tilt and frame count vary per video. Deterministic from a seed.

    python create_sample_data.py [--data-root DIR] [--num-train-videos N] ... [--seed S] [--echonet-size]

The folder records its seed and split sizes (sample.json); main.py writes it again when they differ.
"""
import argparse
import json
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
import pandas as pd

import cli  # first: a broken config.py is one message (exit 2)
import config
from storage import folders
from cli import exits

FPS = 50
SIZE = 112
COLUMNS = ["FileName", "EF", "ESV", "EDV", "FrameHeight", "FrameWidth", "FPS", "NumberOfFrames", "Split"]


def draw_patient(rng):
    """The hidden physiology of one synthetic patient."""
    ef = float(np.clip(rng.normal(55.7, 12.4), 10, 85))
    edv = float(np.clip(110 + 2.0 * (55.7 - ef) + rng.normal(0, 12), 50, 300))  # dilated when EF is low
    esv = edv * (1 - ef / 100)
    heart_rate = rng.uniform(50, 110)                # beats per minute
    beat_frames = FPS * 60 / heart_rate
    num_frames = int(rng.integers(int(1.3 * beat_frames) + 1, 150))
    return dict(
        ef=100 * (edv - esv) / edv, edv=edv, esv=esv, num_frames=num_frames,
        beat_frames=beat_frames, phase=rng.uniform(0, 1),
        zoom=rng.uniform(0.85, 1.15), tilt=rng.uniform(-0.25, 0.25),
        center=(SIZE / 2 + rng.uniform(-8, 8), 54 + rng.uniform(-6, 6)),
    )


def filling(phase):
    """Fraction of the stroke volume in the cavity: 1 at end-diastole, 0 at end-systole."""
    phase = phase % 1.0
    systole = 0.5 * (1 + np.cos(np.pi * phase / 0.35))
    relaxation = 0.5 * (1 - np.cos(np.pi * (phase - 0.35) / 0.4))
    return np.where(phase < 0.35, systole, np.where(phase < 0.75, relaxation, 1.0))


def render_video(p, rng):
    """(T, SIZE, SIZE) uint8 frames of one patient."""
    t = np.arange(p["num_frames"])
    volume = p["esv"] + (p["edv"] - p["esv"]) * filling(t / p["beat_frames"] + p["phase"])
    minor = 2.6 * p["zoom"] * np.cbrt(volume)        # prolate ellipsoid: volume ~ minor^2 * major
    major = 1.9 * minor
    wall = 0.45 * 2.6 * p["zoom"] * np.cbrt(p["edv"]) * (1 + 0.5 * (1 - volume / p["edv"]))

    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    apex_x, apex_y = SIZE / 2, 2.0
    radius = np.hypot(x - apex_x, y - apex_y)
    angle = np.arctan2(x - apex_x, y - apex_y)
    sector = (np.abs(angle) < 0.78) & (radius < 106)
    depth_gain = 1 - 0.45 * radius / 106

    cx, cy = p["center"]
    c, s = np.cos(p["tilt"]), np.sin(p["tilt"])
    u = (x - cx) * c - (y - cy) * s                  # along the minor axis
    v = (x - cx) * s + (y - cy) * c                  # along the long axis
    frames = np.empty((len(t), SIZE, SIZE), np.uint8)
    for i in range(len(t)):
        inner = np.hypot(u / minor[i], v / major[i])
        outer = np.hypot(u / (minor[i] + wall[i]), v / (major[i] + wall[i]))
        cavity = 1 / (1 + np.exp((inner - 1) * 12))
        muscle = (1 / (1 + np.exp((outer - 1) * 12))) * (1 - cavity)
        echo = 0.28 * (1 - cavity) + 0.55 * muscle + 0.04 * cavity
        speckle = cv2.GaussianBlur(rng.rayleigh(0.8, (SIZE, SIZE)).astype(np.float32), (3, 3), 0.7)
        image = np.clip(echo * speckle * depth_gain * sector * 255, 0, 255)
        frames[i] = image.astype(np.uint8)
    return frames


def write_avi(path, frames):
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), FPS, (SIZE, SIZE), True)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write MJPG video {path}")
    for gray in frames:
        writer.write(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    writer.release()


def write_patient(root, split, seed, index):
    """One video, from its own random stream: the same seed writes the same files, in any process."""
    rng = np.random.default_rng([seed, index])
    name = "0X" + "".join(rng.choice(list("0123456789ABCDEF"), 16))
    patient = draw_patient(rng)
    frames = render_video(patient, rng)
    write_avi(os.path.join(root, "Videos", name + ".avi"), frames)
    return [name, round(patient["ef"], 4), round(patient["esv"], 3), round(patient["edv"], 3),
            SIZE, SIZE, FPS, len(frames), split]


ECHONET_SIZES = (7465, 1288, 1277)  # EchoNet-Dynamic's train/val/test split sizes
CHUNK = 8  # videos per task of the process pool
RECORD = "sample.json"  # beside FileList.csv: the seed and split sizes the folder was written for


def sample_record(root):
    """What a generated sample folder was written for ({"seed", "counts"}), or None when it is not
    a complete one (FileList.csv is written, then this record, last)."""
    try:
        with open(os.path.join(root, RECORD)) as f:
            record = json.load(f)
        if not os.path.isfile(os.path.join(root, "FileList.csv")):
            return None
        return {"seed": int(record["seed"]), "counts": [int(c) for c in record["counts"]]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def sample_matches(root, counts, seed):
    """Whether the sample folder at `root` was written for these (train, val, test) counts and seed; a
    run regenerates it (or stops) when not, so --seed and the split sizes always take effect."""
    return sample_record(root) == {"seed": int(seed), "counts": [int(c) for c in counts]}


def ignore_sigint():
    """Worker processes leave Ctrl-C to the main process (one message, not one traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def create_sample_data(root, num_train=100, num_val=20, num_test=20, seed=42, log=print, processes=None):
    """Write the dataset under `root`, one process per core (`processes`: how many; 1 writes in this
    process); returns the FileList as a DataFrame."""
    os.makedirs(os.path.join(root, "Videos"), exist_ok=True)
    for stale in (RECORD, "FileList.csv"):  # until both are written again, the folder is incomplete
        if os.path.isfile(os.path.join(root, stale)):
            os.remove(os.path.join(root, stale))
    splits = ["TRAIN"] * num_train + ["VAL"] * num_val + ["TEST"] * num_test
    jobs = [(root, split, seed, i) for i, split in enumerate(splits)]
    processes = processes or os.cpu_count() or 1
    if processes == 1 or len(jobs) <= CHUNK:  # one chunk: a pool would hand it all to one process anyway
        rows = [write_patient(*job) for job in jobs]
    else:
        pool = ProcessPoolExecutor(processes, initializer=ignore_sigint)
        try:
            rows = list(pool.map(write_patient, *zip(*jobs), chunksize=CHUNK))
        except BaseException:  # Ctrl-C: stop now, not after every queued video
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    filelist = pd.DataFrame(rows, columns=COLUMNS)
    folders.write_text(os.path.join(root, "FileList.csv"), filelist.to_csv(index=False))
    # written last: a folder with it is complete
    folders.write_text(os.path.join(root, RECORD),
                       json.dumps({"seed": int(seed), "counts": [num_train, num_val, num_test]}))
    log(f"wrote {len(rows)} synthetic echo videos ({num_train}/{num_val}/{num_test} train/val/test) to "
        f"{root}")
    return filelist


def parser():
    """This script's options only (main.py's would be ignored here)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--data-root", default=config.SAMPLE_DATA_ROOT,
                   help=f"the folder to write (default {config.SAMPLE_DATA_ROOT}, main.py's sample data)")
    for split, default in zip(("train", "val", "test"),
                              (config.NUM_TRAIN_VIDEOS, config.NUM_VAL_VIDEOS, config.NUM_TEST_VIDEOS)):
        p.add_argument(f"--num-{split}-videos", type=int, default=default, metavar="N",
                       help=f"{split} videos (default {default})")
    p.add_argument("--echonet-size", action="store_true",
                   help=f"EchoNet-Dynamic's split sizes, {'/'.join(f'{n:,}' for n in ECHONET_SIZES)} "
                        f"train/val/test")
    p.add_argument("--seed", type=int, default=config.SEED, help=f"random seed (default {config.SEED})")
    return p


def main(argv):
    args = parser().parse_args(argv)
    counts = ECHONET_SIZES if args.echonet_size else (args.num_train_videos, args.num_val_videos,
                                                       args.num_test_videos)
    if min(counts) < 1 or args.seed < 0 or not args.data_root.strip():
        raise cli.ConfigError(f"every split needs at least one video, the seed must not be negative and "
                              f"--data-root must name a folder (got {'/'.join(map(str, counts))} videos, "
                              f"--seed {args.seed}, --data-root {args.data_root!r})")
    create_sample_data(args.data_root, *counts, args.seed)


if __name__ == "__main__":
    exits.run(main, sys.argv[1:], again="run the same command again to write the sample data")
