"""Each pruning method does exactly what it claims, and fine-tuning keeps it that way."""
import copy

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import metrics
import pruners
import methods
import prune_utils
import train
from model import EFRegressionModel, load_checkpoint, save_checkpoint

FRAMES, SIZE = 2, 32


@pytest.fixture(scope="module")
def trained():
    """A small model after a few real optimisation steps, so no weight is exactly zero by chance."""
    torch.manual_seed(0)
    model = EFRegressionModel(55.0)
    train.train(model, *loaders(), epochs=1, lr=1e-3, device=torch.device("cpu"), log=lambda *_: None)
    return model


def loaders(size=SIZE):
    g = torch.Generator().manual_seed(0)
    videos = torch.randn(8, FRAMES, 3, size, size, generator=g)
    efs = 55 + 10 * torch.randn(8, generator=g)
    data = TensorDataset(videos, efs)
    return DataLoader(data, batch_size=4, shuffle=True, generator=g), DataLoader(data, batch_size=4)


def fine_tune(model, size=SIZE):
    train.train(model, *loaders(size), epochs=1, lr=1e-3, device=torch.device("cpu"), log=lambda *_: None)
    return model


def zero_weights(model):
    return sum(int((w == 0).sum()) for _, w in metrics.prunable_weights(model))


def backbone_weights(model):
    return [w for name, w in metrics.prunable_weights(model) if name != "head"]


@pytest.mark.parametrize("ratio", [0.5, 0.8, 0.9])
def test_unstructured_prunes_exactly_the_ratio_of_all_conv_weights(trained, ratio):
    model = prune_utils.unstructured(copy.deepcopy(trained), ratio)
    total = sum(w.numel() for w in backbone_weights(model))
    assert zero_weights(model) == round(ratio * total)
    # global: the surviving weights are the largest in magnitude across all layers
    kept = torch.cat([w[w != 0].abs() for w in backbone_weights(model)])
    dense = torch.cat([w.flatten().abs() for w in backbone_weights(trained)])
    assert kept.min() >= dense.kthvalue(round(ratio * total)).values


MASKED_AND_REMOVED = ["unstructured", "structured", "structured_physical", "structured_coupled_masked"]


@pytest.mark.parametrize("method", MASKED_AND_REMOVED + methods.RANDOM)
@pytest.mark.parametrize("schedule_steps", [1, 3])
def test_no_method_touches_the_regression_head(trained, method, schedule_steps):
    """The same layers for every method: the head stays dense, one-shot or gradual."""
    if method in methods.ONE_SHOT_ONLY and schedule_steps > 1:
        pytest.skip("one-shot only: test_controls checks that it refuses steps")
    model = copy.deepcopy(trained)
    pruner = pruners.Pruner(model, method, 0.9 if "unstructured" in method else 0.5, FRAMES, SIZE,
                                steps=schedule_steps)
    while not pruner.finished:
        pruner.step()
    prune_utils.make_permanent(model)
    head, dense = model.head.weight.detach()[0], trained.head.weight.detach()[0]
    assert bool((head != 0).all()) and model.head.out_features == 1
    if method in methods.REMOVED:   # the removed layer4 channels take their head inputs with them
        assert len(head) < len(dense) and bool(torch.isin(head, dense).all())
    else:
        assert torch.equal(head, dense)
        assert zero_weights(model) > 0


def test_the_reference_scope_prunes_the_head_too(trained):
    model = pruners.apply(copy.deepcopy(trained), "unstructured", 0.9, FRAMES, SIZE, scope="all")
    total = sum(w.numel() for _, w in metrics.prunable_weights(model))
    assert zero_weights(model) == round(0.9 * total)
    assert int((model.head.weight == 0).sum()) > 0


