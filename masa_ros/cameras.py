"""The camera streams of one tracker node and their topics (the ``cameras`` parameter).

Without ``cameras`` the node has one camera whose topics are the node's own: ``image`` (or
``image/compressed``), ``detections_in``, ``tracks``, ``debug_image``, ``instance_ids``,
``detections``. Each ``cameras`` entry is an image topic, e.g. ``front/image``; one ending in
``/compressed`` (``front/image/compressed``) is subscribed as sensor_msgs/CompressedImage. The
camera's name is the topic's namespace (``front``: the topic without ``/compressed`` and without its
last name), and its outputs are that namespace's ``tracks``, ``debug_image``, ``instance_ids`` and
``detections``; its given detections come on ``<camera>/detections_in``.
"""

from __future__ import annotations

from dataclasses import dataclass

from masa_core import ConfigError

COMPRESSED = "/compressed"


@dataclass(frozen=True)
class CameraTopics:
    """One camera's name ('' for the node's single camera), image topic and whether it is compressed."""

    name: str
    image: str
    compressed: bool

    def topic(self, leaf: str) -> str:
        """The camera's topic ``leaf`` (``tracks``, ...): in its namespace, or the node's own."""
        return f"{self.name}/{leaf}" if self.name else leaf


def camera_topics(entries: list[str], compressed: bool) -> list[CameraTopics]:
    """The cameras of the ``cameras`` parameter (``compressed`` applies to the single camera only).
    Raises ``ConfigError`` for an empty entry, a repeated one, an entry without a namespace, and two
    entries whose outputs would share a topic."""
    if not entries:
        return [CameraTopics("", "image/compressed" if compressed else "image", compressed)]
    cameras: list[CameraTopics] = []
    by_name: dict[str, str] = {}
    for entry in entries:
        topic = entry.strip()
        if not topic.strip("/"):
            raise ConfigError(f"cameras: an empty entry ({entry!r}); each entry is an image topic, e.g. 'front/image'")
        if any(c.image == topic for c in cameras):
            raise ConfigError(f"cameras: {topic!r} is listed twice")
        is_compressed = topic.endswith(COMPRESSED)
        base = topic[: -len(COMPRESSED)] if is_compressed else topic
        name = base.rstrip("/").rpartition("/")[0]
        if not name.strip("/"):
            raise ConfigError(
                f"cameras: {topic!r} has no namespace to name the camera; "
                "use '<camera>/image' (or '<camera>/image/compressed'), its tracks go to '<camera>/tracks'"
            )
        if name in by_name:
            raise ConfigError(f"cameras: {by_name[name]!r} and {topic!r} would both publish {name}/tracks")
        by_name[name] = topic
        cameras.append(CameraTopics(name, topic, is_compressed))
    return cameras
