"""``masa-ros-eval --live``: the tracker node, fed over real DDS in lockstep, scored like the offline
Pipeline, with lost frames and a node that cannot start reported, never hidden."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from masa_core.cli.eval import main as eval_main
from masa_ros.tools.eval_bag import main as ros_eval_main
from tests.paths import REPO, TUD_CAMPUS, TUD_STADTMITTE
from tests.ros_harness import EXECUTABLE

pytestmark = pytest.mark.skipif(not EXECUTABLE.exists(), reason="run scripts/setup.sh: the ROS package is not built")
# small and fast; degraded given boxes (dropped, jittered, false positives) so the ids have work to do
FAST = ["--input-size", "128", "--threads", "1", "--quiet"]
SETTINGS = [*FAST, "--max-frames", "5", "--drop", "0.2", "--jitter", "0.05", "--fp-rate", "1", "--degrade-seed", "3"]
RUN = "masa_sort_drop0.2_jit0.05_fp1_s3"  # the node runs MASA-SORT unless --trackers masa


def live(*args: str, timeout: float = 200) -> subprocess.CompletedProcess:
    """``masa-ros-eval --live ...`` as its own process (it starts the node as another)."""
    cmd = [sys.executable, "-m", "masa_ros.tools.eval_bag", "--live", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_live_node_gives_the_offline_results_files_and_metrics(tmp_path):
    sequences = [str(TUD_CAMPUS), str(TUD_STADTMITTE)]
    out = live(*sequences, *SETTINGS, "--out", str(tmp_path / "live"))
    assert out.returncode == 0, out.stderr
    assert "live node" in out.stdout and "lost" in out.stdout
    assert eval_main([*sequences, "--trackers", "masa_sort", *SETTINGS, "--out", str(tmp_path / "offline")]) == 0
    for seq in ("TUD-Campus", "TUD-Stadtmitte"):
        live_file, offline_file = (tmp_path / mode / seq / f"{RUN}.txt" for mode in ("live", "offline"))
        assert live_file.read_text() == offline_file.read_text()
        assert len(live_file.read_text().splitlines()) >= 20  # every frame has tracks
        saved = json.loads(live_file.with_suffix(".json").read_text())
        assert saved["lost_frames"] == [] and saved["frames"] == 5
        assert saved["metrics"] == json.loads(offline_file.with_suffix(".json").read_text())["metrics"]
        assert (tmp_path / "live" / seq / f"{RUN}_node.log").is_file()
    live_rows, offline_rows = _table(tmp_path / "live" / "results.csv"), _table(tmp_path / "offline" / "results.csv")
    assert [r["sequence"] for r in live_rows] == ["TUD-Campus", "TUD-Stadtmitte", "COMBINED"]
    assert [r["lost"] for r in live_rows] == ["0", "0", "0"]
    assert all(r["tracker"] == "MASA-SORT (shipped adapter, 128px, live node)" for r in live_rows)
    for a, b in zip(live_rows, offline_rows, strict=True):
        assert {k: v for k, v in a.items() if k not in ("tracker", "lost")} == {
            k: v for k, v in b.items() if k != "tracker"
        }
    assert float(offline_rows[-1]["DetA"]) < 1.0  # the degraded boxes were given: not a trivial table


def test_frames_whose_tracks_do_not_come_back_are_lost_reported_and_fail_the_run(tmp_path):
    # no tracks can come back within a millisecond: every frame is lost, and said so
    out = live(str(TUD_CAMPUS), *FAST, "--max-frames", "3", "--frame-timeout", "0.001", "--out", str(tmp_path))
    assert out.returncode == 1, out.stderr
    assert "3 of 3 frames lost" in out.stderr and "frames 1, 2, 3" in out.stderr
    saved = json.loads((tmp_path / "TUD-Campus" / "masa_sort.json").read_text())
    assert saved["lost_frames"] == [1, 2, 3] and saved["lost"] == 3
    assert saved["metrics"]["FN"] == saved["metrics"]["num_gt_dets"] > 0 and saved["metrics"]["HOTA"] == 0
    assert _table(tmp_path / "results.csv")[0]["lost"] == "3"


def test_a_node_that_cannot_start_is_a_clear_error_not_a_hang(tmp_path):
    missing = tmp_path / "no_such_adapter.pt"
    out = live(str(TUD_CAMPUS), *FAST, "--max-frames", "2", "--checkpoint", str(missing), timeout=120)
    assert out.returncode == 2
    assert "tracker node exited with code 2 before it was ready" in out.stderr
    assert "refusing to start" in out.stderr and "no_such_adapter.pt" in out.stderr


def test_live_mode_is_masa_ros_evals_and_runs_masa_only(capsys):
    with pytest.raises(SystemExit) as exc:
        eval_main([str(TUD_CAMPUS), "--live"])
    assert exc.value.code == 2 and "masa-ros-eval --live" in capsys.readouterr().err
    for argv in (["--live", "--trackers", "iou"], ["--frame-timeout", "5"], ["--live", "--frame-timeout", "0"]):
        with pytest.raises(SystemExit) as exc:
            ros_eval_main([str(TUD_CAMPUS), *argv])
        assert exc.value.code == 2
