"""Real Caffe (pycaffe, built by `make install` from the brocolli-caffe sdist: tools/caffe/build.py), for workers
and tests only: the web process reads digits.caffe_status instead and never imports caffe.

`import_caffe()` imports it quietly (glog's INFO and WARNING lines off unless GLOG_minloglevel is set) in CPU
mode; `available()` says whether that works here and, if not, why.
"""

from __future__ import annotations

import functools
import os
import types

from digits import caffe_status


class CaffeUnavailable(ImportError):
    """Real Caffe cannot be imported here; the message says why."""


@functools.cache
def _load() -> types.ModuleType | str:
    """The caffe module, or the reason it cannot be had (one attempt per process: a failed import of a C++
    module is not retried)."""
    reason = caffe_status.unavailable_reason()
    if reason is not None:
        return reason
    # glog reads its flags from the environment when the library loads: this must come before the import.
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import caffe
    except Exception as error:  # noqa: BLE001  (ImportError, or whatever a broken build raises while loading)
        return f"import caffe failed: {type(error).__name__}: {error}"
    caffe.set_mode_cpu()
    return caffe


def import_caffe() -> types.ModuleType:
    """The caffe module in CPU mode; CaffeUnavailable (with the reason) where it was not built or does not load."""
    loaded = _load()
    if isinstance(loaded, str):
        raise CaffeUnavailable(loaded)
    return loaded


def available() -> tuple[bool, str]:
    """(True, "") where real Caffe imports in this process, else (False, why not)."""
    loaded = _load()
    if isinstance(loaded, str):
        return False, loaded
    return True, ""
