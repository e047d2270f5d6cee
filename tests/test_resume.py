"""A run can be killed at any moment and continued; bad input stops it clearly or is skipped and
recorded; several seeds are aggregated; the same seed gives the same numbers."""
import copy
import json
import os
import re
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import dataset
import main
import train
from conftest import LEAN, TINY, options, run_folders

from dataset import DataError, EchoNetVideoDataset
from model import EFRegressionModel

KEYS = ["name", "seed", "test_mae", "test_rmse", "sparsity", "sparsity_before_fine_tune", "params_nonzero",
        "flops"]


def rows(results_dir):
    with open(os.path.join(results_dir, "results.json")) as f:
        return [{k: r[k] for k in KEYS} for r in json.load(f)["models"]]


def tiny_args(sample_root, out, *extra):
    return [*TINY, *options(data_root=sample_root, unstructured_pruning_ratios="0.5,0.9"), *run_folders(out),
            *extra]


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_a_model_cut_off_mid_training_continues_from_its_last_epoch(tmp_path, schedule):
    def loaders():
        g = torch.Generator().manual_seed(0)
        data = TensorDataset(torch.randn(8, 2, 3, 32, 32, generator=g), 55 + 10 * torch.randn(8, generator=g))
        # shuffled by seed and epoch, as main.py does, so a continued run shuffles like an uninterrupted one
        sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=1)
        return DataLoader(data, batch_size=4, sampler=sampler), DataLoader(data, batch_size=4)

    def fresh_model():
        torch.manual_seed(0)
        return EFRegressionModel(55.0)

    cpu = torch.device("cpu")
    uninterrupted = fresh_model()
    train.train(uninterrupted, *loaders(), epochs=3, lr=1e-3, device=cpu, log=lambda *_: None,
                schedule=schedule)

    def killed_after_epoch_2(message):
        if "epoch 2/3" in message:
            raise KeyboardInterrupt
    state = str(tmp_path / "state.pt")
    with pytest.raises(KeyboardInterrupt):
        train.train(fresh_model(), *loaders(), epochs=3, lr=1e-3, device=cpu, log=killed_after_epoch_2,
                    state_path=state, schedule=schedule)
    messages = []
    continued = fresh_model()
    history = train.train(continued, *loaders(), epochs=3, lr=1e-3, device=cpu, log=messages.append,
                          state_path=state, schedule=schedule)
    assert "continuing after epoch 2" in messages[0] and len(history["val_mae"]) == 3
    for a, b in zip(uninterrupted.state_dict().values(), continued.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("method, ramp_end", [("unstructured", 0.5), ("structured_physical", 0.5),
                                              ("unstructured", 0.375)])
def test_gradual_pruning_cut_off_between_its_steps_continues_exactly(tmp_path, method, ramp_end):
    """Killed after epoch 2 of 4 (ramp 0.5: steps before training steps 0, 2, 4, so two of three
    taken; 0.375: 0, 2, 3, the last one inside epoch 2), the continued fine-tuning replays the steps
    taken, restores weights and masks, and ends where an uninterrupted one does."""
    import prune_utils
    import pruners
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(8, 2, 3, 32, 32, generator=g), 55 + 10 * torch.randn(8, generator=g))
    sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=1)
    loaders = DataLoader(data, batch_size=4, sampler=sampler), DataLoader(data, batch_size=4)
    torch.manual_seed(0)
    baseline = EFRegressionModel(55.0)
    cpu = torch.device("cpu")

    def fine_tune(log, state_path=None):
        model = copy.deepcopy(baseline)
        pruner = pruners.Pruner(model, method, 0.5, 2, 32, round_to=8, steps=3, ramp_end=ramp_end)
        train.train(model, *loaders, epochs=4, lr=1e-3, device=cpu, log=log, state_path=state_path,
                    schedule="cosine", pruner=pruner)
        return prune_utils.make_permanent(model)

    uninterrupted = fine_tune(lambda *_: None)

    def killed_after_epoch_2(message):
        if "epoch 2/4" in message:
            raise KeyboardInterrupt
    state = str(tmp_path / "state.pt")
    with pytest.raises(KeyboardInterrupt):
        fine_tune(killed_after_epoch_2, state)
    messages = []
    continued = fine_tune(messages.append, state)
    assert "continuing after epoch 2" in messages[0]
    for (name, a), (_, b) in zip(uninterrupted.state_dict().items(), continued.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_changed_configuration_stops_and_damages_nothing(sample_root, tiny_run, tmp_path, run_here):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0] / "results", out / "results")
    before = {p: p.read_bytes() for p in (out / "results").iterdir()}
    result = run_here("main.py", *tiny_args(sample_root, out, "--num-epochs", "3"), cwd=out)
    assert result.returncode == 2
    assert "holds results of another configuration (num-epochs: 1 -> 3)" in result.stderr
    assert "--fresh" in result.stderr and "Traceback" not in result.stderr
    assert {p: p.read_bytes() for p in (out / "results").iterdir()} == before


