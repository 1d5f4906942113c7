"""Sign-in throttling: after `max_failures` wrong passwords for one name, or from one address, within `window_s`
seconds, further attempts are refused (429 with Retry-After) until the oldest failure leaves the window.

An attempt counts as a failure from the moment it starts and is taken back when the password was right, so a
burst of concurrent guesses cannot slip past the limit while their hashes are still being checked. The counts
live in the server's memory: a restart forgets them, which costs an attacker a restart they cannot cause.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

# Past this many tracked keys, keys with nothing left in the window are dropped (guesses at random names).
PRUNE_ABOVE = 10_000


@dataclass(frozen=True)
class Refusal:
    retry_after: int  # whole seconds, for the Retry-After header
    first: bool  # the first refusal of this lockout (worth one audit line; later ones are not)


class LoginThrottle:
    def __init__(self, max_failures: int, window_s: float, clock=time.monotonic):
        self.max_failures = max(1, max_failures)
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._reported: set[str] = set()
        self._lock = threading.Lock()

    @staticmethod
    def _keys(name: str, address: str | None) -> list[str]:
        return [f"name:{name.lower()}", f"addr:{address or '-'}"]

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            self._reported.discard(key)
        return times

    def begin(self, name: str, address: str | None) -> Refusal | None:
        """A Refusal when this name or address has used up its attempts; else the attempt is counted and None."""
        now = self.clock()
        with self._lock:
            wait = 0.0
            first = False
            for key in self._keys(name, address):
                times = self._recent(key, now)
                if len(times) >= self.max_failures:
                    # Free again when enough of the oldest failures have left the window.
                    wait = max(wait, times[len(times) - self.max_failures] + self.window_s - now)
                    if key not in self._reported:
                        self._reported.add(key)
                        first = True
            if wait > 0:
                return Refusal(retry_after=max(1, math.ceil(wait)), first=first)
            if len(self._failures) > PRUNE_ABOVE:
                for key in list(self._failures):
                    self._recent(key, now)
            for key in self._keys(name, address):
                self._failures.setdefault(key, deque()).append(now)
            return None

    def succeeded(self, name: str, address: str | None) -> None:
        """The password was right: forget the name's failures and take back this attempt from the address."""
        with self._lock:
            name_key, addr_key = self._keys(name, address)
            self._failures.pop(name_key, None)
            self._reported.discard(name_key)
            times = self._failures.get(addr_key)
            if times:
                times.pop()
