"""Choosing the compute device and precision: ``auto|cpu|cuda``, fp16 only on CUDA."""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error, not a fallback."""
    if name not in DEVICES and not name.startswith("cuda:"):
        raise ValueError(f"device = {name!r}: allowed are {', '.join(DEVICES)} or cuda:N")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device = {name!r} but torch sees no CUDA GPU here; use 'auto' or 'cpu'")
    return torch.device(name)


def resolve_dtype(device: torch.device, fp16: bool) -> torch.dtype:
    """fp16 where asked for and on CUDA; fp32 otherwise (CPU kernels for fp16 are slow or missing)."""
    return torch.float16 if fp16 and device.type == "cuda" else torch.float32
