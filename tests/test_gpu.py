"""The GPU path (marker `cuda`: skipped with the reason on a machine without one): clips resident on
the device, training steps in the native precision on them, the same batches as the CPU path,
synchronised latency, a physically pruned model trained and reloaded on the GPU, predictions off the
autocast grid, and tiny main.py runs with every path (INT8, sensitivity, controls, distillation), their
continuation and, on two GPUs, torchrun. `python check_gpu.py --selftest` runs this file too."""
import copy
import os
import statistics

import pytest
import torch

import batches
import latency
import metrics
import pruners
import selftest_runs
import processes
import train
from model import EFRegressionModel, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.cuda
CUDA = torch.device("cuda")


def clips(videos=12, frames=2, size=32):
    return torch.randint(0, 256, (videos, frames, size, size, 3), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))


def test_clips_resident_on_the_device_give_the_cpu_paths_batches():
    data, efs = clips(), torch.arange(12.0)
    for share in (1.0, 0):  # resident, then pinned host batches copied without blocking
        gpu = batches.Batches(data, efs, 4, CUDA, shuffle=True, seed=7, share=share)
        cpu = batches.Batches(data, efs, 4, torch.device("cpu"), shuffle=True, seed=7)
        assert gpu.resident is (share == 1.0) and gpu.clips.is_cuda is (share == 1.0)
        gpu.set_epoch(3), cpu.set_epoch(3)
        for (video, ef), (video_cpu, ef_cpu) in zip(gpu, cpu):
            assert video.is_cuda and torch.equal(ef.cpu(), ef_cpu)
            assert torch.allclose(video.cpu(), video_cpu, atol=1e-5)


def test_bf16_only_where_the_gpu_computes_it_natively():
    major = torch.cuda.get_device_properties(CUDA).major
    # torch.cuda.is_bf16_supported() says yes on T4 and V100 too, where bf16 is emulated
    native = major >= 8 or bool(torch.version.hip)
    assert processes.precision(CUDA, True) == (torch.bfloat16 if native else torch.float16)
    assert processes.precision(CUDA, False) == torch.float32


def test_a_training_step_in_the_native_precision_on_device_resident_clips():
    data = batches.Batches(clips(), 40 + torch.arange(12.0), 4, CUDA, shuffle=True, share=1.0)
    assert data.resident
    torch.manual_seed(0)
    model = EFRegressionModel(45.0)
    validation = batches.Batches(clips(4), torch.full((4,), 45.0), 4, CUDA)
    history = train.train(model, data, validation, 1, 1e-3, CUDA, log=lambda *_: None, amp=True,
                          channels_last=True)
    assert history["train_videos"] == 12 and torch.isfinite(torch.tensor(history["train_loss"])).all()
    assert history["data_wait_seconds"] < history["train_seconds"]


def test_predictions_under_autocast_are_not_on_its_grid():
    """The head and the EF scale run in fp32 under autocast: predictions in bf16 would sit on a grid of
    0.25 EF points near 45 (and distillation targets and sensitivity MAEs with them)."""
    torch.manual_seed(0)
    model = EFRegressionModel(45.0).to(CUDA).eval()
    video = torch.randn(8, 2, 3, 32, 32, device=CUDA)
    dtype = processes.precision(CUDA, True)
    with torch.inference_mode():
        full = model(video)
        with processes.autocast(CUDA, dtype):
            amp = model(video)
    assert amp.dtype == torch.float32 and len(set(amp.tolist())) == 8
    assert (amp != amp.to(dtype).float()).sum() >= 7  # off the grid (one might land on it by chance)
    assert torch.allclose(amp, full, atol=0.05)


