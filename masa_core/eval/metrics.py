"""MOTChallenge metrics (HOTA, CLEAR/MOTA, Identity/IDF1) computed by TrackEval's metric classes.

We skip TrackEval's dataset/folder machinery and feed ``trackeval.metrics.{HOTA, CLEAR, Identity}``
the per-sequence dict that ``trackeval.datasets.MotChallenge2DBox.get_preprocessed_seq_data``
would build: per-frame contiguous gt/tracker ids and gt x tracker box-IoU matrices.

Preprocessing follows TrackEval's MOT15 path: MOT15 has no distractor classes, so no tracker boxes
are removed and every gt row with ``conf != 0`` is evaluated; every results row is kept. For a
9-column MOT16+ gt file ``read_mot(gt_filter=True)`` also keeps only pedestrian gt, but tracker
boxes matched to distractor gt (static person, reflection, ...) are *not* removed as TrackEval's
MOT16/17/20 preprocessing does, so such scores are not official MOT17 numbers.

Boxes are read by :func:`masa_core.formats.mot.read_mot` (float32), so LocA/MOTP can differ
from TrackEval's float64 reader in the 8th decimal; matches and counts agree (TUD sequences).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from tabulate import tabulate
from trackeval.metrics import CLEAR, HOTA, Identity

from masa_core.boxes import box_iou
from masa_core.formats.mot import MotRows, read_mot

# Keys of the dict returned by evaluate_mot, in table order.
SUMMARY_KEYS = (
    "HOTA",
    "DetA",
    "AssA",
    "LocA",
    "MOTA",
    "MOTP",
    "IDF1",
    "IDP",
    "IDR",
    "IDSW",
    "TP",
    "FP",
    "FN",
    "Frag",
    "MT",
    "PT",
    "ML",
    "num_gt_dets",
    "num_tracker_dets",
    "num_gt_ids",
    "num_tracker_ids",
    "num_frames",
)
COUNT_KEYS = frozenset(SUMMARY_KEYS[SUMMARY_KEYS.index("IDSW") :])


def _relabel(ids_per_frame: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Map ids onto 0..K-1 (sorted order, as TrackEval does); returns new ids and K."""
    unique = np.unique(np.concatenate(ids_per_frame)) if ids_per_frame else np.zeros(0, np.int64)
    return [np.searchsorted(unique, ids).astype(int) for ids in ids_per_frame], len(unique)


def build_sequence_data(
    gt: Mapping[int, MotRows], tracker: Mapping[int, MotRows], num_frames: int | None = None
) -> dict:
    """TrackEval's preprocessed per-sequence dict from ``read_mot`` output ({1-based frame: MotRows}).

    ``gt`` should already be filtered (``read_mot(..., gt_filter=True)``). ``num_frames`` defaults to
    the last frame found in either input. Raises ValueError if an id occurs twice in one frame
    (TrackEval refuses that too).
    """
    last = max([*gt, *tracker], default=0)
    num_timesteps = int(last if num_frames is None else num_frames)
    empty = MotRows.empty()
    gt_ids, tr_ids, sims = [], [], []
    for t in range(1, num_timesteps + 1):
        g, p = gt.get(t, empty), tracker.get(t, empty)
        for name, rows in (("gt", g), ("tracker", p)):
            if len(np.unique(rows.ids)) != len(rows):
                raise ValueError(f"{name} has a repeated id in frame {t}")
        gt_ids.append(g.ids)
        tr_ids.append(p.ids)
        sims.append(box_iou(g.boxes, p.boxes))
    gt_ids, num_gt_ids = _relabel(gt_ids)
    tr_ids, num_tr_ids = _relabel(tr_ids)
    return {
        "num_timesteps": num_timesteps,
        "num_gt_ids": num_gt_ids,
        "num_tracker_ids": num_tr_ids,
        "num_gt_dets": int(sum(len(i) for i in gt_ids)),
        "num_tracker_dets": int(sum(len(i) for i in tr_ids)),
        "gt_ids": gt_ids,
        "tracker_ids": tr_ids,
        "similarity_scores": sims,
    }


