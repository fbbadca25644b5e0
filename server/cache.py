"""A bounded, thread-safe least-recently-used cache of check results."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Hashable, Optional


class ResultCache:
    """Keeps the `capacity` most recently used entries; `capacity` 0 stores nothing."""

    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Optional[dict]:
        """A copy of the entry for `key`, or None; a hit makes the entry the most recent."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return dict(entry)

    def put(self, key: Hashable, value: dict) -> None:
        """Store a copy of `value`, evicting the least recently used entry when full."""
        if self.capacity == 0:
            return
        with self._lock:
            self._entries[key] = dict(value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
