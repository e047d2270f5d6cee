"""The sample data is EchoNet-shaped and carries the EF signal; the loader reads it and real quirks."""
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

import create_sample_data as sample
from conftest import ROOT
from dataset import DataError, EchoNetVideoDataset, read_filelist, sample_indices


def copy_root(sample_root, tmp_path):
    root = str(tmp_path / "echonet")
    shutil.copytree(sample_root, root)
    return root


# --- the sample data -------------------------------------------------------------------------------

def test_sample_data_has_echonet_layout(sample_root):
    filelist = pd.read_csv(os.path.join(sample_root, "FileList.csv"))
    assert list(filelist.columns) == sample.COLUMNS
    assert not filelist.FileName.str.endswith(".avi").any()
    assert filelist.Split.value_counts().to_dict() == {"TRAIN": 8, "VAL": 4, "TEST": 4}
    ef_from_volumes = 100 * (filelist.EDV - filelist.ESV) / filelist.EDV
    assert np.allclose(ef_from_volumes, filelist.EF, atol=0.02)
    for row in filelist.itertuples():
        capture = cv2.VideoCapture(os.path.join(sample_root, "Videos", row.FileName + ".avi"))
        assert capture.get(cv2.CAP_PROP_FOURCC) == cv2.VideoWriter_fourcc(*"MJPG")
        frames = []
        ok, frame = capture.read()
        while ok:
            frames.append(frame)
            ok, frame = capture.read()
        assert len(frames) == row.NumberOfFrames
        assert frames[0].shape == (112, 112, 3)


def test_sample_data_is_deterministic(sample_root, tmp_path):
    again = sample.create_sample_data(str(tmp_path), 8, 4, 4, seed=0, log=lambda *_: None, processes=1)
    assert again.equals(pd.read_csv(os.path.join(sample_root, "FileList.csv")))


def test_sample_data_is_the_same_from_one_process_or_several(sample_root, tmp_path):
    # the script's own pool (one process per core), started as a user starts it: a process pool forked
    # from a pytest-xdist worker, which has threads of its own, once hung the suite
    written = subprocess.run([sys.executable, os.path.join(ROOT, "create_sample_data.py"), "--data-root",
                              str(tmp_path), "--num-train-videos", "8", "--num-val-videos", "4",
                              "--num-test-videos", "4", "--seed", "0"], capture_output=True, text=True)
    assert written.returncode == 0, written.stderr
    several = pd.read_csv(tmp_path / "FileList.csv")
    assert several.equals(pd.read_csv(os.path.join(sample_root, "FileList.csv")))
    name = several.FileName[13] + ".avi"  # the pool's second task of videos
    assert (open(tmp_path / "Videos" / name, "rb").read()
            == open(os.path.join(sample_root, "Videos", name), "rb").read())


def test_sample_data_is_written_again_when_the_split_sizes_or_the_seed_change(tmp_path, monkeypatch):
    import cli
    import dataset
    monkeypatch.chdir(tmp_path)
    assert sample.sample_record("data/sample_echonet") is None
    cfg = cli.load(["--num-train-videos", "3", "--num-val-videos", "2", "--num-test-videos", "2",
                       "--num-frames", "2", "--image-size", "32", "--cache-frames", "false"])
    splits, _, _ = dataset.load_data(cfg, torch.device("cpu"), log=lambda *_: None)
    assert sample.sample_record("data/sample_echonet") == {"seed": 42, "counts": [3, 2, 2]}
    assert len(splits["val"]) == 2
    cfg.NUM_VAL_VIDEOS = 4
    splits, _, _ = dataset.load_data(cfg, torch.device("cpu"), log=lambda *_: None)
    assert sample.sample_record("data/sample_echonet") == {"seed": 42, "counts": [3, 4, 2]}
    assert len(splits["val"]) == 4
    efs = splits["train"].efs
    cfg.SEED = 7  # the data seed takes effect: other patients
    splits, _, _ = dataset.load_data(cfg, torch.device("cpu"), log=lambda *_: None)
    assert sample.sample_record("data/sample_echonet")["seed"] == 7 and splits["train"].efs != efs


