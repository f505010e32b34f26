"""``masa-train``: train the MASA adapter on a folder of unlabeled images (see docs/training.md).

    masa-train CONFIG.yaml [--resume] [--set key.sub=value ...]
    torchrun --nproc_per_node N -m masa_core.cli.train CONFIG.yaml     # data-parallel (DDP)

Writes ``<out_dir>/last.pt`` (resume state), ``<out_dir>/adapter.pt`` (the weights
``model.checkpoint`` loads) and TensorBoard logs in ``<out_dir>/tb``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from masa_core.cli.common import report_error
from masa_core.config import ConfigError
from masa_core.errors import MasaError
from masa_core.train.trainer import Trainer, load_train_config


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` → ``{"a": {"b": 1}, "c": "x"}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="masa-train", description=__doc__.split("\n\n")[0])
    p.add_argument("config", type=Path, help="training YAML (see config/train_cpu.yaml)")
    p.add_argument("--resume", action="store_true", help="continue from <out_dir>/last.pt")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config keys")
    args = p.parse_args(argv)
    try:
        try:
            data = yaml.safe_load(args.config.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read training config {args.config}: {e}") from e
        cfg = load_train_config(merge(data, parse_set(args.set)))
        trainer = Trainer(cfg)
        if args.resume:
            trainer.resume()
        path = trainer.run()
    except MasaError as e:
        return report_error("masa-train", e)
    if trainer.rank == 0:
        print(f"adapter weights: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
