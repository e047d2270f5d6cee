"""Every reported number is what its name says."""
import copy
import gzip
import math
import platform

import pytest
import torch
import torch.nn as nn

import latency
import metrics
import pruners
import prune_utils
from model import EFRegressionModel


def resnet18_macs_per_frame_at_112():
    """ResNet-18's multiply-adds for one 112x112 frame, layer by layer (output HxW x Cout x Cin x k x k)."""
    conv = lambda hw, cout, cin, k: hw * hw * cout * cin * k * k  # noqa: E731
    stem = conv(56, 64, 3, 7)  # 7x7/2 -> 56, maxpool -> 28
    layer1 = 4 * conv(28, 64, 64, 3)
    layer2 = conv(14, 128, 64, 3) + 3 * conv(14, 128, 128, 3) + conv(14, 128, 64, 1)
    layer3 = conv(7, 256, 128, 3) + 3 * conv(7, 256, 256, 3) + conv(7, 256, 128, 1)
    layer4 = conv(4, 512, 256, 3) + 3 * conv(4, 512, 512, 3) + conv(4, 512, 256, 1)
    return stem + layer1 + layer2 + layer3 + layer4


def test_dense_flops_match_the_hand_computed_count():
    counted = metrics.flops(EFRegressionModel(), num_frames=4, image_size=112)
    expected = 2 * (4 * resnet18_macs_per_frame_at_112() + 512)   # 4 frames, then the 512->1 head once
    assert counted["flops"] == expected


def nonzero_macs(model, num_frames, image_size):
    """Multiply-adds with a non-zero weight and an input channel not zero everywhere, counted
    independently: output positions x such weights. ReLUs off, so that only pruning zeroes a channel."""
    total = []
    model = copy.deepcopy(model)
    for block in [model.backbone] + [b for layer in (1, 2, 3, 4)
                                     for b in getattr(model.backbone, f"layer{layer}")]:
        block.relu = nn.Identity()

    def count(m, i, o):
        live = (i[0] != 0).transpose(0, 1).flatten(1).any(1)  # input channels (dim 1) with any non-zero value
        used = (m.weight != 0) & live.view(1, -1, *[1] * (m.weight.dim() - 2))
        total.append(o[0, 0].numel() * int(used.sum()) * (o.shape[0] if o.dim() == 4 else 1))
    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.randn(1, num_frames, 3, image_size, image_size))
    for h in hooks:
        h.remove()
    return sum(total)


def test_effective_flops_drop_with_unstructured_sparsity_but_executed_flops_do_not():
    dense = EFRegressionModel()
    pruned = prune_utils.make_permanent(prune_utils.unstructured(copy.deepcopy(dense), 0.8))
    d, p = metrics.flops(dense, 2, 64), metrics.flops(pruned, 2, 64)
    assert p["flops"] == d["flops"]
    assert p["effective_flops"] == pytest.approx(2 * nonzero_macs(pruned, 2, 64), rel=1e-9)
    assert p["effective_flops"] < 0.5 * d["flops"]


def test_regression_metrics():
    m = metrics.regression_metrics([50.0, 60.0, 70.0], [52.0, 60.0, 64.0])
    assert m["mae"] == pytest.approx(8 / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(40 / 3))
    assert m["r2"] == pytest.approx(1 - 40 / 74.6666666, rel=1e-6)


def test_mean_predictor_uses_the_training_mean():
    mean, mae = metrics.mean_predictor_mae([40, 60], [50, 70])
    assert mean == 50 and mae == 10


def test_sparsity_and_parameter_counts_see_masked_weights():
    model = prune_utils.unstructured(EFRegressionModel(), 0.5, scope="all")
    s = metrics.sparsity(model)
    nonzero, total = metrics.parameter_counts(model)
    assert s["sparsity"] == pytest.approx(0.5, abs=1e-6)
    assert total == sum(p.numel() for p in EFRegressionModel().parameters())
    assert s["sparsity_all_params"] == pytest.approx(1 - nonzero / total)


def test_a_pytorch_runner_times_one_video_and_says_how():
    runner = latency.pytorch_runner(EFRegressionModel(), torch.randn(1, 2, 3, 32, 32), torch.device("cpu"))
    median, p90 = latency.time_runs(runner.run, 1, 5, runner.synchronize)
    assert 0 < median <= p90
    assert runner.setup["latency_threads"] == torch.get_num_threads()
    assert runner.setup["latency_compiled"] is False
    assert runner.setup["latency_channels_last"] is True and runner.setup["latency_precision"] == "float32"


def test_a_physically_pruned_model_compiles_whole_with_frozen_weights(monkeypatch):
    """The runner's own torch.compile (Inductor, freezing; a C++ compiler on a CPU) on the pruned
    network: fullgraph=True, so a graph break raises instead of timing part of the model eagerly."""
    import torch._inductor.config
    from torch._dynamo.utils import counters
    # scalar C++ kernels: what is tested is the whole graph and its frozen weights, not the vector code,
    # whose headers make a first compilation (an empty cache, as in CI) a third slower
    monkeypatch.setattr(torch._inductor.config.cpp, "vec_isa_ok", False)
    pruned = pruners.apply(EFRegressionModel(), "structured_physical", 0.5, 2, 32, 8)
    before = counters["stats"]["unique_graphs"]
    runner = latency.pytorch_runner(pruned, torch.randn(1, 2, 3, 32, 32), torch.device("cpu"), compiled=True)
    assert counters["stats"]["unique_graphs"] == before + 1 and runner.setup["latency_compiled"]
    runner.run()


