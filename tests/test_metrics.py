"""MOT metrics: hand-made cases and the motmetrics TUD reference numbers."""

from __future__ import annotations

import math
import shutil
from collections import Counter
from pathlib import Path

import motmetrics
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from masa_core.boxes import box_iou
from masa_core.eval.metrics import (
    evaluate_mot,
    evaluate_mot_many,
    evaluate_sequence_data,
    format_table,
    id_switches_per_frame,
)
from masa_core.eval.teta import evaluate_teta, teta_counts
from masa_core.formats.mot import MotRows, read_mot

MM_DATA = Path(motmetrics.__file__).parent / "data"
SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")

# The expected table of motmetrics 1.4.0, tests/test_metrics.py::test_motchallenge_files (IoU distance
# threshold 0.5, i.e. matches need IoU >= 0.5), columns motchallenge_metrics[:15], rows TUD-Campus,
# TUD-Stadtmitte and OVERALL. Keys are ours; "Recall"/"Precision" are derived from TP/FN/FP below.
# MOTP there is the mean distance 1 - IoU of matches; ours (TrackEval) is the mean IoU.
MM_COLUMNS = ("IDF1", "IDP", "IDR", "Recall", "Precision", "num_gt_ids", "MT", "PT", "ML", "FP", "FN", "IDSW")
MM_COLUMNS += ("Frag", "MOTA", "MOTP")
MM_TABLE = dict(
    zip(
        (*SEQUENCES, "COMBINED"),  # motmetrics calls the pooled row OVERALL
        (
            (0.557659, 0.729730, 0.451253, 0.582173, 0.941441, 8, 1, 6, 1, 13, 150, 7, 7, 0.526462, 0.277201),
            (0.644619, 0.819760, 0.531142, 0.608997, 0.939920, 10, 5, 4, 1, 45, 452, 7, 6, 0.564014, 0.345904),
            (0.624296, 0.799176, 0.512211, 0.602640, 0.940268, 18, 6, 10, 2, 58, 602, 14, 13, 0.555116, 0.330177),
        ),
        strict=True,
    )
)


def motmetrics_view(res: dict[str, float]) -> dict[str, float]:
    """Our summary in motmetrics' conventions: recall, precision and MOTP as a distance 1 - IoU."""
    view = dict(res)
    view["Recall"] = res["TP"] / (res["TP"] + res["FN"])
    view["Precision"] = res["TP"] / (res["TP"] + res["FP"])
    view["MOTP"] = 1.0 - res["MOTP"]
    return view


@pytest.fixture(scope="module")
def tud_results() -> dict[str, dict[str, float]]:
    """Our metrics on motmetrics' TUD files, per sequence and pooled ("COMBINED")."""
    return evaluate_mot_many({s: (MM_DATA / s / "gt.txt", MM_DATA / s / "test.txt") for s in SEQUENCES})


def test_trackeval_full_evaluator_agrees(tud_results: dict, tmp_path: Path) -> None:
    """TrackEval's own Evaluator on a MOTChallenge folder layout (its float64 reader, its preprocessing,
    its combination) gives our HOTA, CLEAR and Identity numbers, per sequence and combined."""
    import trackeval

    for seq in SEQUENCES:
        (tmp_path / "gt" / seq / "gt").mkdir(parents=True)
        shutil.copy(MM_DATA / seq / "gt.txt", tmp_path / "gt" / seq / "gt" / "gt.txt")
        (tmp_path / "trk" / "ours" / "data").mkdir(parents=True, exist_ok=True)
        shutil.copy(MM_DATA / seq / "test.txt", tmp_path / "trk" / "ours" / "data" / f"{seq}.txt")
    quiet = {"PRINT_CONFIG": False}
    evaluator = trackeval.Evaluator(
        {"PRINT_RESULTS": False, "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False}
        | {"PLOT_CURVES": False, "LOG_ON_ERROR": None, **quiet}
    )
    frames = {seq: int(tud_results[seq]["num_frames"]) for seq in SEQUENCES}
    dataset = trackeval.datasets.MotChallenge2DBox(
        {"GT_FOLDER": str(tmp_path / "gt"), "TRACKERS_FOLDER": str(tmp_path / "trk"), "TRACKERS_TO_EVAL": ["ours"]}
        | {"BENCHMARK": "MOT15", "SKIP_SPLIT_FOL": True, "SEQ_INFO": frames, **quiet}
    )
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(quiet), trackeval.metrics.Identity(quiet)]
    out, _ = evaluator.evaluate([dataset], metrics)
    ref = out["MotChallenge2DBox"]["ours"]
    for ours_key, ref_key in (*((s, s) for s in SEQUENCES), ("COMBINED", "COMBINED_SEQ")):
        res, te = tud_results[ours_key], ref[ref_key]["pedestrian"]
        for key in ("HOTA", "DetA", "AssA", "LocA"):
            assert res[key] == pytest.approx(np.mean(te["HOTA"][key]), abs=1e-6), (ours_key, key)
        for key, te_key in (("MOTA", "MOTA"), ("MOTP", "MOTP"), ("IDSW", "IDSW"), ("TP", "CLR_TP"), ("Frag", "Frag")):
            assert res[key] == pytest.approx(te["CLEAR"][te_key], abs=1e-6), (ours_key, key)
        for key in ("IDF1", "IDP", "IDR"):
            assert res[key] == pytest.approx(te["Identity"][key], abs=1e-6), (ours_key, key)