def test_gradual_schedule_is_cubic_and_ends_at_the_ratio():
    assert prune_utils.sparsity_schedule(0.8, 1) == [0.8]
    steps = prune_utils.sparsity_schedule(0.8, 4)
    assert steps[-1] == pytest.approx(0.8) and steps == sorted(steps)
    assert steps[0] == pytest.approx(0.8 * (1 - 0.75 ** 3))
    gains = [b - a for a, b in zip([0.0] + steps, steps)]
    assert gains == sorted(gains, reverse=True)   # most pruning first (Zhu & Gupta 2017)


def test_gradual_steps_are_spread_over_the_ramp_and_leave_the_rest_at_the_final_sparsity():
    pruner = pruners.Pruner(EFRegressionModel(55.0), "unstructured", 0.8, FRAMES, SIZE, steps=3,
                                ramp_end=0.5)
    assert pruner.due(12) == [0, 3, 6]           # the last step half way: 6 of 12 steps at 0.8
    assert pruner.due(4) == [0, 1, 2]
    assert pruner.due(1) == [0, 0, 0]            # one training step: all before it, none after the loop
    late = pruners.Pruner(EFRegressionModel(55.0), "unstructured", 0.8, FRAMES, SIZE, steps=4,
                              ramp_end=0.99)
    assert late.due(10)[-1] == 9                 # never after the last training step
    assert pruners.Pruner(EFRegressionModel(55.0), "unstructured", 0.8, FRAMES, SIZE).due(12) == [0]


class CountedBatches:
    """Training batches that count how many were drawn, so a pruning step knows when it was taken."""

    def __init__(self, batches):
        self.batches, self.drawn = batches, 0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            self.drawn += 1
            yield batch


def test_fine_tuning_takes_the_gradual_steps_when_due_and_keeps_a_model_at_the_final_sparsity(trained):
    """3 epochs of 2 steps: steps before training steps 0, 2 and 3 (the ramp ends at half of the 6);
    the model kept has the final sparsity, and the model right after the last step competes."""
    train_batches, val_batches = (list(loader) for loader in loaders())
    counted = CountedBatches(train_batches)
    model = copy.deepcopy(trained)
    taken = []
    pruner = pruners.Pruner(model, "unstructured", 0.8, FRAMES, SIZE, steps=3, ramp_end=0.5,
                                after_step=lambda _: taken.append(counted.drawn - 1))
    history = train.train(model, counted, val_batches, epochs=3, lr=1e-4, device=torch.device("cpu"),
                          log=lambda *_: None, pruner=pruner)
    assert taken == pruner.due(6) == [0, 2, 3]
    assert history["val_mae_after_pruning"] is not None and history["best_epoch"] >= 1.5
    assert metrics.sparsity(prune_utils.make_permanent(model))["sparsity"] == pytest.approx(
        pruner.sparsity_after_pruning, abs=1e-12)


@pytest.mark.parametrize("method, ratio", [("unstructured", 0.9), ("structured", 0.7),
                                           ("unstructured_random", 0.8), ("structured_random", 0.5)])
def test_gradual_masked_pruning_ends_at_exactly_the_ratio_and_keeps_earlier_zeros(trained, method, ratio):
    """Fine-tuned between steps, as in main.py; each step prunes only among the weights still there."""
    model = copy.deepcopy(trained)
    pruner = pruners.Pruner(model, method, ratio, FRAMES, SIZE, steps=3)
    zeros_before = None
    for target in prune_utils.sparsity_schedule(ratio, 3):
        pruner.step()
        masks = {name: m.weight_mask.clone() for name, m in model.named_modules()
                 if hasattr(m, "weight_mask")}
        if zeros_before is not None:   # once pruned, always pruned
            assert all(bool((masks[n][zeros_before[n] == 0] == 0).all()) for n in masks)
        zeros_before = masks
        layers = [m for _, m in prune_utils.prunable_layers(model)]
        if method.startswith("unstructured"):
            total = sum(m.weight.numel() for m in layers)
            assert sum(int((m.weight_mask == 0).sum()) for m in layers) == round(target * total)
        else:
            for m in layers:
                assert prune_utils.pruned_so_far(m, dim=0) == round(target * m.out_channels)
        fine_tune(model)
    prune_utils.make_permanent(model)
    one_shot = pruners.apply(copy.deepcopy(trained), method, ratio, FRAMES, SIZE)
    assert zero_weights(model) == zero_weights(one_shot)
    assert pruner.sparsity_after_pruning == pytest.approx(metrics.sparsity(model)["sparsity"], abs=1e-12)


