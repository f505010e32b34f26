"""``masa-ros-eval``: masa-eval on a rosbag2's images, read with rosbags (no ROS graph)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from masa_core.cli.eval import main as eval_main
from masa_ros.tools.bag_io import open_writer, typestore
from masa_ros.tools.eval_bag import bag_to_sequence, main
from tests.paths import TUD_CAMPUS, TUD_CAMPUS_GT


def _write_bag(path: Path, frames: list[np.ndarray], storage: str, compressed: bool = False) -> None:
    store = typestore()
    Hdr, Stamp = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    msgtype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    with open_writer(path, storage) as writer:
        conn = writer.add_connection("/camera/image_raw", msgtype, typestore=store)
        for i, rgb in enumerate(frames):
            header = Hdr(stamp=Stamp(sec=1, nanosec=i * 1000), frame_id="cam")
            if compressed:
                png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].reshape(-1)
                msg = store.types[msgtype](header=header, format="png", data=png)
            else:
                h, w = rgb.shape[:2]
                msg = store.types[msgtype](
                    header=header, height=h, width=w, encoding="rgb8", is_bigendian=0, step=3 * w, data=rgb.reshape(-1)
                )
            writer.write(conn, 1_000_000_000 + i * 1000, store.serialize_cdr(msg, msgtype))


@pytest.mark.parametrize(("storage", "compressed"), [("mcap", False), ("sqlite3", True)])
def test_bag_images_become_the_sequence_frames(tmp_path, tud_frames, storage, compressed):
    bag = tmp_path / "bag"
    _write_bag(bag, tud_frames[:4], storage, compressed)
    assert bag_to_sequence(bag, TUD_CAMPUS_GT, tmp_path / "seq") == 4
    pngs = sorted((tmp_path / "seq" / "img1").iterdir())
    assert [p.name for p in pngs] == ["000001.png", "000002.png", "000003.png", "000004.png"]
    for png, frame in zip(pngs, tud_frames, strict=False):
        np.testing.assert_array_equal(cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB), frame)
    assert (tmp_path / "seq" / "gt" / "gt.txt").read_bytes() == TUD_CAMPUS_GT.read_bytes()


def test_bag_scores_like_the_video_it_was_recorded_from(tmp_path, tud_frames, capsys):
    bag = tmp_path / "TUD-Campus-bag"
    _write_bag(bag, tud_frames[:6], "mcap")
    args = ["--trackers", "iou", "bytetrack", "--quiet"]
    assert main([str(bag), "--gt", str(TUD_CAMPUS_GT), *args, "--out", str(tmp_path / "from_bag")]) == 0
    assert "TUD-Campus-bag" in capsys.readouterr().out
    assert eval_main([str(TUD_CAMPUS), "--max-frames", "6", *args, "--out", str(tmp_path / "from_video")]) == 0
    tables = []
    for out in ("from_bag", "from_video"):
        with open(tmp_path / out / "results.csv", newline="") as f:
            tables.append([{k: v for k, v in row.items() if k != "sequence"} for row in csv.DictReader(f)])
    assert len(tables[0]) == 2 and tables[0] == tables[1]


def test_bad_bag_or_gt_exit_2(tmp_path, tud_frames, capsys):
    assert main([str(tmp_path / "absent"), "--gt", str(TUD_CAMPUS_GT), "--trackers", "iou"]) == 2
    assert "cannot read bag" in capsys.readouterr().err
    bag = tmp_path / "bag"
    _write_bag(bag, tud_frames[:1], "mcap")
    assert main([str(bag), "--gt", str(tmp_path / "no_gt.txt"), "--trackers", "iou"]) == 2
    assert "no_gt.txt not found" in capsys.readouterr().err
    assert main([str(bag), "--gt", str(TUD_CAMPUS_GT), "--bag-topic", "/other", "--trackers", "iou"]) == 2
    assert "has no /other" in capsys.readouterr().err


def test_bags_and_sequence_folders_mix_each_bag_with_its_gt(tmp_path, tud_frames):
    bag = tmp_path / "Campus-bag"
    _write_bag(bag, tud_frames[:4], "mcap")
    args = ["--trackers", "iou", "--max-frames", "4", "--quiet", "--out", str(tmp_path / "out")]
    assert main([str(bag), str(TUD_CAMPUS), "--gt", str(TUD_CAMPUS_GT), *args]) == 0
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["sequence"] for r in rows] == ["Campus-bag", "TUD-Campus", "COMBINED"]
    assert {k: v for k, v in rows[0].items() if k != "sequence"} == {
        k: v for k, v in rows[1].items() if k != "sequence"
    }
    for argv in ([str(bag), str(bag)], [str(TUD_CAMPUS), "--gt", str(TUD_CAMPUS_GT)]):  # a --gt per bag, no more
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--trackers", "iou"])
        assert exc.value.code == 2
