"""Layer sensitivity: every prunable layer pruned alone, by each criterion, at each ratio, without
fine-tuning, on the validation split, against the dense model recalibrated alike; and each coupled group
removed alone, for the sensitivity allocation. The model is left as it was."""
import copy

import pytest
import torch
import torch.nn.utils.prune as prune
from torch.utils.data import DataLoader, TensorDataset

import allocation
import batchnorm
import metrics
import prune_utils
import sensitivity
import train
from model import EFRegressionModel


@pytest.fixture(scope="module")
def model_and_loader():
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(6, 2, 3, 32, 32, generator=g), 55 + 10 * torch.randn(6, generator=g))
    loader = DataLoader(data, batch_size=3)
    torch.manual_seed(0)
    model = EFRegressionModel(55.0)
    train.train(model, loader, loader, epochs=1, lr=1e-3, device=torch.device("cpu"), log=lambda *_: None)
    return model, loader


def test_the_grid_covers_every_layer_criterion_and_ratio_and_leaves_the_model_unchanged(model_and_loader):
    model, loader = model_and_loader
    before = copy.deepcopy(model.state_dict())
    # BatchNorm recalibrated on one batch after each pruning: the statistics are put back after each
    dense, rows = sensitivity.layer_sensitivity(model, loader, torch.device("cpu"), [0.5, 0.9],
                                                batches=loader, num_batches=1)
    convs = [name.replace("backbone.", "") for name, _ in prune_utils.prunable_layers(model)]
    assert len(convs) == 20 and "head" not in convs
    assert len(rows) == 20 * 2 * 2
    assert {(r["layer"], r["criterion"], r["ratio"]) for r in rows} == {
        (layer, criterion, ratio) for layer in convs for criterion in sensitivity.CRITERIA
        for ratio in (0.5, 0.9)}
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert dense == pytest.approx(train.evaluate(model, loader, torch.device("cpu"))["mae"])
    recalibrated = batchnorm.recalibrate(copy.deepcopy(model), loader, 1)
    reference = train.evaluate(recalibrated, loader, torch.device("cpu"))["mae"]
    for r in rows:
        assert r["recalibrated_dense_val_mae"] == pytest.approx(reference)
        assert r["val_mae_increase"] == pytest.approx(r["val_mae"] - reference)
    # pruning a whole layer's channels away moves the prediction; the same layer at 0.5 moves it less
    stem = {(r["criterion"], r["ratio"]): r["val_mae"] for r in rows if r["layer"] == "conv1"}
    assert stem[("l2_channels", 0.9)] != pytest.approx(dense)


def test_each_row_is_the_model_with_that_one_layer_pruned(model_and_loader):
    model, loader = model_and_loader
    _, rows = sensitivity.layer_sensitivity(model, loader, torch.device("cpu"), [0.7], batches=loader,
                                            num_batches=1)
    row = next(r for r in rows if r["layer"] == "layer3.1.conv2" and r["criterion"] == "l1_weights")
    pruned = copy.deepcopy(model)
    layer = pruned.backbone.layer3[1].conv2
    torch.nn.utils.prune.l1_unstructured(layer, "weight", amount=0.7)
    assert int((layer.weight == 0).sum()) == round(0.7 * layer.weight.numel())
    batchnorm.recalibrate(pruned, loader, 1)  # as after every pruning step
    assert row["val_mae"] == pytest.approx(train.evaluate(pruned, loader, torch.device("cpu"))["mae"])


def test_the_reference_scope_adds_the_head_with_the_weight_criterion_only(model_and_loader):
    model, loader = model_and_loader
    _, rows = sensitivity.layer_sensitivity(model, loader, torch.device("cpu"), [0.5], scope="all")
    head = [r for r in rows if r["layer"] == "head"]
    assert [r["criterion"] for r in head] == ["l1_weights"]
    assert metrics.sparsity(model)["sparsity"] == 0


def test_recalibration_alone_is_not_counted_as_a_layers_loss(model_and_loader, monkeypatch):
    """A criterion that prunes nothing: every increase is exactly 0, although recalibrating the dense model
    moves its MAE (up or down with the seed): the reference is recalibrated alike."""
    model, loader = model_and_loader
    monkeypatch.setattr(sensitivity, "CRITERIA", {"l1_weights": lambda ratio: prune.L1Unstructured(amount=0)})
    dense, rows = sensitivity.layer_sensitivity(model, loader, torch.device("cpu"), [0.5], batches=loader,
                                                num_batches=1)
    assert rows and all(r["val_mae_increase"] == 0 for r in rows)
    assert rows[0]["recalibrated_dense_val_mae"] != pytest.approx(dense)


def test_each_coupled_group_is_removed_alone_at_each_ratio(model_and_loader):
    model, loader = model_and_loader
    before = copy.deepcopy(model.state_dict())
    rows = sensitivity.group_sensitivity(model, loader, torch.device("cpu"), [0.5, 0.95], num_frames=2,
                                         image_size=32, round_to=8, batches=loader, num_batches=1)
    plan = allocation.ChannelPlan(model, 32)
    grid = [(group, ratio) for group in plan.channels for ratio in (0.5, 0.95)]
    assert [(r["group"], r["ratio"]) for r in rows] == grid
    for r in rows:  # multiples of round_to, at least round_to kept
        assert r["channels"] == plan.channels[r["group"]]
        assert r["removed"] % 8 == 0 and 0 < r["removed"] <= r["channels"] - 8
        assert r["val_mae_increase"] == pytest.approx(r["val_mae"] - r["recalibrated_dense_val_mae"])
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    row = rows[-1]  # the last group at 0.95: the copy with that group's channels removed, recalibrated
    pruned = copy.deepcopy(model)
    allocation.CountedPruner(pruned, {row["group"]: row["removed"]}, 2, 32).step()
    assert pruned.get_submodule(row["group"]).out_channels == row["channels"] - row["removed"]
    batchnorm.recalibrate(pruned, loader, 1)
    assert row["val_mae"] == pytest.approx(train.evaluate(pruned, loader, torch.device("cpu"))["mae"])
