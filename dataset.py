"""EchoNet-Dynamic videos and EF labels (FileList.csv + Videos/<FileName>.avi): read, checked and
decoded once, on every core, into one uint8 array per split (cached on disk clip by clip), from which
batches.py draws the batches."""
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

import batches
import shared_clips
from data_checks import DataError, check_ef_scale, check_memory  # noqa: F401 (DataError: dataset's)
from storage import folders
import processes
from create_sample_data import create_sample_data, sample_matches, sample_record

SPLITS = ("TRAIN", "VAL", "TEST")


def read_filelist(root):
    """FileList.csv as a DataFrame with FileName (no .avi), EF and an upper-case Split if present."""
    if os.path.exists(root) and not os.path.isdir(root):
        raise DataError(f"data folder {root!r} is a file, not a folder. Pass --data-root the EchoNet-Dynamic "
                        f"folder (the one holding FileList.csv and Videos/).")
    if not os.path.isdir(root):
        raise DataError(f"data folder {root!r} does not exist. Download EchoNet-Dynamic and pass "
                        f"--data-root /path/to/EchoNet-Dynamic, or leave --data-root unset for the built-in "
                        f"sample data.")
    path = os.path.join(root, "FileList.csv")
    if not os.path.isfile(path):
        raise DataError(f"{path} not found. An EchoNet-Dynamic folder holds FileList.csv and Videos/; "
                        f"check --data-root.")
    try:
        filelist = pd.read_csv(path, dtype=str, keep_default_na=False)  # cells as written, for the messages
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path} cannot be read as CSV ({e}). Restore the FileList.csv of EchoNet-Dynamic.")
    for column in ("FileName", "EF"):
        if column not in filelist.columns:
            raise DataError(f"{path} has no {column!r} column (columns: "
                            f"{', '.join(map(str, filelist.columns))}). EchoNet-Dynamic's FileList.csv has "
                            f"FileName and EF.")
    if filelist.empty:
        raise DataError(f"{path} lists no videos.")
    filelist["FileName"] = filelist["FileName"].str.strip().str.replace(r"\.avi$", "", case=False, regex=True)
    ef = pd.to_numeric(filelist["EF"].str.strip(), errors="coerce")
    bad = filelist.index[ef.isna() | (ef < 0) | (ef > 100)]
    if len(bad):
        i = bad[0]  # row numbers as a spreadsheet shows them: the header is row 1
        raise DataError(f"{path}: row {i + 2} ({filelist.FileName[i]}) has EF {filelist.EF[i]!r}; "
                        f"EF must be a number in 0-100 ({len(bad)} bad rows in all).")
    filelist["EF"] = ef.astype(float)
    check_ef_scale(filelist, path)
    duplicated = filelist.FileName[filelist.FileName.duplicated()]
    if len(duplicated):
        raise DataError(f"{path}: FileName {duplicated.iloc[0]!r} is listed more than once; each video once.")
    if "Split" in filelist.columns:
        written = filelist["Split"]
        filelist["Split"] = written.str.strip().str.upper()
        bad = filelist.index[~filelist.Split.isin(SPLITS)]
        if len(bad):
            i = bad[0]
            unknown = sorted(set(filelist.Split[bad]))
            raise DataError(f"{path}: row {i + 2} ({filelist.FileName[i]}) has Split {written[i]!r}; use "
                            f"TRAIN, VAL or TEST (unknown Split values {unknown} in {len(bad)} rows).")
    return filelist


