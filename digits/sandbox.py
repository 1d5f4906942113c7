"""What a worker may touch: decided by the web process, applied by the worker before it reads any input.

Workers (training, dataset, inference) run a member's PyTorch network and decode files people sent. They
must not reach the server's secrets (the session key, users.db, the audit log: all in the jobs folder) nor
other jobs' folders. The web process writes down a policy (`Confiner`): the worker's own job folder to
change, what it reads (its dataset, the data roots, the Python installation and system libraries), and a
private temporary folder. The worker applies it first thing (`apply`):

- every capability is dropped: a worker of a server started as root keeps uid 0 but none of root's powers,
  and cannot regain them (empty bounding set, locked securebits, no_new_privs);
- Landlock (digits/landlock.py) limits the files it can open to the policy's list, refuses TCP connects and
  binds, and scopes its signals and abstract sockets to itself; it cannot ptrace (read the memory of) the
  server or another worker either;
- its environment holds only what a worker needs, not the server's settings or its shell's credentials.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from typing import Any

from digits import landlock

log = logging.getLogger(__name__)

ENV_POLICY = "DIGITS_SANDBOX"
# What a worker keeps of the server's environment (names, and prefixes ending in "_").
ENV_KEEP = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONWARNINGS",
    "VIRTUAL_ENV",
    "LD_LIBRARY_PATH",
    "LC_",
    "CUDA_",
    "NVIDIA_",
    "NCCL_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "KMP_",
    "TORCH_",
    "PYTORCH_",
    "COVERAGE_",
)
# System folders a worker reads and runs programs and libraries from. /etc only in part: as uid 0 without
# capabilities a worker still owns root's files, /etc/shadow included.
SYSTEM_DIRS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/opt")
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/ssl/certs",
    "/etc/ca-certificates",
    "/etc/mime.types",
    "/etc/fonts",
    "/etc/os-release",
    "/etc/OpenCL",
    "/etc/alternatives",
)
PSEUDO_DIRS = ("/proc", "/sys")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
DEVICE_GLOBS = ("/dev/nvidia*", "/dev/nvidia-caps/*", "/dev/dri/*")
SHARED_MEMORY = "/dev/shm"  # POSIX semaphores and shared memory of multiprocessing's decode processes


class ConfinementError(Exception):
    """A worker cannot be given what it needs without reaching outside what it may; the message says why."""


@functools.cache
def landlock_abi() -> int:
    """The Landlock ABI of this kernel (0: none); checked once."""
    try:
        return landlock.abi_version()
    except OSError:
        return 0


def describe() -> str:
    abi = landlock_abi()
    if abi:
        return f"workers are confined with Landlock (ABI {abi}) and run without capabilities"
    return "this kernel has no Landlock: workers run without capabilities but can read what the server's user can"


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def grants_excluding(path: str, rights: int, excluded: Iterable[str]) -> list[tuple[str, int]]:
    """Rules granting `rights` beneath `path` but not beneath any excluded folder (Landlock only allows, so a
    folder that holds an excluded one is granted child by child)."""
    real = os.path.realpath(path)
    excluded = [os.path.realpath(e) for e in excluded]
    if any(_inside(real, e) for e in excluded):
        return []
    if not any(_inside(e, real) for e in excluded):
        return [(real, rights)] if os.path.exists(real) else []
    rules: list[tuple[str, int]] = []
    try:
        children = sorted(os.scandir(real), key=lambda entry: entry.name)
    except OSError:
        return []
    for child in children:
        rules += grants_excluding(child.path, rights, excluded)
    return rules


def _python_dirs() -> list[str]:
    """The interpreter's installation and every folder modules are imported from."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(sys.executable)}
    dirs.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout or site-packages
    dirs.update(p for p in sys.path if p and os.path.isabs(p))
    dirs.update(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.isabs(p))
    return sorted(d for d in dirs if os.path.exists(d))


