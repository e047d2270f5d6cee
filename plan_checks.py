"""What a configuration asks that only the model can tell it cannot give, refused before any data is read
or any model is trained (main.py, check_gpu.py --project), naming the option: a structured ratio the
channel rounding cannot reach, a FLOP budget no ratio reaches or two budgets met by one model, an
allocation that cannot come down to the uniform model's FLOPs (no group may lose more than
allocation.MAX_LAYER_RATIO of its channels), and sensitivity ratios that remove no channel of a coupled
group (its loss curve would have nothing measured: the allocation would be arbitrary). A refusal after
training would cost the run, and every fix changes the configuration, which the results folder then
refuses. What needs no model is cli/rules.py's; what the machine cannot do is `machine`'s."""
import copy
import functools
import math

import torch

import allocation
import cli
import flop_budgets
import latency
import onnx_runtime
import processes
import prune_utils
from processes import log


def machine(cfg):
    """This machine made ready for the configuration, or a ConfigError before any data is read: torchrun's
    processes one a GPU (the process group started), the device, torch.compile where latency is timed
    through it, ONNX Runtime where models are exported (ONNX_EXPORT and INT8 None: on where installed).
    Returns (device, whether the CPU allocator was made steady for timing)."""
    if problem := processes.too_many_processes(cfg.DEVICE):
        raise cli.ConfigError(problem)
    processes.init_distributed()
    device = processes.pick_device(cfg.DEVICE)
    torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK and device.type == "cuda"
    steady_allocator = device.type == "cpu" and latency.steady_cpu_allocator()
    if cfg.LATENCY_COMPILE and (reason := latency.compile_error(device)):
        need = "a C++ compiler (g++ or clang)" if device.type == "cpu" else "Triton (pip install triton)"
        raise cli.ConfigError(f"--latency-compile is on but torch.compile does not run on {device} here "
                              f"({reason}); install {need}, or set --latency-compile false")
    if cfg.ONNX_EXPORT is None:
        cfg.ONNX_EXPORT = onnx_runtime.available()
        if not cfg.ONNX_EXPORT:
            log("onnxruntime is not installed: no ONNX export or ONNX Runtime timing "
                "(pip install onnx onnxruntime)")
    elif cfg.ONNX_EXPORT and not onnx_runtime.available():
        raise cli.ConfigError("--onnx-export is on but onnxruntime is not installed: "
                              "pip install onnx onnxruntime")
    if cfg.INT8 is None:
        cfg.INT8 = cfg.ONNX_EXPORT
    return device, steady_allocator


def refuse(cfg):
    """Raise ConfigError (a ratio) or AllocationError (a budget, an allocation) naming each problem."""
    if cfg.PHYSICAL_STRUCTURED_PRUNING and (problems := flop_budgets.unreachable(
            cfg.STRUCTURED_PRUNING_RATIOS, cfg.PHYSICAL_ROUND_TO, cfg.MODEL)):
        raise cli.ConfigError("; ".join(problems) + ". Lower the ratio, set --physical-round-to 1, or "
                              "--physical-structured-pruning false.")
    budgets = flop_budgets.budget_ratios(cfg)  # raises for a budget the rounding cannot meet, or met twice
    removed = sorted(set(cfg.STRUCTURED_PRUNING_RATIOS) | set(budgets.values()))
    problems = []
    if cfg.CHANNEL_ALLOCATIONS:
        problems += allocation_problems(cfg, removed)
    if "sensitivity" in cfg.CHANNEL_ALLOCATIONS:
        problems += sensitivity_problems(cfg)
    if problems:
        raise flop_budgets.AllocationError("; ".join(problems))


@functools.lru_cache(maxsize=None)
def channel_plan(image_size, arch="resnet18_frames", num_frames=1):
    """The coupled groups of the dense model and their FLOPs (allocation.ChannelPlan): the architecture
    alone, so a random model answers."""
    return allocation.ChannelPlan(prune_utils.dense_model(arch), image_size, num_frames)


