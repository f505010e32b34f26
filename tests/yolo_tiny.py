"""A YOLO detector built locally from a model YAML shipped inside ``ultralytics`` (random weights)
and saved with the library's own ``Model.save``, as a user's ``.pt`` checkpoint is. Nothing is
downloaded; it proves the plug-in's wiring, not its accuracy.

Freshly initialised, a deep YOLO's activations fade to nothing (every score ~1e-4, every box the
same), which would leave the threshold, NMS and class filter nothing to do. So its batch norms are
first fitted to a few frames and the class logits scaled down: scores then spread over (0.5, 1) and
boxes over the frame, in many classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

NAMES = ("person", "bicycle", "car")  # the first three class names; the other 77 are class3 ... class79


def class_names(count: int = 80) -> dict[int, str]:
    """The names the tiny model carries, {class id: name} as ultralytics stores them."""
    return {i: NAMES[i] if i < len(NAMES) else f"class{i}" for i in range(count)}


def write_tiny_yolo(
    path: Path, frames: Sequence[np.ndarray], yaml: str = "yolo11n.yaml", seed: int = 0, logit_scale: float = 0.3
) -> Path:
    """Save a randomly initialised ``yaml`` detection model (80 classes) as checkpoint ``path``.

    ``frames``: RGB uint8 frames of one size that its batch norms are fitted to.
    """
    import torch

    from masa_core.detectors.yolo import import_ultralytics

    YOLO, _ = import_ultralytics()  # offline, as the plug-in imports it
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = YOLO(yaml)
    net = model.model
    batch = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.reset_running_stats()
                module.momentum = None  # a plain average over the batch
        net.train()
        net(batch)
        net.eval()
        for branch in net.model[-1].cv3:  # the Detect head's class branches
            branch[-1].weight.mul_(logit_scale)
            branch[-1].bias.zero_()
    net.names = class_names(len(net.names))
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    return path
