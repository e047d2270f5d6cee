"""EchoNet-Dynamic videos and EF labels: FileList.csv + Videos/<FileName>.avi."""
import hashlib
import os

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

# The backbone's (ImageNet) normalisation, applied to every frame.
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
SPLITS = ("TRAIN", "VAL", "TEST")


class DataError(Exception):
    """A problem with the dataset on disk; the message says which file and what to do."""


def read_filelist(root):
    """FileList.csv as a DataFrame with FileName (no .avi), EF and an upper-case Split if present."""
    if not os.path.isdir(root):
        raise DataError(f"data folder {root!r} does not exist. Download EchoNet-Dynamic and pass "
                        f"--data-root /path/to/EchoNet-Dynamic, or leave --data-root unset for the built-in sample data.")
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
            raise DataError(f"{path} has no {column!r} column (columns: {', '.join(map(str, filelist.columns))}). "
                            f"EchoNet-Dynamic's FileList.csv has FileName and EF.")
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
            raise DataError(f"{path}: row {i + 2} ({filelist.FileName[i]}) has Split {written[i]!r}; use TRAIN, VAL or "
                            f"TEST (unknown Split values {unknown} in {len(bad)} rows).")
    return filelist


def assign_splits(filelist, counts, seed):
    """Use the Split column; without one, a seeded random split into `counts` (train, val, test)."""
    if "Split" in filelist.columns:
        return filelist
    if sum(counts) > len(filelist):
        raise DataError(f"FileList.csv has no Split column and {len(filelist)} videos, fewer than the "
                        f"{sum(counts)} asked for by --num-train-videos, --num-val-videos and --num-test-videos; "
                        f"lower those counts.")
    order = np.random.default_rng(seed).permutation(len(filelist))
    split = np.full(len(filelist), "UNUSED", dtype=object)
    start = 0
    for name, n in zip(SPLITS, counts):
        split[order[start:start + n]] = name
        start += n
    return filelist.assign(Split=split)


def sample_indices(total, num_frames):
    """num_frames indices evenly spaced over the whole video; short videos repeat frames."""
    return np.linspace(0, total - 1, num_frames).round().astype(int)


def require_video(path):
    if not os.path.isfile(path):
        raise DataError(f"video {path} does not exist; it is listed in FileList.csv. "
                        f"Restore it or remove its row.")


def load_clip(path, num_frames, image_size):
    """(num_frames, image_size, image_size, 3) uint8 RGB frames evenly spaced over the video."""
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
    for i in sample_indices(len(frames), num_frames):
        frame = cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB)
        if frame.shape[:2] != (image_size, image_size):
            frame = cv2.resize(frame, (image_size, image_size), interpolation=cv2.INTER_AREA)
        clip.append(frame)
    return np.stack(clip)


def normalize(clip):
    """uint8 (T, H, W, 3) -> float (T, 3, H, W) normalised for the backbone."""
    video = torch.from_numpy(clip).permute(0, 3, 1, 2).float().div_(255)
    return (video - MEAN) / STD


class EchoNetVideoDataset(Dataset):
    """One split of EchoNet-Dynamic: items are (video (T, 3, H, W) float, EF in percent)."""

    def __init__(self, root, split, num_frames, image_size, counts=(100, 20, 20), seed=42, cache_dir=None):
        self.root, self.split = root, split.upper()
        self.num_frames, self.image_size, self.cache_dir = num_frames, image_size, cache_dir
        filelist = assign_splits(read_filelist(root), counts, seed)
        rows = filelist[filelist.Split == self.split]
        if rows.empty:
            raise DataError(f"split {self.split} of {os.path.join(root, 'FileList.csv')} is empty; "
                            f"every split needs at least one video.")
        self.names = rows.FileName.tolist()
        self.efs = rows.EF.astype(np.float32).tolist()
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
        return os.path.join(self.cache_dir, hashlib.sha1(key.encode()).hexdigest() + ".npy")

    def clip(self, index):
        name = self.names[index]
        if self.cache_dir is None:
            return load_clip(self.video_path(name), self.num_frames, self.image_size)
        cached = self.cache_path(name)
        if os.path.isfile(cached):
            try:
                clip = np.load(cached)
                if clip.shape == (self.num_frames, self.image_size, self.image_size, 3) and clip.dtype == np.uint8:
                    return clip
                problem = f"holds a {clip.dtype} array of shape {clip.shape}"
            except (OSError, ValueError, EOFError) as e:  # truncated by a kill or a full disk
                problem = f"cannot be read ({e})"
            # derived data: rebuilding it from the video is always safe
            print(f"cache file {cached} {problem}: rebuilding it from {self.video_path(name)}", flush=True)
        clip = load_clip(self.video_path(name), self.num_frames, self.image_size)
        os.makedirs(self.cache_dir, exist_ok=True)
        tmp = f"{cached}.{os.getpid()}.tmp.npy"
        np.save(tmp, clip)
        os.replace(tmp, cached)
        return clip

    def __getitem__(self, index):
        return normalize(self.clip(index)), torch.tensor(self.efs[index])
