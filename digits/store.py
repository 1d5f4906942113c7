"""The jobs directory: one folder per job with its job.json, written atomically."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading

from digits.job import Job, is_job_id

log = logging.getLogger(__name__)
JOB_FILE = "job.json"


def write_json_atomic(path: str, data: dict) -> None:
    """Write JSON so a reader sees the old file or the new one, never half of either."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class JobStore:
    """Jobs in memory, each backed by jobs/<id>/job.json; the files are the source of truth."""

    def __init__(self, jobs_dir: str):
        self.jobs_dir = os.path.abspath(jobs_dir)
        os.makedirs(self.jobs_dir, exist_ok=True)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()

    def job_dir(self, job_id: str) -> str:
        if not is_job_id(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return os.path.join(self.jobs_dir, job_id)

    def load_all(self) -> list[Job]:
        """Read every job.json; a file that cannot be read is logged, left on disk as it is, and skipped."""
        loaded = []
        for entry in sorted(os.listdir(self.jobs_dir)):
            path = os.path.join(self.jobs_dir, entry, JOB_FILE)
            if not is_job_id(entry) or not os.path.isfile(path):
                continue
            try:
                with open(path) as fh:
                    job = Job.from_dict(json.load(fh))
                if job.id != entry:
                    raise ValueError(f"its id {job.id!r} does not match its folder")
            except (OSError, ValueError, KeyError, TypeError) as e:
                log.warning("skipping job %s: cannot load %s: %s", entry, path, e)
                continue
            self._jobs[job.id] = job
            loaded.append(job)
        return loaded

    def add(self, job: Job) -> None:
        """Store a new job; its folder may already hold files uploaded with its form."""
        with self._lock:
            if job.id in self._jobs or os.path.exists(os.path.join(self.job_dir(job.id), JOB_FILE)):
                raise FileExistsError(f"job {job.id} already exists")
            os.makedirs(self.job_dir(job.id), exist_ok=True)
            self._jobs[job.id] = job
            self.save(job)

    def save(self, job: Job) -> None:
        with self._lock:
            if job.id in self._jobs:
                write_json_atomic(os.path.join(self.job_dir(job.id), JOB_FILE), job.to_dict())

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.id)

    def forget(self, job_id: str) -> None:
        """Drop a job from memory; later saves of it write nothing."""
        with self._lock:
            self._jobs.pop(job_id, None)

    def remove_dir(self, job_id: str) -> None:
        """Delete a forgotten job's folder."""
        with self._lock:
            if job_id not in self._jobs:
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