def test_compiled_models_timed_in_interleaved_rounds_compile_nothing_more(monkeypatch):
    """Compiled once each, outside the timed runs: timing them in turn, round after round, compiles
    nothing more. Recompiling is dynamo's (its guards and cache), whatever the backend, so Inductor's
    code generation (a minute for two ResNet-18s on a 2-core CPU), tested above, is left out here."""
    from torch._dynamo.utils import counters
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, options, **kw: real(model, backend="eager", **kw))
    pruned = pruners.apply(EFRegressionModel(), "structured_physical", 0.5, 2, 32, 8)
    video = torch.randn(1, 2, 3, 32, 32)
    runners = {name: latency.pytorch_runner(model, video, torch.device("cpu"), compiled=True)
               for name, model in (("dense", EFRegressionModel()), ("physical", pruned))}
    compiled = counters["stats"]["unique_graphs"]
    times = latency.rounds(runners, 2, warmup=1, runs=3)
    assert counters["stats"]["unique_graphs"] == compiled
    assert all(r.setup["latency_compiled"] for r in runners.values())
    assert all(len(rounds) == 2 and all(0 < median <= p90 for median, p90 in rounds)
               for rounds in times.values())


def test_cpu_allocator_thresholds_are_fixed_where_glibc_allows():
    assert latency.steady_cpu_allocator() is (platform.libc_ver()[0] == "glibc")


def test_file_sizes_report_gzip_size(tmp_path):
    path = str(tmp_path / "weights.pt")  # 4 MB of weights, 90% pruned: zeros compress, the rest hardly
    weight = torch.randn(1000, 1000, generator=torch.Generator().manual_seed(0))
    torch.save({"weight": weight * (weight.abs() > weight.abs().quantile(0.9))}, path)
    sizes = metrics.file_sizes(path)
    with open(path, "rb") as f:
        assert sizes["gzip_size_mb"] == pytest.approx(len(gzip.compress(f.read(), compresslevel=6)) / 1e6,
                                                      rel=0.01)
    assert sizes["gzip_size_mb"] < 0.4 * sizes["size_mb"]
    assert metrics.file_sizes(path, gzip=False) == {"size_mb": sizes["size_mb"]}  # GZIP_SIZES off


def test_bootstrap_intervals_cover_the_mae_and_are_paired():
    rng = torch.Generator().manual_seed(0)
    errors = (3 * torch.randn(100, generator=rng)).tolist()
    same = metrics.bootstrap_mae(errors, errors)
    mae = sum(abs(e) for e in errors) / len(errors)
    assert same["test_mae_ci_low"] < mae < same["test_mae_ci_high"]
    assert same["mae_diff"] == 0 and same["mae_diff_ci_low"] == same["mae_diff_ci_high"] == 0
    # a model 1 EF point worse on every video: the paired interval is exactly +1, however noisy the videos
    worse = [e + (1 if e >= 0 else -1) for e in errors]
    paired = metrics.bootstrap_mae(worse, errors)
    assert paired["mae_diff"] == pytest.approx(1) and paired["mae_diff_ci_low"] == pytest.approx(1)
    assert paired["mae_diff_ci_high"] == pytest.approx(1)
    # more test videos, a narrower interval (about 1/sqrt(n))
    many = metrics.bootstrap_mae(errors * 4)
    assert (many["test_mae_ci_high"] - many["test_mae_ci_low"]
            < 0.6 * (same["test_mae_ci_high"] - same["test_mae_ci_low"]))
    low, high = metrics.paired_difference_interval(worse, errors)
    assert low == pytest.approx(1) and high == pytest.approx(1)


class TwoConvs(nn.Module):
    """conv1 -> bn1 -> relu -> conv2 -> bn2 -> relu -> mean -> head, on every frame of a video."""
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 1)

    def forward(self, video):
        x = torch.relu(self.bn1(self.conv1(video.flatten(0, 1))))
        x = torch.relu(self.bn2(self.conv2(x))).mean((2, 3))
        return self.head(x.view(*video.shape[:2], -1).mean(1)).squeeze(-1)


def test_masked_and_removed_channels_count_the_same_effective_flops():
    import torch_pruning as tp
    torch.manual_seed(0)
    dense = TwoConvs().eval()
    masked, removed = copy.deepcopy(dense), copy.deepcopy(dense)
    for conv, bn, channel in ((masked.conv1, masked.bn1, 2), (masked.conv2, masked.bn2, 5)):
        keep = torch.ones(8)
        keep[channel] = 0
        torch.nn.utils.prune.custom_from_mask(conv, "weight", keep.view(-1, 1, 1, 1).expand_as(conv.weight))
        torch.nn.utils.prune.custom_from_mask(bn, "weight", keep)
        torch.nn.utils.prune.custom_from_mask(bn, "bias", keep)
    graph = tp.DependencyGraph().build_dependency(removed, example_inputs=torch.zeros(1, 2, 3, 8, 8))
    for conv, channel in ((removed.conv1, 2), (removed.conv2, 5)):
        graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=[channel]).prune()
    assert removed.conv2.weight.shape == (7, 7, 3, 3) and removed.head.in_features == 7
    m, r, d = (metrics.flops(x, 2, 8) for x in (masked, removed, dense))
    assert m["flops"] == d["flops"] and r["flops"] == r["effective_flops"]
    # conv2 loses channel 2's inputs as well as its own output channel 5, the head loses input 5
    assert m["effective_flops"] == r["effective_flops"]
    assert d["effective_flops"] == d["flops"]
