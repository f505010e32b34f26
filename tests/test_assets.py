"""Model assets: found by name, checked by sha256, refused when wrong."""

from __future__ import annotations

import pytest

from masa_core.assets import ASSETS, AssetError, asset_path, sha256_of


def test_fetched_assets_match_their_published_sha256():
    for name, asset in ASSETS.items():
        path = asset_path(name)
        assert path.stat().st_size == asset.size
        assert sha256_of(path) == asset.sha256


def test_asset_with_wrong_sha256_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MASA_ASSETS", str(tmp_path))
    (tmp_path / ASSETS["mobile_sam"].filename).write_bytes(b"tampered")
    with pytest.raises(AssetError, match="has sha256 .* expected 6dbb9052"):
        asset_path("mobile_sam")


def test_missing_and_unknown_assets_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MASA_ASSETS", str(tmp_path))
    with pytest.raises(AssetError, match="run scripts/setup.sh"):
        asset_path("ssd_oidv4")
    with pytest.raises(AssetError, match="unknown asset 'yolo'"):
        asset_path("yolo")
