"""Training on a CPU: the weight gradient of the convolutions on the smallest feature maps as one matrix
product. oneDNN computes it image by image through a matrix-vector path (`ONEDNN_VERBOSE=1`:
`x64:gemm:jit`, backward_weights) on CPUs without AVX-512, most laptops among them; at the quick preset's
32x32 frames, ResNet-18's layer3 and layer4 run on 2x2 and 1x1 maps and a training step took twice as
long as it does with this (docs/troubleshooting.md). The forward pass and the input's gradient stay
PyTorch's own; only the weight's gradient is computed here, and it is the same sum (a test)."""
import contextlib

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

LARGEST_MAP = 2  # output maps up to 2x2: there the per-image path is slowest (4x4 gained nothing more)


class WeightGradient(torch.autograd.Function):
    """conv2d without bias, groups or dilation, whose weight gradient is unfold + one matrix product."""

    @staticmethod
    def forward(ctx, x, weight, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, weight, None, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.nn.grad.conv2d_input(x.shape, weight, grad, ctx.stride, ctx.padding)
        if ctx.needs_input_grad[1]:
            patches = F.unfold(x, weight.shape[2:], padding=ctx.padding, stride=ctx.stride)  # (N, C*k*k, L)
            grad_weight = torch.einsum("nol,nkl->ok", grad.flatten(2), patches).view_as(weight)
        return grad_x, grad_weight, None, None


class SmallMapGradients(TorchFunctionMode):
    """Inside it, every float32 CPU conv2d with a trainable weight and an output of at most LARGEST_MAP
    square goes through WeightGradient; every other call is untouched."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.conv2d:
            call = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1,
                    **dict(zip(CONV2D, args)), **(kwargs or {})}
            if applies(**call):
                return WeightGradient.apply(call["input"], call["weight"], call["stride"], call["padding"])
        return func(*args, **(kwargs or {}))


CONV2D = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")  # F.conv2d's arguments


def applies(input, weight, bias, stride, padding, dilation, groups):
    if bias is not None or groups != 1 or dilation not in (1, (1, 1)) or isinstance(padding, str):
        return False
    if not (torch.is_grad_enabled() and weight.requires_grad and input.device.type == "cpu"
            and input.dtype == weight.dtype == torch.float32):
        return False
    stride = (stride, stride) if isinstance(stride, int) else stride
    padding = (padding, padding) if isinstance(padding, int) else padding
    size = [(input.shape[i + 2] + 2 * padding[i] - weight.shape[i + 2]) // stride[i] + 1 for i in (0, 1)]
    return max(size) <= LARGEST_MAP


def on_cpu(device):
    """SmallMapGradients on a CPU; nothing on a GPU, whose libraries have no such slow path."""
    return SmallMapGradients() if device.type == "cpu" else contextlib.nullcontext()
