"""Logging to the console and to digits.log in the jobs directory."""

from __future__ import annotations

import logging
import logging.handlers
import os

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(jobs_dir: str, level: str = "INFO") -> None:
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler()
    console.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(console)
    os.makedirs(jobs_dir, exist_ok=True)
    to_file = logging.handlers.RotatingFileHandler(
        os.path.join(jobs_dir, "digits.log"), maxBytes=10 << 20, backupCount=3
    )
    to_file.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(to_file)