def reference_hota(gt: dict[int, MotRows], res: dict[int, MotRows], matching: str) -> dict[str, float]:
    """HOTA, DetA, AssA, LocA written from the HOTA paper (Luiten et al., IJCV 2021), not from TrackEval's code.

    ``matching="paper"``: per threshold alpha, each frame is matched by the Hungarian algorithm
    maximising ``1/eps * [S >= alpha] + A_max + eps * S`` (the paper's rule), A_max being the Jaccard
    index of the two ids' potential matches (frames where their IoU >= alpha): most TPs first.
    ``matching="trackeval"``: TrackEval's published approximation, one Hungarian matching per frame
    for all thresholds on ``A_soft * S`` (A_soft counts each potential match with weight
    S / (row sum + column sum - S)), keeping the pairs with S >= alpha.
    """
    frames = sorted({*gt, *res})
    pairs = [(gt.get(f, MotRows.empty()), res.get(f, MotRows.empty())) for f in frames]
    ious = [box_iou(g.boxes, r.boxes) for g, r in pairs]
    gt_len = Counter(int(i) for g, _ in pairs for i in g.ids)
    tr_len = Counter(int(i) for _, r in pairs for i in r.ids)
    n_gt, n_tr = sum(gt_len.values()), sum(tr_len.values())

    def jaccard(potential: Counter, g: MotRows, r: MotRows) -> np.ndarray:
        pot = np.array([[potential[int(a), int(b)] for b in r.ids] for a in g.ids]).reshape(len(g), len(r))
        return pot / (np.array([gt_len[int(a)] for a in g.ids])[:, None] + [tr_len[int(b)] for b in r.ids] - pot)

    soft = Counter()
    for (g, r), iou in zip(pairs, ious, strict=True):
        weight = iou / np.maximum(iou.sum(0, keepdims=True) + iou.sum(1, keepdims=True) - iou, 1e-12)
        for i, j in np.ndindex(*iou.shape):
            soft[int(g.ids[i]), int(r.ids[j])] += weight[i, j]
    soft_pairs = [linear_sum_assignment(-jaccard(soft, g, r) * iou) for (g, r), iou in zip(pairs, ious, strict=True)]

    scores: dict[str, list[float]] = {"HOTA": [], "DetA": [], "AssA": [], "LocA": []}
    eps = 1e-4
    for alpha in np.arange(0.05, 0.99, 0.05):
        hard = Counter()
        for (g, r), iou in zip(pairs, ious, strict=True):
            for i, j in zip(*np.nonzero(iou >= alpha - 1e-9), strict=True):
                hard[int(g.ids[i]), int(r.ids[j])] += 1
        matches: list[tuple[int, int, float]] = []
        for k, ((g, r), iou) in enumerate(zip(pairs, ious, strict=True)):
            ok = iou >= alpha - 1e-9
            if matching == "paper":
                rows, cols = linear_sum_assignment(-(ok / eps + jaccard(hard, g, r) * ok + eps * iou))
            else:
                rows, cols = soft_pairs[k]
            matches += [(int(g.ids[i]), int(r.ids[j]), iou[i, j]) for i, j in zip(rows, cols, strict=True) if ok[i, j]]
        tp = len(matches)
        pair_tp = Counter((a, b) for a, b, _ in matches)
        det_a = tp / (n_gt + n_tr - tp) if tp else 0.0
        ass_a = sum(pair_tp[a, b] / (gt_len[a] + tr_len[b] - pair_tp[a, b]) for a, b, _ in matches) / max(tp, 1)
        scores["DetA"].append(det_a)
        scores["AssA"].append(ass_a)
        scores["HOTA"].append(math.sqrt(det_a * ass_a))
        scores["LocA"].append(float(np.mean([m[2] for m in matches])) if tp else 1.0)
    return {k: float(np.mean(v)) for k, v in scores.items()}


@pytest.mark.parametrize("seq", SEQUENCES)
def test_hota_matches_independent_reference(seq: str, tud_results: dict) -> None:
    """With TrackEval's matching rule, our independent HOTA/DetA/AssA/LocA formulas give TrackEval's numbers."""
    gt, res = read_mot(MM_DATA / seq / "gt.txt", gt_filter=True), read_mot(MM_DATA / seq / "test.txt")
    ref = reference_hota(gt, res, matching="trackeval")
    for key in ("HOTA", "DetA", "AssA", "LocA"):
        assert tud_results[seq][key] == pytest.approx(ref[key], abs=1e-6), key


