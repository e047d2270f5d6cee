"""What each pruning method removes, all starting from the same trained baseline, on the same layers.

unstructured               global L1 magnitude over the weights of every Conv2d (masks)
structured                 per-layer L2 channels: each Conv2d's output channels with the lowest L2 norm
                           of that conv's own weights, round(ratio * channels) per conv (masks); the
                           residual stream's convs are chosen one by one, so it stays at full width
structured_physical        coupled channels, removed: Torch-Pruning's MagnitudeImportance(p=2) summed
                           over each coupled group (conv outputs, BatchNorm, the next layers' inputs,
                           residual partners), kept counts rounded to PHYSICAL_ROUND_TO; a smaller net
structured_coupled_masked  its masked twin: exactly the channels structured_physical removes, masked
                           (conv and BatchNorm) instead. Removing masked channels is an exact rewrite
                           of the network, so the twin and the removed model predict the same right
                           after pruning: what separates them is latency and size alone
structured_physical_global structured_physical's removal with the channels allocated across the layers
                           by Torch-Pruning's global ranking, at the uniform model's effective FLOPs for
                           the same ratio (allocation.py)
structured_physical_sensitivity  the same, with the channels allocated from the run's sensitivity of each
                           coupled group
unstructured_flops         unstructured's criterion (masks), its sparsity found by a search so that the
                           model's effective FLOPs are structured_physical's at the same ratio: the
                           comparison with removal at equal FLOPs, not at an equal ratio (allocation.py)
structured_flops           per-layer L2 channels (masks) likewise, at structured_physical's FLOPs
structured and structured_coupled_masked differ in criterion and structure, not in masking.
A method's name ending in _kd (structured_physical_kd) is that method fine-tuned with distillation from
the dense baseline (main.py, DISTILLED_METHODS).

No method prunes the regression head (Linear 512 -> 1) itself (PRUNING_SCOPE "backbone"): its 512
weights are 0.005% of the model, yet global magnitude pruning removed most of them at 0.8 and the
EF output died with them. Scope "all" restores the reference's unstructured scope (every Conv2d and
Linear, head included). The channel methods never prune the head's single output; but a channel
removed from the last convolutions is removed from the head's inputs too (structured_physical
shrinks the head to fewer inputs; masked structured leaves those inputs at zero).

scratch is not pruned: structured_physical's architecture at each ratio, trained from a fresh
initialisation (Liu et al. 2019); does pruning the trained baseline beat training the small net?

dense_control prunes nothing: the baseline fine-tuned exactly as the pruned models are, so that a
pruned model's change can be told apart from the effect of the extra training.

With RANDOM_PRUNING_CONTROL, unstructured_random and structured_random choose weights or channels
at random at the same ratios (ShrinkBench's control); with RANDOM_REMOVAL_CONTROL,
structured_physical_random removes random coupled groups, with the same counts as structured_physical.

Each method's chooser (the functions under "choosers" below, and allocation.py's) is named in its row of
methods.py's table; pruners.Pruner calls it and takes the steps.
"""
import copy
import functools

import torch
import torch.nn as nn
import torch.nn.utils.prune as prune
import torch_pruning as tp

import methods
from model import CONVS, NORMS, EFRegressionModel

SCOPES = ("backbone", "all")
SCHEDULES = ("oneshot", "gradual")


def prunable_layers(model, scope="backbone"):
    """(name, module) of every layer a method may prune: each convolution (2D, or 3D in the video network),
    and the head with scope "all"."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, CONVS) or (scope == "all" and isinstance(m, nn.Linear))]


def pruned_so_far(module, dim=None):
    """Weights (dim None) or output channels (dim 0) that the module's mask already removes."""
    mask = getattr(module, "weight_mask", None)
    if mask is None:
        return 0
    if dim is None:
        return int((mask == 0).sum())
    return int((mask.flatten(1).sum(1) == 0).sum())