def check_training_split(split, cfg, world, log):
    """What would make training meaningless, before any model trains. The model learns EF in units of the
    training EFs' standard deviation (seed_models.run_baseline): one training video, or all of one EF,
    make it 0, refused naming the FileList. A last batch BatchNorm cannot train on (batches.fewest_clips)
    joins the batch before it, and the log says so."""
    path = os.path.join(split.root, "FileList.csv")
    efs = np.asarray(split.efs, dtype=np.float64)
    if len(efs) < 2 or float(np.std(efs)) == 0:
        where = "the Split column" if "Split" in read_filelist(split.root).columns else "--num-train-videos"
        raise DataError(f"{path}: the training split holds {len(efs)} video(s), every one with EF "
                        f"{efs[0]:g} (column EF); the model learns EF in units of the training EFs' standard "
                        f"deviation, which is 0. Give the training split videos of different EF ({where}).")
    fewest = batches.fewest_clips(cfg.NUM_FRAMES, cfg.IMAGE_SIZE)
    if batches.last_step_joins(len(efs), cfg.BATCH_SIZE, world, fewest):
        last = len(efs) % (world * cfg.BATCH_SIZE)
        why = ("every process needs a video of every step" if fewest == 1 else
               f"BatchNorm cannot train on one video per process at {cfg.NUM_FRAMES} frame of "
               f"{cfg.IMAGE_SIZE}x{cfg.IMAGE_SIZE} (ResNet-18's last maps are 1x1)")
        log(f"the last training batch of each epoch ({last} video(s) for {world} process(es)) joins the one "
            f"before it: {why}")


def assign_splits(filelist, counts, seed):
    """Use the Split column; without one, a seeded random split into `counts` (train, val, test)."""
    if "Split" in filelist.columns:
        return filelist
    if sum(counts) > len(filelist):
        raise DataError(f"FileList.csv has no Split column and {len(filelist)} videos, fewer than the "
                        f"{sum(counts)} asked for by --num-train-videos, --num-val-videos and "
                        f"--num-test-videos; lower those counts.")
    order = np.random.default_rng(seed).permutation(len(filelist))
    split = np.full(len(filelist), "UNUSED", dtype=object)
    start = 0
    for name, n in zip(SPLITS, counts):
        split[order[start:start + n]] = name
        start += n
    return filelist.assign(Split=split)


def sample_indices(total, num_frames, period=0):
    """num_frames indices evenly spaced over the whole video (period 0; short videos repeat frames), or
    `period` apart around the video's middle (EchoNet-Dynamic's clips), the last frame repeated where the
    span is longer than the video."""
    if not period:
        return np.linspace(0, total - 1, num_frames).round().astype(int)
    start = max(0, (total - ((num_frames - 1) * period + 1)) // 2)
    return np.minimum(start + period * np.arange(num_frames), total - 1)


def require_video(path):
    if not os.path.isfile(path):
        folder, name = os.path.split(path)
        entries = os.listdir(folder) if os.path.isdir(folder) else []
        other = [f for f in entries if f.lower() == name.lower()]
        if other:  # e.g. X.AVI: listed as X.AVI or X, looked for as X.avi (EchoNet-Dynamic's spelling)
            raise DataError(f"video {path} does not exist, but {os.path.join(folder, other[0])} does: the "
                            f"videos are read as <FileName>.avi, in lower case. Rename them (e.g. for f in "
                            f"{folder}/*.AVI; do mv \"$f\" \"${{f%.AVI}}.avi\"; done).")
        raise DataError(f"video {path} does not exist; it is listed in FileList.csv. "
                        f"Restore it or remove its row.")


def load_clip(path, num_frames, image_size, period=0):
    """(num_frames, image_size, image_size, 3) uint8 RGB frames sampled as sample_indices says."""
    require_video(path)
    capture = cv2.VideoCapture(path)
    frames = []
    while capture.isOpened():
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if len(frames) < 2:
        raise DataError(f"video {path}: OpenCV decoded {len(frames)} frames; the file is corrupt, empty "
                        f"or not a video. Replace it or remove its row from FileList.csv.")
    clip = []
    for i in sample_indices(len(frames), num_frames, period):
        frame = cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB)
        if frame.shape[:2] != (image_size, image_size):
            frame = cv2.resize(frame, (image_size, image_size), interpolation=cv2.INTER_AREA)
        clip.append(frame)
    return np.stack(clip)


