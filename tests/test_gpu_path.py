"""What only a GPU or several processes would show, shown on the CPU: a continued run's reused models on
the run's device, bf16 only where the GPU computes it, predictions in fp32 under autocast, a process
group that outlasts the main process's measuring, the measuring runtimes on every CPU under torchrun,
one process moving files, and the clips mapped once for every process."""
import os
import types

import numpy as np
import pytest
import torch
import torch.distributed as dist

import onnx_runtime
import shared_clips
import processes
from bookkeeping import ledger
from model import EFRegressionModel, save_checkpoint

IDENTITY = {"id": "run-1"}


def finished_baseline(folder):
    """A finished baseline of run-1 as ledger.reuse finds it: its record, checkpoint and a training state
    that a kill right after results.json was written left behind."""
    torch.manual_seed(0)
    save_checkpoint(os.path.join(folder, "baseline.pt"), EFRegressionModel(50.0, 10.0), identity="run-1")
    state = ledger.training_state_path(folder, "baseline")
    torch.save({}, state)
    record = {"name": "baseline", "method": "baseline", "ratio": 0.0, "seed": 42, "test_mae": 1.0,
              "test_errors": [1.0]}
    return [record], state


def reuse(folder, done, **where):
    cfg = types.SimpleNamespace(RESULTS_DIR=str(folder))
    return ledger.reuse(done, "baseline", 42, cfg, str(folder), identity=IDENTITY, log=lambda *_: None,
                        **where)


def test_a_reused_model_is_on_the_runs_device_not_the_one_it_was_loaded_on(tmp_path):
    done, _ = finished_baseline(tmp_path)
    # "meta" stands for the GPU a CPU cannot have: a model left where the checkpoint was loaded (the CPU)
    # fails at the first batch of a CUDA run
    _, model = reuse(tmp_path, done, device=torch.device("meta"))
    assert {p.device.type for p in model.parameters()} | {b.device.type for b in model.buffers()} == {"meta"}


def test_only_the_main_process_deletes_or_moves_a_reused_models_files(tmp_path):
    done, state = finished_baseline(tmp_path)
    reuse(tmp_path, done, device=torch.device("cpu"), main=False)
    assert os.path.isfile(state)  # another process of the same torchrun run leaves it to the main one
    reuse(tmp_path, done, device=torch.device("cpu"), main=True)
    assert not os.path.isfile(state)

    with open(tmp_path / "baseline.pt", "wb") as f:  # damaged: set aside by the main process alone
        f.write(b"not a checkpoint")
    assert reuse(tmp_path, done[:1], device=torch.device("cpu"), main=False) is None
    assert os.path.isfile(tmp_path / "baseline.pt")
    assert reuse(tmp_path, done[:1], device=torch.device("cpu"), main=True) is None
    assert not os.path.isfile(tmp_path / "baseline.pt")
    assert len(list(tmp_path.glob("baseline.pt.damaged-*"))) == 1


class Properties:
    def __init__(self, major):
        self.major = major


@pytest.mark.parametrize("major, dtype", [(7, torch.float16), (8, torch.bfloat16), (9, torch.bfloat16)])
def test_bf16_only_on_gpus_that_compute_it(monkeypatch, major, dtype):
    # torch.cuda.is_bf16_supported() says yes on a T4 or V100 (compute capability 7), where bf16 is
    # emulated and cuDNN has no bf16 convolutions: those cards train in fp16 with the gradient scaler
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Properties(major))
    assert processes.precision(torch.device("cuda", 0), amp=True) == dtype
    assert processes.precision(torch.device("cuda", 0), amp=False) == torch.float32


def test_predictions_under_autocast_are_fp32_not_on_a_bf16_grid():
    torch.manual_seed(0)
    model = EFRegressionModel(55.0, 12.0).eval()
    video = torch.randn(8, 2, 3, 32, 32)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        predicted = model(video)
    assert predicted.dtype == torch.float32
    # bf16 holds 8 bits of mantissa: near 55, steps of 0.25 EF points. Eight fp32 predictions all on
    # that grid would be a 1-in-10^14 chance.
    assert (predicted != predicted.bfloat16().float()).any()