def test_sample_ef_is_drawn_like_echonet_and_low_ef_hearts_are_dilated():
    rng = np.random.default_rng(1)
    patients = [sample.draw_patient(rng) for _ in range(2000)]
    ef = np.array([p["ef"] for p in patients])
    edv = np.array([p["edv"] for p in patients])
    assert abs(ef.mean() - 55.7) < 1.0 and abs(ef.std() - 12.4) < 1.0
    assert ef.min() >= 10 and ef.max() <= 85
    assert np.corrcoef(ef, edv)[0, 1] < -0.5


def test_sample_cavity_area_follows_the_volume_curve():
    """The dark cavity is largest at end-diastole and shrinks by about EF's share of the volume."""
    rng = np.random.default_rng(3)
    patient = sample.draw_patient(rng)
    frames = sample.render_video(patient, rng)
    sector = frames.max(axis=0) > 0
    dark = np.array([((cv2.blur(f, (5, 5)) < 20) & sector).sum() for f in frames])
    area_ratio = dark.min() / dark.max()
    expected = (patient["esv"] / patient["edv"]) ** (2 / 3)   # area scales as volume^(2/3)
    assert abs(area_ratio - expected) < 0.15


# --- the loader ------------------------------------------------------------------------------------

def test_dataset_items_are_normalised_clips(sample_root):
    data = EchoNetVideoDataset(sample_root, "train", num_frames=8, image_size=32)
    video, ef = data[0]
    assert video.shape == (8, 3, 32, 32) and video.dtype == torch.float32
    assert -3 < video.mean() < 3 and ef == pytest.approx(data.efs[0])
    assert len(data) == 8


def test_frames_are_evenly_spaced_over_the_whole_video_and_short_videos_repeat():
    assert sample_indices(100, 5).tolist() == [0, 25, 50, 74, 99]
    short = sample_indices(10, 32)
    assert len(short) == 32 and short[0] == 0 and short[-1] == 9 and len(set(short)) == 10


def test_filename_with_avi_and_lower_case_split_are_accepted(sample_root, tmp_path):
    root = copy_root(sample_root, tmp_path)
    path = os.path.join(root, "FileList.csv")
    filelist = pd.read_csv(path)
    filelist["FileName"] = filelist.FileName + ".avi"
    filelist["Split"] = filelist.Split.str.lower()
    filelist.to_csv(path, index=False)
    assert len(EchoNetVideoDataset(root, "val", 4, 32)) == 4


def test_without_split_column_a_seeded_split_by_configured_counts(sample_root, tmp_path):
    root = copy_root(sample_root, tmp_path)
    path = os.path.join(root, "FileList.csv")
    pd.read_csv(path).drop(columns="Split").to_csv(path, index=False)
    splits = {s: EchoNetVideoDataset(root, s, 4, 32, counts=(10, 3, 3), seed=7).names
              for s in ("train", "val", "test")}
    assert [len(v) for v in splits.values()] == [10, 3, 3]
    assert not set(splits["train"]) & set(splits["test"])
    assert EchoNetVideoDataset(root, "test", 4, 32, counts=(10, 3, 3), seed=7).names == splits["test"]


