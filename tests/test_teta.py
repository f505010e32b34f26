"""TETA on hand-computed cases, and its AssocA against TrackEval's HOTA AssA on the TUD files."""

from __future__ import annotations

from pathlib import Path

import motmetrics
import numpy as np
import pytest

from masa_core.boxes import box_iou
from masa_core.eval.metrics import build_sequence_data, trackeval_results
from masa_core.eval.teta import (
    ALPHAS,
    OFFICIAL_ALPHAS,
    combine_teta,
    evaluate_teta,
    teta,
    teta_counts,
    teta_scores,
)
from masa_core.formats.mot import MotRows, read_mot

MM_DATA = Path(motmetrics.__file__).parent / "data"
A_BOX = (0.0, 0.0, 10.0, 20.0)
B_BOX = (100.0, 0.0, 110.0, 20.0)


def rows(*items: tuple[int, tuple[float, ...]]) -> MotRows:
    """MotRows from (id, box) pairs."""
    return MotRows(np.array([b for _, b in items], np.float32), np.array([i for i, _ in items]), np.ones(len(items)))


def two_people(frames: int = 4, switch_at: int | None = None) -> dict[int, MotRows]:
    """A and B standing still; with ``switch_at`` B's id changes 2 -> 3 from that frame on."""
    return {
        f: rows((1, A_BOX), (3 if switch_at is not None and f >= switch_at else 2, B_BOX)) for f in range(1, frames + 1)
    }


def test_perfect_tracking_scores_one() -> None:
    gt = two_people()
    res = teta(gt, gt)
    for key in ("TETA", "LocA", "AssocA", "ClsA", "LocRe", "LocPr", "AssocRe", "AssocPr"):
        assert res[key] == pytest.approx(1.0), key


def test_id_switch_lowers_assoca_by_hand_computed_amount() -> None:
    res = teta(two_people(), two_people(switch_at=3))
    # 4 TPs of Jaccard 4/4; B-2 and B-3: 2 TPs each of Jaccard 2 / (4 + 2 - 2) -> (4 + 2 * 0.5 + 2 * 0.5) / 8.
    assert res["LocA"] == pytest.approx(1.0)
    assert res["AssocA"] == pytest.approx(0.75)
    assert res["AssocRe"] == pytest.approx((4 * 1 + 4 * 0.5) / 8)  # TPA / gt id length
    assert res["AssocPr"] == pytest.approx(1.0)  # each predicted id stays on one person
    assert res["TETA"] == pytest.approx((1 + 0.75 + 1) / 3)


def test_missed_box_lowers_loca_and_assoca() -> None:
    gt = {f: rows((1, A_BOX)) for f in range(1, 5)}
    pred = {f: rows((1, A_BOX)) for f in (1, 3, 4)}
    res = teta(gt, pred)
    assert res["LocA"] == pytest.approx(3 / 4)  # TP 3, FN 1
    assert res["LocRe"] == pytest.approx(3 / 4) and res["LocPr"] == pytest.approx(1.0)
    assert res["AssocA"] == pytest.approx(3 / 4)  # Jaccard 3 / (4 + 3 - 3) for each TP
    assert res["TETA"] == pytest.approx((0.75 + 0.75 + 1) / 3)


def test_false_positive_counts_only_inside_a_local_cluster() -> None:
    gt = {1: rows((1, A_BOX))}
    far = teta(gt, {1: rows((1, A_BOX), (2, (300.0, 300.0, 310.0, 320.0)))})
    assert far["LocA"] == pytest.approx(1.0)  # an unannotated object is no error
    duplicate = (0.0, 0.0, 10.0, 16.0)  # IoU 0.8 with A: in A's cluster
    near = teta(gt, {1: rows((1, A_BOX), (2, duplicate))})
    assert near["LocA"] == pytest.approx(0.5)  # TP 1, FP 1
    assert near["LocPr"] == pytest.approx(0.5) and near["AssocA"] == pytest.approx(1.0)


def test_loose_box_matches_only_at_low_thresholds() -> None:
    gt = {1: rows((1, A_BOX))}
    res = teta(gt, {1: rows((1, (0.0, 0.0, 10.0, 14.4)))})  # IoU 0.72: matched at 0.5..0.7 (5 of 10)
    assert res["LocA"] == pytest.approx(0.5)  # 1 at five thresholds; TP 0, FN 1, FP 1 at the others
    assert res["AssocA"] == pytest.approx(0.5)
    assert res["ClsA"] == pytest.approx(0.5)  # class-agnostic: 1 where something matched
    assert res["TETA"] == pytest.approx(0.5)
    official = teta(gt, {1: rows((1, (0.0, 0.0, 10.0, 14.4)))}, alphas=OFFICIAL_ALPHAS)
    assert official["LocA"] == pytest.approx(15 / 20)  # thresholds 0.0..0.7 of 0.0..0.95