def lowest(scores, k):
    """The k lowest of a flat tensor of scores, as a boolean mask (ties at the k-th value: the first in
    index order). The set torch.topk(largest=False) returns, found with kthvalue: on the 11M weights of
    the network topk took 1.1 s a call and kthvalue 0.4 s (2-core CPU), and masking calls it at every step."""
    threshold = torch.kthvalue(scores, k).values
    chosen = scores < threshold
    tied = (scores == threshold).nonzero().flatten()
    chosen[tied[:k - int(chosen.sum())]] = True
    return chosen


class L1Unstructured(prune.L1Unstructured):
    """torch's L1 criterion (the k weights with the lowest |w|), its k chosen by `lowest`."""

    def compute_mask(self, t, default_mask):
        return masked_lowest(self.amount, t.abs(), default_mask)


class RandomUnstructured(prune.RandomUnstructured):
    """torch's random criterion (the k highest of one uniform draw per weight), chosen by `lowest`."""

    def compute_mask(self, t, default_mask):
        return masked_lowest(self.amount, -torch.rand_like(t), default_mask)


def masked_lowest(amount, scores, default_mask):
    """default_mask with the `amount` lowest scores (a count, or a fraction of them) set to 0."""
    k = amount if isinstance(amount, int) else round(amount * scores.nelement())
    mask = default_mask.clone(memory_format=torch.contiguous_format)
    if k:
        mask.view(-1)[lowest(scores.flatten(), k)] = 0
    return mask


def unstructured(model, ratio, criterion=L1Unstructured, scope="backbone", scores=None):
    """Mask the `ratio` of all in-scope weights with the lowest |w| (or at random), globally; scores(weight):
    another score to rank by (criteria.lamp_scores). On a model already pruned, only the weights still
    there are ranked: the count is absolute, so the total reaches round(ratio * weights) exactly."""
    layers = [m for _, m in prunable_layers(model, scope)]
    total = sum(m.weight.numel() for m in layers)
    amount = round(ratio * total) - sum(pruned_so_far(m) for m in layers)
    importance = None if scores is None else {(m, "weight"): scores(m.weight) for m in layers}
    prune.global_unstructured([(m, "weight") for m in layers], pruning_method=criterion, amount=amount,
                              importance_scores=importance)
    return model


def structured(model, ratio, random=False):
    """Mask round(ratio * channels) output channels of every convolution: lowest L2 norm (or random).
    The BatchNorm after each conv loses the same channels (weight and bias masked), so a masked
    channel is gone as it is when removed: otherwise it still adds BatchNorm's bias, and in eval mode
    BatchNorm's running statistics of the dead channel decay toward zero variance, so its output
    drifts from what training saw (validation MAE swung between 6 and 60 from epoch to epoch)."""
    for name, m in prunable_layers(model, "backbone"):
        amount = round(ratio * m.out_channels) - pruned_so_far(m, dim=0)
        if random:
            prune.random_structured(m, "weight", amount=amount, dim=0)
        else:
            prune.ln_structured(m, "weight", amount=amount, n=2, dim=0)
        kept = (m.weight_mask.flatten(1).sum(1) != 0).to(m.weight_mask.dtype)
        batchnorm = batchnorm_after(model, name)
        for parameter in ("weight", "bias"):
            prune.custom_from_mask(batchnorm, parameter, kept)
    return model


def batchnorm_after(model, conv_name):
    """The BatchNorm that normalises a conv's output: the first one after it in the network's order with
    as many features (ResNet: conv1 -> bn1, downsample.0 -> downsample.1; R(2+1)D: the spatial conv ->
    the BatchNorm inside its block, the temporal one -> the block's own)."""
    layers = dict(model.named_modules())
    names = list(layers)
    conv = layers[conv_name]
    return next(layers[name] for name in names[names.index(conv_name) + 1:]
                if isinstance(layers[name], NORMS) and layers[name].num_features == conv.out_channels)


