"""Running the tracker node for tests: as its own process, through the installed executable and
the shipped parameter file (what the launch file starts), talking over real rclpy / Fast DDS."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
from rclpy.executors import Executor
from rclpy.node import Node

from masa_ros.tools.processes import stop_process
from tests.paths import REPO

EXECUTABLE = REPO / "install" / "masa_ros" / "lib" / "masa_ros" / "tracker_node"
PARAMS_FILE = REPO / "config" / "tracker.yaml"
# Small and fast on the CPU, eager torch (no conversion at start; tests/test_backends.py covers OpenVINO);
# everything else as shipped.
# The edge's tests send arbitrary images and boxes: publish a track from its first box (the tracker's
# confirmation rule is tested in tests/test_masa_sort.py and, over DDS, in test_tracker_node.py).
TEST_PARAMETERS = {
    "model.input_size": 128,
    "model.device": "cpu",
    "model.backend": "torch",
    "tracker.publish_tentative": True,
}


def node_command(parameters: dict[str, object], name: str = "masa_tracker", namespace: str = "") -> list[str]:
    """The command line that starts the node with the shipped params file and ``parameters``."""
    cmd = [str(EXECUTABLE), "--ros-args", "--params-file", str(PARAMS_FILE), "-r", f"__node:={name}"]
    if namespace:
        cmd += ["-r", f"__ns:={namespace}"]
    for key, value in {**TEST_PARAMETERS, **parameters}.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        cmd += ["-p", f"{key}:={text}"]
    return cmd


def start_node(
    parameters: dict[str, object], log: Path, name: str = "masa_tracker", namespace: str = ""
) -> subprocess.Popen:
    """Start the node process; its output goes to ``log``."""
    env = dict(os.environ)
    cmd = node_command(parameters, name, namespace)
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def stop_node(proc: subprocess.Popen) -> None:
    stop_process(proc)


def spin_until(node: Node, condition: Callable[[], bool], timeout: float) -> bool:
    """Spin ``node`` until ``condition()`` holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        rclpy.spin_once(node, timeout_sec=0.05)
    return condition()


def spin_executor_until(executor: Executor, condition: Callable[[], bool], timeout: float) -> bool:
    """Spin ``executor`` until ``condition()`` holds or ``timeout`` seconds pass; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        executor.spin_once(timeout_sec=0.05)
    return condition()
