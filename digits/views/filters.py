"""Template filters for times, durations and epochs."""

from __future__ import annotations

import time

from flask import Flask

from digits.folders.model import epoch_label


def isotime(ts: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts)) if ts else ""


def shorttime(ts: float | None) -> str:
    return time.strftime("%b %d, %H:%M:%S", time.localtime(ts)) if ts else "—"


def duration(seconds: float | None) -> str:
    """3725 -> '1h 2m 5s'; None -> '—'."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def epoch(value: float | None) -> str:
    """An epoch as people read it and snapshot files name it: 3.0 -> '3', 4.0638 -> '4.06'."""
    return "—" if value is None else epoch_label(value)


def init_app(app: Flask) -> None:
    app.add_template_filter(epoch)
    app.add_template_filter(isotime)
    app.add_template_filter(shorttime)
    app.add_template_filter(duration)
