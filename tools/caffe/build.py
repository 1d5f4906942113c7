"""Build real Caffe's Python module (pycaffe) for this venv, once, and put it on the venv's path.

Run by `make install` with the venv's interpreter: .venv/bin/python tools/caffe/build.py

1. The build is keyed by the sdist's sha256, these build files (build.py, patches.py, CMakeLists.txt), the
   Python version and NumPy's major version. A finished build for the key in the cache folder
   (${DIGITS_CAFFE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/digits}/caffe-<key>) is reused: nothing is built.
2. Otherwise: as root on Debian, the missing Debian packages are installed (quietly, as the Makefile installs
   chromium); the brocolli-caffe 9.0.2 sdist is downloaded with pip and checked against its sha256; it is
   unpacked, patched (patches.py), configured with CMake (CMakeLists.txt: CPU only, LMDB, HDF5, the Python
   layer, this interpreter's NumPy), compiled with `nice` on every core, and the `caffe` package is put
   together in <cache>/caffe-<key>/site/caffe and imported once in a fresh process to prove it loads.
3. <site-packages>/digits-caffe.pth names <cache>/caffe-<key>/site, and digits-caffe.json records what
   happened (digits/caffe_status.py reads it; the web process never imports caffe).

It never fails `make install`: where Caffe cannot be built it says why, records the reason in
digits-caffe.json (and a failed compile in <cache>/caffe-<key>/unavailable.txt, so the next install does not
compile again; delete that folder or set DIGITS_CAFFE_REBUILD=1 to retry), and exits 0: the PyTorch engine
works alone. DIGITS_CAFFE=off skips all of it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the checkout, for digits.caffe_status

import patches  # noqa: E402  (tools/caffe/patches.py, next to this file)

from digits import caffe_status  # noqa: E402

SDIST = "brocolli-caffe==9.0.2"
SDIST_FILE = "brocolli-caffe-9.0.2.tar.gz"
SDIST_SHA256 = "c6410cc60bdd6db685d441b66be7df05410f8850ac88d6b75d48ef9b2315c08a"
BUILD_FILES = ("build.py", "patches.py", "CMakeLists.txt")
COMMANDS = ("cmake", "make", "c++", "protoc")
LOG_TAIL = 30  # lines of a failed step's output shown and recorded


class Unavailable(Exception):
    """Caffe cannot be built here; the message says why, for people. `remember`: the same sources would fail
    the same way again (a compile error, not a missing library), so the failure is kept under the build's key."""

    def __init__(self, message: str, remember: bool = False):
        super().__init__(message)
        self.remember = remember


def cache_root() -> str:
    explicit = os.environ.get("DIGITS_CAFFE_CACHE")
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "digits")


def build_key() -> str:
    import numpy

    digest = hashlib.sha256()
    digest.update(SDIST_SHA256.encode())
    for name in BUILD_FILES:
        with open(os.path.join(HERE, name), "rb") as fh:
            digest.update(name.encode() + b"\0" + fh.read() + b"\0")
    abi = f"{sys.implementation.cache_tag} {os.uname().machine} numpy{numpy.__version__.split('.')[0]}"
    digest.update(abi.encode())
    return digest.hexdigest()[:16]


def say(message: str) -> None:
    print(f"Caffe: {message}", flush=True)


