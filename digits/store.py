"""The jobs directory: one folder per job with its job.json, written atomically."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import tempfile
import threading

from digits.job import Job, is_job_id, new_job_id

log = logging.getLogger(__name__)
# Files every job folder may hold, whatever its kind (the kinds' own: digits/folders/).
JOB_FILE = "job.json"
METRICS_FILE = "metrics.jsonl"  # every metric its workers reported, one JSON object a line
HARDWARE_FILE = "hardware.jsonl"  # the hardware samples taken while it ran
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
RESERVE_TRIES = 1000


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


def free_bytes(path: str) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in DISK_FULL


def write_problem(what: str, error: OSError, folder: str) -> str:
    """What could not be written and why, in words: a full disk is said to be one."""
    if error.errno in DISK_FULL:
        free = free_bytes(folder)
        left = f"; {free:,} bytes free" if free is not None else ""
        return f"the disk holding the jobs folder is full: could not write {what}{left}"
    return f"could not write {what}: {error.strerror or error}"


class JobWriteError(OSError):
    """A file of the jobs folder could not be written; str() names the file and says why (a full disk, ...)."""

    def __init__(self, what: str, error: OSError, folder: str):
        super().__init__(error.errno, write_problem(what, error, folder))
        self.message = self.strerror
        self.disk_full = error.errno in DISK_FULL

    def __str__(self) -> str:
        return self.message


class JobStore:
    """Jobs in memory, each backed by jobs/<id>/job.json; the files are the source of truth."""

    def __init__(self, jobs_dir: str):
        self.jobs_dir = os.path.abspath(jobs_dir)
        os.makedirs(self.jobs_dir, exist_ok=True)
        self._jobs: dict[str, Job] = {}
        self._reserved: set[str] = set()  # folders created by reserve() whose job is not added yet
        # Job folders found at start whose job.json could not be read: folder name -> reason. Left as they are.
        self.unreadable: dict[str, str] = {}
        self._lock = threading.RLock()

    def job_dir(self, job_id: str) -> str:
        if not is_job_id(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return os.path.join(self.jobs_dir, job_id)

    def load_all(self) -> list[Job]:
        """Read every job.json; a file that cannot be read is logged, listed in `unreadable` with the reason,
        and left on disk as it is."""
        loaded = []
        for entry in sorted(os.listdir(self.jobs_dir)):
            folder = os.path.join(self.jobs_dir, entry)
            if not is_job_id(entry) or not os.path.isdir(folder):
                continue
            path = os.path.join(folder, JOB_FILE)
            try:
                with open(path) as fh:
                    data = json.load(fh)
                job = Job.from_dict(data)
                if job.id != entry:
                    raise ValueError(f"its id {job.id!r} does not match its folder")
            except FileNotFoundError:
                self._unreadable(entry, path, "it has no job.json")
                continue
            except OSError as e:
                self._unreadable(entry, path, f"job.json cannot be read ({e.strerror or e})")
                continue
            except json.JSONDecodeError as e:
                self._unreadable(entry, path, f"job.json is not valid JSON ({e})")
                continue
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                detail = f"field {e} is missing" if isinstance(e, KeyError) else str(e)
                self._unreadable(entry, path, f"job.json is not a job this version reads ({detail})")
                continue
            self._jobs[job.id] = job
            loaded.append(job)
        return loaded

    def _unreadable(self, entry: str, path: str, reason: str) -> None:
        log.warning("skipping job %s: cannot load %s: %s", entry, path, reason)
        self.unreadable[entry] = reason

    def reserve(self) -> str:
        """A new job id whose folder this call created, exclusively: no other job can own it. Add the job with
        add(), or give the folder back with release()."""
        for _ in range(RESERVE_TRIES):
            job_id = new_job_id()
            try:
                os.mkdir(self.job_dir(job_id))
            except FileExistsError:
                continue  # another job took this id: draw again, never share its folder
            except OSError as e:
                raise JobWriteError("a new job folder", e, self.jobs_dir) from None
            with self._lock:
                self._reserved.add(job_id)
            return job_id
        raise JobWriteError("a new job folder", OSError(errno.EEXIST, "no free job id"), self.jobs_dir)

    def release(self, job_id: str) -> None:
        """Remove a reserved folder whose job was never added (the request that made it failed)."""
        with self._lock:
            if job_id not in self._reserved or job_id in self._jobs:
                return
            self._reserved.discard(job_id)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def add(self, job: Job) -> None:
        """Store a new job in the folder reserve() made for it, or in a new folder; nothing is kept when its
        job.json cannot be written (JobWriteError)."""
        with self._lock:
            folder = self.job_dir(job.id)
            if job.id in self._jobs or os.path.exists(os.path.join(folder, JOB_FILE)):
                raise FileExistsError(f"job {job.id} already exists")
            created = False
            if job.id not in self._reserved:
                try:
                    os.mkdir(folder)
                    created = True
                except FileExistsError:
                    pass  # made by a caller that wrote its files first (no reservation): kept as before
                except OSError as e:
                    raise JobWriteError(f"the folder of job {job.id}", e, self.jobs_dir) from None
            self._jobs[job.id] = job
            try:
                self.save(job)
            except BaseException:
                self._jobs.pop(job.id, None)
                if created:
                    shutil.rmtree(folder, ignore_errors=True)
                raise
            self._reserved.discard(job.id)

    def save(self, job: Job) -> None:
        """Write the job's job.json; JobWriteError (an OSError) names the file when it cannot be written."""
        with self._lock:
            if job.id in self._jobs:
                folder = self.job_dir(job.id)
                try:
                    write_json_atomic(os.path.join(folder, JOB_FILE), job.to_dict())
                except OSError as e:
                    raise JobWriteError(f"{job.id}/{JOB_FILE}", e, folder) from None

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
