"""A one-line progress bar on stderr for the command-line tools."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, total: int, label: str, stream=sys.stderr):
        self.total = max(1, total)
        self.label = label
        self.stream = stream
        self.started = time.perf_counter()
        self._last = 0.0

    def update(self, done: int | float, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        fraction = min(1.0, done / self.total) if done > 1 or isinstance(done, int) else done
        width = 30
        filled = int(fraction * width)
        rate = done / (now - self.started) if isinstance(done, int) and now > self.started else 0
        extra = f" {done}/{self.total} ({rate:,.0f}/s)" if isinstance(done, int) else ""
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {fraction:6.1%}{extra}")
        self.stream.flush()

    def close(self, message: str = "") -> None:
        self.stream.write(f"\r{self.label}: {message or 'done'} in {time.perf_counter() - self.started:.1f}s\033[K\n")
        self.stream.flush()
