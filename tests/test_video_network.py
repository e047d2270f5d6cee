"""EchoNet-Dynamic's own EF network, R(2+1)D-18 (--model r2plus1d_18), pruned by the same methods as the
design card's per-frame ResNet-18: it reads the clip as one input (so, unlike the per-frame network, it
sees the order of the frames); every method prunes its 3D convolutions; coupled removal makes it smaller
and cheaper and its masked twin predicts the same right after pruning; a pruned network reloads from its
checkpoint to the same predictions; ONNX Runtime runs it in FP32 as PyTorch does, and its INT8 quantizer
makes every 3D convolution an integer one."""
import collections
import copy
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision

import cli
import dataset
import metrics
import onnx_runtime
import pruners
import quantize
from conftest import LEAN, TINY, options, run_folders, run_main
from model import VIDEO, EFRegressionModel, load_checkpoint, load_pretrained, save_checkpoint

FRAMES, SIZE = 4, 32


@pytest.fixture(scope="module")
def video_net():
    torch.manual_seed(0)
    return EFRegressionModel(55.0, 10.0, arch=VIDEO).eval()


@pytest.fixture(scope="module")
def removed(video_net):
    return pruners.apply(copy.deepcopy(video_net), "structured_physical", 0.5, FRAMES, SIZE, round_to=8)


