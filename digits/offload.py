"""Heavy work (password hashing, unpacking a zip, decoding an image) kept off the web server's event loop.

Under gevent every request is a greenlet of one OS thread, so a CPU-bound call stalls every other request
until it returns. `off_loop` runs it on one of gevent's native threads instead and waits cooperatively.
The function must not use gevent-patched objects (locks, sockets, SQLAlchemy sessions): give it plain data.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
# The niceness of the threads doing heavy work: the event loop (nice 0) comes first, so a flood of wrong
# passwords or a big upload slows itself, not everyone else's pages. Linux sets it per thread.
HEAVY_NICE = 10


def _at_low_priority(fn: Callable[..., T], *args, **kwargs) -> T:
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) < HEAVY_NICE:
            os.setpriority(os.PRIO_PROCESS, 0, HEAVY_NICE)
    except OSError:  # a platform without per-thread priorities: the work runs at normal priority
        pass
    return fn(*args, **kwargs)


def native_lock():
    """A lock of the operating system's threads, for work done off the loop: gevent's patched Lock would block
    the event loop's thread instead of the native thread that waits on it."""
    from gevent import monkey

    if monkey.is_module_patched("threading"):
        return monkey.get_original("threading", "Lock")()
    return threading.Lock()


def off_loop(fn: Callable[..., T], *args, **kwargs) -> T:
    """fn(*args, **kwargs) on a native thread of lower priority when gevent patched this process; its result
    or its exception."""
    from gevent import monkey

    if monkey.is_module_patched("threading"):
        import gevent

        return gevent.get_hub().threadpool.spawn(_at_low_priority, fn, *args, **kwargs).get()
    # Not patched (in-process tests with async_mode threading): each request has its own real thread already.
    return fn(*args, **kwargs)
