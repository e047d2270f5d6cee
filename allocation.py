"""Where removed channels go, and how many: the allocations of structured_physical compared at equal size.

uniform      every coupled group loses the same share of its channels (structured_physical itself)
global       Torch-Pruning's global ranking: every group's channels ranked together by their L2
             importance (normalised within the group), so a group loses more where its channels matter
             less; the head protected, no group losing more than MAX_LAYER_RATIO

A sensitivity-guided allocation (ratios from the run's layer sensitivity) is not here: neither rule tried
met the uniform model's FLOPs within FLOPS_TOLERANCE (docs/methodology.md, "Channel allocation").

An allocation at ratio r is pruned to the effective FLOPs of the uniform model at r: its knob (the global
ratio) is found by bisection on a copy of the model, so the allocations compare at equal FLOPs by
construction (within FLOPS_TOLERANCE; the record says what was reached). FLOPs are counted for one frame:
the backbone's cost is linear in the frames, so the ratios carry over to any clip length.

ratio_for_speedup turns a FLOP budget (--target-flops-speedups 4: four times fewer FLOPs than the baseline)
into the uniform ratio that reaches it within BUDGET_TOLERANCE; every allocation then meets that model's
FLOPs as above.
"""
import copy
import functools


import metrics
import prune_utils

FLOPS_TOLERANCE = 0.03  # an allocation's FLOPs are within this share of the uniform model's
# A budget's: the rounding moves every layer's channel count at once, in steps of PHYSICAL_ROUND_TO, so the
# uniform model's FLOPs fall in steps (2.07x was the nearest to 2x at 32x32 with round_to 8).
BUDGET_TOLERANCE = 0.10
MAX_LAYER_RATIO = 0.9   # no group of an allocation loses more than this share of its channels
BISECTION_STEPS = 24    # enough for a knob within 1e-7 of its range; the search stops once within a third
ALLOCATIONS = {"structured_physical": "uniform", "structured_physical_global": "global"}


class AllocationError(ValueError):
    """An allocation or a budget that cannot be met within FLOPS_TOLERANCE; main.py names the option."""


def frame_flops(model, image_size):
    return metrics.flops(model, 1, image_size)["effective_flops"]


@functools.lru_cache(maxsize=None)
def uniform_flops(ratio, image_size, round_to):
    """The effective FLOPs (one frame) of structured_physical at `ratio`: its channel counts do not depend
    on the weights (prune_utils.physical_reach), so a random model answers."""
    model = copy.deepcopy(prune_utils._dense_model())
    if ratio > 0:
        prune_utils.structured_physical(model, ratio, 1, image_size, round_to)
    return frame_flops(model, image_size)


def ratio_for_speedup(speedup, image_size, round_to):
    """The uniform ratio, to 0.001, whose model needs `speedup` times fewer FLOPs than the dense one; an
    AllocationError where the channel rounding leaves no ratio within BUDGET_TOLERANCE of it."""
    target = uniform_flops(0.0, image_size, round_to) / speedup
    low, high, best = 0, 950, None  # in thousandths: the ratio's resolution
    while low <= high:
        middle = (low + high) // 2
        reached = uniform_flops(middle / 1000, image_size, round_to)
        if best is None or abs(reached / target - 1) < abs(best[1] / target - 1):
            best = (middle / 1000, reached)
        low, high = (middle + 1, high) if reached > target else (low, middle - 1)
    ratio, reached = best
    if abs(reached / target - 1) > BUDGET_TOLERANCE:
        raise AllocationError(f"target-flops-speedups {speedup:g}: the nearest structured_physical model "
                              f"(ratio {ratio:g}, channels rounded to {round_to}) needs "
                              f"{uniform_flops(0.0, image_size, round_to) / reached:.2f}x fewer FLOPs, not "
                              f"within {BUDGET_TOLERANCE:.0%}; try --physical-round-to 1")
    return ratio


def allocated_pruner(model, allocation, ratio, *, num_frames, image_size, round_to):
    """(Torch-Pruning pruner for `model`, what was reached): the allocation's knob found by bisection so the
    pruned model's FLOPs meet the uniform model's at `ratio`; an AllocationError if they cannot."""
    if allocation != "global":
        raise ValueError(f"unknown allocation {allocation!r}: global")
    target = uniform_flops(ratio, image_size, round_to)

    def make(net, knob):
        return prune_utils.physical_pruner(net, knob, num_frames, image_size, round_to,
                                           global_pruning=True, max_ratio=MAX_LAYER_RATIO)
    knob, reached = bisect_flops(model, make, 0.0, MAX_LAYER_RATIO, target=target, image_size=image_size)
    if abs(reached / target - 1) > FLOPS_TOLERANCE:
        raise AllocationError(f"the {allocation} allocation at ratio {ratio:g} reaches "
                              f"{reached / target:.3f}x the uniform model's FLOPs at best, not within "
                              f"{FLOPS_TOLERANCE:.0%}")
    return make(model, knob), {"allocation": allocation, "allocation_knob": knob,
                               "allocation_flops_vs_uniform": reached / target}


def bisect_flops(model, make, low, high, *, target, image_size):
    """(knob, FLOPs) of the pruned copy nearest `target`, a higher knob pruning more."""
    best = None
    for _ in range(BISECTION_STEPS):
        knob = (low + high) / 2
        probe = copy.deepcopy(model)
        make(probe, knob).step()
        reached = frame_flops(probe, image_size)
        if best is None or abs(reached / target - 1) < abs(best[1] / target - 1):
            best = (knob, reached)
        if abs(reached / target - 1) <= FLOPS_TOLERANCE / 3:
            break
        low, high = (knob, high) if reached > target else (low, knob)
    return best
