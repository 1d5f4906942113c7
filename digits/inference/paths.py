"""Checking a list's server paths with digits.datapaths.check_server_path, thousands at a time (torch-free).

A list's images usually share a few folders. The real path of folder/name, when `name` is a regular file and
not a link, is realpath(folder)/name; so each folder is checked once with check_server_path (want_dir=True)
and each file costs one lstat. Links, odd names and every refusal go through check_server_path itself, so a
refused path gets its own message.
"""

from __future__ import annotations

import os
import stat

from digits.config import Settings
from digits.datapaths import PathRefused, check_server_path


class PathChecker:
    """check_server_path(path, settings, want_dir=False) for many paths, with the folders' checks remembered."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._folders: dict[str, str | None] = {}  # folder -> its real path, None when refused

    def _full(self, path: str) -> str:
        return check_server_path(path, self.settings, want_dir=False)

    def check(self, path: str) -> str:
        """The real path of a file this server may read; PathRefused with check_server_path's reason."""
        if not path or "\x00" in path or not os.path.isabs(path):
            return self._full(path)
        folder, name = os.path.split(path)
        if name in ("", ".", ".."):
            return self._full(path)
        if folder not in self._folders:
            try:
                self._folders[folder] = check_server_path(folder, self.settings, want_dir=True)
            except PathRefused:
                self._folders[folder] = None
        real_folder = self._folders[folder]
        if real_folder is None:
            return self._full(path)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return self._full(path)  # a missing file gets check_server_path's answer, the same as an outside one
        if not stat.S_ISREG(mode):
            return self._full(path)  # a link (followed and checked there), a folder, a device...
        return os.path.join(real_folder, name)
