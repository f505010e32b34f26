"""Every parameter of the tracker node, declared in one place with its description and range.

Node parameters (topics, scheduling) are listed in :data:`NODE_PARAMETERS`. Pipeline parameters
mirror ``masa_core``'s config (``model.*``, ``detector.*``, ``tracker.*``, ``frame.*``,
``masks.*``) and are derived from it, so a new config key becomes a ROS parameter without a second
list. ``config_file`` is declared first and read; every pipeline parameter is then declared with
the file's value as its default, so a parameter given on the command line or in a params file
overrides the file, and what ``ros2 param get`` shows is what runs. Every parameter has a value
(``None`` in the config is a dynamically typed parameter that is not set).

Values are validated by ``masa_core.config`` when the node configures: a bad value fails
``configure`` (or, at runtime, is rejected) with the message that names it. ``tracker.*`` and a few
node parameters (:func:`is_live`) can change at any time; the others only while the node is
unconfigured (they build the model and the topics); ``config_file`` and ``autostart`` only at start.
"""

from __future__ import annotations

import array
import dataclasses
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from masa_core.config import PipelineConfig, config_from_dict, load_config

MAX_IMAGE_PIXELS = 7680 * 4320  # 8K UHD


@dataclass(frozen=True)
class NodeParameter:
    """A node parameter: name, default, description, optional (min, max) range, runtime-settable."""

    name: str
    default: Any
    description: str
    bounds: tuple[float, float] | None = None
    live: bool = False


NODE_PARAMETERS = (
    NodeParameter("autostart", True, "configure and activate at start (false: a lifecycle manager drives it)"),
    NodeParameter("config_file", "", "masa_core YAML config laid under these parameters ('' = built-in)"),
    NodeParameter(
        "cameras",
        [],
        "image topics of several cameras, '<camera>/image' or '<camera>/image/compressed'; each publishes "
        "'<camera>/tracks' ([] = one camera on 'image')",
    ),
    NodeParameter(
        "batch_window",
        0.01,
        "cameras: seconds the other cameras' images may take to arrive once one is ready; those that do "
        "go through the model together",
        (0.0, 1.0),
        live=True,
    ),
    NodeParameter(
        "max_batch",
        2,
        "cameras: most images in one backbone and adapter call (each batch size is compiled once and held "
        "in memory; larger batches pay on a GPU, hardly on the CPU)",
        (1, 64),
        live=True,
    ),
    NodeParameter("compressed", False, "subscribe sensor_msgs/CompressedImage on 'image/compressed' instead"),
    NodeParameter("process_all_frames", False, "queue every image instead of keeping only the newest (replays)"),
    NodeParameter("queue_size", 64, "images held when process_all_frames is true", (1, 10000)),
    NodeParameter("given_detections", False, "track boxes from 'detections_in' (DetectionArray) by image stamp"),
    NodeParameter("detections_buffer", 100, "unmatched images / detections kept while pairing by stamp", (1, 10000)),
    NodeParameter("detections_wait", 1.0, "seconds an image waits for its detections", (0.0, 60.0), live=True),
    NodeParameter("publish_debug_image", False, "publish 'debug_image' with boxes, IDs and trails", live=True),
    NodeParameter(
        "publish_instance_image", False, "publish 'instance_ids' (mono16 track IDs) when masks are on", live=True
    ),
    NodeParameter("diagnostics_period", 1.0, "seconds between /diagnostics reports", (0.1, 60.0)),
    NodeParameter(
        "max_image_pixels",
        MAX_IMAGE_PIXELS,
        "largest image accepted, width x height; bigger ones are dropped (and counted) before decoding",
        (1, 2**40),
        live=True,
    ),
)
NODE_NAMES = frozenset(p.name for p in NODE_PARAMETERS)
# Read once, when the node starts: read-only for good.
STARTUP_ONLY = frozenset({"autostart", "config_file"})
# Sections of the pipeline config that may change while the node runs.
LIVE_SECTIONS = ("tracker",)

