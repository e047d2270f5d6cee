"""Channels allocated where they matter, compared at equal size: the global allocation of removed channels
reaches the uniform model's FLOPs at the same ratio, and a FLOP budget is met."""
import copy

import pytest
import torch
import torch.nn as nn

import allocation
import prune_utils
from model import EFRegressionModel

SIZE = 32


@pytest.fixture(scope="module")
def dense():
    torch.manual_seed(0)
    return EFRegressionModel(55.0)


def convs(model):
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


@pytest.mark.parametrize("speedup", [4.0])  # 2.0: test_distillation's run
def test_a_flop_budget_is_met_by_the_uniform_ratio_it_is_turned_into(speedup):
    ratio = allocation.ratio_for_speedup(speedup, SIZE, round_to=8)
    dense_flops = allocation.uniform_flops(0.0, SIZE, 8)
    reached = dense_flops / allocation.uniform_flops(ratio, SIZE, 8)
    assert abs(reached / speedup - 1) <= allocation.BUDGET_TOLERANCE
    assert 0 < ratio < 1


def test_a_budget_no_ratio_reaches_is_refused_with_the_option_named():
    with pytest.raises(allocation.AllocationError, match="target-flops-speedups 1000"):
        allocation.ratio_for_speedup(1000.0, SIZE, round_to=8)


@pytest.mark.parametrize("method", prune_utils.ALLOCATED)
@pytest.mark.parametrize("ratio", [0.7])  # 0.5 and a budget's ratio: test_distillation's run
def test_every_allocation_reaches_the_uniform_models_flops_and_allocates_otherwise(dense, method, ratio):
    uniform = copy.deepcopy(dense)
    prune_utils.Pruner(uniform, "structured_physical", ratio, 1, SIZE, round_to=8).step()
    model = copy.deepcopy(dense)
    pruner = prune_utils.Pruner(model, method, ratio, 1, SIZE, round_to=8)
    pruner.step()
    target = allocation.frame_flops(uniform, SIZE)
    assert abs(allocation.frame_flops(model, SIZE) / target - 1) <= allocation.FLOPS_TOLERANCE
    assert abs(pruner.allocation["allocation_flops_vs_uniform"] - 1) <= allocation.FLOPS_TOLERANCE
    assert convs(model) != convs(uniform)  # another allocation, not the uniform one again
    assert all(count > 0 for count in convs(model).values())  # no layer emptied
    assert model.head.out_features == 1
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 3, SIZE, SIZE)).shape == (2,)


def test_allocations_are_one_shot_only(dense):
    with pytest.raises(ValueError, match="one-shot only"):
        prune_utils.Pruner(copy.deepcopy(dense), "structured_physical_global", 0.5, 1, SIZE, steps=3)
