"""Where the OpenVINO CPU time goes: per part (backbone, adapter, track head) and per layer type, from
OpenVINO's own counters (``PERF_COUNT``), on one real 640x480 TUD-Campus frame.

    python bench/profile_openvino.py [--variant auto] [--input-size 0] [--boxes 6] [--threads 2] [--runs 10]

The model is built and run once through the pipeline (which converts its parts, or loads them from
``model.cache_dir``); each cached part is then compiled again with the backend's settings plus
``PERF_COUNT`` and run ``--runs`` times on the inputs it had in that frame (the track head on
``--boxes`` boxes). Prints each part's median ms and its top layer types (ms summed over the part's
layers of that type in the last run, and how many there are).
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from masa_core import Detections, Pipeline, load_config  # noqa: E402
from masa_core.models.backends import converted_parts, default_cache_dir, describe  # noqa: E402
from masa_core.video_io import FrameSource  # noqa: E402

PARTS = ("backbone", "adapter", "track_head")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", default="auto")
    p.add_argument("--input-size", type=int, default=0)
    p.add_argument("--boxes", type=int, default=6, help="boxes for the track head")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--top", type=int, default=6, help="layer types shown per part")
    return p.parse_args()


def captured_inputs(pipe: Pipeline, frame: np.ndarray, boxes: int) -> dict[str, list[np.ndarray]]:
    """The inputs each part gets for ``frame`` (the track head: ``boxes`` RoI feature maps)."""
    model = pipe.model
    with torch.inference_mode():
        image = model.preprocess(frame)[0]
        taps = model.backbone(image)
        pyramid = model.adapter(taps)
        h, w = image.shape[-2:]
        grid = torch.linspace(0, 1, boxes)[:, None]
        rois = torch.cat([grid * w * 0.8, grid * h * 0.5, grid * w * 0.8 + w * 0.15, grid * h * 0.5 + h * 0.4], 1)
        feats = model.adapter.roi_extractor(pyramid, rois)
    return {"backbone": [image.numpy()], "adapter": [t.numpy() for t in taps], "track_head": [feats.numpy()]}


def profile(xml: Path, inputs: list[np.ndarray], threads: int, runs: int) -> tuple[float, list]:
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    request = ov.Core().compile_model(str(xml), "CPU", {**config, "PERF_COUNT": True}).create_infer_request()
    request.infer(inputs)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        request.infer(inputs, share_inputs=True)
        seconds.append(time.perf_counter() - start)
    return 1000 * statistics.median(seconds), request.profiling_info


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(overrides={"model": {"variant": args.variant, "input_size": args.input_size, "device": "cpu"}})
    pipe = Pipeline(cfg)
    frame = next(iter(FrameSource(REPO / "data" / "mot15" / "TUD-Campus" / "TUD-Campus.mp4", 1)))
    pipe.process(frame, Detections(np.array([[10.0, 20.0, 60.0, 120.0]], np.float32), np.ones(1, np.float32)))
    model = pipe.model
    print(f"{describe(model)}; {args.threads} thread(s); load average {os.getloadavg()[0]:.1f}")
    if not converted_parts(model):
        sys.exit("the model does not run through OpenVINO here (model.backend resolves to torch)")
    inputs = captured_inputs(pipe, frame, args.boxes)
    cache = Path(cfg.model.cache_dir) if cfg.model.cache_dir else default_cache_dir()
    for part in PARTS:
        xml = max(cache.glob(f"{model.variant}-{model.input_size}-{part}-*.xml"), key=lambda p: p.stat().st_mtime)
        ms, info = profile(xml, inputs[part], args.threads, args.runs)
        by_type: collections.Counter = collections.Counter()
        count: collections.Counter = collections.Counter()
        for layer in info:
            by_type[layer.node_type] += layer.real_time.total_seconds() * 1000
            count[layer.node_type] += 1
        top = ", ".join(f"{t} {v:.1f} (x{count[t]})" for t, v in by_type.most_common(args.top))
        extra = f", {args.boxes} boxes" if part == "track_head" else ""
        print(f"{part}{extra}: median {ms:.1f} ms; {top}")


if __name__ == "__main__":
    main()