# Descriptions and ranges of the pipeline parameters (the config classes own their validation).
PIPELINE_DOCS: dict[str, tuple[str, tuple[float, float] | None]] = {
    "model.variant": (
        "auto (masa_mobilesam on CUDA or with masks, else masa_mnv2_lite) | masa_mobilesam | masa_mnv2 | "
        "masa_mnv2_lite | masa_r50 | masa_sam_b | masa_sam_h",
        None,
    ),
    "model.backbone_checkpoint": ("official backbone weights ('' = fetched asset)", None),
    "model.checkpoint": ("MASA adapter checkpoint ('' = shipped adapter, 'untrained' = seeded random)", None),
    "model.input_size": (
        "model input side in pixels, multiple of 64 (of 32 for masa_mnv2*); 0 = the variant's (512 or 1024)",
        (0, 2048),
    ),
    "model.device": ("auto | cpu | cuda | cuda:N", None),
    "model.fp16": ("half precision on CUDA", None),
    "model.seed": ("seed of an untrained adapter", (0, 2**31 - 1)),
    "model.strict": ("official variants: every weight must come from the given checkpoints", None),
    "model.backend": (
        "backbone + adapter runtime: auto (openvino on the CPU, tensorrt on CUDA where installed, else torch) | "
        "torch | openvino | tensorrt",
        None,
    ),
    "model.cache_dir": ("folder of converted models ('' = ~/.cache/masa_core)", None),
    "model.int8": ("quantize the adapter and track head to INT8 (openvino backend; needs model.calibration_dir)", None),
    "model.calibration_dir": ("model.int8: folder of at least 4 images like the camera's", None),
    "detector.kind": ("mediapipe_ssd | hog | yolo | grounding_dino | masa_head (given: use given_detections)", None),
    "detector.score_thr": ("detection score threshold of every class (unset = detector defaults)", (0.0, 1.0)),
    "detector.nms_iou_thr": ("detector NMS IoU (unset = detector default)", (0.0, 1.0)),
    "detector.classes": ("class names to keep ([] = all)", None),
    "detector.detections_file": ("MOTChallenge file for kind given", None),
    "detector.weights": ("yolo weights file / grounding_dino model folder", None),
    "detector.text_prompt": ("grounding_dino prompt, e.g. 'person . car .'", None),
    "detector.num_threads": ("CPU threads of the detector", (1, 64)),
    "detector.tile_size": (
        "tiles of this fraction of the shorter side, plus the whole frame (0 = none, unset = detector default)",
        (0.0, 1.0),
    ),
    "detector.tile_overlap": ("least overlap of neighbouring tiles, fraction of the side", (0.0, 0.9)),
    "detector.class_score_thr": ("mediapipe_ssd: per-class thresholds, 'Name:0.4' entries ([] = calibrated)", None),
    "tracker.kind": ("masa_sort (MASA appearance + Kalman motion) | masa (the official MASA tracker)", None),
    "tracker.init_score_thr": ("min score to start a track", (0.0, 1.0)),
    "tracker.obj_score_thr": ("min score to continue a track", (0.0, 1.0)),
    "tracker.match_score_thr": ("min similarity to match", (0.0, 1.0)),
    "tracker.memo_tracklet_frames": ("frames a lost track is remembered", (0, 100000)),
    "tracker.memo_momentum": ("weight of the new embedding in memory", (0.0, 1.0)),
    "tracker.distractor_nms_thr": ("IoU above which a weak duplicate is dropped", (0.0, 1.0)),
    "tracker.distractor_score_thr": ("score below which duplicates may be dropped", (0.0, 1.0)),
    "tracker.match_metric": ("bisoftmax | softmax | cosine", None),
    "tracker.max_distance": ("spatial gate in pixels (-1 = off)", None),
    "tracker.fps": ("frame rate the spatial gate assumes", (1, 1000)),
    "tracker.with_cats": ("only match within a class", None),
    "tracker.high_score_thr": ("masa_sort: stage-1 score (unset = the detector's threshold, else 0.5)", (0.0, 1.0)),
    "tracker.low_score_thr": ("masa_sort: min score of a box in stage 2 (IoU only)", (0.0, 1.0)),
    "tracker.new_track_thr": ("masa_sort: min score to start a track (unset = high_score_thr)", (0.0, 1.0)),
    "tracker.match_iou_thr": ("masa_sort: min IoU with the predicted box, stage 1", (0.0, 1.0)),
    "tracker.low_match_iou_thr": ("masa_sort: min IoU, stage 2 (low-score boxes)", (0.0, 1.0)),
    "tracker.tentative_iou_thr": ("masa_sort: min IoU for a tentative track", (0.0, 1.0)),
    "tracker.proximity_iou_thr": ("masa_sort: IoU that lets appearance match without the Mahalanobis gate", (0.0, 1.0)),
    "tracker.appearance_thr": ("masa_sort: min cosine similarity of an appearance match", (-1.0, 1.0)),
    "tracker.appearance_veto": ("masa_sort: cosine similarity below which an IoU match is refused", (-1.0, 1.0)),
    "tracker.gate_chi2": ("masa_sort: Mahalanobis gate (chi-square, 4 dof; 9.4877 = 95 %)", (0.0, 1000.0)),
    "tracker.lost_seconds": ("masa_sort: seconds a lost track is predicted and can be re-identified", (0.0, 3600.0)),
    "tracker.confirm_hits": ("masa_sort: matches that confirm a new track", (1, 1000)),
    "tracker.embed_momentum": ("masa_sort: weight of the new embedding in a track's memory", (0.0, 1.0)),
    "tracker.occlusion_iou_thr": ("masa_sort: IoU with another box above which memory is not updated", (0.0, 1.0)),
    "tracker.camera_motion": ("masa_sort: none | sparse_flow (camera-motion compensation)", None),
    "tracker.publish_tentative": ("masa_sort: also publish tracks not yet confirmed", None),
    "masks.enabled": ("box-prompted SAM masks for the tracks (TrackedObject.mask)", None),
    "masks.checkpoint": ("SAM / MobileSAM checkpoint for the mask decoder ('' = MobileSAM asset)", None),
    "masks.max_masks": ("masks for at most this many highest-scoring tracks", (1, 10000)),
    "frame.min_box_size": ("boxes thinner than this (px) are dropped", (0.0, 10000.0)),
    "frame.max_detections": ("most boxes per frame", (1, 100000)),
}


