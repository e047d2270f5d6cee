"""Channels allocated where they matter, compared at equal size: the global and the sensitivity allocations
of removed channels reach the uniform model's FLOPs at the same ratio, the sensitivity allocation takes its
channels where the measured loss is small, and a FLOP budget is met."""
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn

import allocation
import flop_budgets
import pruners
import methods
import prune_utils
from model import EFRegressionModel

SIZE = 32


@pytest.fixture(scope="module")
def dense():
    torch.manual_seed(0)
    return EFRegressionModel(55.0)


@pytest.fixture(scope="module")
def plan(dense):
    return allocation.ChannelPlan(dense, SIZE)


@pytest.fixture(scope="module")
def sensitivity(plan):
    """Made-up coupled-group sensitivity, as sensitivity.group_sensitivity records it: layer1's and layer4's
    groups lose nothing when removed, layer2's and layer3's a lot, the stem's (and layer1's stream) little."""
    losses = {"layer1": 0.0, "layer2": 2.0, "layer3": 2.0, "layer4": 0.0, "conv1": 0.1}
    return [{"group": group, "ratio": ratio, "channels": channels, "removed": int(ratio * channels) // 8 * 8,
             "val_mae_increase": losses[group.split(".")[1]] * ratio}
            for group, channels in plan.channels.items() for ratio in (0.5, 0.9)]


def convs(model):
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


@pytest.mark.parametrize("speedup", [4.0])  # 2.0: test_distillation's run
def test_a_flop_budget_is_met_by_the_uniform_ratio_it_is_turned_into(speedup):
    ratio = flop_budgets.ratio_for_speedup(speedup, SIZE, round_to=8)
    dense_flops = flop_budgets.uniform_flops(0.0, SIZE, 8)
    reached = dense_flops / flop_budgets.uniform_flops(ratio, SIZE, 8)
    assert abs(reached / speedup - 1) <= flop_budgets.BUDGET_TOLERANCE
    assert 0 < ratio < 1


def test_a_budget_no_ratio_reaches_is_refused_with_the_option_named():
    with pytest.raises(flop_budgets.AllocationError, match="target-flops-speedups 1000"):
        flop_budgets.ratio_for_speedup(1000.0, SIZE, round_to=8)


@pytest.mark.parametrize("method", methods.ALLOCATED)
@pytest.mark.parametrize("ratio", [0.7])  # 0.5 and a budget's ratio: test_distillation's run
def test_every_allocation_reaches_the_uniform_models_flops_and_allocates_otherwise(dense, sensitivity, method,
                                                                                   ratio):
    uniform = copy.deepcopy(dense)
    pruners.Pruner(uniform, "structured_physical", ratio, 1, SIZE, round_to=8).step()
    model = copy.deepcopy(dense)
    pruner = pruners.Pruner(model, method, ratio, 1, SIZE, round_to=8, sensitivity=sensitivity)
    pruner.step()
    target = flop_budgets.frame_flops(uniform, SIZE)
    assert abs(flop_budgets.frame_flops(model, SIZE) / target - 1) <= allocation.FLOPS_TOLERANCE
    assert abs(pruner.allocation["allocation_flops_vs_uniform"] - 1) <= allocation.FLOPS_TOLERANCE
    assert convs(model) != convs(uniform)  # another allocation, not the uniform one again
    assert all(count > 0 for count in convs(model).values())  # no layer emptied
    assert model.head.out_features == 1
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 3, SIZE, SIZE)).shape == (2,)


def test_allocations_are_one_shot_only(dense):
    with pytest.raises(ValueError, match="one-shot only"):
        pruners.Pruner(copy.deepcopy(dense), "structured_physical_global", 0.5, 1, SIZE, steps=3)