_COUNTS = ("num_gt_dets", "num_tracker_dets", "num_gt_ids", "num_tracker_ids", "num_timesteps")


def _metric_classes() -> dict[str, HOTA | CLEAR | Identity]:
    quiet = {"PRINT_CONFIG": False}
    return {"HOTA": HOTA(), "CLEAR": CLEAR(dict(quiet)), "Identity": Identity(dict(quiet))}


def trackeval_results(data: dict) -> dict[str, dict]:
    """TrackEval's raw per-sequence results {"HOTA"|"CLEAR"|"Identity": fields, "counts": {...}}.

    ``data`` is a preprocessed sequence dict (:func:`build_sequence_data`). Raw results of several
    sequences can be pooled with :func:`combine_results`.
    """
    raw = {name: metric.eval_sequence(data) for name, metric in _metric_classes().items()}
    raw["counts"] = {k: int(data[k]) for k in _COUNTS}
    return raw


def combine_results(raws: list[dict[str, dict]]) -> dict[str, dict]:
    """Pool raw results of several sequences as TrackEval's ``combine_sequences`` does.

    Counts (TP, FP, IDTP, ...) are summed and the scores recomputed from the sums; HOTA's AssA and
    LocA are averaged weighted by true positives, per IoU threshold. Id counts are summed too (ids
    of different sequences are different objects).
    """
    if not raws:
        raise ValueError("combine_results: no sequence results to combine")
    out: dict[str, dict] = {}
    for name, metric in _metric_classes().items():
        out[name] = metric.combine_sequences({str(i): raw[name] for i, raw in enumerate(raws)})
    out["counts"] = {k: sum(raw["counts"][k] for raw in raws) for k in _COUNTS}
    return out


def summarize(raw: dict[str, dict]) -> dict[str, float]:
    """The flat summary (keys :data:`SUMMARY_KEYS`) of raw results from :func:`trackeval_results`."""
    hota, clear, ident, counts = raw["HOTA"], raw["CLEAR"], raw["Identity"], raw["counts"]
    out = {
        # HOTA, DetA, AssA and LocA are averaged over the 19 IoU thresholds 0.05..0.95, as TrackEval reports.
        "HOTA": np.mean(hota["HOTA"]),
        "DetA": np.mean(hota["DetA"]),
        "AssA": np.mean(hota["AssA"]),
        "LocA": np.mean(hota["LocA"]),
        "MOTA": clear["MOTA"],
        "MOTP": clear["MOTP"],
        "IDF1": ident["IDF1"],
        "IDP": ident["IDP"],
        "IDR": ident["IDR"],
        "IDSW": clear["IDSW"],
        "TP": clear["CLR_TP"],
        "FP": clear["CLR_FP"],
        "FN": clear["CLR_FN"],
        "Frag": clear["Frag"],
        "MT": clear["MT"],
        "PT": clear["PT"],
        "ML": clear["ML"],
        "num_gt_dets": counts["num_gt_dets"],
        "num_tracker_dets": counts["num_tracker_dets"],
        "num_gt_ids": counts["num_gt_ids"],
        "num_tracker_ids": counts["num_tracker_ids"],
        "num_frames": counts["num_timesteps"],
    }
    return {k: float(out[k]) for k in SUMMARY_KEYS}


def evaluate_sequence_data(data: dict) -> dict[str, float]:
    """Run TrackEval's HOTA, CLEAR and Identity on one preprocessed sequence dict."""
    return summarize(trackeval_results(data))


def sequence_data_from_files(gt_file: Path, results_file: Path, num_frames: int | None = None) -> dict:
    """:func:`build_sequence_data` of a MOTChallenge gt file (filtered) and a results file."""
    return build_sequence_data(read_mot(gt_file, gt_filter=True), read_mot(results_file), num_frames)


