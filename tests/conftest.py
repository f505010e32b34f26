"""Shared fixtures: small-input models (fast on a 2-core CPU) and real frames from TUD-Campus."""

from __future__ import annotations

import dataclasses
import os

import cv2
import numpy as np
import pytest
import torch

from masa_core.models.build import ModelConfig, build_model, build_runtime_model
from masa_core.models.masa_model import MasaModel
from tests.paths import TUD_CAMPUS_VIDEO

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def small_model() -> MasaModel:
    """The MobileSAM variant (real MobileSAM weights, seeded adapter) at a 256-pixel input, on the CPU."""
    return build_model(ModelConfig(variant="masa_mobilesam", input_size=256, device="cpu", checkpoint="untrained"))


@pytest.fixture(scope="session")
def tud_frames() -> list[np.ndarray]:
    """The first 10 RGB frames of TUD-Campus."""
    cap = cv2.VideoCapture(str(TUD_CAMPUS_VIDEO))
    frames = []
    while len(frames) < 10:
        ok, bgr = cap.read()
        assert ok, "cannot read the bundled TUD-Campus clip"
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


# ROS 2 traffic of this test run stays on loopback and in its own domain.
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))


# The CPU default's variant with its shipped adapter, small so that conversions and runs are quick
# (tests/test_batch.py, tests/test_streams.py).
LITE_128 = ModelConfig(variant="masa_mnv2_lite", input_size=128, device="cpu")


@pytest.fixture(scope="module")
def torch_model() -> MasaModel:
    return build_model(dataclasses.replace(LITE_128, backend="torch"))


@pytest.fixture(scope="module")
def ov_model(tmp_path_factory) -> MasaModel:
    pytest.importorskip("openvino")
    cache = tmp_path_factory.mktemp("ov_cache")
    return build_runtime_model(dataclasses.replace(LITE_128, backend="openvino", cache_dir=str(cache)))


@pytest.fixture
def ros_context():
    """An rclpy context of its own, shut down after the test whatever happens."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(args=["--ros-args", "--log-level", "error"], context=context)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)