def test_the_process_group_outlasts_the_main_processs_measuring(monkeypatch):
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda *a, **k: calls.append(k))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    processes.init_distributed()
    # measuring one model at EchoNet-Dynamic's 1,277 test videos on one thread: about 12 minutes, past
    # the default of 10 that killed such runs
    assert calls and calls[0]["timeout"].total_seconds() >= 30 * 60


def test_under_torchrun_the_measuring_runtimes_use_every_cpu_not_one_thread(monkeypatch, tmp_path):
    path = str(tmp_path / "m.onnx")
    torch.onnx.export(torch.nn.Linear(3, 1), (torch.randn(1, 3),), path, dynamo=False)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # as torchrun's OMP_NUM_THREADS=1 leaves every process
        assert onnx_runtime.session(path).get_session_options().intra_op_num_threads == 1  # one process
        monkeypatch.setattr(processes, "world_size", lambda: 2)
        cpus = len(os.sched_getaffinity(0))
        assert onnx_runtime.session(path).get_session_options().intra_op_num_threads == cpus
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("started, gpus, device, refused", [
    ("2", 1, "auto", "one process a GPU"), ("2", 2, "cuda:0", "every process on one device"),
    ("2", 2, "auto", None), ("1", 1, "cuda:0", None), ("4", 1, "cpu", None)])
def test_torchrun_with_more_processes_than_gpus_is_refused_before_anything_starts(monkeypatch, started,
                                                                                   gpus, device, refused):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", started)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    problem = processes.too_many_processes(device)
    assert (problem is None) if refused is None else refused in problem


def test_clips_shared_between_processes_are_mapped_from_one_file(tmp_path):
    clips = torch.randint(0, 256, (5, 2, 8, 8, 3), dtype=torch.uint8)
    path = shared_clips.write(clips, str(tmp_path), "train")
    mapped = shared_clips.mapped(path)
    assert torch.equal(mapped, clips)
    assert isinstance(np.load(path, mmap_mode="c"), np.memmap)  # pages from the file, not a private copy
    os.remove(path)  # unlinked once every process has mapped it: the mapping stays readable
    assert torch.equal(mapped, clips)


def test_the_shared_clips_of_a_killed_run_are_removed_and_a_running_ones_kept(tmp_path):
    dead = subprocess_pid_that_ended()
    leftover = tmp_path / f"{shared_clips.PREFIX}train-{dead}.npy"
    running = tmp_path / f"{shared_clips.PREFIX}train-{os.getpid()}.npy"
    for path in (leftover, running):
        path.write_bytes(b"x")
    shared_clips.remove_leftovers(str(tmp_path), log=lambda *_: None)
    assert not leftover.exists() and running.exists()


def subprocess_pid_that_ended():
    import subprocess
    import sys
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_clips_larger_than_the_free_memory_are_refused_naming_the_options(monkeypatch, sample_root):
    import data_checks
    import dataset
    monkeypatch.setattr(data_checks, "available_memory", lambda: 10_000)  # bytes: less than 8 clips
    splits = {"train": dataset.EchoNetVideoDataset(sample_root, "train", 2, 32, counts=(8, 4, 4), seed=0)}
    with pytest.raises(dataset.DataError, match="--num-frames or --image-size"):
        dataset.decode(splits, skip_bad=True, log=lambda *_: None)


def test_a_gpu_out_of_memory_error_ends_in_a_message_naming_the_options(monkeypatch, sample_root, tmp_path,
                                                                         run_here):
    import seed_models
    from conftest import LEAN, TINY, options

    def out_of_memory(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(seed_models, "run_baseline", out_of_memory)
    result = run_here("main.py", *TINY, *LEAN, *options(data_root=sample_root), cwd=tmp_path)
    assert result.returncode == 2
    assert "--batch-size" in result.stderr and "--clips-on-device 0" in result.stderr