@pytest.fixture(scope="module")
def clips():
    return torch.randn(3, FRAMES, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def test_clips_are_sampled_at_a_period_around_the_middle_as_echonet_samples_them():
    assert dataset.sample_indices(100, 4, period=2).tolist() == [46, 48, 50, 52]
    assert dataset.sample_indices(5, 4, period=2).tolist() == [0, 2, 4, 4]  # too short: the last repeats
    assert dataset.sample_indices(100, 3).tolist() == [0, 50, 99]  # period 0: over the whole video
    assert cli.load(["--model", "r2plus1d_18", "--frame-period", "2"]).MODEL == VIDEO
    with pytest.raises(cli.ConfigError, match="--model"):
        cli.load(["--model", "r3d_18"])


def test_only_the_video_network_sees_the_order_of_the_frames(video_net, clips):
    torch.manual_seed(0)
    frames_net = EFRegressionModel(55.0, 10.0).eval()
    reversed_clips = clips.flip(1)
    with torch.inference_mode():
        assert torch.allclose(frames_net(clips), frames_net(reversed_clips), atol=1e-4)  # a mean over frames
        assert not torch.allclose(video_net(clips), video_net(reversed_clips), atol=1e-4)
        assert video_net(clips).shape == (3,)


@pytest.mark.parametrize("method", ["unstructured", "structured", "structured_physical"])
def test_every_method_prunes_the_3d_convolutions(video_net, method):
    pruned = pruners.apply(copy.deepcopy(video_net), method, 0.5, FRAMES, SIZE, round_to=8)
    convs = [m for m in pruned.modules() if isinstance(m, nn.Conv3d)]
    assert len(convs) == 37 and not any(isinstance(m, nn.Conv2d) for m in pruned.modules())
    dense, after = (metrics.flops(m, FRAMES, SIZE)["effective_flops"] for m in (video_net, pruned))
    assert after < 0.8 * dense
    if method == "structured_physical":  # channels gone: every 3D convolution keeps half, to the rounding
        dense_convs = [m for m in video_net.modules() if isinstance(m, nn.Conv3d)]
        assert all(abs(c.out_channels - d.out_channels / 2) <= 8 for c, d in zip(convs, dense_convs))


def test_removal_and_its_masked_twin_predict_the_same_right_after_pruning(video_net, removed, clips):
    masked = pruners.apply(copy.deepcopy(video_net), "structured_coupled_masked", 0.5, FRAMES, SIZE,
                           round_to=8)
    with torch.inference_mode():
        assert torch.allclose(removed(clips), masked(clips), atol=1e-4)
    counts = [metrics.flops(m, FRAMES, SIZE)["effective_flops"] for m in (removed, masked)]
    assert counts[0] == pytest.approx(counts[1], rel=1e-6)  # one count for removed and masked channels
    assert metrics.effective_parameters(removed, FRAMES, SIZE) == metrics.effective_parameters(masked, FRAMES,
                                                                                              SIZE)


def test_a_removed_video_network_reloads_from_its_checkpoint_to_the_same_predictions(removed, clips,
                                                                                   tmp_path):
    save_checkpoint(tmp_path / "removed.pt", removed, method="structured_physical", ratio=0.5)
    again, info = load_checkpoint(tmp_path / "removed.pt")
    assert again.arch == VIDEO and info["method"] == "structured_physical"
    with torch.inference_mode():
        assert torch.equal(removed(clips), again.eval()(clips))


def test_onnx_runtime_runs_the_video_network_and_int8_makes_every_3d_convolution_integer(removed, clips,
                                                                                       tmp_path):
    import onnx
    import onnxruntime as ort
    fp32 = onnx_runtime.export(removed, str(tmp_path / "removed.onnx"), clips, sizes=False)
    assert fp32["onnx_max_abs_diff"] < 1e-3
    int8 = str(tmp_path / "removed.int8.onnx")
    quantize.int8_export(str(tmp_path / "removed.onnx"), clips.numpy(), int8)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(int8, options, providers=["CPUExecutionProvider"])
    ops = collections.Counter(node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node)
    assert ops["QLinearConv"] == 37 and ops["Conv"] == 0, ops  # ONNX Runtime fuses each QDQ Conv3d


def test_kinetics_weights_fall_back_offline_and_another_networks_file_is_refused(tmp_path, monkeypatch,
                                                                                 capsys):
    def offline(*args, **kwargs):
        raise OSError("no network")
    monkeypatch.setattr(torchvision.models.video.R2Plus1D_18_Weights, "get_state_dict", offline)
    used, reason = load_pretrained(EFRegressionModel(arch=VIDEO), pretrained=True)
    assert not used and reason.startswith("Kinetics-400 weights could not be downloaded")
    assert "to a local r2plus1d_18 state_dict" in capsys.readouterr().err
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(cli.ConfigError, match=r"resnet18.pth is not a r2plus1d_18 state_dict"):
        load_pretrained(EFRegressionModel(arch=VIDEO), path=str(tmp_path / "resnet18.pth"))
    local = torchvision.models.video.r2plus1d_18(weights=None)
    nn.init.constant_(local.stem[0].weight, 0.01)
    torch.save(local.state_dict(), tmp_path / "r2plus1d_18.pth")
    model = EFRegressionModel(arch=VIDEO)
    assert load_pretrained(model, path=str(tmp_path / "r2plus1d_18.pth"))[0]
    assert np.allclose(model.backbone.stem[0].weight.detach().numpy(), 0.01)


def test_a_tiny_run_of_the_video_network_writes_its_models_and_a_continued_run_reuses_them(sample_root,
                                                                                          tmp_path):
    """main.py --model r2plus1d_18 end to end: coupled removal with fewer effective FLOPs and a measured
    speed-up, its masked twin as accurate right after pruning, ONNX Runtime's predictions PyTorch's; run
    again, every model is reused from its checkpoint, the same numbers."""
    args = [*TINY, *LEAN, "--model", "r2plus1d_18", "--unstructured-pruning-ratios", "",
            *options(data_root=sample_root), *run_folders(tmp_path)]
    first = run_main(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    models = {r["name"]: r for r in json.load(open(tmp_path / "results" / "results.json"))["models"]}
    assert set(models) == {"baseline", "dense_control_0", "structured_0.5", "structured_coupled_masked_0.5",
                           "structured_physical_0.5"}
    base, removed, twin = (models[n] for n in ("baseline", "structured_physical_0.5",
                                               "structured_coupled_masked_0.5"))
    assert removed["effective_flops"] < 0.5 * base["effective_flops"] and removed["latency_speedup"] > 0
    assert removed["test_mae_before_fine_tune"] == pytest.approx(twin["test_mae_before_fine_tune"], abs=1e-4)
    assert all(r["onnx_max_abs_diff"] < 1e-3 for r in models.values())
    again = run_main(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "5 finished model(s) are reused" in again.stdout + again.stderr
    reused = {r["name"]: r for r in json.load(open(tmp_path / "results" / "results.json"))["models"]}
    assert all(reused[n]["test_errors"] == models[n]["test_errors"] for n in models)


def test_check_gpu_projects_the_video_networks_own_layers_and_channel_groups(monkeypatch):
    """check_gpu.py --project counts the sensitivity's prunings from the network the run will prune:
    R(2+1)D-18's spatial and temporal 3D convolutions and its coupled groups, not the per-frame network's."""
    import allocation
    import prune_utils
    import run_work
    seen = {}
    monkeypatch.setattr(run_work, "work_counts",
                        lambda cfg, sizes, layers, *rest: seen.update({cfg.MODEL: layers}))
    for arch in ("resnet18_frames", VIDEO):
        cfg = cli.load(["--model", arch, "--num-frames", str(FRAMES), "--image-size", str(SIZE)])
        run_work.run_counts(cfg, (100, 60, 100))
    video_net = EFRegressionModel(arch=VIDEO)
    conv3d = sum(isinstance(m, nn.Conv3d) for m in video_net.modules())
    layers = len(prune_utils.prunable_layers(video_net, cli.load([]).PRUNING_SCOPE))
    groups = len(allocation.ChannelPlan(video_net, SIZE, FRAMES).channels)
    assert seen[VIDEO] == (layers, conv3d, groups)
    assert conv3d > seen["resnet18_frames"][1] and groups != seen["resnet18_frames"][2]
