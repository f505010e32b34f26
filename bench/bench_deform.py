"""Time the MASA adapter's deformable fusion on the CPU: torchvision's ``deform_conv2d`` kernel
against masa_core's ``sampled_deform_conv2d`` (grid_sample + matmul), same inputs, same run.

    python bench/bench_deform.py [--input-size 512] [--repeats 3] [--threads 1]

(a) one 256→256 modulated deformable conv on the stride-4 level, forward and forward+backward;
(b) the adapter (SimpleFPN + 3 fusion blocks) on real MobileSAM features of a TUD-Campus frame,
forward. Median of ``--repeats`` runs after one warm-up; prints the ratios and the largest output
difference between the two kernels.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import torch
from torch import Tensor
from torchvision.ops import deform_conv2d

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from masa_core.models import deform_fusion  # noqa: E402
from masa_core.models.build import ModelConfig, build_model  # noqa: E402
from masa_core.video_io import FrameSource  # noqa: E402


def torchvision_kernel(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, stride: int, mask: Tensor
) -> Tensor:
    return deform_conv2d(x, offset, weight, bias, stride=stride, padding=1, mask=mask)


@contextmanager
def kernel(fn: Callable) -> object:
    """Run the adapter's CPU path with ``fn`` as its deformable convolution."""
    with mock.patch.object(deform_fusion, "sampled_deform_conv2d", fn):
        yield


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input-size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    side = args.input_size // 4
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 256, side, side, generator=g, requires_grad=True)
    offset = (torch.randn(1, 18, side, side, generator=g) * 2).requires_grad_()
    mask = torch.rand(1, 9, side, side, generator=g).requires_grad_()
    weight = (torch.randn(256, 256, 3, 3, generator=g) * 0.02).requires_grad_()
    rows = []
    for name, fn in (("torchvision", torchvision_kernel), ("sampled", deform_fusion.sampled_deform_conv2d)):

        def fwd(fn: Callable = fn) -> None:
            with torch.no_grad():
                fn(x, offset, weight, None, 1, mask)

        def fwd_bwd(fn: Callable = fn) -> None:
            fn(x, offset, weight, None, 1, mask).sum().backward()

        rows.append((name, median_time(fwd, args.repeats), median_time(fwd_bwd, args.repeats)))

    model = build_model(ModelConfig(input_size=args.input_size, device="cpu"))
    frame = next(iter(FrameSource(REPO / "data" / "mot15" / "TUD-Campus" / "TUD-Campus.mp4", max_frames=1)))
    image, _ = model.preprocess(frame)
    taps = model.backbone(image)
    outs = {}
    adapter_times = {}
    for name, fn in (("torchvision", torchvision_kernel), ("sampled", deform_fusion.sampled_deform_conv2d)):
        with kernel(fn), torch.inference_mode():
            adapter_times[name] = median_time(lambda: model.adapter(taps), args.repeats)
            outs[name] = model.adapter(taps)
    diff = max((a - b).abs().max().item() for a, b in zip(outs["torchvision"], outs["sampled"], strict=True))

    print(f"input {args.input_size}px, stride-4 level {side}x{side}x256, {args.threads} torch thread(s)")
    print("| kernel | conv fwd ms | conv fwd+bwd ms | adapter fwd ms |")
    print("|---|---|---|---|")
    for name, f, fb in rows:
        print(f"| {name} | {f * 1e3:.0f} | {fb * 1e3:.0f} | {adapter_times[name] * 1e3:.0f} |")
    (_, f0, fb0), (_, f1, fb1) = rows
    print(
        f"speed-up sampled vs torchvision: conv fwd {f0 / f1:.2f}x, conv fwd+bwd {fb0 / fb1:.2f}x, "
        f"adapter {adapter_times['torchvision'] / adapter_times['sampled']:.2f}x; "
        f"largest adapter output difference {diff:.2e}"
    )


if __name__ == "__main__":
    main()
