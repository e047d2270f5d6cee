"""The weight gradient of the convolutions on the smallest maps, computed as one matrix product, is the
gradient PyTorch computes, and only those convolutions take that path."""
import contextlib
import copy

import pytest
import torch
import torch.nn as nn

import small_maps
from model import EFRegressionModel


def gradients(model, video, ef, mode):
    with mode:
        loss = ((model(video) - ef) ** 2).mean()
    loss.backward()
    return [p.grad for p in model.parameters()]


def test_a_training_steps_gradients_are_pytorchs_own():
    torch.manual_seed(0)
    model = EFRegressionModel(55.0).to(memory_format=torch.channels_last)
    video, ef = torch.randn(4, 2, 3, 32, 32), torch.randn(4) * 10 + 55
    ours = gradients(copy.deepcopy(model), video, ef, small_maps.on_cpu(torch.device("cpu")))
    theirs = gradients(model, video, ef, contextlib.nullcontext())  # PyTorch's own path throughout
    for mine, reference in zip(ours, theirs):
        assert torch.allclose(mine, reference, rtol=1e-4, atol=1e-6 * reference.abs().max())


@pytest.mark.parametrize("size,stride,padding", [(1, 1, 1), (2, 1, 1), (3, 2, 1), (4, 2, 0), (3, 2, (1, 0))])
def test_one_convolution_on_a_small_map(size, stride, padding):
    torch.manual_seed(1)
    conv = nn.Conv2d(6, 5, 3, stride=stride, padding=padding, bias=False)
    x = torch.randn(3, 6, size, size, requires_grad=True)
    reference = copy.deepcopy(conv)
    x_reference = x.detach().clone().requires_grad_()
    with small_maps.SmallMapGradients():
        out = conv(x)
    out.square().sum().backward()
    reference(x_reference).square().sum().backward()
    assert torch.allclose(out, reference(x_reference))
    assert torch.allclose(conv.weight.grad, reference.weight.grad, rtol=1e-5, atol=1e-6)
    assert torch.allclose(x.grad, x_reference.grad, rtol=1e-5, atol=1e-6)


def test_only_the_smallest_maps_take_the_matrix_product(monkeypatch):
    taken = []
    monkeypatch.setattr(small_maps.WeightGradient, "apply",
                        lambda x, weight, stride, padding: taken.append(x.shape[-1])
                        or torch.nn.functional.conv2d(x, weight, None, stride, padding))
    model = EFRegressionModel(55.0)
    with small_maps.SmallMapGradients():
        model(torch.randn(1, 2, 3, 32, 32))
    # 32x32 frames: layer3 outputs 2x2 maps (its first conv and shortcut read 4x4 with stride 2), layer4
    # 1x1; five convolutions each (two blocks of two, and the shortcut), nothing before them
    assert sorted(set(taken)) == [1, 2, 4] and len(taken) == 10
    with torch.no_grad(), small_maps.SmallMapGradients():  # nothing to train: PyTorch's own path
        model(torch.randn(1, 2, 3, 32, 32))
    assert len(taken) == 10
