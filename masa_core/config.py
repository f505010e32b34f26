"""The pipeline's configuration: one frozen dataclass per part, read from YAML and validated.

An unknown key, a value of the wrong type or out of range is refused with a :class:`ConfigError`
that names the key (``tracker.match_score_thr``), the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from masa_core.detectors.factory import DetectorConfig
from masa_core.errors import MasaError
from masa_core.models.build import ModelConfig
from masa_core.tracking import TrackerConfig


class ConfigError(MasaError, ValueError):
    """A configuration key or value is not allowed."""


@dataclass(frozen=True)
class FrameConfig:
    """How boxes are cleaned before they reach the model.

    min_box_size: boxes narrower or shorter than this many pixels after clipping to the image are
    dropped (and counted). max_detections: at most this many highest-scoring boxes per frame.
    """

    min_box_size: float = 2.0
    max_detections: int = 300

    def validate(self) -> None:
        if not 0 <= self.min_box_size <= 1e4:
            raise ValueError(f"frame.min_box_size = {self.min_box_size!r}: must be in [0, 10000] pixels")
        if self.max_detections < 1:
            raise ValueError(f"frame.max_detections = {self.max_detections!r}: must be an integer >= 1")


@dataclass(frozen=True)
class MaskConfig:
    """Instance masks for the output tracks (SAM box prompts on the backbone's image embedding).

    enabled: compute ``Track.mask``; off → no mask decoder is built and nothing is spent.
    checkpoint: SAM prompt encoder + mask decoder weights, an official SAM ViT-B/L/H or MobileSAM
    file; empty → the MobileSAM asset. max_masks: at most this many masks per frame, for the
    highest-scoring tracks (the others get ``mask = None``).
    """

    enabled: bool = False
    checkpoint: str = ""
    max_masks: int = 100

    def validate(self) -> None:
        if not 1 <= self.max_masks <= 10000:
            raise ValueError(f"masks.max_masks = {self.max_masks!r}: must be an integer in [1, 10000]")


@dataclass(frozen=True)
class PipelineConfig:
    """Everything :class:`masa_core.Pipeline` needs. The tracker defaults to the official
    plug-and-play settings, the ones MASA's detector-agnostic configs run with."""

    model: ModelConfig = field(default_factory=ModelConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig.plug_and_play)
    frame: FrameConfig = field(default_factory=FrameConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)

    def validate(self) -> PipelineConfig:
        for section in dataclasses.fields(self):
            try:
                getattr(self, section.name).validate()
            except ConfigError:
                raise
            except ValueError as e:
                raise ConfigError(str(e)) from e
        return self


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` as type ``hint`` (int → float allowed, list → tuple), or ConfigError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} = {value!r}: must be a list of {item.__name__}")
        return tuple(_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{key} = {value!r}: must be {hint.__name__}, got {type(value).__name__}")


def _build(cls: type, data: Mapping[str, Any], prefix: str, base: Any) -> Any:
    """A ``cls`` instance: ``base``'s values with ``data`` laid over them, every key checked."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'} must be a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]}; allowed under {prefix or 'the top level'}: {', '.join(names)}"
        )
    values = {}
    for name in names:
        key = f"{prefix}{name}"
        current = getattr(base, name)
        if dataclasses.is_dataclass(hints[name]):
            values[name] = _build(hints[name], data.get(name, {}), f"{key}.", current)
        else:
            values[name] = _coerce(data[name], hints[name], key) if name in data else current
    return cls(**values)


def dataclass_from_dict(cls: type, data: Mapping[str, Any], base: Any = None) -> Any:
    """A (nested) dataclass ``cls``: ``base`` (default: ``cls()``) with ``data`` laid over it, every
    key and type checked (ConfigError names the first bad key)."""
    return _build(cls, data, "", base if base is not None else cls())


def config_from_dict(data: Mapping[str, Any], base: PipelineConfig | None = None) -> PipelineConfig:
    """A validated config: ``base`` (the built-in defaults) overridden by nested ``data``."""
    return _build(PipelineConfig, data, "", base or PipelineConfig()).validate()


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> PipelineConfig:
    """Read a YAML config (or take the built-in defaults), then apply nested ``overrides``."""
    cfg = PipelineConfig()
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e}") from e
        except UnicodeDecodeError:
            raise ConfigError(f"config {path} is not a text (YAML) file") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config {path} is not valid YAML: {e}") from e
        try:
            cfg = config_from_dict(data, cfg)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from e
    return config_from_dict(overrides or {}, cfg)


def config_to_dict(cfg: PipelineConfig) -> dict[str, Any]:
    """Plain nested dict of a config (tuples as lists), ready for YAML."""

    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v

    return {
        s: {k: plain(v) for k, v in dataclasses.asdict(getattr(cfg, s)).items()}
        for s in (f.name for f in dataclasses.fields(cfg))
    }
