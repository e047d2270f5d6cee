"""A run is what it says it is: results.json, checkpoints, training states and the checkpoint folder carry
the run's identity (result-changing options and the data); another run's files are refused, naming the
file and what to do; --fresh moves only the run's own folders; ratios are as asked or the run stops."""
import json
import os
import shutil

import pandas as pd
import pytest
import torch

from storage import folders
from bookkeeping import ledger
import cli
from storage import locks
import methods
import prune_utils
from bookkeeping import run_identity
from conftest import LEAN, TINY, options
from create_sample_data import create_sample_data, sample_matches
from dataset import DataError


def cfg_for(tmp_path, *argv):
    return cli.load(["--results-dir", str(tmp_path / "results"), *argv])


def identity(cfg, root, names=()):
    return run_identity.run_identity(cfg, run_identity.data_fingerprint(root, names))


def previous_for(cfg, ident, skipped=()):
    return {"config": vars(cfg), "models": [], "identity": ident, "skipped_videos": list(skipped)}


# --- 1. a checkpoint folder belongs to one run -------------------------------------------------------

def test_checkpoints_live_in_the_results_folder_unless_asked_otherwise():
    assert cli.load([]).CHECKPOINT_DIR == os.path.join("results", "checkpoints")
    assert (cli.load(["--results-dir", "results_regrowth"]).CHECKPOINT_DIR
            == os.path.join("results_regrowth", "checkpoints"))
    assert cli.load(["--checkpoint-dir", "ck"]).CHECKPOINT_DIR == "ck"


def test_a_training_state_of_another_run_is_refused_not_continued(tmp_path):
    state = str(tmp_path / "structured_0.5.training.pt")
    first, second = {"id": "1111111111111111"}, {"id": "2222222222222222"}
    run_identity.check_training_state(state, first, print)  # none yet: stamped for the first run
    torch.save({"model": {}, "optimizer": {}, "history": {}, "best_mae": 1.0, "best_state": {}}, state)
    run_identity.check_training_state(state, first, print)  # the same run continues it
    with pytest.raises(cli.ConfigError) as refused:
        run_identity.check_training_state(state, second, print)  # e.g. another --fine-tune-learning-rate
    assert state in str(refused.value)
    assert "another run" in str(refused.value) and "--fresh" in str(refused.value)
    os.remove(state[:-len(".pt")] + ".identity")  # a state nobody stamped is not continued either
    with pytest.raises(cli.ConfigError, match="no identity beside it"):
        run_identity.check_training_state(state, first, print)
    ledger.forget_training_state(str(tmp_path), "structured_0.5")
    assert not os.listdir(tmp_path)


def test_an_outside_checkpoint_folder_is_locked_and_belongs_to_one_run(tmp_path):
    cfg = cfg_for(tmp_path, "--checkpoint-dir", str(tmp_path / "shared"))
    held = run_identity.claim_checkpoints(cfg, {"id": "a" * 16, "config": "c", "data": {}}, print)
    assert held == str(tmp_path / "shared" / locks.LOCK_FILE) and os.path.isfile(held)
    locks.unlock_all()
    with pytest.raises(cli.ConfigError) as refused:
        run_identity.claim_checkpoints(cfg, {"id": "b" * 16, "config": "c", "data": {}}, print)
    message = str(refused.value)
    assert f"checkpoint folder {tmp_path / 'shared'} belongs to another run" in message
    assert "--checkpoint-dir" in message and "--fresh" in message
    assert run_identity.claim_checkpoints(cfg, {"id": "a" * 16}, print)  # its own run continues
    locks.unlock_all()


# --- 2 and 7. a continued run never mixes data ---------------------------------------------------------

def test_changed_labels_or_a_replaced_video_change_the_identity_and_are_refused(sample_root, tmp_path):
    root = tmp_path / "echonet"
    shutil.copytree(sample_root, root)
    cfg = cfg_for(tmp_path, "--data-root", str(root))
    names = pd.read_csv(root / "FileList.csv").FileName.tolist()
    before = identity(cfg, str(root), names)
    assert identity(cfg, str(root), names) == before  # deterministic

    filelist = pd.read_csv(root / "FileList.csv")
    filelist.loc[filelist.Split == "TEST", "EF"] += 10  # the test labels changed
    filelist.to_csv(root / "FileList.csv", index=False)
    with pytest.raises(DataError) as refused:
        ledger.start_or_continue(cfg, previous_for(cfg, before), identity(cfg, str(root), names), [], print)
    assert "results.json holds results of other data: FileList.csv changed" in str(refused.value)
    assert "--fresh" in str(refused.value)

    shutil.copy(os.path.join(sample_root, "FileList.csv"), root / "FileList.csv")
    video = root / "Videos" / f"{names[0]}.avi"
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0xFF
    video.write_bytes(bytes(data))  # same name and size, other content
    with pytest.raises(DataError, match="the videos in .*Videos \\(replaced, added or removed\\) changed"):
        ledger.start_or_continue(cfg, previous_for(cfg, before), identity(cfg, str(root), names), [], print)


