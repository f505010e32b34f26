"""Configuration: the shipped YAML is the built-in default, and every bad key or value is named."""

from __future__ import annotations

import pytest
import yaml

from masa_core.config import ConfigError, PipelineConfig, config_from_dict, config_to_dict, load_config
from tests.paths import REPO


def test_shipped_yaml_is_exactly_the_builtin_default():
    assert yaml.safe_load((REPO / "config" / "masa.yaml").read_text()) == config_to_dict(PipelineConfig())
    assert load_config(REPO / "config" / "masa.yaml") == PipelineConfig()


def test_cpu_yaml_only_pins_the_variant_input_size_device_and_backend():
    cfg = load_config(REPO / "config" / "masa_cpu.yaml")
    model = (cfg.model.variant, cfg.model.input_size, cfg.model.device, cfg.model.backend)
    assert model == ("masa_mnv2_lite", 512, "cpu", "openvino")
    assert cfg.detector == PipelineConfig().detector
    assert cfg.tracker == PipelineConfig().tracker


def test_overrides_are_merged_and_typed():
    cfg = load_config(overrides={"tracker": {"memo_momentum": 1}, "detector": {"classes": ["Person"]}})
    assert cfg.tracker.memo_momentum == 1.0 and isinstance(cfg.tracker.memo_momentum, float)
    assert cfg.detector.classes == ("Person",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tracker": {"match_thr": 0.5}}, "unknown key tracker.match_thr; allowed under tracker.: kind, init_score"),
        ({"trackers": {}}, "unknown key trackers"),
        ({"tracker": {"match_score_thr": 1.5}}, r"tracker.match_score_thr = 1.5: must be a number in \[0, 1\]"),
        ({"model": {"input_size": "big"}}, "model.input_size = 'big': must be int"),
        ({"model": {"fp16": "yes"}}, "model.fp16 = 'yes': must be bool"),
        ({"model": {"variant": "masa_x"}}, "model.variant = 'masa_x': allowed are auto, masa_mobilesam"),
        ({"model": {"device": "tpu"}}, "model.device = 'tpu'"),
        ({"detector": {"kind": "magic"}}, "detector.kind = 'magic'"),
        ({"frame": {"max_detections": 0}}, "frame.max_detections = 0"),
        ({"tracker": 3}, "tracker. must be a mapping"),
    ],
)
def test_bad_config_is_refused_with_the_key_named(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker:\n  memo_tracklet_frames: -1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: tracker.memo_tracklet_frames = -1"):
        load_config(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("tracker: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")