@pytest.mark.parametrize("damage", ["zero-byte", "corrupt", "one-frame"])
def test_an_unreadable_video_is_skipped_counted_and_named(sample_root, tmp_path, damage):
    root = str(tmp_path / "echonet")
    shutil.copytree(sample_root, root)
    data = {s: EchoNetVideoDataset(root, s, 2, 32) for s in ("train", "val", "test")}
    victim = data["train"].names[1]
    path = data["train"].video_path(victim)
    if damage == "one-frame":
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 50, (112, 112))
        writer.write(np.zeros((112, 112, 3), np.uint8))
        writer.release()
    else:
        with open(path, "wb") as f:
            f.write(b"" if damage == "zero-byte" else b"RIFF....AVI garbage")
    skipped = dataset.decode(data, skip_bad=True, log=lambda *_: None)
    assert skipped == [{"split": "TRAIN", "video": victim, "reason": skipped[0]["reason"]}]
    assert victim in skipped[0]["reason"] and "decoded" in skipped[0]["reason"]
    assert len(data["train"]) == 7 and victim not in data["train"].names
    assert data["train"].clips.shape == (7, 2, 32, 32, 3)  # the clips array lost the same video
    with pytest.raises(DataError, match=f"{victim}.avi.*--skip-bad-videos is false"):
        dataset.decode({s: EchoNetVideoDataset(root, s, 2, 32) for s in ("train",)}, skip_bad=False)


def test_skipped_videos_are_recorded_in_results(sample_root, tmp_path, run_here):
    root = tmp_path / "echonet"
    shutil.copytree(sample_root, root)
    victim = pd.read_csv(root / "FileList.csv").FileName[0]
    (root / "Videos" / f"{victim}.avi").write_bytes(b"")
    dense_only = options(data_root=root, unstructured_pruning_ratios="", structured_pruning_ratios="",
                         physical_structured_pruning="false", onnx_export="false")
    result = run_here("main.py", *TINY, *LEAN, *dense_only, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"skipping {victim}" in result.stdout
    results = json.load(open(tmp_path / "results" / "results.json"))
    assert [s["video"] for s in results["skipped_videos"]] == [victim] and results["splits"]["train"] == 7
    summary = (tmp_path / "results" / "summary.md").read_text()
    assert f"{victim} (train)" in summary  # ONNX is off in this run: no ONNX Runtime column
    assert "ONNX Runtime ms" not in summary and "onnx_latency" not in summary
    # the bad video replaced, as the skip message advises: the earlier results were measured without it
    shutil.copy(os.path.join(sample_root, "Videos", f"{victim}.avi"), root / "Videos" / f"{victim}.avi")
    again = run_here("main.py", *TINY, *LEAN, *dense_only, cwd=tmp_path)
    assert again.returncode == 2 and "Traceback" not in again.stderr  # was: operands could not be broadcast
    assert f"the skipped videos changed (readable again: {victim})" in again.stderr
    assert "--fresh" in again.stderr
    (root / "Videos" / f"{victim}.avi").write_bytes(b"")  # bad again, and now the run is told to stop on it
    fatal = run_here("main.py", *TINY, *options(data_root=root, skip_bad_videos="false", results_dir="other"),
                     cwd=tmp_path)
    assert fatal.returncode == 2 and f"{victim}.avi" in fatal.stderr and "Traceback" not in fatal.stderr


@pytest.mark.parametrize("change, message", [
    (lambda f: f.iloc[0:0], "lists no videos"),
    (lambda f: f.assign(EF=f.EF.astype(object).where(f.index != 0, None)), "row 2 .* EF must be a number"),
    (lambda f: pd.concat([f, f.iloc[:1]]), "is listed more than once"),
    (lambda f: f.assign(Split=f.Split.replace("VAL", "VALIDATION")),
     "unknown Split values \\['VALIDATION'\\]"),
])
def test_bad_filelist_stops_with_a_clear_message_and_keeps_earlier_results(sample_root, tiny_run, tmp_path,
                                                                          change, message, run_here):
    root = tmp_path / "echonet"
    shutil.copytree(sample_root, root)
    filelist = pd.read_csv(root / "FileList.csv")
    change(filelist).to_csv(root / "FileList.csv", index=False)
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0] / "results", out / "results")
    before = (out / "results" / "results.json").read_bytes()
    result = run_here("main.py", *TINY, *options(data_root=root, results_dir=out / "results2"), cwd=out)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert (out / "results" / "results.json").read_bytes() == before


