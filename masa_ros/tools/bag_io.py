"""rosbag2 files (sqlite3 or MCAP) without a ROS install, through ``rosbags``.

Our message types are registered in the rosbags type store from the package's own ``.msg`` files,
so bags written here carry full schemas and ROS 2 tools read them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from masa_core.errors import MasaError

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
TRACKS_TYPE = "masa_ros/msg/TrackedObjectArray"


class BagError(MasaError, OSError):
    """A bag cannot be read or lacks what was asked of it."""


def _msg_dir() -> Path:
    """The package's msg/ folder: beside the source tree, or share/masa_ros/msg of an install."""
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "msg", *(p / "share" / "masa_ros" / "msg" for p in here.parents)]
    for d in candidates:
        if (d / "TrackedObjectArray.msg").is_file():
            return d
    raise BagError(f"cannot find masa_ros .msg files near {here}")


def typestore() -> Typestore:
    """ROS 2 Kilted's standard types plus masa_ros's messages."""
    store = get_typestore(Stores.ROS2_KILTED)
    types: dict[str, Any] = {}
    for path in sorted(_msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"masa_ros/msg/{path.stem}"))
    store.register(types)
    return store


def open_writer(path: str | Path, storage: str = "mcap") -> Writer:
    """A rosbag2 writer (``mcap`` or ``sqlite3``); the folder must not exist yet."""
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    path = Path(path)
    if path.exists():
        raise BagError(f"bag {path} already exists; choose a new folder")
    return Writer(path, version=9, storage_plugin=plugin)


def read_messages(
    path: str | Path, topic: str | None = None, msgtypes: tuple[str, ...] = ()
) -> Iterator[tuple[str, str, int, bytes]]:
    """(topic, msgtype, timestamp ns, CDR bytes) of a bag's messages in time order, optionally filtered."""
    try:
        reader = Reader(Path(path))
        reader.open()
    except Exception as e:  # rosbags raises its own errors for missing/corrupt metadata or storage
        raise BagError(f"cannot read bag {path}: {e}") from e
    try:
        conns = [
            c
            for c in reader.connections
            if (topic is None or c.topic == topic) and (not msgtypes or c.msgtype in msgtypes)
        ]
        if not conns:
            have = ", ".join(f"{c.topic} [{c.msgtype}]" for c in reader.connections) or "nothing"
            want = topic or " or ".join(msgtypes)
            raise BagError(f"bag {path} has no {want}; it has {have}")
        try:
            for conn, stamp, raw in reader.messages(connections=conns):
                yield conn.topic, conn.msgtype, stamp, bytes(raw)
        except BagError:
            raise
        except Exception as e:
            raise BagError(f"bag {path} is corrupt: {e}") from e
    finally:
        reader.close()


def read_tracks(path: str | Path, topic: str | None = None) -> list[Any]:
    """The TrackedObjectArray messages of a bag, decoded, in recorded order."""
    store = typestore()
    return [store.deserialize_cdr(raw, msgtype) for _, msgtype, _, raw in read_messages(path, topic, (TRACKS_TYPE,))]