def evaluate_mot(gt_file: Path, results_file: Path, num_frames: int | None = None) -> dict[str, float]:
    """HOTA/DetA/AssA, MOTA/MOTP, IDF1 and counts of a MOTChallenge results file against its gt file.

    Boxes match at IoU >= 0.5 for CLEAR and Identity; HOTA averages over IoU thresholds 0.05..0.95.
    Metrics are fractions in [0, 1] (MOTA may be negative); counts are floats too. ``num_frames``
    (the sequence length) defaults to the last frame in either file; no metric depends on it.
    MOTP is the mean IoU of matches (TrackEval); motmetrics reports the mean distance 1 - IoU.
    """
    return evaluate_sequence_data(sequence_data_from_files(gt_file, results_file, num_frames))


def evaluate_mot_many(
    pairs: Mapping[str, tuple[Path, Path]], combined: str = "COMBINED", with_teta: bool = False
) -> dict[str, dict[str, float]]:
    """Summaries of several {sequence: (gt_file, results_file)} plus their pooled ``combined`` row.

    with_teta: add class-agnostic TETA, TETA_LocA, TETA_AssocA, TETA_ClsA (pooled by summing counts).
    """
    if combined in pairs:
        raise ValueError(f"sequence name {combined!r} is reserved for the combined row")
    rows = {seq: (read_mot(gt, gt_filter=True), read_mot(res)) for seq, (gt, res) in pairs.items()}
    raws = {seq: trackeval_results(build_sequence_data(gt, res)) for seq, (gt, res) in rows.items()}
    out = {seq: summarize(raw) for seq, raw in raws.items()}
    out[combined] = summarize(combine_results(list(raws.values())))
    if with_teta:
        from masa_core.eval.teta import combine_teta, table_keys, teta_counts, teta_scores

        counts = {seq: teta_counts(gt, res) for seq, (gt, res) in rows.items()}
        for seq, c in counts.items():
            out[seq].update(table_keys(teta_scores(c)))
        out[combined].update(table_keys(teta_scores(combine_teta(list(counts.values())))))
    return out


def format_table(rows: list[dict], floatfmt: str = ".3f") -> str:
    """A Markdown (GitHub pipe) table of result dicts; columns in first-seen key order.

    Counts (``IDSW``, ``FP``, ``num_*`` ...) print as integers, other floats with ``floatfmt``.
    """
    headers: list[str] = []
    for row in rows:
        headers += [k for k in row if k not in headers]

    def cell(key: str, value: object) -> object:
        return int(value) if key in COUNT_KEYS and isinstance(value, float) else value

    body = [[cell(h, row.get(h, "")) for h in headers] for row in rows]
    return tabulate(body, headers=headers, tablefmt="github", floatfmt=floatfmt)


def id_switches_per_frame(gt: Mapping[int, MotRows], tracker: Mapping[int, MotRows], num_frames: int) -> np.ndarray:
    """ID switches in each frame 1..num_frames (index 0 is frame 1), IoU >= 0.5 matching.

    Computed with motmetrics' ``MOTAccumulator`` (its CLEAR matching keeps previous pairs where
    still valid, as TrackEval's does); its per-frame SWITCH events sum to TrackEval's IDSW on the
    motmetrics TUD files. The distance matrices (1 - IoU, NaN beyond 0.5) are built here because
    motmetrics 1.4.0's ``iou_matrix`` uses ``np.asfarray``, which numpy 2 removed.
    """
    import motmetrics

    acc = motmetrics.MOTAccumulator()
    empty = MotRows.empty()
    for frame in range(1, num_frames + 1):
        g, p = gt.get(frame, empty), tracker.get(frame, empty)
        dist = 1.0 - box_iou(g.boxes, p.boxes)
        dist[dist > 0.5] = np.nan
        acc.update(g.ids.tolist(), p.ids.tolist(), dist, frameid=frame)
    events = acc.mot_events
    frames = events.index.get_level_values("FrameId")[events["Type"] == "SWITCH"]
    counts = np.zeros(num_frames, np.int64)
    np.add.at(counts, np.asarray(frames, np.int64) - 1, 1)
    return counts