def physical_pruner(model, ratio, num_frames, image_size, round_to=1, steps=1, random=False, *,
                    global_pruning=False, max_ratio=1.0, importance=None, held=()):
    """Torch-Pruning's pruner for the lowest-L2 output channels of every conv group, `steps` steps on
    the cubic ramp. Its dependency graph keeps coupled layers consistent (residual additions,
    BatchNorm, downsample branches, the next layer's inputs). The head's output is never pruned.
    Kept channels are rounded down to a multiple of round_to at every step, so the last step keeps
    exactly the one-shot counts. random: random groups instead (the counts are the same).
    global_pruning, max_ratio, importance and held (names of convs whose groups keep their channels):
    allocation.py's."""
    device = next(model.parameters()).device
    example = torch.zeros(1, num_frames, 3, image_size, image_size, device=device)
    if importance is None:
        importance = tp.importance.RandomImportance() if random else tp.importance.MagnitudeImportance(p=2)
    ignored = [model.head, *(m for name, m in model.named_modules() if name in held)]
    return tp.pruner.BasePruner(
        model, example, importance=importance, pruning_ratio=ratio,
        iterative_steps=steps, iterative_pruning_ratio_scheduler=lambda r, n: [0.0] + sparsity_schedule(r, n),
        ignored_layers=ignored, round_to=round_to if round_to > 1 else None,
        global_pruning=global_pruning, max_pruning_ratio=max_ratio)


def structured_physical(model, ratio, num_frames, image_size, round_to=1):
    physical_pruner(model, ratio, num_frames, image_size, round_to).step()
    return model


def coupled_channels(model, ratio, num_frames, image_size, round_to=1):
    """{conv or BatchNorm name: output channels} that structured_physical removes from `model` at
    `ratio`: Torch-Pruning run on a copy, each group's channels read as it is pruned (a group's importance
    sums the next layers' inputs, so the copy must be pruned group by group, as structured_physical is)."""
    probe = copy.deepcopy(model)
    names = {id(m): name for name, m in probe.named_modules()}
    pruner = physical_pruner(probe, ratio, num_frames, image_size, round_to)
    chosen = {}
    for group in pruner.step(interactive=True):
        for item in group:
            module = item.dep.target.module
            if isinstance(module, CONVS + NORMS) and pruner.DG.is_out_channel_pruning_fn(
                    item.dep.handler):
                chosen.setdefault(names[id(module)], set()).update(int(i) for i in item.idxs)
        group.prune()
    return chosen


def structured_coupled_masked(model, ratio, num_frames, image_size, round_to=1):
    """Mask (conv weights and BatchNorm weight and bias) the channels structured_physical removes."""
    for name, channels in coupled_channels(model, ratio, num_frames, image_size, round_to).items():
        module = model.get_submodule(name)
        kept = torch.ones(module.weight.shape[0], device=module.weight.device)
        kept[sorted(channels)] = 0
        if isinstance(module, CONVS):
            shape = (-1,) + (1,) * (module.weight.dim() - 1)
            prune.custom_from_mask(module, "weight", kept.view(shape).expand_as(module.weight))
        else:
            for parameter in ("weight", "bias"):
                prune.custom_from_mask(module, parameter, kept)
    return model


def scratch_model(ratio, initial_ef, ef_scale, num_frames, image_size, round_to=1, arch="resnet18_frames"):
    """The small network from scratch (Liu et al. 2019): structured_physical's architecture at `ratio`
    (its channel counts do not depend on the weights: flop_budgets.physical_reach) with a fresh
    initialisation, by the baseline's own scheme (torchvision's init of both networks, the head at the
    mean EF)."""
    model = EFRegressionModel(initial_ef, ef_scale, arch=arch)
    structured_physical(model, ratio, num_frames, image_size, round_to)
    for m in model.modules():
        if isinstance(m, CONVS):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, NORMS):
            m.reset_parameters()
    nn.init.normal_(model.head.weight, std=1e-3)
    nn.init.constant_(model.head.bias, initial_ef / ef_scale)
    return model


