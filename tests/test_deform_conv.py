"""The CPU deformable convolution equals torchvision's kernel, values and gradients."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import deform_conv2d

from masa_core.models.deform_fusion import ModulatedDeformConv, sampled_deform_conv2d


@pytest.mark.parametrize(("size", "stride", "bias"), [(9, 1, False), (12, 2, True), (7, 2, False), (1, 1, True)])
def test_matches_torchvision_values_and_gradients(size: int, stride: int, bias: bool) -> None:
    g = torch.Generator().manual_seed(size * 10 + stride)
    x = torch.randn(2, 16, size, size + 3, generator=g, dtype=torch.float64, requires_grad=True)
    ho, wo = (size - 1) // stride + 1, (size + 2) // stride + 1
    # Offsets of several pixels push many samples across the border, where DCN reads zeros.
    offset = (torch.randn(2, 18, ho, wo, generator=g, dtype=torch.float64) * 3).requires_grad_()
    mask = torch.rand(2, 9, ho, wo, generator=g, dtype=torch.float64).requires_grad_()
    weight = torch.randn(8, 16, 3, 3, generator=g, dtype=torch.float64).requires_grad_()
    b = torch.randn(8, generator=g, dtype=torch.float64).requires_grad_() if bias else None
    inputs = [t for t in (x, offset, mask, weight, b) if t is not None]

    ours = sampled_deform_conv2d(x, offset, weight, b, stride, mask)
    ref = deform_conv2d(x, offset, weight, b, stride=stride, padding=1, mask=mask)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)

    upstream = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    ours_grads = torch.autograd.grad((ours * upstream).sum(), inputs)
    ref_grads = torch.autograd.grad((ref * upstream).sum(), inputs)
    for got, want in zip(ours_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-7)


def test_module_uses_the_sampled_path_on_cpu_with_the_same_result() -> None:
    torch.manual_seed(0)
    conv = ModulatedDeformConv(8, 8, stride=2)
    x = torch.randn(1, 8, 10, 10)
    offset, mask = torch.randn(1, 18, 5, 5), torch.rand(1, 9, 5, 5)
    ref = deform_conv2d(x, offset, conv.weight, None, stride=2, padding=1, mask=mask)
    torch.testing.assert_close(conv(x, offset, mask), ref, rtol=1e-5, atol=1e-5)
