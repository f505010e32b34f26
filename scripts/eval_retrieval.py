"""Retrieval accuracy on held-out augmented pairs (docs/training.md): for each adapter checkpoint
('untrained', or '' = the shipped adapter) and the crop-ReID baseline, the top-1 accuracy of finding an instance
of one view among all instances of the other view. Prints a Markdown table.

    python scripts/eval_retrieval.py [--config config/train_cpu.yaml] [--checkpoints untrained '' runs/x/adapter.pt]

The pairs are made exactly as in training (same augmentation settings, proposals and seeds) from the
images the config holds out (``data.holdout_every``), ``--rounds`` pairs per image.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import torch  # noqa: E402
import yaml  # noqa: E402

from masa_core.baselines.crop_reid import CropReIDEmbedder  # noqa: E402
from masa_core.eval.retrieval import box_embedder, retrieval_accuracy  # noqa: E402
from masa_core.models.build import build_model  # noqa: E402
from masa_core.train.dataset import PairDataset  # noqa: E402
from masa_core.train.trainer import load_train_config  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=REPO / "config" / "train_cpu.yaml")
    p.add_argument("--checkpoints", nargs="*", default=["untrained", ""], help="files, 'untrained', '' = shipped")
    p.add_argument("--rounds", type=int, default=10, help="pairs per held-out image")
    p.add_argument("--split", default="holdout", choices=["holdout", "train"])
    p.add_argument("--no-reid", action="store_true", help="skip the crop-ReID baseline")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_train_config(yaml.safe_load(args.config.read_text()) or {})
    data = PairDataset(cfg.data, cfg.seed, split=args.split)
    pairs = [data.pair(i, 1000 + r) for r in range(args.rounds) for i in range(len(data.paths))]
    embedders = {}
    for ckpt in args.checkpoints:
        model_cfg = dataclasses.replace(cfg.model, checkpoint=ckpt, input_size=cfg.data.augment.out_size, fp16=False)
        embedders[f"MASA adapter ({ckpt or 'shipped'})"] = box_embedder(build_model(model_cfg).eval())
    if not args.no_reid:
        embedders["crop-ReID (ImageNet MobileNetV2)"] = CropReIDEmbedder(device="cpu")
    print(f"{len(data.paths)} {args.split} images, {len(pairs)} pairs, {cfg.data.augment.out_size}px views\n")
    print("| embedding | top-1 retrieval | queries | mean gallery |")
    print("|---|---|---|---|")
    for name, embed in embedders.items():
        r = retrieval_accuracy(embed, pairs)
        print(f"| {name} | {r.accuracy:.3f} | {r.queries} | {r.gallery:.1f} |", flush=True)


if __name__ == "__main__":
    main()