def test_the_channel_plan_counts_flops_as_the_flop_counter_does(dense, plan):
    assert plan.flops(plan.channels) == flop_budgets.frame_flops(dense, SIZE)
    uniform = copy.deepcopy(dense)
    prune_utils.structured_physical(uniform, 0.7, 1, SIZE, 8)
    kept = {group: uniform.get_submodule(group).out_channels for group in plan.channels}
    assert plan.flops(kept) == flop_budgets.frame_flops(uniform, SIZE)


def test_counted_channels_are_the_ones_structured_physical_removes(dense, plan):
    """Given the uniform model's counts, the sensitivity allocation's pruner removes the same channels:
    the allocations differ in how many channels each group loses, not in which."""
    uniform = copy.deepcopy(dense)
    prune_utils.structured_physical(uniform, 0.5, 1, SIZE, 8)
    removed = {g: c - uniform.get_submodule(g).out_channels for g, c in plan.channels.items()}
    counted = copy.deepcopy(dense)
    allocation.CountedPruner(counted, removed, 1, SIZE).step()
    pairs = zip(uniform.state_dict().items(), counted.state_dict().items())
    assert all(a == b and torch.equal(x, y) for (a, x), (b, y) in pairs)


def test_the_sensitivity_allocation_prunes_where_the_measured_loss_is_small(dense, plan, sensitivity):
    """The groups that lose nothing lose more than the ratio, and the allocation's summed measured loss is
    below the uniform one's at the same FLOPs."""
    model, ratio = copy.deepcopy(dense), 0.5
    pruner = pruners.Pruner(model, "structured_physical_sensitivity", ratio, 1, SIZE, round_to=8,
                                sensitivity=sensitivity)
    pruner.step()
    shares = pruner.allocation["allocation_removed_shares"]
    free = [share for group, share in shares.items() if group.split(".")[1] in ("layer1", "layer4")]
    assert min(free) > ratio
    uniform = copy.deepcopy(dense)
    prune_utils.structured_physical(uniform, ratio, 1, SIZE, 8)
    uniform_shares = {g: 1 - uniform.get_submodule(g).out_channels / c for g, c in plan.channels.items()}
    curves = allocation.loss_curves(plan, sensitivity)
    loss = lambda by_group: sum(curves[g](share) for g, share in by_group.items())  # noqa: E731
    assert loss(shares) < loss(uniform_shares)


def test_the_sensitivity_allocation_without_the_sensitivity_is_refused_with_the_option_named(dense):
    with pytest.raises(flop_budgets.AllocationError, match="channel-allocations"):
        pruners.Pruner(copy.deepcopy(dense), "structured_physical_sensitivity", 0.5, 1, SIZE, round_to=8)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_the_sensitivity_plan_meets_the_flops_whatever_the_losses(plan, seed, ratio):
    """Where the cheap groups reach their floor early, the last steps left are coarse and overshoot: the
    plan gives channels back until it is within the tolerance (a run once stopped outside it)."""
    generator = np.random.default_rng(seed)
    slopes = {group: generator.choice([0.0, 0.01, 1.0, 5.0]) for group in plan.channels}
    curves = {group: (lambda share, slope=slope: slope * share) for group, slope in slopes.items()}
    target = flop_budgets.uniform_flops(ratio, SIZE, 8)
    removed = allocation.sensitivity_plan(plan, curves, target=target, round_to=8)
    kept = {group: plan.channels[group] - count for group, count in removed.items()}
    assert abs(plan.flops(kept) / target - 1) <= allocation.FLOPS_TOLERANCE
    assert all(count % 8 == 0 and count >= 8 for count in kept.values())
    assert all(count / plan.channels[group] <= allocation.MAX_LAYER_RATIO for group, count in removed.items())


