"""Real Caffe (pycaffe, built by `make install`) for the tests that use it as the oracle or the engine.

Where it is missing, a test that needs it FAILS if the build was expected to work here (digits.caffe_status.
build_expected: Debian 12, CPython 3.11, root or the packages present, DIGITS_CAFFE not off) and is skipped with
the recorded reason everywhere else. tests/conftest.py makes `caffe` a fixture of every test module.
"""

from __future__ import annotations

import pytest

from digits import caffe_status
from digits.engine import caffe_real


def real_caffe():
    """The pycaffe module in CPU mode; fails or skips (see the module docstring) when it is not here."""
    try:
        return caffe_real.import_caffe()
    except caffe_real.CaffeUnavailable as error:
        expected, why = caffe_status.build_expected()
        if expected:
            pytest.fail(f"real Caffe was expected here ({why}) but is not available: {error}")
        pytest.skip(f"real Caffe is not available: {error} (not expected here: {why})")