def test_wrong_class_lowers_only_clsa() -> None:
    gt, pred = two_people(), two_people()
    gt_cls = {f: np.array([0, 1]) for f in gt}
    pred_cls = {f: np.array([0, 0]) for f in pred}  # B tracked perfectly but labelled as class 0
    res = teta(gt, pred, gt_cls, pred_cls)
    # class 0: TPC 4, FPC 4 (B's matches) -> 0.5; class 1: TPC 0, FNC 4 -> 0; mean 0.25.
    assert res["LocA"] == pytest.approx(1.0) and res["AssocA"] == pytest.approx(1.0)
    assert res["ClsA"] == pytest.approx(0.25)
    assert res["TETA"] == pytest.approx((1 + 1 + 0.25) / 3)
    assert teta(gt, pred, gt_cls, gt_cls)["ClsA"] == pytest.approx(1.0)


def test_box_matched_to_another_class_is_not_a_false_positive() -> None:
    near_a = (0.0, 0.0, 10.0, 18.0)  # IoU 0.9 with A: inside A's cluster too
    gt = {1: rows((1, A_BOX), (2, near_a))}
    gt_cls = {1: np.array([0, 1])}
    counts = teta_counts(gt, gt, gt_cls, gt_cls)
    assert counts[0].loc_fp.sum() == 0 and counts[1].loc_fp.sum() == 0
    assert teta(gt, gt, gt_cls, gt_cls)["LocA"] == pytest.approx(1.0)


def test_sequences_combine_by_summing_counts() -> None:
    perfect = teta_counts(two_people(), two_people())
    switched = teta_counts(two_people(), two_people(switch_at=3))
    res = teta_scores(combine_teta([perfect, switched]))
    assert res["AssocA"] == pytest.approx((8 * 1 + 6) / 16)  # TP-weighted: 8 TPs at 1, 8 at mean 0.75
    assert res["LocA"] == pytest.approx(1.0)


def test_empty_inputs() -> None:
    gt = two_people()
    missed = teta(gt, {})
    assert missed["TETA"] == 0.0 and missed["LocRe"] == 0.0  # every gt box a FN
    assert teta({}, {})["TETA"] == 0.0
    assert teta({}, gt)["LocA"] == 0.0  # no gt: no cluster, nothing scored


def test_bad_labels_refused() -> None:
    gt = two_people()
    with pytest.raises(ValueError, match="both gt and tracker"):
        teta(gt, gt, gt_classes={f: np.array([0, 0]) for f in gt})
    with pytest.raises(ValueError, match="class labels"):
        teta(gt, gt, {f: np.array([0]) for f in gt}, {f: np.array([0, 0]) for f in gt})


@pytest.mark.parametrize("seq", ["TUD-Campus", "TUD-Stadtmitte"])
def test_assoca_equals_hota_assa_on_clustered_tracks(seq: str) -> None:
    """With only clustered tracks kept, TETA's matching and AssocA are HOTA's (TrackEval) at the same thresholds."""
    gt, res = read_mot(MM_DATA / seq / "gt.txt", gt_filter=True), read_mot(MM_DATA / seq / "test.txt")
    counts = teta_counts(gt, res)[0]
    hota = trackeval_results(build_sequence_data(gt, res))["HOTA"]
    index = np.searchsorted(np.round(np.arange(0.05, 0.99, 0.05), 2), ALPHAS)
    assert clustered_track_ids(gt, res) == {int(i) for r in res.values() for i in r.ids}  # no track dropped
    np.testing.assert_allclose(counts.assoc_a / np.maximum(1, counts.loc_tp), hota["AssA"][index], atol=1e-9)
    np.testing.assert_allclose(counts.loc_tp, hota["HOTA_TP"][index])
    np.testing.assert_allclose(counts.loc_fn, hota["HOTA_FN"][index])
    assert (counts.loc_fp <= hota["HOTA_FP"][index]).all()  # FPs outside clusters are not counted
    assert 0 < evaluate_teta(MM_DATA / seq / "gt.txt", MM_DATA / seq / "test.txt")["TETA"] < 1


def clustered_track_ids(gt: dict[int, MotRows], res: dict[int, MotRows]) -> set[int]:
    """Ids of predicted tracks with some box at IoU >= 0.5 to a gt box of the same frame."""
    out = set()
    for f, r in res.items():
        if f in gt:
            out |= {int(i) for i in r.ids[(box_iou(gt[f].boxes, r.boxes) >= 0.5).any(0)]}
    return out
