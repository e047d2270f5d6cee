"""Layer sensitivity (Han et al. 2015; Li et al. 2017): prune one layer alone, without fine-tuning,
and measure how far the validation MAE moves. Shows at once which layers the model cannot lose, and
so explains why a method that prunes them (globally, or at one ratio everywhere) loses accuracy."""
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

import batchnorm
import prune_utils
import train

CRITERIA = {  # the criteria of the methods compared: a mask for one layer's weight at a ratio
    "l1_weights": lambda ratio: prune.L1Unstructured(amount=ratio),
    "l2_channels": lambda ratio: prune.LnStructured(amount=ratio, n=2, dim=0),
}


@torch.no_grad()
def layer_sensitivity(model, loader, device, ratios, scope="backbone", amp=False, batches=(), num_batches=0):
    """Validation MAE of the model with one layer pruned by one criterion at one ratio, for every
    layer in scope, criterion and ratio; the other layers stay dense. Returns (dense MAE, rows).
    The channel criterion applies to convolutions only (the head has one output).
    Each pruned model's BatchNorm statistics are re-estimated on `num_batches` of `batches` (training
    batches of (video, ef)) before it is evaluated, as after every pruning step of the methods, and put
    back afterwards, so every layer starts from the dense model's statistics. The dense MAE is the
    model's as trained."""
    dense_mae = train.evaluate(model, loader, device, amp)["mae"]
    statistics = batchnorm.buffers(model)
    rows = []
    for name, layer in prune_utils.prunable_layers(model, scope):
        weight = layer.weight.detach().contiguous().clone()  # torch's pruning flattens with view()
        norm = (model.get_submodule(prune_utils.batchnorm_after(name)) if isinstance(layer, nn.Conv2d)
                else None)
        affine = [p.detach().clone() for p in (norm.weight, norm.bias)] if norm else []
        for criterion, method in CRITERIA.items():
            if criterion == "l2_channels" and not isinstance(layer, nn.Conv2d):
                continue
            for ratio in ratios:
                mask = method(ratio).compute_mask(weight, torch.ones_like(weight))
                layer.weight.copy_(weight * mask)
                if criterion == "l2_channels":  # the channel leaves its BatchNorm too, as in the method
                    kept = mask.flatten(1).amax(1)
                    norm.weight.copy_(affine[0] * kept), norm.bias.copy_(affine[1] * kept)
                batchnorm.recalibrate(model, batches, num_batches, amp)
                mae = train.evaluate(model, loader, device, amp)["mae"]
                batchnorm.restore(model, statistics)
                rows.append({"layer": name.replace("backbone.", ""), "criterion": criterion, "ratio": ratio,
                             "weights": weight.numel(), "val_mae": mae, "val_mae_increase": mae - dense_mae})
                if affine:
                    norm.weight.copy_(affine[0]), norm.bias.copy_(affine[1])
        layer.weight.copy_(weight)
    return dense_mae, rows