# HOTA with the paper's per-threshold matching minus TrackEval's, measured on these files (documented
# in docs/evaluation.md): the paper's rule finds more TPs at high thresholds, so DetA rises and AssA falls.
PAPER_MINUS_TRACKEVAL_HOTA = {"TUD-Campus": 0.0013, "TUD-Stadtmitte": 0.0013}


@pytest.mark.parametrize("seq", SEQUENCES)
def test_hota_paper_matching_differs_by_the_documented_amount(seq: str, tud_results: dict) -> None:
    gt, res = read_mot(MM_DATA / seq / "gt.txt", gt_filter=True), read_mot(MM_DATA / seq / "test.txt")
    paper = reference_hota(gt, res, matching="paper")
    assert paper["DetA"] >= tud_results[seq]["DetA"]  # most TPs per frame and threshold, by construction
    assert paper["HOTA"] - tud_results[seq]["HOTA"] == pytest.approx(PAPER_MINUS_TRACKEVAL_HOTA[seq], abs=2e-4)


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


@pytest.mark.parametrize("row", sorted(MM_TABLE))
def test_reproduces_motmetrics_expected_table(row: str, tud_results: dict) -> None:
    ours = motmetrics_view(tud_results[row])
    for key, expected in zip(MM_COLUMNS, MM_TABLE[row], strict=True):
        assert ours[key] == pytest.approx(expected, abs=1e-3), key


@pytest.mark.parametrize("seq", SEQUENCES)
def test_matches_motmetrics_computed_now(seq: str, tud_results: dict) -> None:
    """motmetrics' own accumulator and metrics, run now, agree with us to 1e-6, not only to its table's 1e-3.

    motmetrics 1.4.0's ``iou_matrix`` calls ``np.asfarray`` (gone in numpy 2), so the distance
    matrices (1 - IoU, NaN beyond 0.5 as ``iou_matrix(max_iou=0.5)`` makes them) are fed directly.
    """
    gt, res = read_mot(MM_DATA / seq / "gt.txt", gt_filter=True), read_mot(MM_DATA / seq / "test.txt")
    acc = motmetrics.MOTAccumulator()
    for frame in sorted({*gt, *res}):
        g, r = gt.get(frame, MotRows.empty()), res.get(frame, MotRows.empty())
        dist = 1.0 - box_iou(g.boxes, r.boxes)
        dist[dist > 0.5] = np.nan
        acc.update(g.ids.tolist(), r.ids.tolist(), dist, frameid=frame)
    names = motmetrics.metrics.motchallenge_metrics[:15]
    mm = motmetrics.metrics.create().compute(acc, metrics=names, return_dataframe=False)
    ours = motmetrics_view(tud_results[seq])
    for mm_key, key in zip(names, MM_COLUMNS, strict=True):
        assert ours[key] == pytest.approx(float(mm[mm_key]), abs=1e-6), key


@pytest.mark.parametrize("seq", SEQUENCES)
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


def test_id_switches_per_frame_hand_case(tmp_path: Path) -> None:
    gt = read_mot(write_rows(tmp_path / "gt.txt", two_tracks(switch=False)))
    res = read_mot(write_rows(tmp_path / "res.txt", two_tracks(switch=True)))
    np.testing.assert_array_equal(id_switches_per_frame(gt, res, 4), [0, 0, 1, 0])
    np.testing.assert_array_equal(id_switches_per_frame(gt, gt, 6), np.zeros(6))


@pytest.mark.parametrize("seq", SEQUENCES)
def test_id_switches_per_frame_sum_to_trackeval_idsw(seq: str, tud_results: dict) -> None:
    gt, res = read_mot(MM_DATA / seq / "gt.txt", gt_filter=True), read_mot(MM_DATA / seq / "test.txt")
    per_frame = id_switches_per_frame(gt, res, int(tud_results[seq]["num_frames"]))
    assert per_frame.sum() == tud_results[seq]["IDSW"]


def test_evaluate_mot_many_with_teta() -> None:
    pairs = {s: (MM_DATA / s / "gt.txt", MM_DATA / s / "test.txt") for s in SEQUENCES}
    res = evaluate_mot_many(pairs, with_teta=True)
    for s in SEQUENCES:
        assert res[s]["TETA"] == pytest.approx(evaluate_teta(*pairs[s])["TETA"])
    # pooled per threshold as TP-weighted means, then averaged over thresholds
    counts = [teta_counts(read_mot(g, gt_filter=True), read_mot(r))[0] for g, r in pairs.values()]
    tp = sum(c.loc_tp for c in counts)
    pooled = np.mean(sum(c.assoc_a for c in counts) / np.maximum(1, tp))  # no TP at IoU 0.95: 0
    assert res["COMBINED"]["TETA_AssocA"] == pytest.approx(pooled)
    all_dets = sum(c.loc_tp + c.loc_fn + c.loc_fp for c in counts)
    assert res["COMBINED"]["TETA_LocA"] == pytest.approx(np.mean(tp / all_dets))
    with pytest.raises(ValueError, match="reserved"):
        evaluate_mot_many({"COMBINED": pairs[SEQUENCES[0]]})
