"""Converting between ``sensor_msgs`` images and numpy arrays without ``cv_bridge``.

PyPI's ``cv-bridge`` is a copy of the ROS 1 code that breaks with numpy 2, so the node converts with
numpy directly. Everything here validates the message first and raises :class:`ImageConversionError`
(a ``ValueError``) with a message that names the problem, so the node can log and count a bad frame
instead of crashing or producing garbage.

Arrays are always RGB, ``uint8``, C-contiguous and own their memory (never a view into a message).
"""

from __future__ import annotations

import array
import io
import warnings

import cv2
import numpy as np
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from masa_core.errors import MasaError

__all__ = [
    "SUPPORTED_ENCODINGS",
    "ImageConversionError",
    "OversizeImageError",
    "compressed_to_rgb",
    "image_to_mask",
    "image_to_rgb",
    "mask_to_image",
    "rgb_to_image",
]


class ImageConversionError(MasaError, ValueError):
    """An image message (or array) that cannot be converted; the message says why."""


class OversizeImageError(ImageConversionError):
    """An image larger than the caller's ``max_pixels``, refused before it is decoded or copied."""


def _check_size(width: int, height: int, max_pixels: int | None, what: str) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise OversizeImageError(f"{what} is {width}x{height} = {width * height} pixels, more than {max_pixels}")


# encoding -> (channels, bytes per channel)
_LAYOUT: dict[str, tuple[int, int]] = {
    "rgb8": (3, 1),
    "bgr8": (3, 1),
    "rgba8": (4, 1),
    "bgra8": (4, 1),
    "mono8": (1, 1),
    "mono16": (1, 2),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUT)
_OUTPUT_ENCODINGS = ("rgb8", "bgr8")
_HINTS = {
    "16UC1": " (a depth image, not a camera image to track)",
    "32FC1": " (a depth image, not a camera image to track)",
}


def _unsupported(encoding: str) -> ImageConversionError:
    return ImageConversionError(
        f"unsupported image encoding {encoding!r}{_HINTS.get(encoding, '')}; "
        f"supported: {', '.join(SUPPORTED_ENCODINGS)}"
    )