class EchoNetVideoDataset:
    """One split of EchoNet-Dynamic: its videos' names and EFs, and, once `decode` has run, all its
    clips as one uint8 tensor `clips` (videos, frames, H, W, 3). Items are (video (T, 3, H, W) float
    normalised, EF in percent), for the few users of single videos (ONNX checks, INT8 calibration)."""

    def __init__(self, root, split, num_frames, image_size, counts=(100, 20, 20), seed=42, cache_dir=None,
                 period=0):
        self.root, self.split = root, split.upper()
        self.num_frames, self.image_size, self.cache_dir = num_frames, image_size, cache_dir
        self.period = period
        filelist = assign_splits(read_filelist(root), counts, seed)
        rows = filelist[filelist.Split == self.split]
        if rows.empty:
            raise DataError(f"split {self.split} of {os.path.join(root, 'FileList.csv')} is empty; "
                            f"every split needs at least one video.")
        self.names = rows.FileName.tolist()
        self.efs = rows.EF.astype(np.float32).tolist()
        self.clips = None
        for name in self.names:
            require_video(self.video_path(name))

    def __len__(self):
        return len(self.names)

    def drop(self, names):
        """Leave out videos (e.g. ones that cannot be decoded); an emptied split is an error."""
        names = set(names)
        keep = [i for i, name in enumerate(self.names) if name not in names]
        self.names = [self.names[i] for i in keep]
        self.efs = [self.efs[i] for i in keep]
        if self.clips is not None:
            self.clips = self.clips[keep]
        if not self.names:
            raise DataError(f"split {self.split} of {os.path.join(self.root, 'FileList.csv')} has no "
                            f"readable video left; every split needs at least one.")

    def video_path(self, name):
        return os.path.join(self.root, "Videos", name + ".avi")

    def cache_path(self, name):
        """A cache file named by the video's identity and the clip settings, so it never goes stale."""
        path = self.video_path(name)
        stat = os.stat(path)
        key = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{self.num_frames}|{self.image_size}"
        key += f"|period {self.period}" if self.period else ""  # the clips of period 0 keep their files
        return os.path.join(self.cache_dir, hashlib.sha1(key.encode()).hexdigest() + ".npy")

    def clip(self, index):
        name = self.names[index]
        if self.cache_dir is None:
            return load_clip(self.video_path(name), self.num_frames, self.image_size, self.period)
        cached = self.cache_path(name)
        if os.path.isfile(cached):
            try:
                clip = np.load(cached)
                if (clip.shape == (self.num_frames, self.image_size, self.image_size, 3)
                        and clip.dtype == np.uint8):
                    return clip
                problem = f"holds a {clip.dtype} array of shape {clip.shape}"
            except (OSError, ValueError, EOFError) as e:  # truncated by a kill or a full disk
                problem = f"cannot be read ({e})"
            # derived data: rebuilding it from the video is always safe
            print(f"cache file {cached} {problem}: rebuilding it from {self.video_path(name)}", flush=True)
        clip = load_clip(self.video_path(name), self.num_frames, self.image_size, self.period)
        os.makedirs(self.cache_dir, exist_ok=True)
        folders.write_atomic(cached, lambda tmp: np.save(tmp, clip), tmp=f"{cached}.{os.getpid()}.tmp.npy")
        return clip

    def __getitem__(self, index):
        clip = self.clips[index] if self.clips is not None else torch.from_numpy(self.clip(index))
        return batches.normalize(clip).contiguous(), torch.tensor(self.efs[index])

    def decode(self, pool, skip_bad, log, bar):
        """Every clip of the split into `clips`, decoded (or read from the cache) by the pool's threads
        (OpenCV and NumPy's file reads release the GIL); undecodable, empty and 1-frame videos are left
        out and returned as skipped-video records, or stop the run."""
        clips = np.empty((len(self), self.num_frames, self.image_size, self.image_size, 3), dtype=np.uint8)

        def fill(i):
            try:
                clips[i] = self.clip(i)
            except DataError as e:
                return e
            finally:
                bar.update()
        bad, skipped = [], []
        for i, error in enumerate(pool.map(fill, range(len(self)))):
            if error is None:
                continue
            if not skip_bad:
                raise DataError(f"{error} (--skip-bad-videos is false)") from None
            log(f"skipping {self.names[i]}: {error}")
            bad.append(self.names[i])
            skipped.append({"split": self.split, "video": self.names[i], "reason": str(error)})
        self.clips = torch.from_numpy(clips)
        self.drop(bad)
        return skipped