def test_latency_on_the_gpu_is_synchronised_and_in_the_training_precision():
    """The runner's synchronised time is the GPU's time for the work (CUDA events), far above what the
    same runs read unsynchronised (the launches alone)."""
    body = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1),
                               *[torch.nn.Conv2d(64, 64, 3, padding=1) for _ in range(20)])

    class Video(torch.nn.Module):  # (B, T, 3, H, W) as the EF model takes it
        def __init__(self):
            super().__init__()
            self.body = body

        def forward(self, video):
            return self.body(video.flatten(0, 1)).mean()
    runner = latency.pytorch_runner(Video(), torch.randn(1, 64, 3, 112, 112), CUDA,
                                    dtype=processes.precision(CUDA, True))
    median, _ = latency.time_runs(runner.run, 2, 5, runner.synchronize)
    on_gpu = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        runner.run()
        end.record()
        torch.cuda.synchronize()
        on_gpu.append(start.elapsed_time(end))
    launches, _ = latency.time_runs(runner.run, 2, 5)  # no waiting: the time to queue the kernels
    torch.cuda.synchronize()
    work = statistics.median(on_gpu)
    assert 0.8 * work <= median <= 1.5 * work + 0.5, (median, work)
    assert launches < 0.5 * median, (launches, median)
    assert runner.setup["latency_device"].startswith("cuda")
    assert runner.setup["latency_precision"] == str(processes.precision(CUDA, True)).replace("torch.", "")


def test_a_physically_pruned_model_trains_on_the_gpu_and_reloads_there(tmp_path):
    torch.manual_seed(0)
    model = pruners.apply(EFRegressionModel(45.0).to(CUDA), "structured_physical", 0.5, 2, 32, round_to=8)
    data = batches.Batches(clips(), 40 + torch.arange(12.0), 4, CUDA, shuffle=True, share=1.0)
    train.train(model, data, data, 1, 1e-3, CUDA, log=lambda *_: None, amp=True, channels_last=True)
    save_checkpoint(str(tmp_path / "m.pt"), model, method="structured_physical")
    again, _ = load_checkpoint(str(tmp_path / "m.pt"), device=CUDA)
    assert all(p.is_cuda for p in again.parameters()) and all(b.is_cuda for b in again.buffers())
    saved = model.state_dict()
    assert all(torch.equal(value, saved[name]) for name, value in again.state_dict().items())
    video = next(iter(data))[0]
    again.to(memory_format=torch.channels_last)  # as training left the model: the same cuDNN kernels
    with torch.inference_mode():
        assert torch.allclose(model.eval()(video), again.eval()(video), atol=1e-3)
    assert metrics.parameter_counts(again)[1] < 0.5 * metrics.parameter_counts(EFRegressionModel())[1]


def test_a_tiny_run_with_every_path_on_cuda_then_its_continuation(sample_root, tmp_path):
    """INT8, the layer sensitivity, the random, removal and scratch controls and distillation, in one
    tiny main.py run on the GPU (selftest_runs: what check_gpu.py --selftest runs); then the distilled
    model's checkpoint deleted and the same command again: it is fine-tuned from the reused baseline,
    its teacher, which must be on the GPU; the other models are reused with the same test MAE."""
    ctx = selftest_runs.context(CUDA, "cuda", str(tmp_path), sample_root)
    first = selftest_runs.end_to_end(ctx)  # raises selftest_runs.Failed, saying what is wrong
    assert first["verdict"] == "PASS", first["text"]
    results = copy.deepcopy(ctx.first)
    names = {r["name"] for r in results["models"]}
    assert {"structured_physical_kd_0.5", "unstructured_random_0.5", "structured_random_0.5",
            "structured_physical_random_0.5", "scratch_0.5"} <= names
    assert results["sensitivity"] and results["clips_on_device"] is True
    assert results["environment"]["device"].startswith("cuda")
    assert all(r["latency_device"].startswith("cuda") and r["latency_rounds"] == 3 for r in results["models"])
    assert all(r["int8_test_mae"] > 0 and os.path.isfile(os.path.join(ctx.run, "results", r["int8_path"]))
               for r in results["models"])
    again = selftest_runs.continuation(ctx)
    assert again["verdict"] == "PASS", again["text"]
    assert again["numbers"]["deleted"] == "structured_physical_kd_0.5"
    assert again["numbers"]["reused"] == sorted(names - {"structured_physical_kd_0.5"})


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs (one torchrun process a GPU)")
def test_torchrun_starts_one_process_on_each_of_two_gpus(sample_root, tmp_path):
    ctx = selftest_runs.context(CUDA, "cuda", str(tmp_path), sample_root)
    started = selftest_runs.torchrun(ctx)  # raises selftest_runs.Failed, saying what is wrong
    assert started["verdict"] == "PASS", started["text"]
    assert started["numbers"]["models"] == 6  # the baseline and the lean plan's five
