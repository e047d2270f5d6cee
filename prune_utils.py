"""The three pruning methods compared, all starting from the same trained baseline.

unstructured         global L1 magnitude over every Conv2d and Linear weight (masks)
structured           L2 norm of each Conv2d's output channels, per layer (masks: zeros only)
structured_physical  the same L2 criterion with Torch-Pruning: channels removed, a smaller dense net

With RANDOM_PRUNING_CONTROL, unstructured_random and structured_random choose weights or channels
at random at the same ratios (ShrinkBench's control).
"""
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune
import torch_pruning as tp

METHODS = ("unstructured", "structured", "structured_physical")
RANDOM_METHODS = ("unstructured_random", "structured_random")


def unstructured(model, ratio, criterion=prune.L1Unstructured):
    parameters = [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune.global_unstructured(parameters, pruning_method=criterion, amount=ratio)
    return model


def structured(model, ratio, random=False):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            if random:
                prune.random_structured(m, "weight", amount=ratio, dim=0)
            else:
                prune.ln_structured(m, "weight", amount=ratio, n=2, dim=0)
    return model


def structured_physical(model, ratio, num_frames, image_size, round_to=1):
    """Remove the lowest-L2 output channels of every conv group. Torch-Pruning's dependency graph
    keeps coupled layers consistent (residual additions, BatchNorm, downsample branches, the next
    layer's inputs). The head's single output is never pruned."""
    device = next(model.parameters()).device
    example = torch.zeros(1, num_frames, 3, image_size, image_size, device=device)
    pruner = tp.pruner.BasePruner(
        model, example, importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=ratio, ignored_layers=[model.head], round_to=round_to if round_to > 1 else None)
    pruner.step()
    return model


def apply(model, method, ratio, num_frames, image_size, round_to=1):
    if method == "unstructured":
        return unstructured(model, ratio)
    if method == "structured":
        return structured(model, ratio)
    if method == "structured_physical":
        return structured_physical(model, ratio, num_frames, image_size, round_to)
    if method == "unstructured_random":
        return unstructured(model, ratio, criterion=prune.RandomUnstructured)
    if method == "structured_random":
        return structured(model, ratio, random=True)
    raise ValueError(f"unknown pruning method {method!r}; one of {METHODS + RANDOM_METHODS}")


def make_permanent(model):
    """Fold every mask into its weight (zeros stay zeros) and drop the pruning hooks."""
    for m in model.modules():
        if hasattr(m, "weight_mask"):
            prune.remove(m, "weight")
    return model