def decode(splits, skip_bad, log=print, threads=None):
    """Decode every video of every split once, here, on `threads` threads (default: every core), so a
    bad video is found before training and training never decodes. Returns the skipped videos."""
    threads = threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                          else os.cpu_count())
    total = sum(len(split) for split in splits.values())
    check_memory(splits, total)
    with ThreadPoolExecutor(threads) as pool, tqdm(total=total, desc="checking videos", leave=False,
                                                   disable=None) as bar:
        skipped = [record for split in splits.values() for record in split.decode(pool, skip_bad, log, bar)]
    if skipped:
        log(f"skipped {len(skipped)} unreadable video(s); they are listed in results.json under "
            f"skipped_videos")
    return skipped


# --- the run's data --------------------------------------------------------------------------------

def load_data(cfg, device, log=print):
    """The three splits, decoded, and their batches on `device`; generates the sample data when
    DATA_ROOT is its default. Training batches are shuffled by seed and epoch and dealt out to the
    processes; validation and test are cut into disjoint shards, one per process, which
    train.predict gathers again in the split's order. Under torchrun the main process decodes, and every
    process maps its clips (shared_clips). Returns (splits, batches, skipped)."""
    counts = (cfg.NUM_TRAIN_VIDEOS, cfg.NUM_VAL_VIDEOS, cfg.NUM_TEST_VIDEOS)
    if (cfg.DATA_ROOT == cfg.SAMPLE_DATA_ROOT and processes.is_main()
            and not sample_matches(cfg.DATA_ROOT, counts, cfg.SEED)):
        found = sample_record(cfg.DATA_ROOT)
        log(f"no data at {cfg.DATA_ROOT}: generating the built-in synthetic sample data first"
            if found is None
            else f"the sample data in {cfg.DATA_ROOT} was written for seed {found['seed']} and "
                 f"{'/'.join(map(str, found['counts']))} train/val/test videos, and this configuration asks "
                 f"for seed {cfg.SEED} and {'/'.join(map(str, counts))}: generating it again")
        create_sample_data(cfg.DATA_ROOT, *counts, cfg.SEED, log)
    processes.barrier()
    cache = cfg.CACHE_DIR if cfg.CACHE_FRAMES else None
    splits = {s: EchoNetVideoDataset(cfg.DATA_ROOT, s, cfg.NUM_FRAMES, cfg.IMAGE_SIZE, counts=counts,
                                     seed=cfg.SEED, cache_dir=cache, period=cfg.FRAME_PERIOD)
              for s in ("train", "val", "test")}
    skipped = decode(splits, cfg.SKIP_BAD_VIDEOS, log) if processes.is_main() else []
    skipped = shared_clips.share(splits, skipped, cfg.CACHE_DIR, log)  # under torchrun: mapped, not copied
    check_training_split(splits["train"], cfg, processes.world_size(), log)
    rank, world = processes.rank(), processes.world_size()
    placement = dict(device=device, rank=rank, world=world, share=cfg.CLIPS_ON_DEVICE)
    loaders = {"train": batches.Batches(splits["train"].clips, splits["train"].efs, cfg.BATCH_SIZE,
                                        shuffle=True, seed=cfg.SEEDS[0], **placement)}
    for name in ("val", "test"):  # no activations kept for a backward pass: 4x the batch fits
        loaders[name] = batches.Batches(splits[name].clips, splits[name].efs, 4 * cfg.BATCH_SIZE, **placement)
    for name in ("train", "val"):  # on the GPU now: free the host copy (single items come from the cache)
        if loaders[name].resident:
            splits[name].clips = None
    return splits, loaders, skipped
