"""The GPU path (marker `cuda`: skipped with the reason on a machine without one): clips resident on
the device, bf16 training steps on them, the same batches as the CPU path, synchronised latency, a
physically pruned model trained and reloaded, and a tiny main.py run end to end."""
import json

import pytest
import torch

import batches
import latency
import metrics
import prune_utils
import train
from conftest import LEAN, TINY, options
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


def test_a_bf16_training_step_on_device_resident_clips():
    data = batches.Batches(clips(), 40 + torch.arange(12.0), 4, CUDA, shuffle=True, share=1.0)
    assert data.resident
    torch.manual_seed(0)
    model = EFRegressionModel(45.0)
    validation = batches.Batches(clips(4), torch.full((4,), 45.0), 4, CUDA)
    history = train.train(model, data, validation, 1, 1e-3, CUDA, log=lambda *_: None, amp=True,
                          channels_last=True)
    assert train.precision(CUDA, True) in (torch.bfloat16, torch.float16)
    assert history["train_videos"] == 12 and torch.isfinite(torch.tensor(history["train_loss"])).all()
    assert history["data_wait_seconds"] < history["train_seconds"]


def test_latency_on_the_gpu_is_synchronised_and_in_the_training_precision():
    slow = torch.nn.Sequential(*[torch.nn.Conv2d(3, 3, 3, padding=1) for _ in range(50)])

    class Video(torch.nn.Module):  # (B, T, 3, H, W) as the EF model takes it
        def __init__(self):
            super().__init__()
            self.body = slow

        def forward(self, video):
            return self.body(video.flatten(0, 1)).mean()
    runner = latency.pytorch_runner(Video(), torch.randn(1, 64, 3, 112, 112), CUDA,
                                    dtype=train.precision(CUDA, True))
    median, _ = latency.time_runs(runner.run, 2, 5, runner.synchronize)
    # unsynchronised, 50 convolutions would read as their launch time only (microseconds each)
    assert median > 0.05 and runner.setup["latency_device"].startswith("cuda")
    assert runner.setup["latency_precision"] in ("bfloat16", "float16")


def test_a_physically_pruned_model_trains_on_the_gpu_and_reloads(tmp_path):
    torch.manual_seed(0)
    model = prune_utils.apply(EFRegressionModel(45.0).to(CUDA), "structured_physical", 0.5, 2, 32, round_to=8)
    data = batches.Batches(clips(), 40 + torch.arange(12.0), 4, CUDA, shuffle=True, share=1.0)
    train.train(model, data, data, 1, 1e-3, CUDA, log=lambda *_: None, amp=True, channels_last=True)
    save_checkpoint(str(tmp_path / "m.pt"), model, method="structured_physical")
    again, _ = load_checkpoint(str(tmp_path / "m.pt"), map_location="cuda")
    video = next(iter(data))[0]
    with torch.inference_mode():
        assert torch.allclose(model.eval()(video), again.eval()(video), atol=1e-3)
    assert metrics.parameter_counts(again)[1] < 0.5 * metrics.parameter_counts(EFRegressionModel())[1]


def test_a_tiny_run_end_to_end_on_cuda(sample_root, tmp_path, run_here):
    result = run_here("main.py", *TINY, *LEAN, *options(data_root=sample_root, device="cuda"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.load(open(tmp_path / "results" / "results.json"))
    assert results["environment"]["device"].startswith("cuda") and results["clips_on_device"] is True
    assert all(r["test_videos"] == 4 and r["train_videos_per_s"] > 0 for r in results["models"])
    assert set(results["phases"]) >= {"data_preparation", "baseline", "pruned_models", "latency"}
    assert all(r["latency_device"].startswith("cuda") and r["latency_rounds"] == 3 for r in results["models"])
