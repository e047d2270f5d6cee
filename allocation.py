"""Where removed channels go, and how many: the allocations of structured_physical compared at equal size.

uniform      every coupled group loses the same share of its channels (structured_physical itself)
global       Torch-Pruning's global ranking: every group's channels ranked together by their L2
             importance (normalised within the group), so a group loses more where its channels matter
             less; the head protected, no group losing more than MAX_LAYER_RATIO (global_pruner: where
             one group's round_to step jumps over the target, the ranking goes on with that group held)
sensitivity  the run's coupled-group sensitivity (sensitivity.group_sensitivity: each group removed alone,
             on the validation split) decides how many channels each group loses; which ones, as in
             uniform, by L2 importance within the group (sensitivity_plan)

An allocation at ratio r is pruned to the effective FLOPs of the uniform model at r: its knob (the global
ratio) is found by bisection on a copy of the model, so the allocations compare at equal FLOPs by
construction (within FLOPS_TOLERANCE; the record says what was reached). FLOPs are counted for one frame
of the per-frame network, whose cost is linear in the frames, so the ratios carry over to any clip length;
for the video network (R(2+1)D), whose temporal strides make its cost no multiple of one frame's, for the
whole clip (flop_budgets.clip_frames).

matched_ratio prunes a masked method (unstructured, per-layer channels) to the uniform model's effective
FLOPs at ratio r the same way, its own sparsity the knob: unstructured_flops and structured_flops, compared
with removal at equal FLOPs.

A FLOP budget (--target-flops-speedups 4: four times fewer FLOPs than the baseline) becomes the uniform
ratio that reaches it (flop_budgets.py, which also counts the FLOPs); every allocation then meets that
model's FLOPs as above.
"""
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch_pruning as tp

import prune_utils
from flop_budgets import AllocationError, clip_frames, frame_flops, uniform_flops
from model import CONVS

FLOPS_TOLERANCE = 0.03  # an allocation's FLOPs are within this share of the uniform model's
MAX_LAYER_RATIO = 0.9   # no group of an allocation loses more than this share of its channels
BISECTION_STEPS = 24    # enough for a knob within 1e-7 of its range; the search stops once within a third
MATCHED_RANGE = 0.99    # the highest sparsity or per-layer share a FLOP-matched masked method may take


def allocated_pruner(model, allocation, ratio, *, num_frames, image_size, round_to, sensitivity=()):
    """(pruner for `model`, what was reached): the allocation pruned to the uniform model's FLOPs at `ratio`
    (global: its knob found by bisection; sensitivity: sensitivity_plan); an AllocationError if it cannot.
    sensitivity: the seed's rows of sensitivity.group_sensitivity."""
    if allocation not in ("global", "sensitivity"):
        raise ValueError(f"unknown allocation {allocation!r}: global, sensitivity")
    target = uniform_flops(ratio, image_size, round_to, model.arch, num_frames)
    if allocation == "sensitivity":
        return counted_pruner(model, ratio, sensitivity, target=target, num_frames=num_frames,
                              image_size=image_size, round_to=round_to)
    return global_pruner(model, target, ratio=ratio, num_frames=num_frames, image_size=image_size,
                         round_to=round_to)


class Stages:
    """A pruner of stages run one after another, each built on the model the stage before it pruned."""

    def __init__(self, model, *stages):
        self.model, self.stages = model, stages

    def step(self):
        for make in self.stages:
            make(self.model).step()


def global_pruner(model, target, *, ratio, num_frames, image_size, round_to):
    """(pruner, what was reached): Torch-Pruning's global ranking of `model` to `target` FLOPs, its knob by
    bisection. Where one round_to step of a group moves more FLOPs than the tolerance around the target (at
    a small input the stem's group holds most of them), no knob lands there: the ranking is taken to the
    knob just before that step, then run again over every other group, the step's groups held, its second
    knob by bisection (both knobs and the held groups recorded; the second stage caps each group at
    MAX_LAYER_RATIO of what the first kept). An AllocationError if neither reaches the target."""
    def make(net, knob, held=()):
        return prune_utils.physical_pruner(net, knob, num_frames, image_size, round_to, global_pruning=True,
                                           max_ratio=MAX_LAYER_RATIO, held=held)
    knob, reached, before, past = bisect_flops(model, lambda net, k: make(net, k).step(), 0.0,
                                               MAX_LAYER_RATIO, target=target, image_size=image_size,
                                               num_frames=num_frames)
    record = {"allocation": "global", "allocation_knob": knob}
    stages = [lambda net: make(net, knob)]
    if abs(reached / target - 1) > FLOPS_TOLERANCE:
        first, after = (copy.deepcopy(model) for _ in range(2))
        make(first, before).step()
        make(after, past).step()
        held = sorted(name for (name, m), n in zip(first.named_modules(), after.modules())
                      if isinstance(m, CONVS) and m.out_channels != n.out_channels)
        second, reached, *_ = bisect_flops(first, lambda net, k: make(net, k, held).step(), 0.0,
                                          MAX_LAYER_RATIO, target=target, image_size=image_size,
                                          num_frames=num_frames)
        record.update(allocation_knob=before, allocation_second_knob=second, allocation_held=held)
        stages = [lambda net: make(net, before), lambda net: make(net, second, held)]
    if abs(reached / target - 1) > FLOPS_TOLERANCE:
        raise AllocationError(f"the global allocation at ratio {ratio:g} reaches "
                              f"{reached / target:.3f}x the uniform model's FLOPs at best, not within "
                              f"{FLOPS_TOLERANCE:.0%}")
    return Stages(model, *stages), {**record, "allocation_flops_vs_uniform": reached / target}


