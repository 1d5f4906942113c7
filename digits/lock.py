"""One server per jobs directory, enforced with an OS file lock that dies with its holder."""

from __future__ import annotations

import fcntl
import json
import os
import time

LOCK_NAME = ".digits-server.lock"


class JobsDirBusy(RuntimeError):
    """Another live server holds the jobs directory."""


class JobsDirLock:
    """An exclusive flock on <jobs_dir>/.digits-server.lock holding the owner's pid and port.

    The kernel drops the lock when the holder exits, however it exits, so a lock
    file left behind by a dead server never blocks a new one.
    """

    def __init__(self, jobs_dir: str):
        self.path = os.path.join(jobs_dir, LOCK_NAME)
        self._fd: int | None = None

    def acquire(self, host: str, port: int) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder(fd)
            os.close(fd)
            raise JobsDirBusy(
                f"jobs directory {os.path.dirname(self.path)} is already in use by another DIGITS server "
                f"(pid {holder.get('pid', '?')}, port {holder.get('port', '?')}); "
                "stop that server or start this one with another --jobs-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": host, "port": port, "since": time.time()}).encode())
        os.fsync(fd)
        self._fd = fd

    @staticmethod
    def _read_holder(fd: int) -> dict:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            return json.loads(os.read(fd, 4096) or b"{}")
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
