"""The launch file matches what is installed: package, executable, parameter file, arguments.

``launch``/``launch_ros`` are not installable here, so the file is checked statically; the node
tests start the node through the same executable and parameter file it names.
"""

from __future__ import annotations

import ast

import pytest
import yaml

from tests.paths import REPO

LAUNCH = REPO / "launch" / "tracker.launch.py"
SHARE = REPO / "install" / "masa_ros" / "share" / "masa_ros"


def _node_call() -> ast.Call:
    calls = [n for n in ast.walk(ast.parse(LAUNCH.read_text())) if isinstance(n, ast.Call)]
    nodes = [c for c in calls if getattr(c.func, "id", None) == "LifecycleNode"]
    assert len(nodes) == 1
    return nodes[0]


def _keyword(call: ast.Call, name: str) -> ast.AST:
    return next(k.value for k in call.keywords if k.arg == name)


def _flatten(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        out |= _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
    return out


def _declared_parameters() -> set[str]:
    pytest.importorskip("rclpy")
    from masa_ros.parameters import NODE_PARAMETERS, pipeline_defaults

    return {p.name for p in NODE_PARAMETERS} | set(pipeline_defaults())


def test_launch_names_the_installed_package_executable_and_files():
    node = _node_call()
    assert ast.literal_eval(_keyword(node, "package")) == "masa_ros"
    assert ast.literal_eval(_keyword(node, "executable")) == "tracker_node"
    assert (REPO / "install" / "masa_ros" / "lib" / "masa_ros" / "tracker_node").is_file()
    text = LAUNCH.read_text()
    for installed in ("config/tracker.yaml", "config/fastdds_profile.xml", "launch/tracker.launch.py"):
        assert (SHARE / installed).is_file(), installed
    assert '"config", "tracker.yaml"' in text and '"config", "fastdds_profile.xml"' in text


def test_launch_arguments_and_overrides_are_node_parameters():
    tree = ast.parse(LAUNCH.read_text())
    args = next(n for n in ast.walk(tree) if isinstance(n, ast.Assign) and n.targets[0].id == "ARGUMENTS")
    assert {k.value for k in args.value.keys} == {
        "image_topic",
        "params_file",
        "device",
        "variant",
        "backend",
        "autostart",
    }
    overrides = _keyword(_node_call(), "parameters").elts[1]
    assert {k.value for k in overrides.keys} <= _declared_parameters()
    remap = _keyword(_node_call(), "remappings").elts[0].elts[0]
    assert remap.value == "image"


def test_every_key_in_the_shipped_params_file_is_a_declared_parameter():
    data = yaml.safe_load((REPO / "config" / "tracker.yaml").read_text())
    assert set(data) == {"masa_tracker"}
    keys = _flatten(data["masa_tracker"]["ros__parameters"])
    assert keys <= _declared_parameters(), keys - _declared_parameters()


def test_with_autostart_false_the_launch_file_configures_then_activates():
    tree = ast.parse(LAUNCH.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    transitions = [_keyword(c, "transition_id").attr for c in calls if getattr(c.func, "id", None) == "ChangeState"]
    assert transitions == ["TRANSITION_CONFIGURE", "TRANSITION_ACTIVATE"]
    handler = next(c for c in calls if getattr(c.func, "id", None) == "OnStateTransition")
    goal = (ast.literal_eval(_keyword(handler, "start_state")), ast.literal_eval(_keyword(handler, "goal_state")))
    assert goal == ("configuring", "inactive")  # not after a deactivate
    conditions = [c for c in calls if getattr(c.func, "id", None) == "UnlessCondition"]
    assert len(conditions) == 1 and ast.literal_eval(conditions[0].args[0].args[0]) == "autostart"
    assert ast.literal_eval(_keyword(_node_call(), "parameters").elts[1].values[-1].args[0]) == "autostart"