# --- choosers: what each method of methods.py prunes (chooser(model, ratio, setting) -> (prune, reached)) ---
# `prune(target)` prunes to the schedule's next sparsity; `setting` is pruners.Setting (the input's frames and
# size, the channel rounding, the scope, the steps, the seed's sensitivity rows).

def keep_all(model, ratio, setting):
    """The dense control: the same steps, hooks and fine-tuning, nothing removed."""
    return (lambda target: None), {}


def global_l1(model, ratio, setting):
    return (lambda target: unstructured(model, target, scope=setting.scope)), {}


def random_weights(model, ratio, setting):
    return (lambda target: unstructured(model, target, criterion=RandomUnstructured, scope=setting.scope)), {}


def per_layer_l2(model, ratio, setting):
    return (lambda target: structured(model, target)), {}


def random_channels(model, ratio, setting):
    return (lambda target: structured(model, target, random=True)), {}


def coupled_masked(model, ratio, setting):
    """One step: the channels structured_physical removes at `ratio`, masked."""
    return (lambda target: structured_coupled_masked(model, ratio, setting.num_frames, setting.image_size,
                                                     setting.round_to)), {}


def coupled_removed(model, ratio, setting, random=False):
    """Torch-Pruning's removal, its steps on the cubic ramp (each step's target is its own)."""
    pruner = physical_pruner(model, ratio, setting.num_frames, setting.image_size, setting.round_to,
                             setting.steps, random=random)
    return (lambda target: pruner.step()), {}


def random_coupled_removed(model, ratio, setting):
    return coupled_removed(model, ratio, setting, random=True)


TOLERANCE = 0.05  # a method must reach the requested ratio within this, overall, or the run stops


def channel_counts(model):
    """{conv name: output channels} of every convolution (the channels the channel methods prune)."""
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, CONVS)}


@functools.lru_cache(maxsize=2)
def dense_model(arch="resnet18_frames"):
    return EFRegressionModel(55.0, arch=arch)


def achieved(model, dense, method, scope="backbone"):
    """The ratio a pruned model actually reached: for unstructured methods the fraction of in-scope
    weights that are zero; for the channel methods the fraction of conv output channels removed
    (masked to zero, or gone), and for the coupled methods each conv's [kept, of] channels too."""
    if methods.METHODS[method].kind == "unstructured":
        layers = [m for _, m in prunable_layers(model, scope)]
        zeros = sum(int((m.weight == 0).sum()) for m in layers)
        return {"achieved_ratio": zeros / sum(m.weight.numel() for m in layers)}
    of = channel_counts(dense)
    kept = {name: int((m.weight.flatten(1).abs().sum(1) != 0).sum())
            for name, m in prunable_layers(model, "backbone")}  # masked channels are zero rows; removed, gone
    found = {"achieved_ratio": 1 - sum(kept.values()) / sum(of.values())}
    if methods.METHODS[method].removes or method == "structured_coupled_masked":
        found["channels"] = {name: [kept[name], of[name]] for name in of}
    return found


def sparsity_schedule(ratio, steps):
    """Zhu & Gupta (2017): after step k of n, sparsity ratio * (1 - (1 - k/n)^3). Fast at first, while
    the network is redundant, then slowly, so the last steps leave fine-tuning little to repair."""
    return [ratio * (1 - (1 - k / steps) ** 3) for k in range(1, steps + 1)]


def refresh_masked_weights(model):
    """A masked module's `weight` is recomputed only on a forward pass; recompute it now."""
    with torch.no_grad():
        for m in model.modules():
            for name in ("weight", "bias"):
                if hasattr(m, name + "_mask"):
                    setattr(m, name, getattr(m, name + "_orig") * getattr(m, name + "_mask"))


def make_permanent(model):
    """Fold every mask into its weight or bias (zeros stay zeros) and drop the pruning hooks."""
    for m in model.modules():
        for name in ("weight", "bias"):
            if hasattr(m, name + "_mask"):
                prune.remove(m, name)
    return model
