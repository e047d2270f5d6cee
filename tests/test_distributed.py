"""The same script under torchrun: two CPU processes (gloo) give every result row, test metrics cover
every test video exactly once, and a run killed after its first pruned model continues to the numbers
of an uninterrupted one."""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch.utils.data import DataLoader

import train
from conftest import LEAN, ROOT, TINY, cpu_env, options
from create_sample_data import create_sample_data
from dataset import EchoNetVideoDataset
from model import load_checkpoint

TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")
pytestmark = pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                                reason="no torchrun")
KEYS = ("name", "seed", "test_mae", "val_mae", "test_errors", "params_effective")


def torchrun(root, cwd, **popen):
    """torchrun of two processes on the tiny configuration, in `cwd`; a Popen with `popen` given, else run."""
    command = [TORCHRUN, "--standalone", "--nproc_per_node=2", os.path.join(ROOT, "main.py"), *TINY, *LEAN,
               *options(data_root=root, onnx_export="false", draw_figures="false")]
    env = cpu_env(OMP_NUM_THREADS="1")  # gloo on the CPU, as one process
    if popen:
        return subprocess.Popen(command, cwd=cwd, env=env, **popen)
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def records(folder):
    with open(folder / "results" / "results.json") as f:
        return json.load(f)["models"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("echonet"))
    # odd counts: a split two processes cannot share evenly, and no padding may count a video twice
    create_sample_data(root, num_train=8, num_val=3, num_test=5, seed=1, log=lambda *_: None, processes=1)
    return root


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("torchrun")
    result = torchrun(data, out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_torchrun_two_processes_give_every_row_and_each_test_video_once(data, uninterrupted):
    out, result = uninterrupted
    results = json.load(open(out / "results" / "results.json"))
    assert results["environment"]["world_size"] == 2
    assert [r["name"] for r in results["models"]] == ["baseline", "dense_control_0", "unstructured_0.5",
                                                      "structured_0.5", "structured_coupled_masked_0.5",
                                                      "structured_physical_0.5"]
    assert all(r["test_videos"] == 5 for r in results["models"])
    # one process, every test video once, from the saved checkpoint: the same MAE
    test = DataLoader(EchoNetVideoDataset(data, "test", 2, 32), batch_size=4)
    for record in results["models"]:
        model, _ = load_checkpoint(str(out / "results" / record["checkpoint"]))  # relative to its folder
        single = train.evaluate(model, test, torch.device("cpu"))
        assert single["videos"] == 5
        # float noise from other thread counts and batches is ~1e-4; a video missing or counted twice
        # among five would move the MAE by about a whole EF point; every process evaluates the saved model
        assert single["mae"] == pytest.approx(record["test_mae"], abs=1e-3)
    assert result.stdout.count("baseline epoch 1/1") == 1  # one process speaks
    assert not list((out / "cache").glob("shared-clips-*"))  # mapped by both processes, then unlinked


def test_torchrun_killed_after_its_first_pruned_model_continues_to_the_same_numbers(data, uninterrupted,
                                                                                    tmp_path):
    first = torchrun(data, tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results, deadline = tmp_path / "results" / "results.json", time.time() + 300
    while time.time() < deadline and first.poll() is None:
        if results.is_file() and results.stat().st_size and len(records(tmp_path)) >= 2:
            break
        time.sleep(0.05)
    for pid in [first.pid, *descendants(first.pid)]:  # torchrun and both processes, as a lost machine would
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    first.wait()
    assert [r["name"] for r in records(tmp_path)] == ["baseline", "dense_control_0"]

    again = torchrun(data, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "baseline (seed 42): reusing" in again.stdout and "baseline epoch" not in again.stdout
    assert "dense_control_0 (seed 42): reusing" in again.stdout
    continued = {r["name"]: {k: r[k] for k in KEYS} for r in records(tmp_path)}
    assert continued == {r["name"]: {k: r[k] for k in KEYS} for r in records(uninterrupted[0])}


def descendants(pid):
    """Every process below `pid` (torchrun starts its workers in process groups of their own)."""
    parents = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (ValueError, OSError, IndexError):
            continue
    below, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        below += children
        frontier = children
    return below
