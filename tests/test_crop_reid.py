"""Crop-and-embed MobileNetV2 ReID baseline."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from masa_core.assets import AssetError, asset_path
from masa_core.baselines.crop_reid import EMBED_DIM, CropReIDEmbedder
from masa_core.models.mobilenetv2_backbone import to_torchvision_keys
from tests.paths import TUD_CAMPUS


def weights_file() -> Path:
    path = asset_path("mobilenetv2_imagenet", verified=False)
    if not path.is_file():
        pytest.skip("mobilenetv2_imagenet asset not fetched (scripts/setup.sh)")
    return path


@pytest.fixture(scope="module")
def embedder() -> CropReIDEmbedder:
    weights_file()
    return CropReIDEmbedder()


def test_weight_keys_map_in_order_onto_torchvision() -> None:
    state = torch.load(weights_file(), map_location="cpu", weights_only=True)
    assert len(state) == 312 and not any("classifier" in k for k in state)
    renamed = to_torchvision_keys(state)
    reference = torchvision.models.mobilenet_v2(weights=None).features.state_dict()
    # Same tensors in the same (definition) order, so the renaming is the positional bijection.
    assert list(renamed) == list(reference)
    assert all(renamed[k].shape == reference[k].shape for k in reference)


def test_bad_weights_raise_asset_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = weights_file()
    corrupt = tmp_path / src.name
    data = bytearray(src.read_bytes())
    data[1000] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    monkeypatch.setenv("MASA_ASSETS", str(tmp_path))
    with pytest.raises(AssetError, match="sha256"):
        CropReIDEmbedder()
    foreign = tmp_path / "other.pt"
    torch.save(torchvision.models.mobilenet_v2(weights=None).features.state_dict(), foreign)
    with pytest.raises(AssetError):
        CropReIDEmbedder(weights=foreign)
    monkeypatch.setenv("MASA_ASSETS", str(tmp_path / "nowhere"))
    with pytest.raises(AssetError, match="not found"):
        CropReIDEmbedder()


def test_explicit_weights_path(tmp_path: Path) -> None:
    copy = tmp_path / "w.pt"
    shutil.copy(weights_file(), copy)
    assert CropReIDEmbedder(weights=copy).features[18][0].weight.shape == (1280, 320, 1, 1)


def test_shape_and_normalisation(embedder: CropReIDEmbedder) -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 60, 110], [-20, -5, 30, 40], [150, 100, 400, 300], [70.5, 20.2, 70.6, 20.3]])
    emb = embedder(frame, boxes)
    assert emb.shape == (4, EMBED_DIM) and emb.dtype == torch.float32
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(4))
    assert torch.isfinite(emb).all()


def test_no_boxes(embedder: CropReIDEmbedder) -> None:
    frame = np.zeros((64, 64, 3), np.uint8)
    assert embedder(frame, np.zeros((0, 4))).shape == (0, EMBED_DIM)


def test_same_crop_same_embedding(embedder: CropReIDEmbedder) -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    shifted = np.zeros((140, 130, 3), np.uint8)
    shifted[30:130, 20:120] = frame
    a = embedder(frame, np.array([[10, 20, 60, 90]] * 3))
    b = embedder(shifted, np.array([[30, 50, 80, 120]]))
    torch.testing.assert_close(a[0], a[1], rtol=0, atol=0)
    torch.testing.assert_close(a[0], a[2], rtol=0, atol=0)
    torch.testing.assert_close(a[:1], b, rtol=1e-5, atol=1e-5)


def test_batching_does_not_change_embeddings() -> None:
    weights_file()
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    corners = rng.uniform(0, 40, (5, 2))
    boxes = np.concatenate([corners, corners + 30], axis=1)
    full = CropReIDEmbedder(max_batch=32)(frame, boxes)
    small = CropReIDEmbedder(max_batch=2)(frame, boxes)
    torch.testing.assert_close(full, small, rtol=1e-4, atol=1e-5)


def tud_frames_and_boxes() -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Frames 1 and 2 of TUD-Campus (RGB) with their gt ids and x1y1x2y2 boxes."""
    cv2 = pytest.importorskip("cv2")
    video, gt_file = TUD_CAMPUS / "TUD-Campus.mp4", TUD_CAMPUS / "gt" / "gt.txt"
    if not (video.is_file() and gt_file.is_file()):
        pytest.skip("TUD-Campus data not present")
    gt = np.loadtxt(gt_file, delimiter=",")
    cap = cv2.VideoCapture(str(video))
    frames, ids, boxes = [], [], []
    for frame_no in (1, 2):
        ok, bgr = cap.read()
        assert ok
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        rows = gt[gt[:, 0] == frame_no]
        ids.append(rows[:, 1].astype(int))
        boxes.append(np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1))
    cap.release()
    return frames, ids, boxes


def test_same_person_next_frame_beats_other_people(embedder: CropReIDEmbedder) -> None:
    frames, ids, boxes = tud_frames_and_boxes()
    assert list(ids[0]) == list(ids[1]) and len(ids[0]) == 6
    sim = (embedder(frames[0], boxes[0]) @ embedder(frames[1], boxes[1]).T).numpy()
    same = np.diag(sim)
    others = np.where(np.eye(len(sim), dtype=bool), -np.inf, sim)
    # Each person in frame 1 is most similar to themself in frame 2, among all frame-2 people.
    assert (same > others.max(axis=1)).all()
    assert (same > others.max(axis=0)).all()
    # And on average clearly so (measured: same ~0.89, others ~0.71).
    assert same.mean() - sim[~np.eye(len(sim), dtype=bool)].mean() > 0.1
