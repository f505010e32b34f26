"""Score published results files (the MASA-OA anchors) with the project's own metric code.

    python scripts/score_anchors.py ANCHORS_DIR [--mot15 data/mot15]

ANCHORS_DIR holds ``<sequence>/<tracker>.txt`` MOTChallenge results (e.g. ``../shared/data/anchors``);
each is scored against ``<mot15>/<sequence>/gt/gt.txt`` exactly as ``masa-eval`` scores the
project's trackers (per sequence and pooled as COMBINED), and the table is printed in Markdown.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from masa_core.eval.metrics import evaluate_mot_many, format_table  # noqa: E402
from masa_core.eval.report import COMBINED  # noqa: E402

COLUMNS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("anchors", type=Path, help="folder of <sequence>/<tracker>.txt results")
    parser.add_argument("--mot15", type=Path, default=REPO / "data" / "mot15", help="folder of the sequences' gt")
    args = parser.parse_args(argv)
    sequences = sorted(d for d in args.anchors.iterdir() if d.is_dir()) if args.anchors.is_dir() else []
    if not sequences:
        print(f"score_anchors: error: no <sequence>/ folders in {args.anchors}", file=sys.stderr)
        return 2
    rows = []
    for tracker in sorted({f.stem for seq in sequences for f in seq.glob("*.txt")}):
        pairs = {s.name: (args.mot15 / s.name / "gt" / "gt.txt", s / f"{tracker}.txt") for s in sequences}
        for sequence, metrics in evaluate_mot_many(pairs, COMBINED).items():
            rows.append({"sequence": sequence, "tracker": tracker, **{c: metrics[c] for c in COLUMNS}})
    print(format_table(sorted(rows, key=lambda r: (r["sequence"] == COMBINED, r["sequence"]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
