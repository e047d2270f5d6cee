"""Distillation from the dense model in fine-tuning: with weight 0 it is plain fine-tuning bit for bit,
with weight 1 the model learns the dense model's predictions instead of the labels; and a run with the
allocations, a FLOP budget and distillation records each at the size it claims."""
import json

import pytest
import torch
import torch.nn as nn

import allocation
import flop_budgets
import main
import train
from conftest import LEAN, TINY, options, run_folders


class Mean(nn.Module):
    """A video's mean pixel, scaled: a model small enough to train in milliseconds."""
    def __init__(self):
        super().__init__()
        self.scale = nn.Linear(1, 1)

    def forward(self, video):
        return self.scale(video.flatten(1).mean(1, keepdim=True)).squeeze(-1)


def batches(targets):
    g = torch.Generator().manual_seed(0)
    videos = torch.randn(8, 2, 3, 4, 4, generator=g)
    return [(videos[i:i + 4], targets[i:i + 4]) for i in (0, 4)]


def fitted(targets, weight, epochs=1):
    torch.manual_seed(0)
    model = Mean()
    val = batches(torch.full((8,), 50.0))
    history = train.train(model, batches(targets), val, epochs=epochs, lr=0.5, device=torch.device("cpu"),
                          log=lambda *_: None, distillation_weight=weight)
    return model, history


def test_weight_zero_is_plain_fine_tuning_bit_for_bit():
    labels = 50 + torch.arange(8.0)
    plain, plain_history = fitted(labels, None)
    distilled, history = fitted(torch.stack([labels, torch.full((8,), -7.0)], 1), 0.0)
    weights = zip(plain.state_dict().values(), distilled.state_dict().values())
    assert all(torch.equal(a, b) for a, b in weights)
    assert history["train_loss"] == plain_history["train_loss"]


def test_weight_one_learns_the_dense_models_predictions_not_the_labels():
    labels, teacher = torch.full((8,), 80.0), torch.full((8,), 20.0)
    model, _ = fitted(torch.stack([labels, teacher], 1), 1.0, epochs=30)
    with torch.no_grad():
        predicted = model(batches(labels)[0][0])
    assert (predicted - 20).abs().max() < (predicted - 80).abs().min()


@pytest.fixture(scope="module")
def recovery_run(sample_root, tmp_path_factory):
    """A tiny run with the global and sensitivity allocations, a FLOP budget of 2x, and structured_physical
    distilled at weight 0."""
    out = tmp_path_factory.mktemp("recovery")
    main.main([*TINY, *LEAN, *options(data_root=sample_root, channel_allocations="global,sensitivity",
                                      sensitivity_ratios="0.5", target_flops_speedups=2,
                                      distilled_methods="structured_physical", distillation_weight=0,
                                      onnx_export="false", unstructured_pruning_ratios=""),
               *run_folders(out)])
    with open(out / "results" / "results.json") as f:
        return {m["name"]: m for m in json.load(f)["models"]}


def test_distilled_at_weight_zero_reproduces_plain_fine_tuning_in_a_run(recovery_run):
    plain, distilled = recovery_run["structured_physical_0.5"], recovery_run["structured_physical_kd_0.5"]
    assert distilled["method"] == "structured_physical_kd" and distilled["distillation_weight"] == 0
    assert distilled["test_errors"] == plain["test_errors"]
    assert distilled["history"]["train_loss"] == plain["history"]["train_loss"]
    assert distilled["channels"] == plain["channels"]
    # what the second target can add: the dense model's distance from the labels on the training videos
    assert distilled["teacher_train_mae"] > 0 and "teacher_train_mae" not in plain


def test_allocations_are_measured_at_the_uniform_models_flops(recovery_run):
    budget = next(m for m in recovery_run.values() if m.get("target_flops_speedup") == 2
                  and m["method"] == "structured_physical")
    for ratio in (0.5, budget["ratio"]):
        uniform = recovery_run[f"structured_physical_{ratio:g}"]
        for method in ("structured_physical_global", "structured_physical_sensitivity"):
            model = recovery_run[f"{method}_{ratio:g}"]
            flops = model["effective_flops"] / uniform["effective_flops"]
            assert abs(flops - 1) <= allocation.FLOPS_TOLERANCE
            assert model["channels"] != uniform["channels"]
            assert model["allocation"] == method.rpartition("_")[2]  # global or sensitivity


def test_a_flop_budget_is_reached_within_its_tolerance_and_recorded(recovery_run):
    budgeted = [m for m in recovery_run.values() if "target_flops_speedup" in m]
    assert {m["method"] for m in budgeted} >= {"structured_physical", "structured_physical_global",
                                                "structured_physical_sensitivity", "structured_physical_kd"}
    for model in budgeted:
        assert abs(model["theoretical_speedup"] / 2 - 1) <= flop_budgets.BUDGET_TOLERANCE
        assert model["latency_ms"] > 0 and model["latency_speedup"] > 0  # the latency it reached
    assert not any("target_flops_speedup" in m for m in recovery_run.values()
                   if m["method"] in ("structured", "unstructured", "structured_coupled_masked"))