def test_empty_filelist_file(sample_root, tmp_path, run_here):
    root = tmp_path / "echonet"
    shutil.copytree(sample_root, root)
    (root / "FileList.csv").write_text("")
    result = run_here("main.py", "--data-root", str(root), cwd=tmp_path)
    assert result.returncode == 2 and "FileList.csv cannot be read as CSV" in result.stderr


def test_a_checkpoint_from_another_configuration_is_refused(sample_root, tiny_run, tmp_path, run_here):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    other = str(out / "checkpoints" / "seed42" / "unstructured_0.5.pt")
    # same shapes, but saved by another model
    shutil.copy(other, out / "checkpoints" / "seed42" / "baseline.pt")
    checkpoint = torch.load(other, weights_only=True)
    checkpoint["info"]["identity"] = "0123456789abcdef"
    torch.save(checkpoint, out / "checkpoints" / "seed42" / "baseline.pt")
    result = run_here("main.py", *tiny_args(sample_root, tiny_run[0], "--results-dir", str(out / "results"),
                                            "--checkpoint-dir", str(out / "checkpoints")), cwd=out)
    assert result.returncode == 2
    assert "baseline.pt was saved by another run (identity 0123456789abcdef" in result.stderr
    assert "--fresh" in result.stderr and "Traceback" not in result.stderr


# two_seeds is compared with tiny_run (the same seed, another run): its tests go to tiny_run's pytest-xdist
# worker, so that each run is made once (tests/conftest.py)
with_tiny_run = pytest.mark.xdist_group("tiny_run")


@pytest.fixture(scope="module")
def two_seeds(sample_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds")
    main.main(tiny_args(sample_root, out, *LEAN, *options(seeds="42,7", random_pruning_control="true",
                                                          unstructured_pruning_ratios="0.9",
                                                          physical_structured_pruning="false",
                                                          onnx_export="false")))
    return out


@with_tiny_run
def test_two_seeds_report_mean_and_std_per_method_and_ratio(two_seeds):
    per_seed = pd.read_csv(two_seeds / "results" / "results.csv")
    assert sorted(per_seed.seed.unique()) == [7, 42]
    aggregated = pd.read_csv(two_seeds / "results" / "results_by_ratio.csv")
    assert len(aggregated) == len(per_seed) / 2 and (aggregated.n == 2).all()
    for row in aggregated.itertuples():
        values = per_seed[(per_seed.method == row.method) & (per_seed.ratio == row.ratio)].test_mae
        assert row.test_mae_mean == pytest.approx(values.mean())
        assert row.test_mae_std == pytest.approx(values.std(ddof=1))
    assert "± " in open(two_seeds / "results" / "summary.md").read()


@with_tiny_run
def test_random_control_prunes_the_same_ratios_at_random(two_seeds):
    per_seed = pd.read_csv(two_seeds / "results" / "results.csv")
    control = per_seed[per_seed.method == "unstructured_random"]
    assert sorted(control.ratio.unique()) == [0.9]
    assert ((control.sparsity - control.ratio).abs() < 0.005).all()
    assert (per_seed.method == "structured_random").sum() == 2


def test_the_same_seed_gives_identical_metrics(tiny_run, two_seeds):
    """Two separate runs on the CPU: every model of seed 42 has the same MAE and sparsity."""
    first = {r["name"]: r for r in rows(tiny_run[0] / "results")}
    second = [r for r in rows(two_seeds / "results") if r["seed"] == 42 and r["name"] in first]
    assert [r["name"] for r in second] == ["baseline", "dense_control_0", "unstructured_0.9",
                                           "structured_0.5"]
    for r in second:
        assert (r["test_mae"], r["sparsity"]) == (first[r["name"]]["test_mae"], first[r["name"]]["sparsity"])
