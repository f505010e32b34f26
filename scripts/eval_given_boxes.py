"""Evaluate association with given observations on the bundled TUD clips: a thin wrapper over
``masa-eval`` (masa_core/cli/eval.py), which holds the logic; see ``masa-eval --help``.

    python scripts/eval_given_boxes.py [--sequences DIR ...] [--trackers masa iou ...] [--out DIR]
        [--drop 0.2] [--jitter 0.05] [--fp-rate 1] [--degrade-seed 0] [--input-size 512]

Without sequence folders it evaluates data/mot15/TUD-Campus and data/mot15/TUD-Stadtmitte.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from masa_core.cli.eval import main as eval_main  # noqa: E402

DEFAULT_SEQUENCES = [REPO / "data" / "mot15" / "TUD-Campus", REPO / "data" / "mot15" / "TUD-Stadtmitte"]


def main(argv: list[str] | None = None) -> None:
    code = eval_main(argv, default_sequences=DEFAULT_SEQUENCES)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
