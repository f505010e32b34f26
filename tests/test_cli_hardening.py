"""Issue 16's CLI defects as regression tests: every user error is exit code 2 and one line (no
traceback), outputs are checked before the run and appear only when it succeeds, a truncated video
is reported, and the ROS tools refuse bad numbers and bad bag messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from masa_core.cli.eval import main as eval_main
from masa_core.cli.track import main as track_main
from masa_core.models.checkpoint import CheckpointError, read_checkpoint
from masa_core.video_io import FrameSource
from masa_ros.tools.bag_io import open_writer, typestore
from masa_ros.tools.demo import MARKER, prepare_out
from masa_ros.tools.eval_bag import main as ros_eval_main
from tests.paths import TUD_CAMPUS, TUD_CAMPUS_GT, TUD_CAMPUS_VIDEO

RNG = np.random.default_rng(16)


def binary_file(path: Path) -> Path:
    path.write_bytes(b"\x89\xff\xfe" + RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def one_error_line(err: str, prog: str) -> str:
    """The one line of a user error (ffmpeg may add its own log lines for a damaged video)."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"{prog}:")]
    assert len(lines) == 1, err
    return lines[0]


def track(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = track_main([*argv, "--quiet", "--device", "cpu", "--input-size", "128"])
    except SystemExit as e:  # argparse
        code = e.code
    return code, one_error_line(capsys.readouterr().err, "masa-track") if code else ""


def given(*extra: str) -> list[str]:
    return [str(TUD_CAMPUS_VIDEO), "--detections", str(TUD_CAMPUS_GT), "--max-frames", "2", *extra]


@pytest.mark.parametrize("kind", ["missing", "folder", "binary"])
def test_a_bad_detections_file_is_one_line(tmp_path, capsys, kind):
    path = {"missing": tmp_path / "none.txt", "folder": tmp_path, "binary": binary_file(tmp_path / "d.txt")}[kind]
    code, line = track([str(TUD_CAMPUS_VIDEO), "--detections", str(path)], capsys)
    assert code == 2 and "detections file" in line and str(path) in line


def test_a_binary_config_is_one_line(tmp_path, capsys):
    code, line = track(given("--config", str(binary_file(tmp_path / "c.yaml"))), capsys)
    assert code == 2 and "not a text" in line


@pytest.mark.parametrize("content", ["text", "random"])
def test_a_checkpoint_that_is_not_one_is_one_line_and_called_corrupt(tmp_path, capsys, content):
    path = tmp_path / "adapter.pt"
    if content == "text":
        path.write_text("these are not weights\n" * 10)
    else:
        binary_file(path)
    code, line = track(given("--no-video", "--output", str(tmp_path / "r.txt"), "--checkpoint", str(path)), capsys)
    assert code == 2 and "corrupt" in line and "code execution" not in line
    assert not (tmp_path / "r.txt").exists()


def test_a_checkpoint_that_needs_code_execution_is_still_named_so(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": os.system.__call__}, path)  # a callable: unpickling it would need code
    with pytest.raises(CheckpointError, match="code execution"):
        read_checkpoint(path)


def test_a_negative_max_frames_is_one_line(capsys):
    code, line = track([str(TUD_CAMPUS_VIDEO), "--max-frames", "-1"], capsys)
    assert code == 2 and "--max-frames" in line


@pytest.mark.parametrize("where", ["folder", "under_a_file"])
def test_an_unwritable_output_is_refused_before_the_run(tmp_path, capsys, where):
    (tmp_path / "file").write_text("x")
    output = tmp_path if where == "folder" else tmp_path / "file" / "results.txt"
    code, line = track(given("--output", str(output), "--video", str(tmp_path / "v.mp4")), capsys)
    assert code == 2 and str(output) in line and "ms per frame" not in capsys.readouterr().out
    assert not (tmp_path / "v.mp4").exists() and not list(tmp_path.glob(".*"))


def short_avi(path: Path, frames: int = 30) -> Path:
    """An MJPG AVI whose last 40% of bytes are cut: the container still declares ``frames``."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 128))
    for _ in range(frames):
        writer.write(RNG.integers(0, 255, (128, 160, 3), dtype=np.uint8))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def test_a_truncated_video_is_reported_and_nothing_is_written_unless_accepted(tmp_path, capsys):
    video = short_avi(tmp_path / "short.avi")
    source = FrameSource(video)
    read = sum(1 for _ in source)
    assert 0 < read < len(source) == 30
    out = ["--detector", "hog", "--output", str(tmp_path / "r.txt"), "--video", str(tmp_path / "t.mp4")]
    code, line = track([str(video), *out], capsys)
    assert code == 2 and f"ended after {read} of the 30 frames" in line and "--accept-short-video" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.avi"]
    assert track_main([str(video), *out, "--accept-short-video", "--quiet", "--input-size", "128"]) == 0
    assert "warning" in capsys.readouterr().err
    assert len(FrameSource(tmp_path / "t.mp4")) == read and (tmp_path / "r.txt").is_file()


def test_a_corrupt_image_mid_folder_leaves_no_outputs(tmp_path, capsys, tud_frames):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(tud_frames[:3]):
        cv2.imwrite(str(folder / f"{i:06d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (folder / "000001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    results, video = tmp_path / "out" / "r.txt", tmp_path / "out" / "t.mp4"
    code, line = track([str(folder), "--detector", "hog", "--output", str(results), "--video", str(video)], capsys)
    assert code == 2 and "000001.png" in line
    assert list((tmp_path / "out").iterdir()) == []


def test_masa_eval_with_a_binary_gt_is_one_line(tmp_path, capsys):
    seq = tmp_path / "seq"
    (seq / "gt").mkdir(parents=True)
    os.symlink(TUD_CAMPUS / "TUD-Campus.mp4", seq / "seq.mp4")
    binary_file(seq / "gt" / "gt.txt")
    assert eval_main([str(seq), "--trackers", "iou", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "not a text file" in one_error_line(capsys.readouterr().err, "masa-eval")


def image_bag(path: Path, payloads: list[bytes]) -> Path:
    """A bag of sensor_msgs/Image messages with the given raw CDR payloads."""
    store = typestore()
    with open_writer(path, "mcap") as writer:
        conn = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store)
        for i, raw in enumerate(payloads):
            writer.write(conn, 1_000_000_000 + i * 40_000_000, raw)
    return path


def image_cdr(index: int, width: int = 64, height: int = 48, data: bytes | None = None) -> bytes:
    store = typestore()
    Image, Header, Time = (
        store.types[t] for t in ("sensor_msgs/msg/Image", "std_msgs/msg/Header", "builtin_interfaces/msg/Time")
    )
    pixels = np.frombuffer(data, np.uint8) if data is not None else RNG.integers(0, 255, width * height * 3, np.uint8)
    msg = Image(
        header=Header(stamp=Time(sec=1, nanosec=index), frame_id="cam"),
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=width * 3,
        data=pixels,
    )
    return bytes(store.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def test_masa_ros_eval_on_undecodable_or_empty_bags_is_one_line(tmp_path, capsys):
    bad = image_bag(tmp_path / "bad", [image_cdr(0, data=b"short")])
    assert ros_eval_main([str(bad), "--gt", str(TUD_CAMPUS_GT), "--trackers", "iou", "--quiet"]) == 2
    assert "image 1" in one_error_line(capsys.readouterr().err, "masa-ros-eval")
    empty = image_bag(tmp_path / "empty", [])
    assert ros_eval_main([str(empty), "--gt", str(TUD_CAMPUS_GT), "--trackers", "iou", "--quiet"]) == 2
    line = one_error_line(capsys.readouterr().err, "masa-ros-eval")
    assert "no image messages" in line and "img1" not in line


def tool(name: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", f"masa_ros.tools.{name}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("name", "args", "named"),
    [
        ("replay", ["--rate", "nan"], "--rate"),
        ("replay", ["--rate", "-1"], "--rate"),
        ("replay", ["--max-frames", "0"], "--max-frames"),
        ("record", ["--count", "-5"], "--count"),
        ("record", ["--idle", "inf"], "--idle"),
    ],
)
def test_ros_tools_refuse_bad_numbers_in_one_line(tmp_path, name, args, named):
    out = tool(name, str(tmp_path / "x"), *args)
    assert out.returncode == 2 and named in one_error_line(out.stderr, f"masa-ros-{name}")


def test_demo_never_deletes_a_folder_it_did_not_make(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match="refusing to delete"):
        prepare_out(precious)
    assert (precious / "thesis.tex").is_file()
    with pytest.raises(ValueError, match="is a file"):
        prepare_out(precious / "thesis.tex")
    ours = tmp_path / "demo"
    prepare_out(ours)
    (ours / "results.txt").write_text("old")
    prepare_out(ours)
    assert sorted(p.name for p in ours.iterdir()) == [MARKER]


def test_replay_skips_and_counts_empty_or_undeserializable_messages(tmp_path):
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from tests.ros_harness import spin_until

    payloads = [image_cdr(i) for i in range(8)]
    payloads[3] = b""  # the empty message that used to stall the reliable reader
    payloads[5] = payloads[5][:20]  # and one cut short
    bag = image_bag(tmp_path / "bag", payloads)
    rclpy.init()
    node = rclpy.create_node("replay_skip_test")
    got: list[Image] = []
    node.create_subscription(Image, "image", got.append, QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    try:
        cmd = [sys.executable, "-m", "masa_ros.tools.replay", str(bag), "--rate", "0", "--wait", "30"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        spin_until(node, lambda: proc.poll() is not None and len(got) >= 6, 60)
        out, err = proc.communicate(timeout=30)
    finally:
        node.destroy_node()
        rclpy.shutdown()
    assert proc.returncode == 1 and "published 6 images" in out
    assert "skipped 2" in one_error_line(err, "masa-ros-replay") and "3, 5" in err
    assert sorted(m.header.stamp.nanosec for m in got) == [0, 1, 2, 4, 6, 7]
