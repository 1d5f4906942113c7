"""A list's server paths are checked as check_server_path checks them, each folder once."""

import os

import pytest

from digits.config import settings_from
from digits.datapaths import PathRefused, check_server_path
from digits.inference.paths import PathChecker


@pytest.fixture
def tree(tmp_path):
    inside = tmp_path / "data"
    outside = tmp_path / "secret"
    (inside / "cats").mkdir(parents=True)
    outside.mkdir()
    (inside / "cats" / "a.png").write_bytes(b"x")
    (outside / "b.png").write_bytes(b"x")
    os.symlink(outside / "b.png", inside / "cats" / "link.png")
    os.symlink(inside / "cats" / "a.png", inside / "cats" / "good-link.png")
    os.symlink(outside, inside / "escape")
    return inside, outside


def cases(inside, outside):
    return [
        str(inside / "cats" / "a.png"),
        str(inside / "cats" / ".." / "cats" / "a.png"),
        str(inside / "cats" / "good-link.png"),
        str(inside / "cats" / "link.png"),
        str(inside / "escape" / "b.png"),
        str(inside / "cats" / "missing.png"),
        str(inside / "cats"),
        str(outside / "b.png"),
        "cats/a.png",
        "",
    ]


def outcome(fn, path):
    try:
        return ("ok", fn(path))
    except PathRefused as e:
        return ("refused", str(e))


def test_same_answers_as_check_server_path(tree):
    inside, outside = tree
    settings = settings_from({"data_roots": [str(inside)]})
    checker = PathChecker(settings)
    for path in cases(inside, outside):
        expected = outcome(lambda p: check_server_path(p, settings, want_dir=False), path)
        assert outcome(checker.check, path) == expected, path
    assert outcome(checker.check, str(inside / "cats" / "a.png"))[0] == "ok"
    assert outcome(checker.check, str(inside / "cats" / "link.png"))[0] == "refused"


def test_a_server_with_no_roots_on_loopback_reads_anything_it_can(tree):
    inside, outside = tree
    settings = settings_from({})
    checker = PathChecker(settings)
    assert checker.check(str(outside / "b.png")) == os.path.realpath(outside / "b.png")
    assert checker.check(str(inside / "cats" / "link.png")) == os.path.realpath(outside / "b.png")
    public = PathChecker(settings_from({"host": "0.0.0.0", "auth": "password"}))
    with pytest.raises(PathRefused, match="reads no server folders"):
        public.check(str(inside / "cats" / "a.png"))