def flat_config(cfg: PipelineConfig) -> dict[str, Any]:
    """``{'tracker.match_score_thr': 0.5, ...}`` of a config (tuples as lists, None = unset)."""
    out = {}
    for section in dataclasses.fields(cfg):
        for name, value in dataclasses.asdict(getattr(cfg, section.name)).items():
            out[f"{section.name}.{name}"] = list(value) if isinstance(value, tuple) else value
    return out


def pipeline_defaults() -> dict[str, Any]:
    """The pipeline parameters with their built-in values (see :func:`flat_config`)."""
    return flat_config(PipelineConfig())


PIPELINE_NAMES = frozenset(pipeline_defaults())
LIVE_NODE_NAMES = frozenset(p.name for p in NODE_PARAMETERS if p.live)


def is_live(name: str) -> bool:
    """Whether a parameter may change while the node is configured (the others build the model or the
    topics, so they change only while it is unconfigured)."""
    return name in LIVE_NODE_NAMES or name.startswith(tuple(f"{s}." for s in LIVE_SECTIONS))


def _descriptor(name: str, description: str, bounds: tuple[float, float] | None, read_only: bool, default: Any):
    d = ParameterDescriptor(name=name, description=description, read_only=read_only)
    if default is None:
        d.dynamic_typing = True
    elif bounds is not None and not isinstance(default, bool):
        if isinstance(default, int):
            d.integer_range = [IntegerRange(from_value=int(bounds[0]), to_value=int(bounds[1]), step=1)]
        elif isinstance(default, float):
            d.floating_point_range = [FloatingPointRange(from_value=bounds[0], to_value=bounds[1], step=0.0)]
    return d


def declare_all(node: Node) -> PipelineConfig:
    """Declare node and pipeline parameters on ``node``; returns the config read from ``config_file``.

    Pipeline defaults come from ``config_file`` (built-in values where it is ''), so values from a
    params file or ``-p`` override the file. Raises ``ConfigError`` for an unreadable or invalid file.
    """
    for p in NODE_PARAMETERS:
        descriptor = _descriptor(p.name, p.description, p.bounds, p.name in STARTUP_ONLY, p.default)
        if p.default == []:
            _declare_empty_list(node, p.name, descriptor)
        else:
            node.declare_parameter(p.name, p.default, descriptor)
    base = load_config(node.get_parameter("config_file").value or None)
    for name, default in flat_config(base).items():
        description, bounds = PIPELINE_DOCS.get(name, ("", None))
        descriptor = _descriptor(name, description, bounds, False, default)
        if isinstance(default, list) and not default:
            _declare_empty_list(node, name, descriptor)
        else:
            node.declare_parameter(name, default, descriptor)
    return base


def _declare_empty_list(node: Node, name: str, descriptor: ParameterDescriptor) -> None:
    """Declare a string-array parameter whose default is ``[]``: an empty list has no ROS type of its
    own, so it is declared by type, given ``[]`` unless overridden, then given its descriptor."""
    writable = ParameterDescriptor(name=name, description=descriptor.description)
    node.declare_parameter(name, Parameter.Type.STRING_ARRAY, writable)
    if _value(node, name) is None:
        node.set_parameters([Parameter(name, Parameter.Type.STRING_ARRAY, [])])
    descriptor.type = Parameter.Type.STRING_ARRAY.value
    node.set_descriptor(name, descriptor)


def _value(node: Node, name: str) -> Any:
    """A parameter's value (arrays as lists); None when it is not set."""
    try:
        value = node.get_parameter(name).value
    except ParameterUninitializedException:
        return None
    return list(value) if isinstance(value, list | tuple | array.array) else value


def node_settings(node: Node) -> dict[str, Any]:
    """Current values of the node parameters."""
    return {p.name: _value(node, p.name) for p in NODE_PARAMETERS}


def split_changes(params: list[Parameter]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(node changes, pipeline changes, other names) of a parameter update, each by its owner."""
    node_changes: dict[str, Any] = {}
    pipeline_changes: dict[str, Any] = {}
    unknown: list[str] = []
    for p in params:
        if p.name in NODE_NAMES:
            node_changes[p.name] = p.value
        elif p.name in PIPELINE_NAMES:
            pipeline_changes[p.name] = p.value
        else:
            unknown.append(p.name)
    return node_changes, pipeline_changes, unknown


def pipeline_config(node: Node, changes: dict[str, Any] | None = None) -> PipelineConfig:
    """The validated pipeline config of the current parameter values with ``changes`` laid over them.
    Raises ``masa_core.ConfigError`` naming a bad parameter."""
    values = {name: _value(node, name) for name in PIPELINE_NAMES}
    values.update(changes or {})
    nested: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        section, key = name.split(".", 1)
        nested.setdefault(section, {})[key] = list(value) if isinstance(value, tuple | array.array) else value
    return config_from_dict(nested)