def test_videos_of_another_size_are_resized(tmp_path):
    """A few real EchoNet videos are 768x1024."""
    root = tmp_path / "echonet"
    (root / "Videos").mkdir(parents=True)
    writer = cv2.VideoWriter(str(root / "Videos" / "big.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 50, (128, 96))
    for i in range(5):
        writer.write(np.full((96, 128, 3), 40 * i, np.uint8))
    writer.release()
    pd.DataFrame({"FileName": ["big"], "EF": [60.0], "Split": ["TRAIN"]}).to_csv(root / "FileList.csv",
                                                                                 index=False)
    video, _ = EchoNetVideoDataset(str(root), "train", 8, 112)[0]
    assert video.shape == (8, 3, 112, 112)


def test_cache_returns_the_same_clip_and_is_keyed_by_clip_settings(sample_root, tmp_path):
    cache = str(tmp_path / "cache")
    direct = EchoNetVideoDataset(sample_root, "test", 4, 32)
    cached = EchoNetVideoDataset(sample_root, "test", 4, 32, cache_dir=cache)
    assert np.array_equal(cached.clip(0), direct.clip(0))      # decoded, written
    assert np.array_equal(cached.clip(0), direct.clip(0))      # read back
    other = EchoNetVideoDataset(sample_root, "test", 8, 32, cache_dir=cache)
    assert other.cache_path(other.names[0]) != cached.cache_path(cached.names[0])
    assert other.clip(0).shape == (8, 32, 32, 3)


def test_cache_is_invalidated_when_the_source_video_changes(sample_root, tmp_path):
    root = copy_root(sample_root, tmp_path)
    data = EchoNetVideoDataset(root, "test", 4, 32, cache_dir=str(tmp_path / "cache"))
    before, old_key = data.clip(0), data.cache_path(data.names[0])
    writer = cv2.VideoWriter(data.video_path(data.names[0]), cv2.VideoWriter_fourcc(*"MJPG"), 50, (112, 112))
    for _ in range(10):
        writer.write(np.full((112, 112, 3), 200, np.uint8))
    writer.release()
    assert data.cache_path(data.names[0]) != old_key
    after = data.clip(0)
    assert not np.array_equal(after, before) and abs(float(after.mean()) - 200) < 5


# --- clear errors ----------------------------------------------------------------------------------

def test_missing_data_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist.*--data-root"):
        read_filelist(str(tmp_path / "nowhere"))


def test_missing_filelist(tmp_path):
    with pytest.raises(DataError, match="FileList.csv not found"):
        read_filelist(str(tmp_path))


@pytest.mark.parametrize("column", ["FileName", "EF"])
def test_missing_column(sample_root, tmp_path, column):
    root = copy_root(sample_root, tmp_path)
    path = os.path.join(root, "FileList.csv")
    pd.read_csv(path).drop(columns=column).to_csv(path, index=False)
    with pytest.raises(DataError, match=f"no '{column}' column"):
        read_filelist(root)


def test_listed_video_that_does_not_exist(sample_root, tmp_path):
    root = copy_root(sample_root, tmp_path)
    name = pd.read_csv(os.path.join(root, "FileList.csv")).query("Split == 'TEST'").FileName.iloc[0]
    os.remove(os.path.join(root, "Videos", name + ".avi"))
    with pytest.raises(DataError, match=f"{name}.avi does not exist"):
        EchoNetVideoDataset(root, "test", 4, 32)


def test_video_opencv_cannot_decode(sample_root, tmp_path):
    root = copy_root(sample_root, tmp_path)
    data = EchoNetVideoDataset(root, "test", 4, 32)
    with open(data.video_path(data.names[0]), "wb") as f:
        f.write(b"this is not a video")
    with pytest.raises(DataError, match=f"{data.names[0]}.avi: OpenCV decoded 0 frames"):
        data[0]


def test_empty_split(sample_root, tmp_path):
    root = copy_root(sample_root, tmp_path)
    path = os.path.join(root, "FileList.csv")
    filelist = pd.read_csv(path)
    filelist.loc[filelist.Split == "VAL", "Split"] = "TRAIN"
    filelist.to_csv(path, index=False)
    with pytest.raises(DataError, match="split VAL .* is empty"):
        EchoNetVideoDataset(root, "val", 4, 32)


@pytest.mark.parametrize("ef, message", [("abc", "EF must be a number in 0-100"),
                                         (130, "EF must be a number")])
def test_ef_not_a_number_or_out_of_range(sample_root, tmp_path, ef, message):
    root = copy_root(sample_root, tmp_path)
    path = os.path.join(root, "FileList.csv")
    filelist = pd.read_csv(path).astype({"EF": object})
    filelist.loc[2, "EF"] = ef
    filelist.to_csv(path, index=False)
    with pytest.raises(DataError, match=f"row 4 .*{message}"):
        read_filelist(root)
