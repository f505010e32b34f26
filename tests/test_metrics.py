"""MOT metrics: hand-made cases and the motmetrics TUD reference numbers."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from masa_core.eval.metrics import box_iou, evaluate_mot, evaluate_sequence_data, format_table

motmetrics = pytest.importorskip("motmetrics")
MM_DATA = Path(motmetrics.__file__).parent / "data"

# motmetrics 1.4.0 tests/test_metrics.py::test_motchallenge_files (IoU distance threshold 0.5).
# MOTP there is a mean distance 1 - IoU; ours (TrackEval) is the mean IoU.
MOTMETRICS_EXPECTED = {
    "TUD-Campus": {
        "IDF1": 0.557659,
        "IDP": 0.729730,
        "IDR": 0.451253,
        "num_gt_ids": 8,
        "MT": 1,
        "PT": 6,
        "ML": 1,
        "FP": 13,
        "FN": 150,
        "IDSW": 7,
        "Frag": 7,
        "MOTA": 0.526462,
        "MOTP": 1 - 0.277201,
    },
    "TUD-Stadtmitte": {
        "IDF1": 0.644619,
        "IDP": 0.819760,
        "IDR": 0.531142,
        "num_gt_ids": 10,
        "MT": 5,
        "PT": 4,
        "ML": 1,
        "FP": 45,
        "FN": 452,
        "IDSW": 7,
        "Frag": 6,
        "MOTA": 0.564014,
        "MOTP": 1 - 0.345904,
    },
}


def write_rows(path: Path, rows: list[tuple]) -> Path:
    path.write_text("".join(",".join(str(v) for v in r) + ",-1,-1,-1\n" for r in rows))
    return path


def two_tracks(switch: bool) -> list[tuple]:
    """Two people, 4 frames; with ``switch`` person B's track changes id 2 -> 3 at frame 3."""
    rows = []
    for f in range(1, 5):
        rows.append((f, 1, 10 + f, 10, 20, 50, 1))
        rows.append((f, 3 if switch and f >= 3 else 2, 200 + f, 10, 20, 50, 1))
    return rows


@pytest.mark.parametrize("seq", sorted(MOTMETRICS_EXPECTED))
def test_matches_motmetrics_reference(seq: str) -> None:
    res = evaluate_mot(MM_DATA / seq / "gt.txt", MM_DATA / seq / "test.txt")
    for key, expected in MOTMETRICS_EXPECTED[seq].items():
        assert res[key] == pytest.approx(expected, abs=1e-3), key


@pytest.mark.parametrize("seq", sorted(MOTMETRICS_EXPECTED))
def test_matches_trackeval_dataset_reader(seq: str, tmp_path: Path) -> None:
    """Our per-frame data equals what TrackEval's own MOT15 dataset class prepares (HOTA included)."""
    from trackeval.datasets import MotChallenge2DBox

    (tmp_path / "gt" / seq / "gt").mkdir(parents=True)
    (tmp_path / "trk" / "ours" / "data").mkdir(parents=True)
    shutil.copy(MM_DATA / seq / "gt.txt", tmp_path / "gt" / seq / "gt" / "gt.txt")
    shutil.copy(MM_DATA / seq / "test.txt", tmp_path / "trk" / "ours" / "data" / f"{seq}.txt")
    ours = evaluate_mot(MM_DATA / seq / "gt.txt", MM_DATA / seq / "test.txt")
    dataset = MotChallenge2DBox(
        {
            "GT_FOLDER": str(tmp_path / "gt"),
            "TRACKERS_FOLDER": str(tmp_path / "trk"),
            "TRACKERS_TO_EVAL": ["ours"],
            "BENCHMARK": "MOT15",
            "SKIP_SPLIT_FOL": True,
            "SEQ_INFO": {seq: int(ours["num_frames"])},
            "PRINT_CONFIG": False,
        }
    )
    data = dataset.get_preprocessed_seq_data(dataset.get_raw_seq_data("ours", seq), "pedestrian")
    ref = evaluate_sequence_data(data)
    for key in ours:
        assert ours[key] == pytest.approx(ref[key], abs=1e-6), key


