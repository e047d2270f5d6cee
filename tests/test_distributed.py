"""The same script under torchrun: two CPU processes (gloo) give every result row, and test
metrics cover every test video exactly once."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader

import train
from conftest import LEAN, ROOT, TINY, cpu_env, options
from create_sample_data import create_sample_data
from dataset import EchoNetVideoDataset
from model import load_checkpoint


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                    reason="no torchrun")
def test_torchrun_two_processes_give_every_row_and_each_test_video_once(tmp_path):
    root = str(tmp_path / "echonet")
    # odd counts: a split two processes cannot share evenly, and no padding may count a video twice
    create_sample_data(root, num_train=8, num_val=3, num_test=5, seed=1, log=lambda *_: None, processes=1)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    result = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", os.path.join(ROOT, "main.py"),
                             *TINY, *LEAN,
                             *options(data_root=root, onnx_export="false", draw_figures="false")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env=cpu_env(OMP_NUM_THREADS="1"))  # gloo on the CPU, as one process
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.load(open(tmp_path / "results" / "results.json"))
    assert results["environment"]["world_size"] == 2
    assert [r["name"] for r in results["models"]] == ["baseline", "dense_control_0", "unstructured_0.5",
                                                      "structured_0.5", "structured_physical_0.5",
                                                      "structured_coupled_masked_0.5"]
    assert all(r["test_videos"] == 5 for r in results["models"])
    # one process, every test video once, from the saved checkpoint: the same MAE
    test = DataLoader(EchoNetVideoDataset(root, "test", 2, 32), batch_size=4)
    for record in results["models"]:
        model, _ = load_checkpoint(str(tmp_path / "results" / record["checkpoint"]))  # relative to its folder
        single = train.evaluate(model, test, torch.device("cpu"))
        assert single["videos"] == 5
        # float noise from other thread counts and batches is ~1e-4; a video missing or counted twice
        # among five would move the MAE by about a whole EF point; every process evaluates the saved model
        assert single["mae"] == pytest.approx(record["test_mae"], abs=1e-3)
    assert result.stdout.count("baseline epoch 1/1") == 1  # one process speaks
