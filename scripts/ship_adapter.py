"""Turn a trained adapter (``masa-train``'s ``adapter.pt``) into the file the package ships:
float16, tracking parts only (the detection head is left out), written to
``masa_core/weights/<variant>_adapter.pt``; prints its size and sha256 for ``masa_core.assets.BUNDLED``
and docs/data_card.md.

    python scripts/ship_adapter.py runs/train_cpu/adapter.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from masa_core.assets import WEIGHTS_DIR, sha256_of  # noqa: E402
from masa_core.models.build import ModelConfig, build_model  # noqa: E402
from masa_core.models.checkpoint import load_adapter, save_adapter  # noqa: E402

OMIT = ("detection_head.",)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("adapter", type=Path, help="adapter.pt written by masa-train")
    p.add_argument("--variant", default="masa_mobilesam")
    p.add_argument("--out", type=Path, help="default: masa_core/weights/<variant>_adapter.pt")
    p.add_argument("--backbone-checkpoint", default="", help="backbone weights if not the fetched asset")
    args = p.parse_args(argv)
    cfg = ModelConfig(
        variant=args.variant,
        checkpoint="untrained",
        backbone_checkpoint=args.backbone_checkpoint,
        input_size=256,
        device="cpu",
    )
    model = build_model(cfg)
    meta = load_adapter(args.adapter, model.adapter, args.variant)
    out = args.out or WEIGHTS_DIR / f"{args.variant}_adapter.pt"
    meta = {**meta, "source_sha256": sha256_of(args.adapter), "stored": "float16, without " + ", ".join(OMIT)}
    save_adapter(out, model.adapter, args.variant, meta, half=True, omit=OMIT)
    print(f"{out}: {out.stat().st_size / 2**20:.1f} MiB, sha256 {sha256_of(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