def test_a_skipped_video_that_is_readable_again_is_refused_not_a_crash(tmp_path):
    cfg = cfg_for(tmp_path)
    ident = {"id": "a" * 16, "config": "c", "data": {"filelist": "f", "videos": "v"}}
    skipped = [{"split": "TEST", "video": "0XBAD", "reason": "0 frames"}]
    with pytest.raises(DataError) as refused:  # before: ValueError, shapes (4,) (3,), in the bootstrap
        ledger.start_or_continue(cfg, previous_for(cfg, ident, skipped), ident, [], print)
    assert "the skipped videos changed (readable again: 0XBAD)" in str(refused.value)
    assert "--fresh" in str(refused.value)
    assert ledger.start_or_continue(cfg, previous_for(cfg, ident, skipped), ident, skipped, print)


def test_results_written_before_identities_are_not_continued(tmp_path):
    cfg = cfg_for(tmp_path)
    previous = previous_for(cfg, None)
    with pytest.raises(DataError, match="written before runs recorded their data"):
        ledger.start_or_continue(cfg, previous, {"id": "a", "data": {}}, [], print)


# --- 6. moving the run's folders keeps it whole -------------------------------------------------------

def test_paths_in_results_are_relative_to_the_results_folder(tmp_path):
    record = {"checkpoint": os.path.join("out", "checkpoints", "seed42", "baseline.pt"),
              "onnx_path": os.path.join("out", "checkpoints", "seed42", "baseline.onnx")}
    ledger.relative_paths(record, "out")
    assert record == {"checkpoint": os.path.join("checkpoints", "seed42", "baseline.pt"),
                      "onnx_path": os.path.join("checkpoints", "seed42", "baseline.onnx")}
    assert folders.resolve("moved", record["checkpoint"]) == os.path.join("moved", "checkpoints", "seed42",
                                                                              "baseline.pt")


# --- 4. --fresh cannot hurt ---------------------------------------------------------------------------

@pytest.mark.parametrize("folder", [".", ".."])
def test_fresh_never_archives_the_working_directory(folder, tmp_path, run_here):
    work = tmp_path / "project"
    work.mkdir()
    (work / "main.py").write_text("# mine")
    result = run_here("main.py", *TINY, *LEAN, *options(results_dir=folder, cache_dir="cache"), "--fresh",
                      cwd=work)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"--fresh would archive --results-dir {folder}, which is (or holds) the working directory"
            in result.stderr)
    assert (work / "main.py").read_text() == "# mine" and not list(tmp_path.glob("*.old-*"))