def matched_ratio(model, criterion, ratio, *, scope, image_size, round_to, num_frames=1):
    """(the sparsity, or per-layer share of channels, at which `criterion` ("unstructured" or "structured",
    masks) brings `model` to the uniform removed model's effective FLOPs at `ratio`; what was reached), by
    false position on copies; an AllocationError where MATCHED_RANGE does not reach them."""
    target = uniform_flops(ratio, image_size, round_to, model.arch, num_frames)

    def prune(net, knob):
        net.to(memory_format=torch.contiguous_format)  # torch's pruning flattens with view()
        if criterion == "unstructured":
            prune_utils.unstructured(net, knob, scope=scope)
        else:
            prune_utils.structured(net, knob)
    knob, reached, *_ = bisect_flops(model, prune, 0.0, MATCHED_RANGE, target=target, image_size=image_size,
                                    num_frames=num_frames, interpolate=True)
    if abs(reached / target - 1) > FLOPS_TOLERANCE:
        raise AllocationError(f"{criterion} pruning at structured_physical's FLOPs at ratio {ratio:g} "
                              f"reaches {reached / target:.3f}x them at best, not {FLOPS_TOLERANCE:.0%}")
    return knob, {"allocation": "equal_flops", "allocation_knob": knob,
                  "allocation_flops_vs_uniform": reached / target}


def bisect_flops(model, prune, low, high, *, target, image_size, num_frames=1, interpolate=False):
    """(knob, FLOPs, low, high) of the copy of `model` pruned in place by prune(copy, knob) nearest `target`,
    a higher knob pruning more; low and high: the knobs the search ended between (above and below target).
    interpolate: each knob by false position (Illinois) between the ends' FLOPs, probed first, not the
    midpoint: a masked method's FLOPs fall smoothly with its knob, so a few probes reach the target where
    halving took up to 16 (the global ranking's FLOPs jump at round_to steps: it halves)."""
    def probe(knob):
        net = copy.deepcopy(model)
        prune(net, knob)
        return frame_flops(net, image_size, num_frames)
    best, moved = None, 0
    ends = [probe(low) - target, probe(high) - target] if interpolate else [0.0, 0.0]
    for _ in range(BISECTION_STEPS):
        knob = (low + (high - low) * ends[0] / (ends[0] - ends[1]) if ends[0] > 0 > ends[1]
                else (low + high) / 2)
        reached = probe(knob)
        if best is None or abs(reached / target - 1) < abs(best[1] / target - 1):
            best = (knob, reached)
        if abs(reached / target - 1) <= FLOPS_TOLERANCE / 3:
            break
        side = 1 if reached > target else -1
        low, high = (knob, high) if side > 0 else (low, knob)
        if interpolate:
            ends[0 if side > 0 else 1] = reached - target
            if side == moved:  # the same end moved twice: halve the other's pull (Illinois)
                ends[1 if side > 0 else 0] /= 2
        moved = side
    return (*best, low, high)


