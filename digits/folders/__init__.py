"""What a job folder holds, each fact once and torch-free: the file names of a dataset folder and a model
folder, and the code that reads and writes them. Web views, workers, downloads and inference all come here."""

from __future__ import annotations

import os
import stat


def file_in(folder: str, name: str | None) -> str | None:
    """`folder/name` when it is a regular file right inside `folder`: no subfolders, no links leading out.

    Names in job.json and in a worker's messages come from a process that may run a member's code, so the
    server reads no file of a job folder without this check."""
    if not name or not isinstance(name, str) or os.path.basename(name) != name or name in (".", ".."):
        return None
    path = os.path.join(folder, name)
    try:
        mode = os.lstat(path).st_mode  # a link is not followed: it is not a regular file
    except (OSError, ValueError):
        return None
    return path if stat.S_ISREG(mode) else None