def tail(text: str, lines: int = LOG_TAIL) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(cmd: list[str], log: str, step: str, remember: bool) -> None:
    """Run a build step with its output appended to `log`; Unavailable with the output's tail when it fails."""
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        with open(log, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        raise Unavailable(f"{step} failed (exit {done.returncode}); log {log}:\n{tail(text)}", remember)


def install_packages() -> None:
    """As root on Debian, apt-get install the missing build packages quietly; elsewhere just say what is
    missing (the build then stops at the first thing it lacks)."""
    missing = caffe_status.missing_packages()
    if not missing or not shutil.which("apt-get"):
        return
    if os.geteuid() != 0:
        say("not root, so these packages are not installed: " + " ".join(missing))
        return
    say("installing " + " ".join(missing))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            say(f"{' '.join(cmd[:2])} failed: {tail(done.stdout + done.stderr, 5)}")
            return


def fetch_sdist(downloads: str) -> str:
    """The sdist from pip's index (once), checked against SDIST_SHA256."""
    path = os.path.join(downloads, SDIST_FILE)
    if not os.path.exists(path):
        os.makedirs(downloads, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", SDIST]
        done = subprocess.run(
            [*pip, "-d", downloads],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not os.path.exists(path):
            raise Unavailable(f"pip could not download {SDIST}: {tail(done.stderr, 5)}")
    with open(path, "rb") as fh:
        actual = hashlib.file_digest(fh, "sha256").hexdigest()
    if actual != SDIST_SHA256:
        os.remove(path)
        raise Unavailable(f"{SDIST_FILE} has sha256 {actual}, expected {SDIST_SHA256}; removed it")
    return path


def assemble(source: str, build: str, site: str) -> None:
    """<site>/caffe: the sdist's Python package (not its tests), the built _caffe.so and caffe_pb2.py."""
    package = os.path.join(site, "caffe")
    shutil.copytree(
        os.path.join(source, "python", "caffe"),
        package,
        ignore=shutil.ignore_patterns("test", "__pycache__", "*.cpp", "*.pyc", "_caffe.so"),
    )
    shutil.copy2(os.path.join(build, "_caffe.so"), package)
    proto = os.path.join(package, "proto")
    os.makedirs(proto, exist_ok=True)
    shutil.copy2(os.path.join(build, "include", "caffe", "proto", "caffe_pb2.py"), proto)
    with open(os.path.join(proto, "__init__.py"), "w", encoding="utf-8"):
        pass


def smoke_test(site: str) -> None:
    """Import the new package in a fresh interpreter, CPU mode, and build a one-layer net."""
    code = (
        "import sys, tempfile, os; sys.path.insert(0, sys.argv[1]); import caffe; caffe.set_mode_cpu()\n"
        'fd, p = tempfile.mkstemp(suffix=\'.prototxt\'); os.write(fd, b\'layer { name: "d" type: "Input" '
        'top: "d" input_param { shape { dim: 1 dim: 2 } } }\'); os.close(fd)\n'
        "net = caffe.Net(p, caffe.TEST); os.remove(p); assert net.blobs['d'].data.shape == (1, 2)\n"
    )
    env = {**os.environ, "GLOG_minloglevel": "2", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", code, site], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise Unavailable(f"the built module does not import: {tail(done.stderr, 10)}", remember=True)


def build(target: str, sdist: str) -> dict:
    """Compile into <target>.partial and move it to <target> when it imports; returns its BUILD.json."""
    partial = target + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    log = os.path.join(partial, "build.log")
    started = time.monotonic()
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+
            tar.extractall(partial, filter="data")
        else:
            tar.extractall(partial)
    source = os.path.join(partial, SDIST_FILE.removesuffix(".tar.gz"))
    try:
        patches.apply(source)
    except patches.PatchError as error:
        raise Unavailable(f"the sdist does not take DIGITS' patches: {error}", remember=True) from None
    tree = os.path.join(partial, "build")
    configure = [
        "cmake", "-S", HERE, "-B", tree, f"-DCAFFE_SOURCE={source}", f"-DPython3_EXECUTABLE={sys.executable}",
        "-DCMAKE_BUILD_TYPE=Release",
    ]  # fmt: skip
    run(configure, log, "cmake's configure step", remember=False)  # most likely a missing library: not kept
    jobs = str(os.cpu_count() or 1)
    say(f"compiling Caffe with nice -n 15 on {jobs} cores (minutes; log {log})")
    run(["nice", "-n", "15", "cmake", "--build", tree, "-j", jobs], log, "the compile", remember=True)
    site = os.path.join(partial, "site")
    assemble(source, tree, site)
    smoke_test(site)
    info = {
        "sdist": SDIST,
        "sdist_sha256": SDIST_SHA256,
        "python": sys.version.split()[0],
        "build_seconds": round(time.monotonic() - started, 1),
        "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with open(os.path.join(partial, "BUILD.json"), "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=2)
    # The sources and the build tree (~60 MB) are not needed any more; the log stays.
    shutil.rmtree(source)
    shutil.rmtree(tree)
    # Renamed into place last: a folder named caffe-<key> holds a complete build or a recorded failure.
    os.rename(partial, target)
    return info


def record(status: dict) -> None:
    """digits-caffe.json and the .pth in the venv's site-packages (the .pth only when Caffe is there)."""
    site_packages = caffe_status.site_packages()
    pth = os.path.join(site_packages, caffe_status.PTH_FILE)
    if status["available"]:
        with open(pth, "w", encoding="utf-8") as fh:
            fh.write(status["path"] + "\n")
    elif os.path.exists(pth):
        os.remove(pth)
    fd, tmp = tempfile.mkstemp(dir=site_packages, prefix=".digits-caffe.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(status, fh, indent=2)
    os.replace(tmp, caffe_status.status_path())


def main() -> int:
    expected, why = caffe_status.build_expected()
    if os.environ.get("DIGITS_CAFFE", "").lower() == "off":
        record({"available": False, "expected": False, "reason": "the Caffe build is turned off (DIGITS_CAFFE=off)"})
        say("turned off (DIGITS_CAFFE=off); the PyTorch engine works alone")
        return 0
    key = build_key()
    root = cache_root()
    target = os.path.join(root, f"caffe-{key}")
    failed = os.path.join(target, "unavailable.txt")
    status = {"available": False, "expected": expected, "expected_why": why, "key": key, "cache": target}
    try:
        if os.path.isfile(os.path.join(target, "site", "caffe", "_caffe.so")):
            with open(os.path.join(target, "BUILD.json"), encoding="utf-8") as fh:
                info = json.load(fh)
            say(f"ready (cached build {target})")
        elif os.path.isfile(failed) and os.environ.get("DIGITS_CAFFE_REBUILD") != "1":
            with open(failed, encoding="utf-8") as fh:
                reason = fh.read().strip()
            raise Unavailable(f"{reason}\n(cached failure; delete {target} or set DIGITS_CAFFE_REBUILD=1 to retry)")
        else:
            install_packages()
            missing = [c for c in COMMANDS if not shutil.which(c)]
            if missing:
                raise Unavailable("the build needs these commands: " + ", ".join(missing))
            sdist = fetch_sdist(os.path.join(root, "downloads"))
            with open(target + ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # another install building the same key: wait for it
                if os.path.isfile(os.path.join(target, "BUILD.json")):  # built by the install we waited for
                    with open(os.path.join(target, "BUILD.json"), encoding="utf-8") as fh:
                        info = json.load(fh)
                else:
                    shutil.rmtree(target, ignore_errors=True)
                    try:
                        info = build(target, sdist)
                    except Unavailable as error:
                        if error.remember:
                            os.makedirs(target, exist_ok=True)
                            with open(failed, "w", encoding="utf-8") as fh:
                                fh.write(str(error) + "\n")
                        raise
            say(f"built in {info['build_seconds']:.0f} s into {target}")
    except Unavailable as error:
        status["reason"] = str(error)
        record(status)
        say(f"not available: {error}\nCaffe: the PyTorch engine works alone.")
        return 0
    record({**status, **info, "available": True, "reason": "", "path": os.path.join(target, "site")})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as error:  # noqa: BLE001  (never fail make install: record why and go on)
        reason = f"the build step failed: {type(error).__name__}: {error}"
        try:
            record({"available": False, "expected": caffe_status.build_expected()[0], "reason": reason})
        except OSError:
            pass
        say(f"not available: {reason}")
        sys.exit(0)