class ChannelPlan:
    """The coupled groups of a ResNet (Torch-Pruning's dependency graph, each named by its first conv) and
    the FLOPs of one frame for any channels kept per group, counted as torch.utils.flop_counter does
    (2 per multiply-add of every conv and of the head), so a greedy search can try thousands of
    allocations without pruning a model for each."""

    def __init__(self, model, image_size, num_frames=1):
        model = copy.deepcopy(model).eval()
        names = {id(m): name for name, m in model.named_modules()}
        clip = clip_frames(model, num_frames)
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=frames(model, image_size, clip))
        self.channels, self.members, out_group, in_group = {}, {}, {}, {}
        for group in graph.get_all_groups(ignored_layers=[model.head], root_module_types=list(CONVS)):
            root = names[id(group[0].dep.target.module)]
            self.channels[root], self.members[root] = graph.get_out_channels(group[0].dep.target.module), []
            for item in group:
                module, name = item.dep.target.module, names.get(id(item.dep.target.module))
                if isinstance(module, CONVS) and graph.is_out_channel_pruning_fn(item.dep.handler):
                    out_group[name] = root
                    self.members[root].append(name)
                elif isinstance(module, CONVS + (nn.Linear,)) and graph.is_in_channel_pruning_fn(
                        item.dep.handler):
                    in_group[name] = root
        pixels = output_pixels(model, image_size, clip)
        self.terms = []  # (out group or fixed count, in group or fixed count, FLOPs per channel pair)
        for name, m in model.named_modules():
            if isinstance(m, CONVS + (nn.Linear,)):
                kernel = m.weight[0, 0].numel() if isinstance(m, CONVS) else 1
                self.terms.append((out_group.get(name, m.weight.shape[0]),
                                   in_group.get(name, m.weight.shape[1]), 2 * kernel * pixels[name]))

    def flops(self, kept):
        count = lambda g: kept[g] if isinstance(g, str) else g  # noqa: E731
        return sum(count(out) * count(inp) * per_pair for out, inp, per_pair in self.terms)


def frames(model, image_size, num_frames=1):
    return torch.zeros(1, num_frames, 3, image_size, image_size, device=next(model.parameters()).device)


@torch.no_grad()
def output_pixels(model, image_size, num_frames=1):
    """{conv or linear name: output positions of one input (frame, or the video network's clip)} (1 for a
    linear layer)."""
    pixels, hooks = {}, []
    for name, m in model.named_modules():
        if isinstance(m, CONVS + (nn.Linear,)):
            hooks.append(m.register_forward_hook(lambda m, i, out, name=name: pixels.__setitem__(
                name, out[0, 0].numel() if out.dim() >= 4 else 1)))
    model(frames(model, image_size, num_frames))
    for hook in hooks:
        hook.remove()
    return pixels


def loss_curves(plan, sensitivity):
    """{group: f(removed share) -> validation MAE increase}: the group's measured increases when its
    channels are removed alone (sensitivity.group_sensitivity), linear between the measured shares from 0
    at 0, made non-decreasing (a loss that falls is noise), extended past the last share by the last
    slope."""
    measured = {}
    for row in sensitivity:
        share = row["removed"] / row["channels"]
        measured.setdefault(row["group"], []).append((share, row["val_mae_increase"]))
    missing = [group for group in plan.channels if group not in measured]
    if missing:
        raise AllocationError(f"the sensitivity allocation needs every coupled group's sensitivity; none for "
                              f"{', '.join(missing[:3])} (main.py measures it when channel-allocations names "
                              f"sensitivity)")

    def curve(group, points):
        by_share = {0.0: 0.0}  # a share measured twice (two ratios rounded alike) is one pruning
        for share, loss in points:
            if share > 0:
                by_share[share] = max(loss, by_share.get(share, loss))
        if len(by_share) < 2:  # no slope to draw: the allocation would be arbitrary (NaN losses)
            raise AllocationError(f"the sensitivity allocation has no measured loss for the coupled group "
                                  f"{group}: no sensitivity-ratios value removed any of its channels at the "
                                  f"channel rounding; raise the ratios or lower --physical-round-to")
        shares, losses = zip(*sorted(by_share.items()))
        losses = np.maximum.accumulate(losses)
        slope = (losses[-1] - losses[-2]) / (shares[-1] - shares[-2])
        return lambda share: float(np.interp(share, shares, losses)) + slope * max(0.0, share - shares[-1])
    return {group: curve(group, points) for group, points in measured.items()}


def sensitivity_plan(plan, curves, *, target, round_to):
    """{group: channels removed}, in steps of round_to channels. Down: from the dense model, each step
    removes channels from the group whose measured loss grows least per FLOP saved (ties: the group
    pruned least so far, so that where the curves tell nothing the allocation is the uniform one), until
    the FLOPs are at or below `target`. The last step can overshoot where only coarse steps are left
    (groups at their floor, a stem or a residual stream whose step is a large share of what remains), so
    up: while more than FLOPS_TOLERANCE / 2 below, channels go back to the group whose loss falls most per
    FLOP restored (ties: the group pruned most), never above FLOPS_TOLERANCE / 2 over the target. No
    group keeps fewer than round_to channels or loses more than MAX_LAYER_RATIO of them."""
    full = {g: c - c % round_to for g, c in plan.channels.items()}
    floor = {g: max(round_to, math.ceil(c * (1 - MAX_LAYER_RATIO) / round_to) * round_to)
             for g, c in plan.channels.items()}
    kept = dict(full)
    flops = plan.flops(kept)

    def moved(g, change):
        """(loss change, FLOPs after, share kept now) of group g's count moved by `change` channels."""
        share = lambda k: 1 - k / plan.channels[g]  # noqa: E731
        return (curves[g](share(kept[g] + change)) - curves[g](share(kept[g])),
                plan.flops({**kept, g: kept[g] + change}), kept[g] / plan.channels[g])
    while flops > target:
        steps = [(grown / (flops - after), -share, g, after) for g in kept if kept[g] - round_to >= floor[g]
                 for grown, after, share in [moved(g, -round_to)]]
        if not steps:
            break
        _, _, g, flops = min(steps)
        kept[g] -= round_to
    ceiling = target * (1 + FLOPS_TOLERANCE / 2)
    while flops < target * (1 - FLOPS_TOLERANCE / 2):
        steps = [(grown / (after - flops), share, g, after) for g in kept if kept[g] + round_to <= full[g]
                 for grown, after, share in [moved(g, round_to)] if after <= ceiling]
        if not steps:
            break
        _, _, g, flops = min(steps)
        kept[g] += round_to
    return {g: plan.channels[g] - k for g, k in kept.items()}