def test_perfect_tracker_scores_one() -> None:
    gt = MM_DATA / "TUD-Campus" / "gt.txt"
    res = evaluate_mot(gt, gt)
    for key in ("HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1"):
        assert res[key] == pytest.approx(1.0), key
    assert res["IDSW"] == res["FP"] == res["FN"] == 0
    assert res["TP"] == res["num_gt_dets"] == 359


def test_id_switch_hand_computed(tmp_path: Path) -> None:
    gt = write_rows(tmp_path / "gt.txt", two_tracks(switch=False))
    clean = evaluate_mot(gt, gt)
    res = evaluate_mot(gt, write_rows(tmp_path / "res.txt", two_tracks(switch=True)))
    # Identity: A<->1 gives 4 IDTP, B<->2 (or 3) gives 2; IDFN = IDFP = 2 -> IDF1 = 12 / 16.
    assert clean["IDF1"] == 1.0
    assert res["IDF1"] == pytest.approx(0.75)
    assert clean["IDF1"] - res["IDF1"] == pytest.approx(0.25)
    # CLEAR: one switch over 8 gt boxes.
    assert res["IDSW"] == 1
    assert res["MOTA"] == pytest.approx(1 - 1 / 8)
    # HOTA: DetA = 1; AssA = (4 * 1 + 2 * 0.5 + 2 * 0.5) / 8 = 0.75.
    assert res["DetA"] == pytest.approx(1.0)
    assert res["AssA"] == pytest.approx(0.75)
    assert res["HOTA"] == pytest.approx(math.sqrt(0.75))


def test_empty_results(tmp_path: Path) -> None:
    gt = MM_DATA / "TUD-Campus" / "gt.txt"
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    res = evaluate_mot(gt, empty)
    assert res["MOTA"] <= 0
    assert res["HOTA"] == 0 and res["IDF1"] == 0
    assert res["FN"] == 359 and res["TP"] == res["FP"] == 0
    both = evaluate_mot(empty, empty)
    assert both["num_gt_dets"] == both["num_tracker_dets"] == 0


def test_gt_rows_with_zero_conf_are_ignored(tmp_path: Path) -> None:
    rows = two_tracks(switch=False)
    gt_rows = [r if r[1] == 1 else (*r[:6], 0) for r in rows]  # person B marked "ignore"
    res = evaluate_mot(write_rows(tmp_path / "gt.txt", gt_rows), write_rows(tmp_path / "res.txt", rows[::2]))
    assert res["num_gt_dets"] == 4 and res["MOTA"] == 1.0 and res["HOTA"] == pytest.approx(1.0)


def test_repeated_id_in_a_frame_is_refused(tmp_path: Path) -> None:
    gt = write_rows(tmp_path / "gt.txt", two_tracks(switch=False))
    bad = write_rows(tmp_path / "res.txt", [(1, 7, 0, 0, 5, 5, 1), (1, 7, 50, 0, 5, 5, 1)])
    with pytest.raises(ValueError, match="repeated id"):
        evaluate_mot(gt, bad)


def test_box_iou() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 10]], dtype=np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], dtype=np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[1 / 3, 0], [0, 0]])
    assert box_iou(a, np.zeros((0, 4))).shape == (2, 0)


def test_format_table() -> None:
    table = format_table([{"seq": "a", "HOTA": 0.5, "IDSW": 3.0}, {"seq": "b", "MOTA": -0.25}])
    lines = table.splitlines()
    assert len(lines) == 4
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["seq", "HOTA", "IDSW", "MOTA"]
    assert set(lines[1]) <= {"|", "-", ":"}
    assert "0.500" in lines[2] and " 3 " in lines[2] and "-0.250" in lines[3]
