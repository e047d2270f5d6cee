"""Layer sensitivity (Han et al. 2015; Li et al. 2017): prune one layer alone, without fine-tuning,
and measure how far the validation MAE moves. Shows at once which layers the model cannot lose, and
so explains why a method that prunes them (globally, or at one ratio everywhere) loses accuracy.

Every pruned model has its BatchNorm recalibrated, and recalibration alone moves the dense model's MAE
(up or down with the seed): each increase is therefore measured against the dense model recalibrated on
the same batches, so that it is the pruning's alone.

group_sensitivity does the same for each coupled group of channels (Torch-Pruning's: a residual stream
and every conv, BatchNorm and input that share it) removed alone: what the sensitivity allocation
(allocation.py) allocates from. A group's loss is not the sum of its convs' losses: a residual stream
pruned in one conv is carried by the others, pruned in all of them it is gone."""
import copy

import torch
import torch.nn.utils.prune as prune

import allocation
import batchnorm
import prune_utils
import train
from model import CONVS

CRITERIA = {  # the criteria of the methods compared: a mask for one layer's weight at a ratio
    "l1_weights": lambda ratio: prune_utils.L1Unstructured(amount=ratio),
    "l2_channels": lambda ratio: prune.LnStructured(amount=ratio, n=2, dim=0),
}


def recalibrated_mae(model, loader, device, amp, batches, num_batches):
    """Validation MAE of `model` with its BatchNorm recalibrated as after a pruning; `model` as it was."""
    statistics = batchnorm.buffers(model)
    batchnorm.recalibrate(model, batches, num_batches, amp)
    mae = train.evaluate(model, loader, device, amp)["mae"]
    batchnorm.restore(model, statistics)
    return mae


@torch.no_grad()
def layer_sensitivity(model, loader, device, ratios, scope="backbone", amp=False, batches=(), num_batches=0):
    """Validation MAE of the model with one layer pruned by one criterion at one ratio, for every
    layer in scope, criterion and ratio; the other layers stay dense. Returns (dense MAE as trained,
    rows). The channel criterion applies to convolutions only (the head has one output).
    Each pruned model's BatchNorm statistics are re-estimated on `num_batches` of `batches` (training
    batches of (video, ef)) before it is evaluated, as after every pruning step of the methods, and put
    back afterwards, so every layer starts from the dense model's statistics. Each row's
    val_mae_increase is over the dense model recalibrated likewise (recalibrated_dense_val_mae)."""
    dense_mae = train.evaluate(model, loader, device, amp)["mae"]
    reference = recalibrated_mae(model, loader, device, amp, batches, num_batches)
    rows = []
    for name, layer in prune_utils.prunable_layers(model, scope):
        weight = layer.weight.detach().contiguous().clone()  # torch's pruning flattens with view()
        norm = prune_utils.batchnorm_after(model, name) if isinstance(layer, CONVS) else None
        affine = [p.detach().clone() for p in (norm.weight, norm.bias)] if norm else []
        for criterion, method in CRITERIA.items():
            if criterion == "l2_channels" and not isinstance(layer, CONVS):
                continue
            for ratio in ratios:
                mask = method(ratio).compute_mask(weight, torch.ones_like(weight))
                layer.weight.copy_(weight * mask)
                if criterion == "l2_channels":  # the channel leaves its BatchNorm too, as in the method
                    kept = mask.flatten(1).amax(1)
                    norm.weight.copy_(affine[0] * kept), norm.bias.copy_(affine[1] * kept)
                mae = recalibrated_mae(model, loader, device, amp, batches, num_batches)
                rows.append({"layer": name.replace("backbone.", ""), "criterion": criterion, "ratio": ratio,
                             "weights": weight.numel(), "val_mae": mae,
                             "recalibrated_dense_val_mae": reference, "val_mae_increase": mae - reference})
                if affine:
                    norm.weight.copy_(affine[0]), norm.bias.copy_(affine[1])
        layer.weight.copy_(weight)
    return dense_mae, rows


def group_sensitivity(model, loader, device, ratios, *, num_frames, image_size, round_to, amp=False,
                      batches=(), num_batches=0):
    """Rows of validation MAE with one coupled group's channels removed alone (on a copy; the head's
    output never), at each ratio: the largest multiple of round_to channels not above ratio x the group's
    channels, at least round_to kept; those of lowest L2 importance within the group, as
    structured_physical chooses them. BatchNorm recalibrated after each, and each increase over the
    dense model recalibrated likewise. Not under no_grad: Torch-Pruning traces the model with autograd."""
    reference = recalibrated_mae(model, loader, device, amp, batches, num_batches)
    plan, rows = allocation.ChannelPlan(model, image_size, num_frames), []
    for group, channels in plan.channels.items():
        for ratio in ratios:
            removed = min(int(ratio * channels) // round_to * round_to, channels - round_to)
            pruned = copy.deepcopy(model)
            allocation.CountedPruner(pruned, {group: removed}, num_frames, image_size).step()
            batchnorm.recalibrate(pruned, batches, num_batches, amp)
            mae = train.evaluate(pruned, loader, device, amp)["mae"]
            rows.append({"group": group, "ratio": ratio, "channels": channels, "removed": removed,
                         "val_mae": mae, "recalibrated_dense_val_mae": reference,
                         "val_mae_increase": mae - reference})
    return rows