def test_gradual_physical_pruning_ends_with_the_one_shot_channel_counts(trained):
    model = copy.deepcopy(trained)
    pruner = pruners.Pruner(model, "structured_physical", 0.5, FRAMES, SIZE, round_to=8, steps=3)
    widths = []
    for _ in range(3):
        pruner.step()
        widths.append(model.backbone.conv1.out_channels)
        fine_tune(model)
    one_shot = prune_utils.structured_physical(copy.deepcopy(trained), 0.5, FRAMES, SIZE, round_to=8)
    assert widths[0] > widths[1] >= widths[2] and widths[0] < 64
    assert ({k: v.shape for k, v in model.state_dict().items()}
            == {k: v.shape for k, v in one_shot.state_dict().items()})


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_structured_zeroes_whole_lowest_l2_output_channels_of_every_conv(trained, ratio):
    model = prune_utils.structured(copy.deepcopy(trained), ratio)
    for (name, w), (_, w0) in zip(metrics.prunable_weights(model), metrics.prunable_weights(trained)):
        if w.dim() != 4:
            assert (w == w0).all(), f"{name}: the head is not channel-pruned"
            continue
        zero_channels = (w.flatten(1) == 0).all(1)
        assert int(zero_channels.sum()) == round(ratio * w.shape[0]), name
        norms = w0.flatten(1).norm(dim=1)
        assert norms[zero_channels].max() <= norms[~zero_channels].min(), name


@pytest.mark.parametrize("method, ratio", [("unstructured", 0.9), ("structured", 0.5)])
def test_sparsity_holds_through_fine_tuning_with_masks(trained, method, ratio):
    model = pruners.apply(copy.deepcopy(trained), method, ratio, FRAMES, SIZE)
    before = metrics.sparsity(model)["sparsity"]
    prune_utils.make_permanent(fine_tune(model))
    assert not any(hasattr(m, "weight_mask") for m in model.modules())
    assert metrics.sparsity(model)["sparsity"] == pytest.approx(before, abs=1e-9)


def test_removing_masks_before_fine_tuning_lets_weights_regrow(trained):
    """The reference's flaw, reproduced by REMOVE_MASKS_BEFORE_FINE_TUNE. (At 64x64 every 3x3 tap of
    layer4 sees data; at 32x32 its maps are 1x1 and most taps get no gradient at all.)"""
    model = prune_utils.make_permanent(prune_utils.unstructured(copy.deepcopy(trained), 0.9))
    assert metrics.sparsity(model)["sparsity"] == pytest.approx(0.9, abs=1e-4)  # the head (512) is dense
    fine_tune(model, size=64)
    assert metrics.sparsity(model)["sparsity"] < 0.05   # 0.9 collapses to nearly dense


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_physical_structured_pruning_removes_channels(trained, ratio):
    model = prune_utils.structured_physical(copy.deepcopy(trained), ratio, FRAMES, SIZE)
    assert metrics.parameter_counts(model)[1] < (1 - ratio) ** 2 * 1.2 * metrics.parameter_counts(trained)[1]
    assert abs(model.backbone.conv1.out_channels - 64 * (1 - ratio)) <= 1
    assert model.head.out_features == 1
    assert model(torch.randn(3, FRAMES, 3, SIZE, SIZE)).shape == (3,)
    dense, pruned = metrics.flops(trained, FRAMES, SIZE), metrics.flops(model, FRAMES, SIZE)
    assert pruned["flops"] < (1 - ratio) ** 2 * 1.2 * dense["flops"]


def test_fine_tuning_does_not_change_the_physical_shape(trained):
    model = prune_utils.structured_physical(copy.deepcopy(trained), 0.5, FRAMES, SIZE)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    fine_tune(model)
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes


