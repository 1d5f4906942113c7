"""Whether real Caffe (pycaffe) was built here, and why not: read from a file, never by importing caffe.

`make install` runs tools/caffe/build.py, which builds pycaffe from the brocolli-caffe sdist into a cache
folder outside the checkout, adds that folder to the venv with a .pth file, and writes what happened to
`digits-caffe.json` next to it in the venv's site-packages. The web process reads that file to say whether the
real-Caffe engine can be chosen and, where it cannot, why; only workers and tests import caffe
(digits/engine/caffe_real.py).

Where the build is expected to work (`build_expected`), the real-Caffe tests fail when Caffe is missing;
elsewhere they skip with the recorded reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig

STATUS_FILE = "digits-caffe.json"
PTH_FILE = "digits-caffe.pth"

# Debian 12 (bookworm) packages the build needs (../shared/CAFFE-BUILD.md); make install installs them as root.
DEBIAN_PACKAGES = (
    "cmake",
    "g++",
    "make",
    "libboost-system-dev",
    "libboost-thread-dev",
    "libboost-filesystem-dev",
    "libboost-python-dev",
    "libgoogle-glog-dev",
    "libgflags-dev",
    "libprotobuf-dev",
    "protobuf-compiler",
    "libhdf5-dev",
    "liblmdb-dev",
    "libopenblas-dev",
)

NOT_BUILT = "Caffe has not been built for this Python installation (make install builds it)"


def site_packages() -> str:
    return sysconfig.get_path("purelib")


def status_path() -> str:
    return os.path.join(site_packages(), STATUS_FILE)


def read_status() -> dict:
    """What the last build step recorded: {"available": bool, "reason": str, "expected": bool, ...}; a
    status that names a build which is no longer there is reported as unavailable."""
    try:
        with open(status_path(), encoding="utf-8") as fh:
            status = json.load(fh)
    except (OSError, ValueError):
        return {"available": False, "reason": NOT_BUILT, "expected": build_expected()[0]}
    if status.get("available"):
        module = os.path.join(status.get("path", ""), "caffe", "_caffe.so")
        if not os.path.isfile(module):
            status = {**status, "available": False, "reason": f"the Caffe build {module} is gone ({NOT_BUILT})"}
    return status


def unavailable_reason() -> str | None:
    """None where real Caffe can be used, else a sentence that says why not (for the pages)."""
    status = read_status()
    if status.get("available"):
        return None
    return str(status.get("reason") or NOT_BUILT)


def _os_release() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        with open("/etc/os-release", encoding="utf-8") as fh:
            for line in fh:
                name, sep, value = line.strip().partition("=")
                if sep:
                    fields[name] = value.strip('"')
    except OSError:
        pass
    return fields


def missing_packages() -> list[str]:
    """The DEBIAN_PACKAGES that dpkg does not list as installed (all of them where there is no dpkg)."""
    if not shutil.which("dpkg-query"):
        return list(DEBIAN_PACKAGES)
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\\n", *DEBIAN_PACKAGES],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {line.split()[0] for line in done.stdout.splitlines() if line.endswith(" installed")}
    return [p for p in DEBIAN_PACKAGES if p not in installed]


def build_expected() -> tuple[bool, str]:
    """Whether `make install` is expected to build Caffe on this machine, and why (or why not).

    The rule: Debian 12, CPython 3.11 (Debian's Boost.Python is built for it), not turned off with
    DIGITS_CAFFE=off, and either running as root (make install then installs the packages) or with every
    package of DEBIAN_PACKAGES already installed."""
    if os.environ.get("DIGITS_CAFFE", "").lower() == "off":
        return False, "turned off with DIGITS_CAFFE=off"
    release = _os_release()
    if (release.get("ID"), release.get("VERSION_ID")) != ("debian", "12"):
        name = release.get("PRETTY_NAME") or sys.platform
        return False, f"the Caffe build is made for Debian 12; this is {name}"
    if sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11):
        version = f"{sys.implementation.name} {sys.version_info[0]}.{sys.version_info[1]}"
        return False, f"Debian 12's Boost.Python is built for CPython 3.11; this is {version}"
    if os.geteuid() == 0:
        return True, "Debian 12, CPython 3.11, as root (make install installs the packages)"
    missing = missing_packages()
    if missing:
        return False, "not root, and these packages are missing: " + " ".join(missing)
    return True, "Debian 12, CPython 3.11, with every package the build needs"


def main() -> int:
    """`python -m digits.caffe_status`: print the recorded status and the expectation as JSON."""
    expected, why = build_expected()
    print(json.dumps({**read_status(), "expected_here": expected, "expected_why": why}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
