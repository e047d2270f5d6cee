"""The CPU suite computes on the CPU on a GPU box too: its runs compare numbers (same seed, same MAE;
two processes against one) that bf16, cuDNN and one GPU shared by two torchrun processes would change.
tests/test_gpu.py (marker cuda) is where the GPU runs."""
import subprocess
import sys

import cli
import conftest
from conftest import LEAN, TINY, cpu_env


def test_the_tiny_configuration_names_the_cpu():
    assert cli.load(TINY).DEVICE == "cpu" and cli.load([*TINY, *LEAN]).DEVICE == "cpu"


def test_subprocess_runs_see_no_gpu(monkeypatch, tmp_path):
    # torch, started in the environment of the suite's subprocesses, finds no GPU (on a GPU box too)
    seen = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
                          env=cpu_env(), capture_output=True, text=True, timeout=120)
    assert seen.stdout.strip() == "0", seen.stderr[-2000:]
    started = []
    monkeypatch.setattr(subprocess, "run", lambda command, **kw: started.append((command, kw)))
    conftest.run_main("--quick", cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    (command, kw), = started
    assert command[-1] == "--quick" and kw["env"]["CUDA_VISIBLE_DEVICES"] == ""
    assert kw["env"]["OMP_NUM_THREADS"] == "1" and kw["env"]["PATH"]  # the rest of the environment kept
