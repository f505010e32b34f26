"""MOTChallenge file reading and writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from masa_core.formats.mot import MotFormatError, MotRows, read_mot, write_mot
from tests.paths import TUD_CAMPUS_GT as TUD_GT


def test_round_trip(tmp_path: Path) -> None:
    rows = {
        1: MotRows([[10, 20, 40, 100], [0.5, 1.5, 2.5, 3.5]], [3, 1], [0.9, 1.0]),
        4: MotRows([[100.25, 50, 150.75, 250]], [7], [0.125]),
    }
    path = tmp_path / "sub" / "res.txt"
    write_mot(path, rows)
    lines = path.read_text().splitlines()
    assert lines[0] == "1,3,10.00,20.00,30.00,80.00,0.9000,-1,-1,-1"
    assert len(lines) == 3
    back = read_mot(path)
    assert sorted(back) == [1, 4]
    for frame, want in rows.items():
        np.testing.assert_allclose(back[frame].boxes, want.boxes, atol=0.01)
        np.testing.assert_array_equal(back[frame].ids, want.ids)
        np.testing.assert_allclose(back[frame].scores, want.scores, atol=1e-4)


def test_write_zero_based_keys_add_one(tmp_path: Path) -> None:
    path = tmp_path / "res.txt"
    write_mot(path, {0: MotRows([[0, 0, 1, 1]], [1], [1.0])}, zero_based=True)
    assert path.read_text().startswith("1,1,")
    with pytest.raises(ValueError, match="zero_based"):
        write_mot(path, {0: MotRows([[0, 0, 1, 1]], [1], [1.0])})


def test_whitespace_and_short_rows(tmp_path: Path) -> None:
    path = tmp_path / "det.txt"
    path.write_text("2 -1 5 6 10 20 0.7\n\n2, -1, 1, 1, 2, 2\n")
    rows = read_mot(path)[2]
    np.testing.assert_allclose(rows.boxes, [[5, 6, 15, 26], [1, 1, 3, 3]])
    np.testing.assert_allclose(rows.scores, [0.7, 1.0])


def test_malformed_row_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("1,1,0,0,10,10,1,-1,-1,-1\n1,2,abc,0,10,10,1,-1,-1,-1\n")
    with pytest.raises(MotFormatError, match=r"bad\.txt:2: non-numeric"):
        read_mot(path)
    path.write_text("1,1,0,0\n")
    with pytest.raises(MotFormatError, match=r"bad\.txt:1: expected at least 6"):
        read_mot(path)
    path.write_text("0,1,0,0,10,10,1\n")
    with pytest.raises(MotFormatError, match="frame must be an integer >= 1"):
        read_mot(path)


def test_gt_filter_mot16_consider_flag_and_class(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text(
        "1,1,0,0,10,10,1,1,0.9\n"  # pedestrian, considered
        "1,2,0,0,10,10,0,1,0.9\n"  # not considered
        "1,3,0,0,10,10,1,3,0.9\n"  # class 3 (car)
    )
    assert len(read_mot(path)[1]) == 3
    assert read_mot(path, gt_filter=True)[1].ids.tolist() == [1]
    assert read_mot(path, gt_filter=True, classes=(1, 3))[1].ids.tolist() == [1, 3]


def test_gt_filter_keeps_mot15_world_columns(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("1,1,0,0,10,10,1,5.2,3.1,0\n")  # 10 columns: x3d, y3d, z3d are not a class
    assert len(read_mot(path, gt_filter=True)[1]) == 1


@pytest.mark.skipif(not TUD_GT.is_file(), reason="MOT15 data not present")
def test_reads_tud_campus_gt() -> None:
    gt = read_mot(TUD_GT, gt_filter=True)
    assert min(gt) == 1 and max(gt) == 71
    assert len(gt[1]) == 6
    np.testing.assert_allclose(gt[1].boxes[0], [399, 182, 520, 411])
