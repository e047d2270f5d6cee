"""Write a small synthetic dataset in EchoNet-Dynamic's exact layout, with a learnable EF signal.

    DATA_ROOT/FileList.csv   FileName,EF,ESV,EDV,FrameHeight,FrameWidth,FPS,NumberOfFrames,Split
    DATA_ROOT/Videos/<FileName>.avi   112x112 MJPG, grayscale-looking 3-channel frames

Each video is an apical-view-like sector with speckle noise and a beating left ventricle (a
prolate-ellipsoid cavity inside a myocardial wall). The cavity volume goes from EDV to ESV every
beat, so EF = (EDV - ESV) / EDV * 100 is visible in the frames. EF is drawn like EchoNet's
(mean 55.7, sd 12.4, clipped to 10-85); low-EF hearts are dilated (larger EDV), as in patients.
Heart rate, phase, position, size, tilt and frame count vary per video. Deterministic from a seed.

    python create_sample_data.py [--data-root DIR] [--num-train-videos N] ... [--seed S]
"""
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
import pandas as pd

import config

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


def create_sample_data(root, num_train=100, num_val=20, num_test=20, seed=42, log=print, processes=None):
    """Write the dataset under `root`, one process per core; returns the FileList as a DataFrame."""
    os.makedirs(os.path.join(root, "Videos"), exist_ok=True)
    splits = ["TRAIN"] * num_train + ["VAL"] * num_val + ["TEST"] * num_test
    jobs = [(root, split, seed, i) for i, split in enumerate(splits)]
    with ProcessPoolExecutor(processes or os.cpu_count() or 1) as pool:
        rows = list(pool.map(write_patient, *zip(*jobs), chunksize=8)) if jobs else []
    filelist = pd.DataFrame(rows, columns=COLUMNS)
    tmp = os.path.join(root, "FileList.csv.tmp")
    filelist.to_csv(tmp, index=False)
    os.replace(tmp, os.path.join(root, "FileList.csv"))  # written last: a folder with it is complete
    log(f"wrote {len(rows)} synthetic echo videos ({num_train}/{num_val}/{num_test} train/val/test) to {root}")
    return filelist


if __name__ == "__main__":
    try:
        cfg = config.load(sys.argv[1:], config.parser(__doc__))
        create_sample_data(cfg.DATA_ROOT, cfg.NUM_TRAIN_VIDEOS, cfg.NUM_VAL_VIDEOS, cfg.NUM_TEST_VIDEOS, cfg.SEED)
    except (config.ConfigError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
