"""A FLOP budget as a structured_physical ratio: what structured_physical reaches at a ratio (its channel
counts and effective FLOPs do not depend on the weights, so a random model answers), and the ratio that
needs a given factor fewer FLOPs than the dense model (--target-flops-speedups). FLOPs are counted for one
frame of the per-frame network, whose cost is linear in the frames, and for the whole clip of the video
network (R(2+1)D), whose temporal strides make its cost no multiple of one frame's (clip_frames)."""
import copy
import functools

import metrics
import prune_utils
from model import VIDEO
from prune_utils import TOLERANCE

# A budget's: the rounding moves every layer's channel count at once, in steps of PHYSICAL_ROUND_TO, so the
# uniform model's FLOPs fall in steps (2.07x was the nearest to 2x at 32x32 with round_to 8).
BUDGET_TOLERANCE = 0.10


class AllocationError(ValueError):
    """An allocation or a budget that cannot be met within FLOPS_TOLERANCE; main.py names the option."""


def clip_frames(model, num_frames):
    """The frames FLOPs are counted on: one for the per-frame network, the clip for the video network."""
    return num_frames if getattr(model, "arch", None) == VIDEO else 1


def frame_flops(model, image_size, num_frames=1):
    return metrics.flops(model, clip_frames(model, num_frames), image_size)["effective_flops"]


def uniform_flops(ratio, image_size, round_to, arch="resnet18_frames", num_frames=1):
    """The effective FLOPs (one frame; the video network's clip) of structured_physical at `ratio`: its
    channel counts do not depend on the weights (physical_reach), so a random model answers."""
    return _uniform_flops(ratio, image_size, round_to, arch, num_frames if arch == VIDEO else 1)


@functools.lru_cache(maxsize=None)
def _uniform_flops(ratio, image_size, round_to, arch, num_frames):
    model = copy.deepcopy(prune_utils.dense_model(arch))
    if ratio > 0:
        prune_utils.structured_physical(model, ratio, 1, image_size, round_to)
    return frame_flops(model, image_size, num_frames)


def ratio_for_speedup(speedup, image_size, round_to, arch="resnet18_frames", num_frames=1):
    """The uniform ratio, to 0.001, whose model needs `speedup` times fewer FLOPs than the dense one; an
    AllocationError where the channel rounding leaves no ratio within BUDGET_TOLERANCE of it."""
    def uniform(ratio):
        return uniform_flops(ratio, image_size, round_to, arch, num_frames)
    target = uniform(0.0) / speedup
    low, high, best = 0, 950, None  # in thousandths: the ratio's resolution
    while low <= high:
        middle = (low + high) // 2
        reached = uniform(middle / 1000)
        if best is None or abs(reached / target - 1) < abs(best[1] / target - 1):
            best = (middle / 1000, reached)
        low, high = (middle + 1, high) if reached > target else (low, middle - 1)
    ratio, reached = best
    if abs(reached / target - 1) > BUDGET_TOLERANCE:
        raise AllocationError(f"target-flops-speedups {speedup:g}: the nearest structured_physical model "
                              f"(ratio {ratio:g}, channels rounded to {round_to}) needs "
                              f"{uniform(0.0) / reached:.2f}x fewer FLOPs, not "
                              f"within {BUDGET_TOLERANCE:.0%}; try --physical-round-to 1")
    return ratio


@functools.lru_cache(maxsize=None)
def physical_reach(ratio, round_to, arch="resnet18_frames"):
    """(overall fraction of conv output channels removed, {conv: [kept, of]}) when structured_physical
    prunes at `ratio`. Torch-Pruning keeps at least round_to channels and leaves a layer whole when the
    rounding would empty it, so it may remove less than asked. The counts do not depend on the weights
    (every layer loses the same fraction), so a random model on a tiny input answers in about a second."""
    model = copy.deepcopy(prune_utils.dense_model(arch))
    before = prune_utils.channel_counts(model)
    prune_utils.structured_physical(model, ratio, 1, 32, round_to)
    after = prune_utils.channel_counts(model)
    overall = 1 - sum(after.values()) / sum(before.values())
    return overall, {name: [after[name], before[name]] for name in before}


def unreachable(ratios, round_to, arch="resnet18_frames"):
    """A message per requested structured_physical ratio it cannot reach within TOLERANCE, naming the
    highest ratio (0.01 steps below the requested one) it does reach."""
    problems = []
    for ratio in ratios:
        reached = physical_reach(ratio, round_to, arch)[0]
        if abs(reached - ratio) <= TOLERANCE:
            continue
        best = next((r / 100 for r in range(round(ratio * 100) - 1, 0, -1)
                     if abs(physical_reach(r / 100, round_to, arch)[0] - r / 100) <= TOLERANCE), None)
        problems.append(f"structured-pruning-ratios {ratio:g}: structured_physical (Torch-Pruning, channels "
                        f"rounded to multiples of --physical-round-to {round_to}) removes {reached:.2f} of "
                        f"the channels, not {ratio:g}; the highest ratio it reaches within {TOLERANCE} is "
                        f"{best:g}")
    return problems


def budget_ratios(cfg):
    """{FLOP speed-up: the structured_physical ratio that reaches it} of TARGET_FLOPS_SPEEDUPS; an
    AllocationError where two budgets come to one ratio (one model, trained twice: n = 2, std 0)."""
    ratios = {speedup: ratio_for_speedup(speedup, cfg.IMAGE_SIZE, cfg.PHYSICAL_ROUND_TO, cfg.MODEL,
                                         cfg.NUM_FRAMES)
              for speedup in cfg.TARGET_FLOPS_SPEEDUPS}
    alike = {ratio: [f"{s:g}" for s, r in ratios.items() if r == ratio] for ratio in set(ratios.values())}
    alike = {ratio: speedups for ratio, speedups in sorted(alike.items()) if len(speedups) > 1}
    if alike:
        raise AllocationError("; ".join(
            f"target-flops-speedups {' and '.join(speedups)} come to the same structured_physical ratio "
            f"{ratio:g} (channels rounded to {cfg.PHYSICAL_ROUND_TO}), one model; list one of them"
            for ratio, speedups in alike.items()))
    return ratios
