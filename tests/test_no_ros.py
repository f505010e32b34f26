"""masa_core must stay ROS-free: training clusters and plain pip users have no ROS."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.paths import REPO

ROS_MODULES = {"rclpy", "sensor_msgs", "std_msgs", "builtin_interfaces", "cv_bridge", "masa_ros", "rosidl_runtime_py"}


def test_no_module_in_masa_core_imports_ros():
    offenders = []
    for path in (REPO / "masa_core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ROS_MODULES]
    assert offenders == []


def test_importing_the_pipeline_loads_no_ros_module():
    code = "import sys, masa_core, masa_core.cli.track; print(sorted(m for m in sys.modules if m.split('.')[0] in %r))"
    out = subprocess.run([sys.executable, "-c", code % ROS_MODULES], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
