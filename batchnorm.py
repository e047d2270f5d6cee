"""BatchNorm recalibration: re-estimate every BatchNorm's running statistics on training batches,
no weight changed.

Pruning changes what each BatchNorm sees (a conv that lost weights or input channels has outputs of
another mean and variance), but its running statistics still describe the dense model's. In eval mode
the pruned model then normalises with the wrong statistics, and reads about the mean predictor before
fine-tuning even where pruning removed little. Re-estimating them (as in the network-slimming and
AMC practice, and ShrinkBench's advice to fix such confounders) makes "right after pruning" and the
layer sensitivity measure what pruning removed, not the stale statistics; fine-tuning then starts
from the repaired model instead of spending its budget on the repair.
"""
import torch
import torch.distributed as dist
import torch.nn as nn

import processes


def batchnorms(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def buffers(model):
    """A copy of every BatchNorm's running statistics, to put back with restore()."""
    return [{name: b.detach().clone() for name, b in m.named_buffers(recurse=False)}
            for m in batchnorms(model)]


@torch.no_grad()
def restore(model, saved):
    for m, state in zip(batchnorms(model), saved):
        for name, value in state.items():
            getattr(m, name).copy_(value)


@torch.no_grad()
def recalibrate(model, batches, num_batches, amp=False):
    """Reset every BatchNorm's running statistics and re-estimate them as the plain average over the
    first `num_batches` batches of `batches` (an iterable of (video, ef)): BatchNorm layers in train
    mode (batch statistics, momentum None: a cumulative average), everything else in eval mode, no
    gradients. Momentum and the model's mode are put back afterwards. Works on masked models (the
    pruning hooks run in the forward pass) and on physically pruned ones alike. Under torchrun every
    process averages its own shard's batches, then the statistics are averaged over the processes, so
    all hold the same model. num_batches 0 leaves the model as it is."""
    norms = batchnorms(model)
    if num_batches <= 0 or not norms:
        return model
    was_training, momenta = model.training, [m.momentum for m in norms]
    device = next(model.parameters()).device
    dtype = processes.precision(device, amp)
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        for seen, (video, _) in enumerate(batches):
            if seen >= num_batches:
                break
            with processes.autocast(device, dtype):
                model(video.to(device, non_blocking=True))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    if dist.is_initialized():
        for m in norms:
            for statistic in (m.running_mean, m.running_var):
                dist.all_reduce(statistic)
                statistic /= dist.get_world_size()
    return model
