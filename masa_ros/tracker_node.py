"""The MASA tracker node: camera images in, TrackedObjectArray out.

A thin edge over ``masa_core.Pipeline``: it converts messages, schedules inference on a worker
thread (the newest image wins; stale ones are dropped and counted, unless ``process_all_frames``),
pairs images with external detections by stamp, and reports health on /diagnostics.

A managed (``rclpy.lifecycle``) node: ``configure`` loads the model and creates the topics,
``activate`` / ``deactivate`` start and stop processing, ``cleanup`` frees the model. With the
``autostart`` parameter (default true) it configures and activates itself at start.

Topics (relative, so they remap): ``image`` (sensor_msgs/Image) or ``image/compressed``,
``detections_in`` (masa_ros/DetectionArray, with ``given_detections``), ``tracks``
(masa_ros/TrackedObjectArray), ``debug_image`` (sensor_msgs/Image, with ``publish_debug_image``),
``instance_ids`` (sensor_msgs/Image mono16, track ID + 1 per pixel, with ``masks.enabled`` and
``publish_instance_image``), ``detections`` (vision_msgs/Detection2DArray with the track ID, when
vision_msgs is installed).

Several cameras (the ``cameras`` parameter, see :mod:`masa_ros.cameras`): one model, one
``Pipeline`` per camera (its own tracker, IDs and counters), each camera's topics in its namespace.
The worker takes the pending image of every camera (the newest, or the next in order with
``process_all_frames``), giving the others ``batch_window`` seconds to arrive once one is ready, and runs
those together through ``Pipeline.process_streams``: one backbone and adapter call for at most
``max_batch`` images that arrived close together.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import cv2
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle.publisher import LifecyclePublisher
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.timer import Timer
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from masa_core import ConfigError, Detections, Detector, FrameError, Pipeline
from masa_core.detectors.factory import MASA_HEAD
from masa_core.errors import MasaError
from masa_core.models.backends import describe
from masa_core.pipeline import STAGES
from masa_core.visualize import TrackPainter
from masa_ros.cameras import CameraTopics, camera_topics
from masa_ros.image_conversion import (
    ImageConversionError,
    OversizeImageError,
    compressed_to_rgb,
    image_to_rgb,
    rgb_to_image,
)
from masa_ros.msg import DetectionArray, TrackedObjectArray
from masa_ros.parameters import declare_all, is_live, node_settings, pipeline_config, split_changes
from masa_ros.stamp_pairing import StampBuffer
from masa_ros.track_messages import (
    detections_from_msg,
    instance_image,
    stamp_ns,
    tracks_to_detection2d,
    tracks_to_msg,
)


@dataclass
class Health:
    """Counters and timings the node reports on /diagnostics. Every image received is, at any time,
    processed, dropped (stale, inactive, invalid, oversize, no detections), failed (errors), queued or in
    progress."""

    received: int = 0
    processed: int = 0
    dropped_stale: int = 0
    dropped_inactive: int = 0  # received while the node is inactive (configured, not active)
    invalid_images: int = 0
    oversize_images: int = 0
    no_detections: int = 0
    errors: int = 0
    in_progress: int = 0  # 1 while the worker holds an image
    batched: int = 0  # processed in one backbone and adapter call with other cameras' images
    latency_s: deque = field(default_factory=lambda: deque(maxlen=100))
    stage_s: dict[str, deque] = field(default_factory=lambda: {s: deque(maxlen=100) for s in STAGES})


@dataclass
class Camera:
    """One camera stream of the node: its topics, pipeline (own tracker), queue, counters, publishers."""

    topics: CameraTopics
    pipeline: Pipeline
    pending: deque
    detections: StampBuffer[Detections]
    health: Health = field(default_factory=Health)
    publishers: dict[str, Any] = field(default_factory=dict)


class _Item(NamedTuple):
    """An image taken for processing: its camera, message, arrival time and given detections."""

    camera: Camera
    msg: Image | CompressedImage
    received: float
    dets: Detections | None


class TrackerNode(LifecycleNode):
    """See the module docstring. A managed (lifecycle) node: parameters are declared at construction,
    ``configure`` validates them and loads the model, ``activate`` / ``deactivate`` start and stop
    processing, ``cleanup`` frees the model. A bad parameter fails ``configure`` with the reason
    (:attr:`last_error`) and leaves the node unconfigured, to be fixed and configured again."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("masa_tracker", **kwargs)
        self._wake = threading.Condition()
        self._lock = threading.Lock()
        self._stop = False
        self._active = False
        self._worker: threading.Thread | None = None
        self._entities: list[Any] = []  # what configure creates and cleanup destroys
        self.cameras: list[Camera] = []
        self.settings: dict[str, Any] = {}
        self.callback_errors = 0
        self.painter = TrackPainter()
        self.vision_msgs = _optional_vision_msgs()
        self.last_error = ""
        self._quiet_failures = False  # main logs the reason itself when autostart fails
        self._start_error = ""  # a parameter override or config_file that could not be declared
        try:
            declare_all(self)
        except (ParameterException, ConfigError) as e:  # rclpy's own, for an override of the wrong type
            self._start_error = str(e)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    @property
    def pipeline(self) -> Pipeline | None:
        """The first camera's pipeline (its model is every camera's); None while unconfigured."""
        return self.cameras[0].pipeline if self.cameras else None

    @property
    def autostart(self) -> bool:
        """The ``autostart`` parameter (true when it could not be declared: refuse to start then)."""
        return not self.has_parameter("autostart") or bool(self.get_parameter("autostart").value)

    @property
    def state(self) -> str:
        """The lifecycle state's label: unconfigured, inactive, active, finalized (or a transition)."""
        return self._state_machine.current_state[1]  # rclpy has no public getter

    # --- lifecycle transitions (executor thread) --------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate the parameters, load the model (and build the detector), create the topics."""
        try:
            self._configure()
        except Exception as e:  # a bad value or a model that does not load: stay unconfigured, say why
            self._release()
            reason = str(e) if isinstance(e, MasaError) else f"{type(e).__name__}: {e}"
            self.last_error = reason
            if not self._quiet_failures:
                self.get_logger().error(f"configure failed: {reason}")
            return TransitionCallbackReturn.FAILURE
        self.last_error = ""
        names = ", ".join(c.topics.name for c in self.cameras if c.topics.name)
        self.get_logger().info(
            f"tracking: {describe(self.pipeline.model)}, "
            f"{'given detections' if self.settings['given_detections'] else self.pipeline.config.detector.kind}"
            + (f", cameras {names}" if names else "")
        )
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers
        self._active = True
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._wake:
            self._active = False
            for camera in self.cameras:
                camera.health.dropped_inactive += len(camera.pending)
                camera.pending.clear()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._release()
        return super().on_shutdown(state)

    def _configure(self) -> None:
        if self._start_error:
            raise ConfigError(self._start_error)
        try:
            settings = node_settings(self)
            config = pipeline_config(self)
        except ParameterException as e:
            raise ConfigError(str(e)) from e
        topics = camera_topics(settings["cameras"], settings["compressed"])
        self.settings = settings
        first = Pipeline(config)
        detector = None if settings["given_detections"] else self._build_detector(first)  # shared by all
        pipelines = [first] + [
            Pipeline(config, model=first.model, detector=detector, segmenter=first.segmenter) for _ in topics[1:]
        ]
        depth = settings["queue_size"] if settings["process_all_frames"] else 1
        self.cameras = [
            Camera(t, p, deque(maxlen=depth), StampBuffer(settings["detections_buffer"]))
            for t, p in zip(topics, pipelines, strict=True)
        ]
        self._create_topics()
        self._stop = False
        self._worker = threading.Thread(target=self._work, name="masa_inference", daemon=True)
        self._worker.start()

    def _create_topics(self) -> None:
        """Publishers (lifecycle ones publish only while active), subscriptions, the diagnostics timer."""
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)  # health, whatever the state
        self._entities = [self.diag_pub]
        for camera in self.cameras:
            self._create_camera_topics(camera)
        self._entities.append(self.create_timer(self.settings["diagnostics_period"], self._report))

    def _create_camera_topics(self, camera: Camera) -> None:
        reliable = QoSProfile(depth=self.settings["queue_size"], reliability=ReliabilityPolicy.RELIABLE)
        image_qos = reliable if self.settings["process_all_frames"] else qos_profile_sensor_data
        topic, pubs = camera.topics.topic, camera.publishers
        # publishers first: whoever sees our subscriptions can rely on the outputs existing
        pubs["tracks"] = self.create_lifecycle_publisher(TrackedObjectArray, topic("tracks"), 10)
        pubs["debug"] = self.create_lifecycle_publisher(Image, topic("debug_image"), qos_profile_sensor_data)
        pubs["instance"] = self.create_lifecycle_publisher(Image, topic("instance_ids"), qos_profile_sensor_data)
        if self.vision_msgs:
            kind = self.vision_msgs.Detection2DArray
            pubs["detections"] = self.create_lifecycle_publisher(kind, topic("detections"), 10)
        self._entities += pubs.values()
        kind = CompressedImage if camera.topics.compressed else Image
        on_image = lambda msg, c=camera: self._on_image(c, msg)  # noqa: E731
        self._entities.append(self.create_subscription(kind, camera.topics.image, on_image, image_qos))
        if self.settings["given_detections"]:
            on_dets = lambda msg, c=camera: self._on_detections(c, msg)  # noqa: E731
            self._entities.append(self.create_subscription(DetectionArray, topic("detections_in"), on_dets, reliable))

    def _release(self) -> None:
        """Stop the worker, destroy what configure created and drop the model (idempotent)."""
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=30.0)
            self._worker = None
        for entity in self._entities:
            if isinstance(entity, LifecyclePublisher):
                self.destroy_lifecycle_publisher(entity)
            elif isinstance(entity, Publisher):
                self.destroy_publisher(entity)
            elif isinstance(entity, Timer):
                self.destroy_timer(entity)
            else:
                self.destroy_subscription(entity)
        self._entities = []
        with self._wake:
            self.cameras = []
        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            torch.cuda.empty_cache()

    def start(self) -> bool:
        """Configure and activate (``autostart``); False, with :attr:`last_error`, when either fails."""
        self._quiet_failures = True
        try:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                return False
            return self.trigger_activate() == TransitionCallbackReturn.SUCCESS
        finally:
            self._quiet_failures = False

    @staticmethod
    def _build_detector(pipeline: Pipeline) -> Detector | None:
        """Build the configured detector now, so a missing detections file or weights file fails
        configure instead of failing every frame; None for the model's own head (``masa_head``)."""
        kind = pipeline.config.detector.kind
        if kind == MASA_HEAD:
            return None
        try:
            return pipeline.detector
        except (OSError, ValueError, TypeError) as e:
            raise ConfigError(f"cannot build detector.kind {kind!r}: {e}") from e

    # --- callbacks (executor thread): never block on inference -------------------------------
    def _on_image(self, camera: Camera, msg: Image | CompressedImage) -> None:
        with self._wake:
            camera.health.received += 1
            if not self._active:
                camera.health.dropped_inactive += 1
                return
            if len(camera.pending) == camera.pending.maxlen:
                camera.health.dropped_stale += 1
            camera.pending.append((msg, time.perf_counter()))
            self._wake.notify()

    def _on_detections(self, camera: Camera, msg: DetectionArray) -> None:
        if not self._active:
            return
        with self._lock:
            camera.detections.put(stamp_ns(msg.header), detections_from_msg(msg))
        with self._wake:
            self._wake.notify()

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Route each changed parameter to its owner: node settings, or every camera's pipeline."""
        node_changes, pipeline_changes, others = split_changes(params)
        unknown = [name for name in others if not self.has_parameter(name)]  # rclpy's own (use_sim_time) pass
        if unknown:
            return SetParametersResult(successful=False, reason=f"unknown parameter {unknown[0]!r}")
        if not self.cameras:  # unconfigured: anything of the right type; configure validates it all
            return SetParametersResult(successful=True)
        fixed = [name for name in (*node_changes, *pipeline_changes) if not is_live(name)]
        if fixed:
            return SetParametersResult(
                successful=False,
                reason=f"parameter {fixed[0]!r} is read-only while the node is configured (cleanup first)",
            )
        if pipeline_changes:
            try:
                cfg = pipeline_config(self, pipeline_changes)
            except ConfigError as e:
                return SetParametersResult(successful=False, reason=str(e))
            for camera in self.cameras:
                camera.pipeline.configure_tracker(cfg.tracker)
        self.settings.update(node_changes)
        return SetParametersResult(successful=True)

    def note_callback_error(self, error: BaseException) -> None:
        """Count and log a callback or service that raised (the spin loop keeps going)."""
        self.callback_errors += 1
        self.get_logger().error(
            f"a callback failed ({self.callback_errors} so far): {type(error).__name__}: {error}",
            throttle_duration_sec=5.0,
        )

    # --- worker thread --------------------------------------------------------------------
    def _next_batch(self) -> list[_Item] | None:
        """The next image of every camera that has one ready (with its detections when given), or
        None when stopping. Once one is ready, the other cameras' images have ``batch_window`` seconds
        to come, so that images that arrive close together go through the model together."""
        with self._wake:
            batch: list[_Item] = []
            deadline = 0.0
            while not self._stop:
                waiting = self._gather(batch)
                now = time.perf_counter()
                if batch and not deadline:
                    deadline = now + (self.settings["batch_window"] if len(self.cameras) > 1 else 0.0)
                if batch and (len(batch) == len(self.cameras) or now >= deadline):
                    return batch
                idle = 0.01 if waiting else 0.1
                self._wake.wait(timeout=min(deadline - now, idle) if batch else idle)
        return None

    def _gather(self, batch: list[_Item]) -> bool:
        """Add the next image of each camera that has none in ``batch`` yet (caller holds _wake);
        True when an image waits for its detections."""
        waiting = False
        present = {id(item.camera) for item in batch}
        for camera in self.cameras:
            if id(camera) in present:
                continue
            item = self._take(camera)
            if item is not None:
                camera.health.in_progress = 1
                batch.append(item)
            waiting = waiting or (item is None and bool(camera.pending))
        return waiting

    def _take(self, camera: Camera) -> _Item | None:
        """The camera's next image, once its detections are here when given (caller holds _wake)."""
        while camera.pending:
            msg, received = camera.pending[0]
            if not self.settings["given_detections"]:
                camera.pending.popleft()
                return _Item(camera, msg, received, None)
            with self._lock:
                dets = camera.detections.take(stamp_ns(msg.header))
            if dets is not None:
                camera.pending.popleft()
                return _Item(camera, msg, received, dets)
            if time.perf_counter() - received <= self.settings["detections_wait"]:
                return None
            camera.pending.popleft()
            camera.health.no_detections += 1
        return None

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._process_batch(batch)
            finally:
                for item in batch:
                    item.camera.health.in_progress = 0
            if not self.context.ok():  # shutting down: publishers are gone
                return

    def _guarded(self, camera: Camera, fn: Any, *args: Any) -> Any:
        """``fn(*args)``, a failure counted on ``camera`` and logged (None then): one bad frame never
        ends the worker."""
        try:
            return fn(*args)
        except OversizeImageError as e:
            camera.health.oversize_images += 1
            self.get_logger().warning(f"image dropped: {e}", throttle_duration_sec=5.0)
        except (ImageConversionError, FrameError) as e:
            camera.health.invalid_images += 1
            self.get_logger().warning(f"image dropped: {e}", throttle_duration_sec=5.0)
        except Exception:  # keep tracking whatever one frame did; the traceback goes to the log
            if self.context.ok():
                camera.health.errors += 1
                self.get_logger().error(f"frame failed:\n{traceback.format_exc()}", throttle_duration_sec=5.0)
        return None

    def _process_batch(self, batch: list[_Item]) -> None:
        """Decode, track (the cameras' frames together) and publish; failures counted per camera."""
        limit = self.settings["max_image_pixels"]
        items, frames = [], []
        for item in batch:
            decode = compressed_to_rgb if isinstance(item.msg, CompressedImage) else image_to_rgb
            frame = self._guarded(item.camera, decode, item.msg, limit)
            if frame is not None:
                items.append(item)
                frames.append(frame)
        size = self.settings["max_batch"]
        for start in range(0, len(items), size):
            self._track_and_publish(items[start : start + size], frames[start : start + size])

    def _track_and_publish(self, items: list[_Item], frames: list[Any]) -> None:
        """Track the decoded frames (of different cameras) together and publish each camera's tracks."""
        results = self._track_together(items, frames) if len(items) > 1 else None
        if results is None:
            for item, frame in zip(items, frames, strict=True):
                self._guarded(item.camera, self._process_one, item, frame)
            return
        for item, frame, result in zip(items, frames, results, strict=False):  # [] after a failure
            item.camera.health.batched += 1
            self._guarded(item.camera, self._publish, item, frame, result)

    def _track_together(self, items: list[_Item], frames: list[Any]) -> list[Any] | None:
        """The cameras' frames through one backbone and adapter call. None for a bad frame (checked
        before anything changed: then each alone, the bad one counted); [] after another failure."""
        first, *others = [i.camera.pipeline for i in items]
        try:
            return first.process_streams(others, frames, [i.dets for i in items], [_stamp(i.msg) for i in items])
        except FrameError:
            return None
        except Exception:
            if self.context.ok():
                for item in items:
                    item.camera.health.errors += 1
                self.get_logger().error(f"frames failed:\n{traceback.format_exc()}", throttle_duration_sec=5.0)
            return []

    def _process_one(self, item: _Item, frame: Any) -> None:
        result = item.camera.pipeline.process(frame, item.dets, stamp=_stamp(item.msg))
        self._publish(item, frame, result)

    def _publish(self, item: _Item, frame: Any, result: Any) -> None:
        camera, header = item.camera, item.msg.header
        pubs, health = camera.publishers, camera.health
        height, width = frame.shape[:2]
        pubs["tracks"].publish(tracks_to_msg(result.tracks, header, width, height))
        if "detections" in pubs:
            pubs["detections"].publish(tracks_to_detection2d(result.tracks, header, self.vision_msgs))
        if self.settings["publish_instance_image"] and camera.pipeline.segmenter is not None:
            pubs["instance"].publish(instance_image(result.tracks, header, width, height))
        if self.settings["publish_debug_image"]:
            pubs["debug"].publish(rgb_to_image(self.painter.draw(frame, result.tracks), header))
        health.processed += 1
        health.latency_s.append(time.perf_counter() - item.received)
        for stage, seconds in result.timings.items():
            health.stage_s[stage].append(seconds)

    # --- diagnostics ----------------------------------------------------------------------
    def _report(self) -> None:
        statuses = [self._camera_status(camera) for camera in self.cameras]
        self.diag_pub.publish(DiagnosticArray(header=_header(self), status=statuses))

    def _camera_status(self, camera: Camera) -> DiagnosticStatus:
        """One camera's health: its counters, latency and stage times, the shared model."""
        h, pipeline = camera.health, camera.pipeline
        values = {
            "images received": h.received,
            "images processed": h.processed,
            "dropped (stale)": h.dropped_stale,
            "dropped (inactive)": h.dropped_inactive,
            "dropped (invalid image)": h.invalid_images,
            "dropped (oversize image)": h.oversize_images,
            "dropped (no detections)": h.no_detections,
            "images queued": len(camera.pending),
            "images in progress": h.in_progress,
            "images batched with other cameras": h.batched,
            "detections buffered": len(camera.detections),
            "detections without image": camera.detections.evicted,
            "boxes dropped (invalid)": pipeline.stats.boxes_dropped,
            "stamps not advancing (repeated, backwards or invalid)": getattr(pipeline.tracker, "time_faults", 0),
            "errors": h.errors,
            "callback errors": self.callback_errors,
            "latency ms (mean of last 100)": _mean_ms(h.latency_s),
        }
        values.update({f"{s} ms": _mean_ms(d) for s, d in h.stage_s.items()})
        values["model"] = describe(pipeline.model)  # variant, backend (parts in torch), precision, size
        failures = [
            f"{n} {what}" for n, what in ((h.errors, "frames failed"), (self.callback_errors, "callbacks failed")) if n
        ]
        name = f"{self.get_name()}: tracking" + (f" {camera.topics.name}" if camera.topics.name else "")
        return DiagnosticStatus(
            level=DiagnosticStatus.WARN if failures else DiagnosticStatus.OK,
            name=name,
            message=", ".join(failures) or ("ok" if self._active else "inactive"),
            hardware_id=str(pipeline.model.device),
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )

    def destroy_node(self) -> None:
        self._active = False
        self._release()
        super().destroy_node()


