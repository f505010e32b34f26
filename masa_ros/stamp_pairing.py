"""Pairing camera images with external detections by header stamp, in bounded memory."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

T = TypeVar("T")


class StampBuffer(Generic[T]):
    """Items keyed by stamp (nanoseconds), oldest evicted first beyond ``capacity``.

    ``evicted`` counts items pushed out before anyone took them: detections whose image never
    came, or that came too late.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.evicted = 0
        self._items: OrderedDict[int, T] = OrderedDict()

    def put(self, stamp_ns: int, item: T) -> None:
        self._items[stamp_ns] = item
        self._items.move_to_end(stamp_ns)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
            self.evicted += 1

    def take(self, stamp_ns: int) -> T | None:
        """The item with exactly this stamp, removed from the buffer; None if there is none."""
        return self._items.pop(stamp_ns, None)

    def __len__(self) -> int:
        return len(self._items)
