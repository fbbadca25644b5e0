"""A bounded (in entries and in bytes), thread-safe least-recently-used cache of check results."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Hashable, Optional


ENTRY_OVERHEAD = 512  # bytes counted per entry besides its strings (keys, numbers, dicts)


def entry_bytes(value: dict) -> int:
    """About how many bytes an entry holds: its string values (an explain overlay is ~600 KiB) plus overhead."""
    return ENTRY_OVERHEAD + sum(len(item) for item in value.values() if isinstance(item, (str, bytes)))


class ResultCache:
    """Keeps the most recently used entries, at most `capacity` of them and `max_bytes` in all (`entry_bytes`);
    `capacity` 0 stores nothing."""

    def __init__(self, capacity: int, max_bytes: Optional[int] = None):
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict = OrderedDict()
        self._sizes: dict = {}
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
        """Store a copy of `value`, evicting least recently used entries while over either bound (an entry
        larger than `max_bytes` is not stored)."""
        size = entry_bytes(value)
        if self.capacity == 0 or (self.max_bytes is not None and size > self.max_bytes):
            return
        with self._lock:
            self.bytes += size - self._sizes.get(key, 0)
            self._entries[key] = dict(value)
            self._sizes[key] = size
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity or (self.max_bytes is not None and self.bytes > self.max_bytes):
                evicted, _ = self._entries.popitem(last=False)
                self.bytes -= self._sizes.pop(evicted)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
