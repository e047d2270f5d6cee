"""BatchNorm recalibration re-estimates the running statistics and changes nothing else; every pruning
step is followed by it; the dense control prunes nothing."""
import copy

import pytest
import torch
import torch.nn as nn

import batchnorm
import main
import pruners
import methods
import seed_models
from model import EFRegressionModel


def batches(count=3, size=4, frames=2, image=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, frames, 3, image, image, generator=g),
             50 + 10 * torch.randn(size, generator=g)) for _ in range(count)]


class Counting:
    """An iterable of batches that counts how many were taken."""
    def __init__(self, data):
        self.data, self.taken = data, 0

    def __iter__(self):
        for batch in self.data:
            self.taken += 1
            yield batch


def test_recalibration_averages_batch_statistics_and_restores_momentum_and_mode():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.3))
    net[1].running_mean.fill_(7.0)  # stale statistics
    data = [(torch.randn(2, 3, 8, 8) * (i + 1) + i, None) for i in range(4)]
    weights = copy.deepcopy(net.state_dict())
    net.eval()
    source = Counting(data)
    batchnorm.recalibrate(net, source, num_batches=2)
    with torch.no_grad():
        outputs = [net[0](x) for x, _ in data[:2]]
    expected = torch.stack([o.mean((0, 2, 3)) for o in outputs]).mean(0)  # equal batches: mean of batch means
    assert torch.allclose(net[1].running_mean, expected, atol=1e-5)
    assert source.taken <= 3 and int(net[1].num_batches_tracked) == 2
    assert net[1].momentum == 0.3 and not net.training and not net[1].training
    for name in ("0.weight", "0.bias", "1.weight", "1.bias"):
        assert torch.equal(net.state_dict()[name], weights[name])
    net.train()
    batchnorm.recalibrate(net, data, num_batches=1)
    assert net.training and net[1].training


def test_zero_batches_leaves_the_model_as_it_is():
    model = EFRegressionModel()
    before = copy.deepcopy(model.state_dict())
    batchnorm.recalibrate(model, batches(), 0)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("method", ["structured", "structured_physical"])  # masks, and removal
def test_every_pruning_step_is_followed_by_recalibration_on_masked_and_removed_models(method):
    torch.manual_seed(0)
    model = EFRegressionModel(55.0).eval()
    data = batches()
    seen = []

    def after_step(m):
        seen.append(m)
        batchnorm.recalibrate(m, data, 2)
    pruner = pruners.Pruner(model, method, 0.5, 2, 32, round_to=8, steps=2, after_step=after_step)
    pruner.step(), pruner.step()
    assert len(seen) == 2 and all(m is model for m in seen)
    # the stem's BatchNorm holds the statistics of the pruned stem's outputs over the two batches
    outputs = []
    hook = model.backbone.conv1.register_forward_hook(lambda m, i, o: outputs.append(o.detach()))
    with torch.no_grad():
        for video, _ in data[:2]:
            model(video)
    hook.remove()
    expected = torch.stack([o.mean((0, 2, 3)) for o in outputs]).mean(0)
    assert torch.allclose(model.backbone.bn1.running_mean, expected, atol=1e-4)


def test_the_dense_control_prunes_nothing_and_still_recalibrates():
    model = EFRegressionModel(55.0)
    before = copy.deepcopy(model.state_dict())
    calls = []
    pruner = pruners.Pruner(model, methods.CONTROL, 0.0, 2, 32, after_step=calls.append)
    pruner.step()
    assert pruner.finished and calls == [model] and pruner.sparsity_after_pruning < 1e-6
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_the_dense_control_comes_first_in_every_plan():
    import cli
    cfg = cli.load([])
    assert main.pruning_plan(cfg)[0] == (methods.CONTROL, 0.0, None)
    cfg.UNSTRUCTURED_PRUNING_RATIOS, cfg.STRUCTURED_PRUNING_RATIOS = [], []
    assert main.pruning_plan(cfg) == []  # nothing pruned: no control to compare with


def test_the_model_right_after_pruning_competes_with_fine_tuning():
    model = nn.Linear(2, 1)
    pruned = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        model.weight.add_(1)
    history = {"best_val_mae": 3.0, "best_epoch": 2}
    seed_models.keep_if_better(model, history, 4.0, pruned)
    assert history["best_epoch"] == 2 and not torch.equal(model.weight, pruned["weight"])
    seed_models.keep_if_better(model, history, 3.0, pruned)  # a tie keeps the pruned model, as train.train
    assert history["best_epoch"] == 0 and torch.equal(model.weight, pruned["weight"])
    assert history["val_mae_after_pruning"] == 3.0