@pytest.mark.parametrize("method", sorted(methods.FLOPS_MATCHED))
def test_masked_methods_at_removals_flops_have_its_effective_flops_and_their_own_criterion(dense, method):
    """unstructured_flops and structured_flops, the primary comparisons' masked side, are pruned by their own
    criterion to structured_physical's effective FLOPs at the same ratio: equal FLOPs, not an equal ratio."""
    model = copy.deepcopy(dense)
    pruner = pruners.Pruner(model, method, 0.5, 1, SIZE, round_to=8)
    pruner.step()
    removed = flop_budgets.uniform_flops(0.5, SIZE, 8)
    assert flop_budgets.frame_flops(model, SIZE) == pytest.approx(removed, rel=allocation.FLOPS_TOLERANCE)
    assert pruner.allocation["allocation"] == "equal_flops"
    knob = pruner.allocation["allocation_knob"]
    if method == "unstructured_flops":  # global magnitude: the knob is the share of zero conv weights
        achieved = prune_utils.achieved(model, dense, method)["achieved_ratio"]
        assert achieved == pytest.approx(knob, abs=1e-6) and knob > 0.5  # more zeros than the ratio
    else:  # per-layer channels, every conv's own share, masked: the channels are all still there
        assert {n: c for n, c in convs(model).items()} == convs(dense)
        assert prune_utils.achieved(model, dense, method)["achieved_ratio"] == pytest.approx(knob, abs=0.02)


def test_flop_matched_methods_are_one_shot_only(dense):
    with pytest.raises(ValueError, match="one-shot only"):
        pruners.Pruner(copy.deepcopy(dense), "unstructured_flops", 0.5, 1, SIZE, round_to=8, steps=3)


def test_the_global_allocation_reaches_a_target_one_groups_step_jumps_over(dense):
    """One round_to step of the stem's group moves more FLOPs than the tolerance (here round_to 32, as the
    stem's 8 of 32 channels did for a trained model at the quick input): no single knob of the global ranking
    lands near 0.7 of the dense FLOPs, so the ranking stops before that step and goes on over the other
    groups, the stem's held; the model pruned is the one the record describes."""
    dense_flops = flop_budgets.frame_flops(dense, SIZE)
    model = copy.deepcopy(dense)
    pruner, reached = allocation.global_pruner(model, 0.7 * dense_flops, ratio=0.3, num_frames=1,
                                               image_size=SIZE, round_to=32)
    pruner.step()
    assert "backbone.conv1" in reached["allocation_held"] and model.backbone.conv1.out_channels == 64
    assert abs(reached["allocation_flops_vs_uniform"] - 1) <= allocation.FLOPS_TOLERANCE
    assert flop_budgets.frame_flops(model, SIZE) / (0.7 * dense_flops) == pytest.approx(
        reached["allocation_flops_vs_uniform"])
    assert convs(model) != convs(dense) and all(count > 0 for count in convs(model).values())
    one_knob = copy.deepcopy(dense)  # where a single knob does land, the ranking runs once, as before
    pruner, reached = allocation.global_pruner(one_knob, 0.5 * dense_flops, ratio=0.5, num_frames=1,
                                               image_size=SIZE, round_to=32)
    assert "allocation_held" not in reached
    assert abs(reached["allocation_flops_vs_uniform"] - 1) <= allocation.FLOPS_TOLERANCE


def test_the_global_ranking_halves_its_knob_and_the_matched_masks_interpolate(monkeypatch):
    """bisect_flops probes midpoints unless told to interpolate (the global ranking's FLOPs jump at round_to
    steps); with interpolate, false position reaches a smooth target in fewer probes than halving does."""
    probes = []

    class Net:
        knob = 0.0

    def prune(net, knob):
        net.knob = knob
        probes.append(knob)
    monkeypatch.setattr(allocation, "frame_flops", lambda net, *_: 1000 * (1 - net.knob) ** 2)
    allocation.bisect_flops(Net(), prune, 0.0, 1.0, target=300.0, image_size=32)
    halved = list(probes)
    assert halved[:3] == [0.5, 0.25, 0.375]
    probes.clear()
    allocation.bisect_flops(Net(), prune, 0.0, 1.0, target=300.0, image_size=32, interpolate=True)
    assert probes[:2] == [0.0, 1.0] and len(probes) - 2 < len(halved)