@pytest.mark.parametrize("method", MASKED_AND_REMOVED)
def test_checkpoint_reloads_with_identical_outputs(trained, tmp_path, method):
    model = prune_utils.make_permanent(pruners.apply(copy.deepcopy(trained), method, 0.5, FRAMES, SIZE))
    path = str(tmp_path / f"{method}.pt")
    save_checkpoint(path, model, method=method, ratio=0.5)
    loaded, info = load_checkpoint(path)  # torch.load(..., weights_only=True) inside
    video = torch.randn(2, FRAMES, 3, SIZE, SIZE)
    model.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.equal(model(video), loaded(video))
    assert info == {"method": method, "ratio": 0.5}
    assert metrics.parameter_counts(loaded) == metrics.parameter_counts(model)


def test_checkpoints_hold_no_pickled_code(trained, tmp_path):
    path = str(tmp_path / "physical.pt")
    save_checkpoint(path, prune_utils.structured_physical(copy.deepcopy(trained), 0.3, FRAMES, SIZE))
    checkpoint = torch.load(path, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in checkpoint["state_dict"].values())


def test_model_output_shape_and_starting_point():
    model = EFRegressionModel(initial_ef=61.5).eval()
    with torch.no_grad():
        ef = model(torch.randn(3, 4, 3, SIZE, SIZE))
    assert ef.shape == (3,)
    assert torch.allclose(ef, torch.full((3,), 61.5), atol=1.0)


def test_pretrained_weights_fall_back_offline_and_load_from_a_local_file(tmp_path, monkeypatch, capsys):
    import torchvision
    import model as model_module

    def offline(*args, **kwargs):
        raise OSError("no network")
    monkeypatch.setattr(torchvision.models.ResNet18_Weights, "get_state_dict", offline)
    used, reason = model_module.load_pretrained(EFRegressionModel(), pretrained=True)
    assert not used and "no network" in reason
    assert "random initialisation" in capsys.readouterr().err

    local = torchvision.models.resnet18(weights=None)
    nn.init.constant_(local.conv1.weight, 0.01)
    torch.save(local.state_dict(), tmp_path / "resnet18.pth")
    model = EFRegressionModel()
    used, _ = model_module.load_pretrained(model, path=str(tmp_path / "resnet18.pth"))
    assert used and torch.all(model.backbone.conv1.weight == 0.01)


def test_physical_pruning_can_round_kept_channels_for_fast_kernels(trained):
    model = prune_utils.structured_physical(copy.deepcopy(trained), 0.3, FRAMES, SIZE, round_to=8)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.out_channels % 8 == 0 for m in convs)
    assert model.backbone.conv1.out_channels == 40   # 64 * 0.7 = 44.8, rounded down to a multiple of 8


@pytest.mark.parametrize("method", ["structured", "structured_random"])
def test_a_masked_channel_is_gone_in_its_batchnorm_too_in_training_and_in_eval(trained, method):
    """As when removed: the channel's BatchNorm adds no bias, and eval mode gives what training does."""
    model = pruners.apply(copy.deepcopy(trained), method, 0.5, FRAMES, SIZE)
    fine_tune(model)
    prune_utils.make_permanent(model)
    conv, bn = model.backbone.layer2[0].conv1, model.backbone.layer2[0].bn1
    dead = (conv.weight.flatten(1) == 0).all(1)
    assert int(dead.sum()) == 64 and bool((bn.weight[dead] == 0).all() and (bn.bias[dead] == 0).all())
    assert bool((bn.weight[~dead] != 0).all())
    outputs = {}
    hook = bn.register_forward_hook(lambda m, i, o: outputs.__setitem__(m.training, o.detach()))
    video = torch.randn(2, FRAMES, 3, SIZE, SIZE)
    model.train()(video), model.eval()(video)
    hook.remove()
    for training in (True, False):
        assert bool((outputs[training][:, dead] == 0).all())