def test_fresh_never_archives_a_folder_with_other_files(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.json").write_text("{}")
    (tmp_path / "results" / "thesis.tex").write_text("mine")
    cfg = cfg_for(tmp_path, "--fresh")
    with pytest.raises(cli.ConfigError) as refused:
        ledger.earlier_results(cfg)
    assert "holds files that are not this run's (thesis.tex); nothing was moved" in str(refused.value)
    (tmp_path / "results" / "thesis.tex").unlink()
    (tmp_path / "results" / "checkpoints" / "seed42").mkdir(parents=True)
    assert ledger.earlier_results(cfg) == {}  # only the run's own files: archived after the data is checked


def test_fresh_checks_the_data_before_it_archives(tmp_path, run_here):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.json").write_text('{"config": {}, "models": []}')
    result = run_here("main.py", *TINY, *LEAN, "--fresh", "--data-root", "no_such_folder", cwd=tmp_path)
    assert result.returncode == 2 and "data folder 'no_such_folder' does not exist" in result.stderr
    assert (tmp_path / "results" / "results.json").is_file() and not list(tmp_path.glob("results.old-*"))


# --- 5. options that take effect --------------------------------------------------------------------

def test_sample_data_records_its_seed_and_split_sizes(tmp_path):
    root = str(tmp_path / "sample")
    create_sample_data(root, 1, 1, 1, seed=42, log=lambda *_: None, processes=1)
    assert json.load(open(os.path.join(root, "sample.json"))) == {"seed": 42, "counts": [1, 1, 1]}
    assert sample_matches(root, (1, 1, 1), 42)
    assert not sample_matches(root, (1, 1, 1), 7)  # --seed 7: written again
    assert not sample_matches(root, (2, 1, 1), 42)
    os.remove(os.path.join(root, "sample.json"))  # a folder from before the record, or cut off
    assert not sample_matches(root, (1, 1, 1), 42)


def test_duplicate_ratios_are_refused():
    with pytest.raises(cli.ConfigError,
                       match="structured-pruning-ratios lists 0.5 twice \\(0.5,0.5\\)"):
        cli.load(["--structured-pruning-ratios", "0.5,0.5"])


# --- 3. ratios as asked, or a clear stop ----------------------------------------------------------------

def test_an_unreachable_physical_ratio_stops_before_training(sample_root, tmp_path, run_here):
    result = run_here("main.py", *TINY, *LEAN, *options(data_root=sample_root, structured_pruning_ratios=0.99,
                                                        onnx_export="false"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "epoch" not in result.stdout
    assert ("structured-pruning-ratios 0.99: structured_physical (Torch-Pruning, channels rounded to "
            "multiples of --physical-round-to 8) removes 0.00 of the channels, not 0.99; the highest ratio "
            "it reaches within 0.05 is 0.91") in result.stderr
    assert "--physical-structured-pruning false" in result.stderr and not (tmp_path / "results").exists()


def test_the_achieved_ratio_is_in_every_record(tiny_run):
    records = json.load(open(tiny_run[0] / "results" / "results.json"))["models"]
    for record in records:
        assert "achieved_ratio" in record, record["name"]
        if record["method"] != "baseline":
            matched = record["method"] in methods.FLOPS_MATCHED  # to removal's FLOPs, not the ratio
            wanted = record["allocation_knob"] if matched else record["ratio"]
            assert abs(record["achieved_ratio"] - wanted) <= prune_utils.TOLERANCE, record["name"]
    physical = next(r for r in records if r["method"] == "structured_physical")
    assert physical["channels"]["backbone.conv1"][1] == 64
    assert physical["channels"]["backbone.conv1"][0] < 64  # the stem is pruned too
    kept = sum(k for k, _ in physical["channels"].values()) / sum(n for _, n in physical["channels"].values())
    assert physical["achieved_ratio"] == pytest.approx(1 - kept)


# --- issue 26: the number of processes is the run's; the data's folder is not ----------------------------

def test_a_run_continued_with_another_number_of_processes_is_refused(tmp_path, monkeypatch):
    cfg = cfg_for(tmp_path, "--batch-size", "4")
    ident = identity(cfg, str(tmp_path))
    assert ident["processes"] == 1
    two = {**ident, "processes": 2, "id": "b" * 16}  # what torchrun --nproc_per_node 2 recorded
    with pytest.raises(cli.ConfigError) as refused:
        ledger.start_or_continue(cfg, previous_for(cfg, two), ident, [], print)
    message = str(refused.value)
    assert ("holds results of 2 process(es) (an effective batch of 2 x 4 videos); this run has 1 (1 x 4)"
            in message)
    assert "torchrun --nproc_per_node 2 main.py" in message and "--fresh" in message
    monkeypatch.setattr(run_identity.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(run_identity.dist, "get_world_size", lambda: 2)
    assert identity(cfg, str(tmp_path))["id"] != ident["id"]  # its checkpoints are another run's too


def test_the_data_folder_spelled_otherwise_is_the_same_run(sample_root, tmp_path, monkeypatch):
    monkeypatch.chdir(os.path.dirname(sample_root))
    relative = cfg_for(tmp_path, "--data-root", os.path.basename(sample_root))
    absolute = cfg_for(tmp_path, "--data-root", sample_root + os.sep)
    assert cli.differences(vars(relative), vars(absolute)) == []
    names = ["0X0"]
    assert identity(relative, relative.DATA_ROOT, names) == identity(absolute, absolute.DATA_ROOT, names)
