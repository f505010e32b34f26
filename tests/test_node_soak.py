"""A 60-second soak of the tracker node over real DDS (``bench/soak.py``, shortened): 640x480 images
at 10 Hz with given boxes, as a robot's camera sends them. Memory must stay flat after warm-up, the
node's queues bounded, and tracks must keep coming in every window."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.paths import REPO
from tests.ros_harness import EXECUTABLE

pytestmark = pytest.mark.skipif(not EXECUTABLE.exists(), reason="run scripts/setup.sh: the ROS package is not built")


def test_a_minute_at_camera_rate_keeps_memory_and_queues_bounded(tmp_path):
    out = tmp_path / "soak.json"
    cmd = [sys.executable, str(REPO / "bench" / "soak.py"), "--minutes", "1", "--window", "10", "--warmup", "20"]
    cmd += ["--rate", "10", "--input-size", "128", "--json", str(out), "--log", str(tmp_path / "node.log")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    report = json.loads(out.read_text())
    windows = report["windows"]
    assert len(windows) == 6 and report["sent"] >= 500
    assert abs(report["rss_growth_after_warmup"]) < 0.05, windows  # the node's RSS after warm-up
    assert report["max_queued"] <= 1  # newest image wins: at most one waits
    assert report["max_buffered"] <= 100  # detections_buffer
    assert all(w["tracked"] > 0 for w in windows), windows  # tracking never stalls
    assert max(w["p99_ms"] for w in windows) < 10_000, windows  # latency bounded, no backlog
