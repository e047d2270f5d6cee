"""Masking against removal compares one choice of channels; one parameter count for both; the controls
a pruning reviewer asks for (random channels removed, the small network trained from scratch)."""
import copy

import pytest
import torch

import batchnorm
import metrics
import pruners
import prune_utils
from test_pruning import FRAMES, SIZE, loaders, trained  # noqa: F401 (a fixture)

ROUND_TO = 8


def pruned(model, method, ratio):
    return prune_utils.make_permanent(pruners.apply(copy.deepcopy(model), method, ratio, FRAMES, SIZE,
                                                        ROUND_TO))


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_the_masked_twin_masks_exactly_the_channels_torch_pruning_removes(trained, ratio):  # noqa: F811
    removed = pruned(trained, "structured_physical", ratio)
    twin = pruned(trained, "structured_coupled_masked", ratio)
    assert prune_utils.achieved(twin, trained, "structured_coupled_masked")["channels"] == \
        prune_utils.achieved(removed, trained, "structured_physical")["channels"]
    # recalibrated on the same batches, the two are one network written two ways
    for model in (removed, twin):
        batchnorm.recalibrate(model, loaders()[0], num_batches=2)
    video = torch.randn(3, FRAMES, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    removed.eval(), twin.eval()
    with torch.no_grad():
        torch.testing.assert_close(twin(video), removed(video), atol=1e-4, rtol=1e-5)
    assert (metrics.effective_parameters(twin, FRAMES, SIZE)
            == metrics.effective_parameters(removed, FRAMES, SIZE))
    assert metrics.flops(twin, FRAMES, SIZE)["effective_flops"] == pytest.approx(
        metrics.flops(removed, FRAMES, SIZE)["effective_flops"], rel=1e-6)


def test_per_layer_l2_masks_choose_other_channels_than_the_coupled_groups(trained):  # noqa: F811
    per_layer = pruned(trained, "structured", 0.5)
    twin = pruned(trained, "structured_coupled_masked", 0.5)
    # the residual stream: per-layer norms leave it at full width, the coupled groups narrow it
    alive = metrics.live_inputs(per_layer, torch.zeros(1, FRAMES, 3, SIZE, SIZE))["head"].sum()
    assert int(alive) > int(metrics.live_inputs(twin, torch.zeros(1, FRAMES, 3, SIZE, SIZE))["head"].sum())


def test_a_masked_channel_counts_as_a_removed_one_in_the_parameters(trained):  # noqa: F811
    twin = pruned(trained, "structured_coupled_masked", 0.5)
    removed = pruned(trained, "structured_physical", 0.5)
    nonzero_twin = metrics.parameter_counts(twin)[0]
    effective = metrics.effective_parameters(twin, FRAMES, SIZE)
    # the non-zero count keeps the next layers' weights on dead inputs; the effective count does not
    assert nonzero_twin > 1.5 * effective
    assert effective == metrics.parameter_counts(removed)[0]
    dense = metrics.effective_parameters(trained, FRAMES, SIZE)
    assert dense == metrics.parameter_counts(trained)[0]


def test_the_twin_is_one_shot_only(trained):  # noqa: F811
    with pytest.raises(ValueError, match="one-shot only"):
        pruners.Pruner(copy.deepcopy(trained), "structured_coupled_masked", 0.5, FRAMES, SIZE, steps=3)


def test_random_removal_keeps_the_counts_and_chooses_other_channels(trained):  # noqa: F811
    torch.manual_seed(0)
    random = pruned(trained, "structured_physical_random", 0.5)
    removed = pruned(trained, "structured_physical", 0.5)
    assert prune_utils.channel_counts(random) == prune_utils.channel_counts(removed)
    assert not torch.equal(random.backbone.conv1.weight, removed.backbone.conv1.weight)


def test_the_scratch_network_is_the_removed_architecture_freshly_initialised(trained):  # noqa: F811
    torch.manual_seed(0)
    scratch = prune_utils.scratch_model(0.5, 55.0, 10.0, FRAMES, SIZE, ROUND_TO)
    removed = pruned(trained, "structured_physical", 0.5)
    assert prune_utils.channel_counts(scratch) == prune_utils.channel_counts(removed)
    assert {k: v.shape for k, v in scratch.state_dict().items()} == \
        {k: v.shape for k, v in removed.state_dict().items()}
    conv = scratch.backbone.layer2[0].conv1
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    # torchvision's ResNet init at the thin width (Kaiming, fan-out), not a slice of a wider layer's
    assert conv.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.1)
    assert all(torch.equal(bn.weight, torch.ones_like(bn.weight)) for bn in batchnorm.batchnorms(scratch))
    assert scratch(torch.zeros(1, FRAMES, 3, SIZE, SIZE)).item() == pytest.approx(55.0, abs=1.0)