class CountedPruner:
    """Removes `removed[group]` channels from each group of `model`, those of lowest L2 importance within
    the group (Torch-Pruning's MagnitudeImportance(p=2), structured_physical's criterion), every group's
    importance measured before any is pruned, as Torch-Pruning's own pruner does."""

    def __init__(self, model, removed, num_frames, image_size):
        self.model, self.removed, self.num_frames, self.image_size = model, removed, num_frames, image_size

    def step(self):
        model = self.model
        names = {id(m): name for name, m in model.named_modules()}
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=frames(model, self.image_size,
                                                                                   self.num_frames))
        importance, chosen = tp.importance.MagnitudeImportance(p=2), []
        for group in graph.get_all_groups(ignored_layers=[model.head], root_module_types=list(CONVS)):
            count = self.removed.get(names[id(group[0].dep.target.module)], 0)
            if count:
                lowest = torch.argsort(importance(group))[:count].tolist()
                chosen.append((group[0].dep.target.module, group[0].dep.handler, lowest))
        for root, handler, lowest in chosen:
            graph.get_pruning_group(root, handler, lowest).prune()


def counted_pruner(model, ratio, sensitivity, *, target, num_frames, image_size, round_to):
    """(CountedPruner of the sensitivity allocation, what was reached), checked on a pruned copy."""
    plan = ChannelPlan(model, image_size, num_frames)
    removed = sensitivity_plan(plan, loss_curves(plan, sensitivity), target=target, round_to=round_to)
    probe = copy.deepcopy(model)
    CountedPruner(probe, removed, num_frames, image_size).step()
    reached = frame_flops(probe, image_size, num_frames)
    if abs(reached / target - 1) > FLOPS_TOLERANCE:
        raise AllocationError(f"the sensitivity allocation at ratio {ratio:g} reaches "
                              f"{reached / target:.3f}x the uniform model's FLOPs, not within "
                              f"{FLOPS_TOLERANCE:.0%}")
    shares = {g: removed[g] / plan.channels[g] for g in removed}
    return CountedPruner(model, removed, num_frames, image_size), {
        "allocation": "sensitivity", "allocation_knob": None, "allocation_flops_vs_uniform": reached / target,
        "allocation_removed_shares": shares}


# --- choosers (methods.py's table): removal allocated at the uniform model's FLOPs, masks at removal's ---

def global_allocation(model, ratio, setting):
    pruner, reached = allocated_pruner(model, "global", ratio, num_frames=setting.num_frames,
                                       image_size=setting.image_size, round_to=setting.round_to)
    return (lambda target: pruner.step()), reached


def sensitivity_allocation(model, ratio, setting):
    pruner, reached = allocated_pruner(model, "sensitivity", ratio, num_frames=setting.num_frames,
                                       image_size=setting.image_size, round_to=setting.round_to,
                                       sensitivity=setting.sensitivity)
    return (lambda target: pruner.step()), reached


def unstructured_at_removal_flops(model, ratio, setting):
    """One step, at the sparsity that brings the model to removal's effective FLOPs at `ratio`."""
    knob, reached = matched_ratio(model, "unstructured", ratio, scope=setting.scope,
                                  image_size=setting.image_size, round_to=setting.round_to,
                                  num_frames=setting.num_frames)
    return (lambda target: prune_utils.unstructured(model, knob, scope=setting.scope)), reached


def per_layer_at_removal_flops(model, ratio, setting):
    knob, reached = matched_ratio(model, "structured", ratio, scope=setting.scope,
                                  image_size=setting.image_size, round_to=setting.round_to,
                                  num_frames=setting.num_frames)
    return (lambda target: prune_utils.structured(model, knob)), reached