class Confiner:
    """The web process's side: the policy and environment for each worker, for one jobs folder."""

    def __init__(self, jobs_dir: str):
        self.jobs_dir = os.path.realpath(jobs_dir)
        self.abi = landlock_abi()
        self._system = self._system_rules()

    def _system_rules(self) -> list[tuple[str, int]]:
        excluded = [self.jobs_dir]
        rules: list[tuple[str, int]] = []
        for path in (*SYSTEM_DIRS, *_python_dirs()):
            rules += grants_excluding(path, landlock.READ_EXEC, excluded)
        for path in ETC_FILES:
            rules += grants_excluding(path, landlock.READ, excluded)
        for path in PSEUDO_DIRS:
            rules.append((path, landlock.READ))
        for path in DEVICES:
            rules.append((path, landlock.READ_FILE | landlock.WRITE_FILE))
        for pattern in DEVICE_GLOBS:
            for path in glob.glob(pattern):
                rules.append((path, landlock.READ_FILE | landlock.WRITE_FILE | landlock.IOCTL_DEV))
        if os.path.isdir(SHARED_MEMORY):
            rules.append((SHARED_MEMORY, landlock.READ_WRITE))
        return rules

    def _data_rules(self, paths: Iterable[str | None]) -> list[tuple[str, int]]:
        """Read rules for data folders or files, never holding the jobs folder. None means any path: the data of
        a loopback --auth none server, one person's own machine, whose jobs folder holds nothing another
        person could want (no accounts; its session key signs names anyone may sign in as). The grant is the
        whole tree then, as a folder made later on the way to the jobs folder would miss a finer one."""
        rules: list[tuple[str, int]] = []
        for path in paths:
            if path is None:
                rules += grants_excluding("/", landlock.READ, PSEUDO_DIRS + ("/dev",))
            else:
                rules += grants_excluding(path, landlock.READ, [self.jobs_dir])
        return rules

    def job_dir(self, path: str) -> str:
        """The real path of a job folder of this jobs folder; ConfinementError for anything else."""
        real = os.path.realpath(path)
        if os.path.dirname(real) != self.jobs_dir or not os.path.isdir(real):
            raise ConfinementError(f"{path} is not a job folder of this server")
        return real

    def job_file(self, path: str) -> str:
        """The real path of a regular file directly inside a job folder; ConfinementError otherwise."""
        real = os.path.realpath(path)
        self.job_dir(os.path.dirname(real))
        if not os.path.isfile(real):
            raise ConfinementError(f"{path} is not a file of a job of this server")
        return real

    def _in_job(self, path: str) -> str:
        """The real path of a job folder of this server, or of a folder inside one; ConfinementError otherwise."""
        real = os.path.realpath(path)
        relative = os.path.relpath(real, self.jobs_dir)
        if relative in (".", "") or relative.startswith(".."):
            raise ConfinementError(f"{path} is not inside a job folder of this server")
        self.job_dir(os.path.join(self.jobs_dir, relative.split(os.sep)[0]))
        return real

    def policy(
        self,
        *,
        write: Iterable[str] = (),
        read_jobs: Iterable[str] = (),
        read_files: Iterable[str] = (),
        data: Iterable[str | None] = (),
        tmp: str | None = None,
    ) -> dict[str, Any]:
        """A worker's policy: the system's rules; job folders (or folders inside them) it changes; other jobs'
        folders and single files in them it reads; data paths it reads; its private temporary folder."""
        writable = [self._in_job(w) for w in write] + ([os.path.realpath(tmp)] if tmp else [])
        rules = list(self._system)
        rules += [(self.job_dir(j), landlock.READ) for j in read_jobs]
        rules += [(self.job_file(f), landlock.READ_FILE) for f in read_files]
        rules += self._data_rules(data)
        rules += [(w, landlock.READ_WRITE) for w in writable]
        return {"rules": [[p, r] for p, r in rules], "create": writable}

    def environment(self, extra: dict[str, str], tmp: str, base: dict[str, str] | None = None) -> dict[str, str]:
        """A worker's environment: what it keeps of `base` (the server's), its private tmp as TMPDIR and HOME."""
        base = os.environ if base is None else base
        keep = {
            k: v for k, v in base.items() if k in ENV_KEEP or k.startswith(tuple(p for p in ENV_KEEP if p[-1] == "_"))
        }
        caches = {"TMPDIR": tmp, "HOME": tmp, "MPLCONFIGDIR": tmp, "XDG_CACHE_HOME": tmp, "CUDA_CACHE_PATH": tmp}
        return {**keep, **caches, **extra}

    @staticmethod
    def private_tmp(prefix: str = "digits-worker-") -> str:
        return tempfile.mkdtemp(prefix=prefix)

    @staticmethod
    def remove_tmp(path: str | None) -> None:
        if path:
            shutil.rmtree(path, ignore_errors=True)


# ---- the worker's side ---------------------------------------------------------------------------------------
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
# SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP and SECBIT_KEEP_CAPS, each with its lock: uid 0 gains nothing on exec.
_SECUREBITS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 5)
_CAP_VERSION_3 = 0x20080522


def drop_capabilities() -> None:
    """Give up every capability for good (a no-op for a process that has none)."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            last = int(fh.read())
    except (OSError, ValueError):
        last = 40
    for cap in range(last + 1):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # EPERM without CAP_SETPCAP: then the set is already bounded
    libc.prctl(_PR_SET_SECUREBITS, _SECUREBITS, 0, 0, 0)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    if libc.capset(header, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def apply(policy: dict[str, Any]) -> str:
    """Confine this process by a policy from Confiner; returns a line for the log saying how.

    Call it while the process has one thread: capabilities and Landlock domains belong to threads, and
    threads already running would keep everything (threads started later inherit the confinement).
    """
    threads = thread_count()
    if threads > 1:
        raise OSError(f"{threads} threads are running; a process is confined while it has one")
    for folder in policy.get("create") or []:
        os.makedirs(folder, exist_ok=True)
    drop_capabilities()
    if not landlock_abi():
        return "not confined to its folders: this kernel has no Landlock; running without capabilities"
    abi = landlock.restrict((str(p), int(r)) for p, r in policy.get("rules") or [])
    return f"confined with Landlock ABI {abi}, without capabilities"


def apply_from_env() -> str | None:
    """Apply the policy the server put in this worker's environment, if any."""
    text = os.environ.get(ENV_POLICY)
    if not text:
        return None
    return apply(json.loads(text))
