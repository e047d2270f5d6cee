"""What is measured for every model: accuracy (MAE and its bootstrap), sparsity, parameters, FLOPs and
size on disk. Latency is timed in latency.py; the ONNX export is onnx_runtime.py's."""
import copy
import os
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from model import CONVS


PRUNABLE = CONVS + (nn.Linear,)


def regression_metrics(predicted, target):
    predicted, target = torch.as_tensor(predicted).double(), torch.as_tensor(target).double()
    error = predicted - target
    total = ((target - target.mean()) ** 2).sum()
    return {
        "mae": error.abs().mean().item(),
        "rmse": error.pow(2).mean().sqrt().item(),
        "r2": (1 - error.pow(2).sum() / total).item() if total > 0 else float("nan"),
    }


def bootstrap_mae(errors, baseline_errors=None, samples=2000, seed=0):
    """95% percentile intervals over test videos resampled with replacement: of the MAE, and, paired
    (the same resampled videos for both models), of its difference to the baseline's MAE. The same
    resamples for every model (fixed seed), so the intervals of one run are comparable."""
    errors = np.abs(np.asarray(errors, dtype=np.float64))
    low, high = interval(errors, samples, seed)
    result = {"test_mae_ci_low": low, "test_mae_ci_high": high}
    if baseline_errors is not None:
        difference = errors - np.abs(np.asarray(baseline_errors, dtype=np.float64))
        low, high = interval(difference, samples, seed)
        result.update({"mae_diff": float(difference.mean()), "mae_diff_ci_low": low,
                       "mae_diff_ci_high": high})
    return result


def interval(values, samples=2000, seed=0):
    """95% percentile bootstrap interval of the mean of per-video values (videos resampled with
    replacement; the same resamples for every call with the same seed and count, hence paired)."""
    videos = np.random.default_rng(seed).integers(0, len(values), size=(samples, len(values)))
    means = np.asarray(values)[videos].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def paired_difference_interval(errors_a, errors_b, samples=2000, seed=0):
    """95% percentile bootstrap interval of MAE(a) - MAE(b) over the same resampled test videos."""
    return interval(np.abs(np.asarray(errors_a, dtype=np.float64))
                    - np.abs(np.asarray(errors_b, dtype=np.float64)), samples, seed)


def mean_predictor_mae(train_efs, test_efs):
    """Test MAE of always answering the training-set mean EF: the floor every MAE must beat."""
    mean = float(np.mean(train_efs))
    return mean, float(np.mean(np.abs(np.asarray(test_efs) - mean)))


def prunable_weights(model):
    """(name, weight) of every convolution and Linear; with pruning masks in place, the masked weight."""
    return [(name, m.weight) for name, m in model.named_modules() if isinstance(m, PRUNABLE)]


def sparsity(model):
    """Fraction of zero weights over convolution and Linear weights, and over all parameters."""
    weights = [w for _, w in prunable_weights(model)]
    zero_weights = sum(int((w == 0).sum()) for w in weights)
    total_weights = sum(w.numel() for w in weights)
    zero_all, total_all = parameter_counts(model)
    return {"sparsity": zero_weights / total_weights, "sparsity_all_params": 1 - zero_all / total_all}


def parameter_counts(model):
    """(non-zero parameters, all parameters), counting masked weights as they are used."""
    pruned = {id(getattr(m, "weight_orig", None)): m.weight for m in model.modules()
              if hasattr(m, "weight_mask")}
    total = nonzero = 0
    for p in model.parameters():
        used = pruned.get(id(p), p)
        total += used.numel()
        nonzero += int((used != 0).sum())
    return nonzero, total


def effective_parameters(model, num_frames, image_size):
    """Parameters that can change the output: non-zero and, for a convolution or Linear weight, on an input
    channel that is alive (live_inputs). One count for masked and removed channels, as effective_flops
    is: a masked channel's weights in the next layer multiply zeros, a removed channel's are gone."""
    video = torch.zeros(1, num_frames, 3, image_size, image_size, device=next(model.parameters()).device)
    alive = live_inputs(model, video)
    count = 0
    for name, m in model.named_modules():
        for parameter, _ in m.named_parameters(recurse=False):
            parameter = parameter.removesuffix("_orig")  # a masked parameter: count it as used
            used = getattr(m, parameter) != 0
            if parameter == "weight" and alive.get(name) is not None:
                used = used & alive[name].view(1, -1, *[1] * (used.dim() - 2))
            count += int(used.sum())
    return count


def flops(model, num_frames, image_size):
    """FLOPs for one video (torch.utils.flop_counter; a multiply-add counts 2): executed by dense
    kernels, and effective: only the multiply-adds with a non-zero weight (ShrinkBench's count) whose
    input channel is alive. A masked channel (conv and BatchNorm masked) feeds zeros to the next layer,
    as a removed channel feeds it nothing, so masked and physically removed channels count the same."""
    model = model.eval()
    video = torch.zeros(1, num_frames, 3, image_size, image_size, device=next(model.parameters()).device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(video)
    total = counter.get_total_flops()
    counts = counter.get_flop_counts()
    root = type(model).__name__
    alive = live_inputs(model, video)
    effective = total
    for name, weight in prunable_weights(model):
        layer_flops = sum(counts.get(f"{root}.{name}", {}).values())
        used = weight != 0
        if alive.get(name) is not None:
            used = used & alive[name].view(1, -1, *[1] * (weight.dim() - 2))
        effective -= layer_flops * float((~used).sum()) / weight.numel()
    return {"flops": int(total), "effective_flops": int(round(effective))}


@torch.inference_mode()
def live_inputs(model, video):
    """{layer name: which input channels are not structurally zero} for every convolution and Linear. On a
    copy with every ReLU an identity and a random video, a channel is zero everywhere only when pruning
    made it so (its producers' weights and BatchNorm masked or removed), never because a ReLU happened
    to cut it for this input: the count does not depend on the input."""
    probe = copy.deepcopy(model).eval()
    for name, m in list(probe.named_modules()):
        if isinstance(m, nn.ReLU):
            parent, _, leaf = name.rpartition(".")
            setattr(probe.get_submodule(parent) if parent else probe, leaf, nn.Identity())
    alive = {}
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: alive.__setitem__(name,
                                                                                  live_channels(i[0], m)))
             for name, m in probe.named_modules() if isinstance(m, PRUNABLE)]
    probe(torch.randn(video.shape, generator=torch.Generator().manual_seed(0)).to(video.device))
    for h in hooks:
        h.remove()
    return alive


def live_channels(inputs, layer):
    """Which input channels of a convolution (dim 1) or Linear (last dim) are not zero everywhere; None for a
    grouped convolution, whose weight does not index the input channels one to one."""
    if isinstance(layer, CONVS):
        return (inputs != 0).any(0).flatten(1).any(1) if layer.groups == 1 else None
    return (inputs != 0).flatten(0, -2).any(0)


def file_sizes_of(paths, gzip=True):
    """file_sizes of several files at once: zlib releases the GIL, so each compresses on its own core."""
    with ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(lambda path: file_sizes(path, gzip), paths))


def file_sizes(path, gzip=True):
    """Size on disk in MB and, with gzip, gzip-compressed (zeros compress; dense kernels do not care)."""
    if not gzip:
        return {"size_mb": os.path.getsize(path) / 1e6}
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: the gzip format
    compressed = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            compressed += len(compressor.compress(chunk))
    compressed += len(compressor.flush())
    return {"size_mb": os.path.getsize(path) / 1e6, "gzip_size_mb": compressed / 1e6}