def _stamp(msg: Image | CompressedImage) -> float | None:
    """The image's stamp in seconds, None when unset (0)."""
    stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
    return stamp if stamp > 0 else None


def _optional_vision_msgs() -> Any:
    """``vision_msgs.msg`` when installed (it is not on PyPI, so not here), else None."""
    try:
        import vision_msgs.msg
    except ImportError:
        return None
    return vision_msgs.msg


def _mean_ms(values: deque) -> str:
    return f"{1000.0 * sum(values) / len(values):.1f}" if values else "n/a"


def _header(node: Node) -> Header:
    return Header(stamp=node.get_clock().now().to_msg())


def main(args: list[str] | None = None) -> int:
    """Entry point of the ``tracker_node`` executable. With ``autostart`` (the default) the node
    configures and activates itself, and bad parameters end it with exit code 2 and one line; with
    ``autostart:=false`` it waits, unconfigured, for a lifecycle manager (a failed configure keeps it up)."""
    rclpy.init(args=args)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # bad images are counted and logged throttled
    node = TrackerNode()
    if node.autostart and not node.start():
        node.get_logger().fatal(f"refusing to start: {node.last_error}")
        node.destroy_node()
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        spin_guarded(executor, node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def spin_guarded(executor: Executor, node: TrackerNode) -> None:
    """``executor.spin()``, except that a callback or service that raises (a malformed request rclpy
    itself cannot parse, say) is logged and counted on /diagnostics instead of ending the node.
    Returns when the context shuts down or the node reaches the finalized state (``shutdown``)."""
    while executor.context.ok() and node.state != "finalized":
        try:
            executor.spin_once(timeout_sec=0.5)
        except (KeyboardInterrupt, ExternalShutdownException):
            raise
        except Exception as e:
            if not executor.context.ok():
                return
            node.note_callback_error(e)


if __name__ == "__main__":
    sys.exit(main())
