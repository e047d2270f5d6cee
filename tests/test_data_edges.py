"""Data that would make training meaningless is refused where it is read, naming the FileList and its
column, before any model trains: EF written as fractions, a training split whose EFs do not differ. A last
training batch BatchNorm cannot train on joins the one before it, said in the log; every other batch,
and every well-formed run's numbers, stay as they were."""
import os
import shutil

import pandas as pd
import pytest
import torch

import batches
from conftest import LEAN, TINY, options, run_folders
from create_sample_data import create_sample_data

FAST = [*TINY, *LEAN, "--structured-pruning-ratios", "", "--onnx-export", "false"]  # baseline, 2 models


def edited_root(sample_root, tmp_path, edit):
    """A copy of the sample data whose FileList.csv `edit` changed."""
    root = str(tmp_path / "echonet")
    shutil.copytree(sample_root, root)
    path = os.path.join(root, "FileList.csv")
    edit(pd.read_csv(path)).to_csv(path, index=False)
    return root, path


def fractions(filelist):
    return filelist.assign(EF=filelist.EF / 100)


def one_training_video(filelist):
    return filelist.drop(index=filelist.index[filelist.Split == "TRAIN"][1:])


def one_training_ef(filelist):
    return filelist.assign(EF=filelist.EF.where(filelist.Split != "TRAIN", 55.0))


@pytest.mark.parametrize("edit, message", [
    (fractions, "every EF (column EF) lies between 0 and 1 (the largest is 0."),
    (one_training_video, "the training split holds 1 video(s), every one with EF"),
    (one_training_ef, "the training split holds 8 video(s), every one with EF 55 (column EF)"),
])
def test_data_that_makes_training_meaningless_is_refused_naming_the_filelist(edit, message, sample_root,
                                                                            tmp_path, run_here):
    root, path = edited_root(sample_root, tmp_path, edit)
    out = tmp_path / "out"
    out.mkdir()
    result = run_here("main.py", *FAST, *options(data_root=root), *run_folders(out), cwd=out)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"{path}: " in result.stderr and message in result.stderr
    assert "epoch" not in result.stdout and not list(out.rglob("*.pt"))  # no model trained


def test_a_last_batch_batchnorm_cannot_train_on_joins_the_one_before_and_is_said(tmp_path, run_here):
    """9 training videos in batches of 4, one frame of 32x32: the last batch would hold one video, whose
    1x1 maps give BatchNorm one value per channel ("Expected more than 1 value per channel")."""
    root = str(tmp_path / "nine")
    create_sample_data(root, num_train=9, num_val=4, num_test=4, seed=0, log=lambda *_: None, processes=1)
    out = tmp_path / "out"
    out.mkdir()
    result = run_here("main.py", *FAST, *options(data_root=root, num_frames=1, num_train_videos=9),
                      *run_folders(out), cwd=out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the last training batch of each epoch (1 video(s) for 1 process(es)) joins the one before it: " \
           "BatchNorm cannot train on one video per process" in result.stdout


def test_only_a_batch_batchnorm_cannot_train_on_is_joined():
    """One frame of 32x32: a last step of one video joins the one before; of two, it stays. Every run with
    more than one value per channel (the quick preset's 16 frames of 32x32, the reference's 32 of 112x112,
    one frame of 64x64) keeps every batch as before, a last one of one video included."""
    assert batches.fewest_clips(1, 32) == 2
    assert [len(s) for s in batches.training_steps(torch.arange(9), 4, 1, fewest=2)] == [4, 5]
    assert [len(s) for s in batches.training_steps(torch.arange(10), 4, 1, fewest=2)] == [4, 4, 2]
    for frames, size in ((16, 32), (32, 112), (1, 64), (2, 32)):
        assert batches.fewest_clips(frames, size) == 1
    assert [len(s) for s in batches.training_steps(torch.arange(9), 4, 1)] == [4, 4, 1]
    clips = torch.zeros(9, 1, 32, 32, 3, dtype=torch.uint8)
    loader = batches.Batches(clips, torch.arange(9.0), 4, torch.device("cpu"), shuffle=True)
    assert [len(ef) for _, ef in loader] == [4, 5] and len(loader) == 2