def image_to_rgb(msg: Image, max_pixels: int | None = None) -> np.ndarray:
    """The image as an (H, W, 3) ``uint8`` RGB array; :class:`OversizeImageError` beyond ``max_pixels``.

    Supports rgb8, bgr8, rgba8, bgra8 (alpha dropped), mono8 (grey replicated to 3 channels) and mono16
    (scaled to 8 bits by its high byte, byte order from ``is_bigendian``). Honours ``step`` (rows padded
    beyond ``width * bytes per pixel``).
    """
    encoding = msg.encoding
    if encoding not in _LAYOUT:
        raise _unsupported(encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageConversionError(f"empty image: {width}x{height} ({encoding})")
    _check_size(width, height, max_pixels, f"image ({encoding})")
    channels, depth = _LAYOUT[encoding]
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than one row of a {width}-pixel wide {encoding} image ({row_bytes} bytes)"
        )
    size = len(msg.data)
    if size != step * height:
        raise ImageConversionError(
            f"data has {size} bytes, expected step * height = {step} * {height} = {step * height} ({encoding})"
        )
    buf = np.frombuffer(msg.data, dtype=np.uint8).reshape(height, step)[:, :row_bytes]
    if depth == 2:
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
        grey16 = np.ascontiguousarray(buf).view(dtype).reshape(height, width)
        grey = (grey16 >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    pixels = buf.reshape(height, width, channels)
    if encoding == "rgb8":
        return np.array(pixels, dtype=np.uint8, order="C")
    if encoding == "bgr8":
        return np.ascontiguousarray(pixels[:, :, ::-1])
    if encoding == "rgba8":
        return np.ascontiguousarray(pixels[:, :, :3])
    if encoding == "bgra8":
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    # mono8
    return np.repeat(pixels, 3, axis=2)


def rgb_to_image(rgb: np.ndarray, header: Header | None = None, encoding: str = "rgb8") -> Image:
    """An Image from an (H, W, 3) ``uint8`` RGB array, encoded as ``rgb8`` (as is) or ``bgr8``."""
    if encoding not in _OUTPUT_ENCODINGS:
        raise ImageConversionError(
            f"cannot encode an RGB array as {encoding!r}; supported: {', '.join(_OUTPUT_ENCODINGS)}"
        )
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageConversionError(f"expected an (H, W, 3) RGB array, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise ImageConversionError(f"expected a uint8 RGB array, got {rgb.dtype}")
    height, width = rgb.shape[:2]
    if height == 0 or width == 0:
        raise ImageConversionError(f"empty image: {width}x{height}")
    pixels = rgb if encoding == "rgb8" else rgb[:, :, ::-1]
    return _make_image(np.ascontiguousarray(pixels), header, encoding)


def mask_to_image(mask: np.ndarray, header: Header | None = None) -> Image:
    """A ``mono8`` Image from an (h, w) mask: ``bool`` becomes 0 / 255, ``uint8`` is kept as is.

    A mask with no pixels gives the empty Image (width and height 0) that ``TrackedObject.mask`` uses when
    masks are off.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ImageConversionError(f"expected an (h, w) mask, got shape {mask.shape}")
    if mask.dtype == np.bool_:
        mask = mask.astype(np.uint8) * np.uint8(255)
    elif mask.dtype != np.uint8:
        raise ImageConversionError(f"expected a bool or uint8 mask, got {mask.dtype}")
    if mask.size == 0:
        return _make_image(np.zeros((0, 0), np.uint8), header, "mono8")
    return _make_image(np.ascontiguousarray(mask), header, "mono8")


def image_to_mask(msg: Image) -> np.ndarray:
    """The (h, w) ``bool`` mask (nonzero pixels) of a ``mono8`` Image; (0, 0) for the empty Image."""
    if msg.encoding == "" and msg.width == 0 and msg.height == 0 and len(msg.data) == 0:
        return np.zeros((0, 0), dtype=bool)
    if msg.encoding != "mono8":
        raise ImageConversionError(f"a mask must be mono8, got {msg.encoding!r}")
    if msg.width == 0 or msg.height == 0:
        if len(msg.data) != 0:
            raise ImageConversionError(f"empty {msg.width}x{msg.height} mask with {len(msg.data)} bytes of data")
        return np.zeros((int(msg.height), int(msg.width)), dtype=bool)
    return image_to_rgb(msg)[:, :, 0] != 0


def compressed_to_rgb(msg: CompressedImage, max_pixels: int | None = None) -> np.ndarray:
    """Decode a CompressedImage (JPEG, PNG, BMP, TIFF, WebP, ...) to an (H, W, 3) ``uint8`` RGB array.

    The header is read first (Pillow, no pixel data decoded): an image beyond ``max_pixels`` is refused
    with :class:`OversizeImageError`, and data Pillow cannot identify or verify never reaches the decoder.
    """
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size == 0:
        raise ImageConversionError(f"compressed image (format {msg.format!r}) has no data")
    width, height = _probe(data.tobytes(), msg.format)
    _check_size(width, height, max_pixels, f"compressed image (format {msg.format!r})")
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageConversionError(
            f"cannot decode compressed image (format {msg.format!r}, {data.size} bytes): not a JPEG/PNG OpenCV reads"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _probe(data: bytes, fmt: str) -> tuple[int, int]:
    """(width, height) from the image's header, after checking its structure (chunk CRCs for PNG)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data)) as probe:
                size = probe.size
                probe.verify()
    except PILImage.DecompressionBombError as e:
        raise OversizeImageError(f"compressed image (format {fmt!r}) is too large: {e}") from None
    except Exception as e:
        raise ImageConversionError(
            f"cannot decode compressed image (format {fmt!r}, {len(data)} bytes): {type(e).__name__}: {e}"
        ) from None
    return size


def _make_image(pixels: np.ndarray, header: Header | None, encoding: str) -> Image:
    height, width = pixels.shape[:2]
    channels, depth = _LAYOUT[encoding]
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height = int(height)
    msg.width = int(width)
    msg.encoding = encoding
    msg.is_bigendian = False  # 8-bit data: byte order does not apply
    msg.step = int(width * channels * depth)
    # array.array skips the generated setter's per-element check (seconds for a camera image).
    msg.data = array.array("B", pixels.tobytes())
    return msg
