"""masa_ros.image_conversion against the real sensor_msgs classes: every encoding pixel-exact, padded rows,
byte order, and a clear ImageConversionError for every kind of bad message."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from masa_ros.image_conversion import (
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    OversizeImageError,
    compressed_to_rgb,
    image_to_mask,
    image_to_rgb,
    mask_to_image,
    rgb_to_image,
)

H, W = 5, 7


@pytest.fixture
def rgb() -> np.ndarray:
    """A (5, 7, 3) RGB image in which every channel of every pixel has its own value."""
    values = np.arange(H * W * 3, dtype=np.uint16) * 7 % 256
    return values.astype(np.uint8).reshape(H, W, 3)


def make_image(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    """An Image whose rows are ``pixels`` rows (as raw bytes) followed by ``pad`` bytes of 0xAB."""
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1).view(np.uint8)
    if pad:
        rows = np.concatenate([rows, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return Image(
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=bigendian,
        step=rows.shape[1],
        data=array.array("B", rows.tobytes()),
    )


def test_rgb8(rgb):
    out = image_to_rgb(make_image(rgb, "rgb8"))
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    np.testing.assert_array_equal(out, rgb)


def test_bgr8(rgb):
    np.testing.assert_array_equal(image_to_rgb(make_image(rgb[:, :, ::-1].copy(), "bgr8")), rgb)


def test_rgba8_drops_alpha(rgb):
    rgba = np.concatenate([rgb, np.full((H, W, 1), 200, np.uint8)], axis=2)
    np.testing.assert_array_equal(image_to_rgb(make_image(rgba, "rgba8")), rgb)


def test_bgra8_drops_alpha(rgb):
    bgra = np.concatenate([rgb[:, :, ::-1], np.full((H, W, 1), 9, np.uint8)], axis=2)
    np.testing.assert_array_equal(image_to_rgb(make_image(bgra, "bgra8")), rgb)


def test_mono8_replicates_grey(rgb):
    grey = rgb[:, :, 0].copy()
    out = image_to_rgb(make_image(grey, "mono8"))
    np.testing.assert_array_equal(out, np.stack([grey, grey, grey], axis=2))


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_honours_byte_order(bigendian):
    grey16 = (np.arange(H * W, dtype=np.uint32) * 1871 % 65536).astype(np.uint16).reshape(H, W)
    raw = grey16.astype(">u2" if bigendian else "<u2")
    out = image_to_rgb(make_image(raw, "mono16", bigendian=bigendian))
    want = (grey16 >> 8).astype(np.uint8)
    np.testing.assert_array_equal(out, np.stack([want, want, want], axis=2))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_padded_step_is_honoured(rgb, encoding):
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}[encoding]
    pixels = {
        "rgb8": rgb,
        "bgr8": rgb[:, :, ::-1],
        "rgba8": np.concatenate([rgb, np.zeros((H, W, 1), np.uint8)], axis=2),
        "bgra8": np.concatenate([rgb[:, :, ::-1], np.zeros((H, W, 1), np.uint8)], axis=2),
        "mono8": rgb[:, :, 1],
    }[encoding]
    msg = make_image(np.ascontiguousarray(pixels), encoding, pad=5)
    assert msg.step == W * channels + 5
    out = image_to_rgb(msg)
    want = np.repeat(rgb[:, :, 1:2], 3, axis=2) if encoding == "mono8" else rgb
    np.testing.assert_array_equal(out, want)


def test_result_owns_its_memory(rgb):
    msg = make_image(rgb, "rgb8")
    out = image_to_rgb(msg)
    assert out.flags.c_contiguous and out.flags.owndata and out.flags.writeable
    out[:] = 0
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


def test_camera_sized_image_round_trip():
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    msg = rgb_to_image(frame, Header(frame_id="cam"))
    assert (msg.height, msg.width, msg.step, msg.encoding) == (480, 640, 1920, "rgb8")
    np.testing.assert_array_equal(image_to_rgb(msg), frame)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_rgb_to_image(rgb, encoding):
    header = Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = rgb_to_image(rgb, header, encoding=encoding)
    assert isinstance(msg, Image)
    assert (msg.height, msg.width, msg.step, msg.encoding, msg.is_bigendian) == (H, W, W * 3, encoding, False)
    assert msg.header.frame_id == "camera_optical" and msg.header.stamp.sec == 12 and msg.header.stamp.nanosec == 345
    raw = np.frombuffer(msg.data, np.uint8).reshape(H, W, 3)
    np.testing.assert_array_equal(raw, rgb if encoding == "rgb8" else rgb[:, :, ::-1])
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


def test_rgb_to_image_refuses_bad_input(rgb):
    with pytest.raises(ImageConversionError, match="'mono8'.*supported: rgb8, bgr8"):
        rgb_to_image(rgb, encoding="mono8")
    with pytest.raises(ImageConversionError, match=r"\(H, W, 3\).*\(5, 7\)"):
        rgb_to_image(rgb[:, :, 0])
    with pytest.raises(ImageConversionError, match="uint8.*float32"):
        rgb_to_image(rgb.astype(np.float32))
    with pytest.raises(ImageConversionError, match="empty image"):
        rgb_to_image(np.zeros((0, 4, 3), np.uint8))


def test_mask_to_image_bool_and_uint8():
    mask = np.zeros((3, 4), bool)
    mask[1, 1:3] = True
    header = Header(frame_id="cam")
    msg = mask_to_image(mask, header)
    assert (msg.height, msg.width, msg.step, msg.encoding, msg.header.frame_id) == (3, 4, 4, "mono8", "cam")
    np.testing.assert_array_equal(np.frombuffer(msg.data, np.uint8).reshape(3, 4), mask.astype(np.uint8) * 255)
    np.testing.assert_array_equal(image_to_mask(msg), mask)

    soft = np.array([[0, 1, 128, 255]], np.uint8)
    msg = mask_to_image(soft)
    np.testing.assert_array_equal(np.frombuffer(msg.data, np.uint8), soft[0])
    np.testing.assert_array_equal(image_to_mask(msg), soft != 0)


def test_empty_mask_is_the_empty_image():
    msg = mask_to_image(np.zeros((0, 0), bool))
    assert (msg.height, msg.width, len(msg.data)) == (0, 0, 0)
    assert image_to_mask(msg).shape == (0, 0)
    assert image_to_mask(Image()).shape == (0, 0)  # a default TrackedObject.mask


def test_mask_refuses_bad_input():
    with pytest.raises(ImageConversionError, match=r"\(h, w\) mask"):
        mask_to_image(np.zeros((2, 2, 1), bool))
    with pytest.raises(ImageConversionError, match="bool or uint8.*float64"):
        mask_to_image(np.zeros((2, 2)))
    with pytest.raises(ImageConversionError, match="mono8.*'rgb8'"):
        image_to_mask(make_image(np.zeros((2, 2, 3), np.uint8), "rgb8"))


@pytest.mark.parametrize("encoding", ["16UC1", "yuv422", "32FC1", "", "RGB8"])
def test_unsupported_encoding_is_named_with_the_supported_ones(rgb, encoding):
    msg = make_image(rgb, "rgb8")
    msg.encoding = encoding
    with pytest.raises(ImageConversionError) as err:
        image_to_rgb(msg)
    text = str(err.value)
    assert f"unsupported image encoding {encoding!r}" in text
    assert all(name in text for name in SUPPORTED_ENCODINGS)
    assert isinstance(err.value, ValueError)


def test_data_size_must_be_step_times_height(rgb):
    msg = make_image(rgb, "rgb8")
    msg.data = msg.data[:-1]
    with pytest.raises(ImageConversionError, match=r"104 bytes, expected step \* height = 21 \* 5 = 105"):
        image_to_rgb(msg)
    msg = make_image(rgb, "rgb8")
    msg.data = msg.data + array.array("B", [0] * 21)
    with pytest.raises(ImageConversionError, match="126 bytes, expected"):
        image_to_rgb(msg)


def test_step_smaller_than_a_row(rgb):
    msg = make_image(rgb, "rgb8")
    msg.step = W * 3 - 1
    msg.data = array.array("B", bytes(msg.step * H))
    with pytest.raises(ImageConversionError, match=r"step 20 is smaller than one row .* \(21 bytes\)"):
        image_to_rgb(msg)


@pytest.mark.parametrize(("height", "width"), [(0, 7), (5, 0), (0, 0)])
def test_zero_width_or_height(height, width):
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    with pytest.raises(ImageConversionError, match="empty image"):
        image_to_rgb(msg)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_compressed_to_rgb(rgb, ext):
    big = np.kron(rgb, np.ones((8, 8, 1), np.uint8))  # smooth enough for JPEG
    ok, encoded = cv2.imencode(ext, cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    assert ok
    msg = CompressedImage(format=ext[1:], data=array.array("B", encoded.tobytes()))
    out = compressed_to_rgb(msg)
    assert out.shape == big.shape and out.dtype == np.uint8
    if ext == ".png":
        np.testing.assert_array_equal(out, big)
    else:
        assert np.abs(out.astype(int) - big.astype(int)).mean() < 8


def test_compressed_undecodable_and_empty():
    with pytest.raises(ImageConversionError, match=r"cannot decode compressed image \(format 'jpeg', 4 bytes\)"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=array.array("B", b"\x00\x01\x02\x03")))
    with pytest.raises(ImageConversionError, match="has no data"):
        compressed_to_rgb(CompressedImage(format="png"))


def _png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header that declares ``width`` x ``height``, with a few bytes of pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [16000, 9000])
def test_a_decompression_bomb_is_refused_from_its_header(side):
    msg = CompressedImage(format="png", data=array.array("B", _png_declaring(side, side)))
    assert len(msg.data) < 200
    with pytest.raises(OversizeImageError, match=f"{side}x{side}|too large"):
        compressed_to_rgb(msg, max_pixels=7680 * 4320)


def test_max_pixels_caps_raw_and_compressed_images(rgb):
    msg = make_image(rgb, "rgb8")
    pixels = rgb.shape[0] * rgb.shape[1]
    assert image_to_rgb(msg, max_pixels=pixels).shape == rgb.shape
    with pytest.raises(OversizeImageError, match=f"more than {pixels - 1}"):
        image_to_rgb(msg, max_pixels=pixels - 1)
    png = CompressedImage(format="png", data=array.array("B", cv2.imencode(".png", rgb)[1].tobytes()))
    assert compressed_to_rgb(png, max_pixels=pixels).shape == rgb.shape
    with pytest.raises(OversizeImageError):
        compressed_to_rgb(png, max_pixels=pixels - 1)


def test_a_damaged_png_is_refused_before_the_decoder_sees_it(rgb, capfd):
    data = bytearray(cv2.imencode(".png", rgb)[1].tobytes())
    data[-20] ^= 0xFF  # inside the last IDAT: its CRC no longer matches
    with pytest.raises(ImageConversionError, match="cannot decode"):
        compressed_to_rgb(CompressedImage(format="png", data=array.array("B", bytes(data))))
    assert "libpng" not in capfd.readouterr().err  # OpenCV's decoder never ran
