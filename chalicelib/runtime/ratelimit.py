"""A per-key event limiter for one container: at most N events per key in each window, and a count
of those left out, reported with the next one admitted. In memory, so each Lambda container (and
the local stack's process) limits on its own: a bound on cost, not an exact quota."""
from __future__ import annotations
import collections
import threading
from typing import Hashable, Optional


class WindowLimiter:
    def __init__(self, per_window: int, window_seconds: float, max_keys: int = 10_000):
        self.per_window, self.window_seconds, self.max_keys = per_window, window_seconds, max_keys
        # key -> [window start, admitted in the window, left out since the last admitted]
        self._windows: "collections.OrderedDict[Hashable, list]" = collections.OrderedDict()
        self._lock = threading.Lock()

    def admit(self, key: Hashable, now: float) -> Optional[int]:
        """None when this event is to be left out; otherwise how many were left out before it."""
        with self._lock:
            window = self._windows.pop(key, None) or [now, 0, 0]
            if now - window[0] >= self.window_seconds:
                window[0], window[1] = now, 0
            self._windows[key] = window
            while len(self._windows) > self.max_keys:
                self._windows.popitem(last=False)
            if window[1] >= self.per_window:
                window[2] += 1
                return None
            window[1] += 1
            left_out, window[2] = window[2], 0
            return left_out