@functools.lru_cache(maxsize=None)
def lowest_flops(name, image_size, round_to, arch="resnet18_frames", num_frames=1):
    """The fewest FLOPs (one frame) allocation `name` can come down to. sensitivity: every group at its
    floor (no more than MAX_LAYER_RATIO of its channels removed, at least round_to kept), where
    allocation.sensitivity_plan's steps end. global: Torch-Pruning's global ranking at the top of its
    knob's range, where allocation.bisect_flops' search ends; on the untrained model, whose importances
    are the most even a model has (a trained one's groups differ more, and their caps stop more of it)."""
    if name == "global":
        probe = copy.deepcopy(prune_utils.dense_model(arch))
        prune_utils.physical_pruner(probe, allocation.MAX_LAYER_RATIO, 1, image_size, round_to,
                                    global_pruning=True, max_ratio=allocation.MAX_LAYER_RATIO).step()
        return flop_budgets.frame_flops(probe, image_size, num_frames)
    plan = channel_plan(image_size, arch, num_frames)
    return plan.flops({g: max(round_to, math.ceil(c * (1 - allocation.MAX_LAYER_RATIO) / round_to) * round_to)
                       for g, c in plan.channels.items()})


def allocation_problems(cfg, removed):
    """Each allocation and removed-channel ratio whose uniform model's FLOPs lie below what the allocation
    can come down to."""
    problems = []
    for name in cfg.CHANNEL_ALLOCATIONS:
        lowest = lowest_flops(name, cfg.IMAGE_SIZE, cfg.PHYSICAL_ROUND_TO, cfg.MODEL, cfg.NUM_FRAMES)
        for ratio in removed:
            target = flop_budgets.uniform_flops(ratio, cfg.IMAGE_SIZE, cfg.PHYSICAL_ROUND_TO, cfg.MODEL,
                                              cfg.NUM_FRAMES)
            if lowest > target * (1 + allocation.FLOPS_TOLERANCE):
                problems.append(
                    f"--channel-allocations {name} at ratio {ratio:g}: no group may lose more than "
                    f"{allocation.MAX_LAYER_RATIO:.0%} of its channels, so the {name} allocation needs at "
                    f"least {lowest / target:.2f}x the FLOPs of the uniform model it is matched to (channels "
                    f"rounded to --physical-round-to {cfg.PHYSICAL_ROUND_TO}), not within "
                    f"{allocation.FLOPS_TOLERANCE:.0%}; lower --structured-pruning-ratios (or the "
                    f"--target-flops-speedups), or leave {name} out of --channel-allocations")
    return problems


def sensitivity_problems(cfg):
    """Each sensitivity ratio that removes no channel of some coupled group at the rounding
    (sensitivity.group_sensitivity removes ratio x channels, rounded down to round_to, at least round_to
    kept)."""
    plan, round_to = channel_plan(cfg.IMAGE_SIZE, cfg.MODEL, cfg.NUM_FRAMES), cfg.PHYSICAL_ROUND_TO
    problems = []
    for ratio in cfg.SENSITIVITY_RATIOS:
        empty = [g for g, c in plan.channels.items() if min(int(ratio * c) // round_to * round_to,
                                                               c - round_to) <= 0]
        if empty:
            smallest = min(plan.channels[g] for g in empty)
            least = round_to / smallest
            advice = (f"use ratios of at least {math.ceil(least * 1000) / 1000:g}, or a lower "
                      f"--physical-round-to" if least < 1 else "lower --physical-round-to")
            problems.append(f"--sensitivity-ratios {ratio:g} removes no channel of {len(empty)} coupled "
                            f"group(s) ({', '.join(empty[:3])}{', ...' if len(empty) > 3 else ''}; "
                            f"{smallest} channels) at --physical-round-to {round_to}, so the sensitivity "
                            f"allocation would have no measured loss for them; {advice}")
    return problems
