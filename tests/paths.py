"""Where the tests find the real clips bundled in ``data/`` (see data/README.md)."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MOT15 = REPO / "data" / "mot15"
TUD_CAMPUS = MOT15 / "TUD-Campus"
TUD_CAMPUS_VIDEO = TUD_CAMPUS / "TUD-Campus.mp4"
TUD_CAMPUS_GT = TUD_CAMPUS / "gt" / "gt.txt"
TUD_STADTMITTE = MOT15 / "TUD-Stadtmitte"
TUD_STADTMITTE_VIDEO = TUD_STADTMITTE / "TUD-Stadtmitte.mp4"
TUD_STADTMITTE_GT = TUD_STADTMITTE / "gt" / "gt.txt"
