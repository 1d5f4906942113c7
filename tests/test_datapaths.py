"""Which server paths a person may name: the data roots, never the jobs folder, nothing on a team server
without data roots; a missing path and an outside one read the same."""

import os

import pytest

from digits.config import settings_from
from digits.datapaths import PathRefused, check_server_path
from digits.dataset.parse import parse_folders
from digits.inference.paths import PathChecker
from tests.support.imagegen import make_shapes


def refusal(path, settings, want_dir=None) -> str:
    with pytest.raises(PathRefused) as info:
        check_server_path(str(path), settings, want_dir=want_dir)
    return str(info.value)


def test_a_team_server_without_data_roots_reads_no_server_paths(tmp_path):
    make_shapes(str(tmp_path / "src"), per_class=1)
    settings = settings_from({"auth": "password", "jobs_dir": str(tmp_path / "jobs")})  # loopback, as behind a proxy
    message = refusal(tmp_path / "src", settings, want_dir=True)
    assert "reads no server folders" in message and "--data-root" in message and "--auth password" in message
    assert refusal("/etc/passwd", settings) == message  # the same answer for everything: nothing is probed
    assert refusal("/no/such/file", settings) == message
    unrestricted = settings_from({"jobs_dir": str(tmp_path / "jobs")})  # --auth none, loopback: one person
    assert check_server_path(str(tmp_path / "src"), unrestricted, want_dir=True) == os.path.realpath(tmp_path / "src")


@pytest.mark.parametrize("layout", ["jobs inside the data root", "data root inside the jobs folder"])
def test_the_jobs_folder_is_never_readable_through_a_data_root(tmp_path, layout):
    if layout == "jobs inside the data root":
        root, jobs = tmp_path / "data", tmp_path / "data" / "jobs"
    else:
        jobs, root = tmp_path / "jobs", tmp_path / "jobs" / "shared"
    jobs.mkdir(parents=True)
    root.mkdir(parents=True, exist_ok=True)
    (jobs / ".secret_key").write_text("s3cret")
    (jobs / "20240101-000000-abcd").mkdir()
    make_shapes(str(root / "pictures"), per_class=1)
    os.symlink(jobs / ".secret_key", root / "pictures" / "key.png")
    settings = settings_from({"auth": "password", "jobs_dir": str(jobs), "data_roots": [str(root)]})
    missing = refusal(root / "pictures" / "nope.png", settings)
    assert missing == f"{root / 'pictures' / 'nope.png'} does not exist or is outside the data roots ({root})"
    for path in (jobs / ".secret_key", jobs / "20240101-000000-abcd", root / "pictures" / "key.png", "/etc/passwd"):
        assert refusal(path, settings) == f"{path} does not exist or is outside the data roots ({root})"
    if layout == "jobs inside the data root":
        assert check_server_path(str(root / "pictures"), settings, want_dir=True) == os.path.realpath(root / "pictures")
    else:  # the whole root lies in the jobs folder: nothing of it is readable
        assert "outside the data roots" in refusal(root / "pictures", settings, want_dir=True)
    checker = PathChecker(settings)  # the inference worker's check gives the same answers
    for path in (root / "pictures" / "nope.png", jobs / ".secret_key", root / "pictures" / "key.png"):
        with pytest.raises(PathRefused) as info:
            checker.check(str(path))
        assert str(info.value) == refusal(path, settings)


def test_the_parse_worker_skips_the_jobs_folder_and_reads_its_own_uploads(tmp_path):
    root = tmp_path / "data"
    jobs = root / "jobs"
    job_dir = jobs / "20240101-000000-abcd"
    made = make_shapes(str(root / "shapes"), per_class=2)
    os.makedirs(jobs / "20240101-000000-beef")
    with open(made["circle"][0], "rb") as fh:
        (jobs / "20240101-000000-beef" / "theirs.png").write_bytes(fh.read())
    os.symlink(jobs / "20240101-000000-beef" / "theirs.png", root / "shapes" / "circle" / "sneaky.png")
    args = {"train": {"path": str(root / "shapes")}, "pct_val": 0, "allowed_roots": [str(root)]}
    args["denied_roots"] = [str(jobs)]
    result = parse_folders(args, str(job_dir))
    assert [(os.path.basename(s["path"]), s["reason"]) for s in result.skipped] == [
        ("sneaky.png", "links outside the data roots")
    ]
    # A data root that holds the jobs folder: scanning the root never enters it, nor names what is inside.
    args["train"] = {"path": str(root)}
    make_shapes(str(root / "more"), per_class=1)
    result = parse_folders(args, str(job_dir))
    assert "jobs" not in result.labels and not any("/jobs/" in s["path"] for s in result.skipped)
    # The job's own unpacked zip lies in the jobs folder, outside every root: it is read all the same.
    make_shapes(str(job_dir / "upload" / "train"), per_class=2)
    args["train"] = {"path": str(job_dir / "upload" / "train")}
    result = parse_folders(args, str(job_dir))
    assert result.counts()["train"] == 6 and result.skipped == []


def test_a_tilde_is_the_home_folder_of_the_account_the_server_runs_as(tmp_path, monkeypatch):
    home = tmp_path / "home"
    make_shapes(str(home / "mnist" / "train"), per_class=1)
    monkeypatch.setenv("HOME", str(home))
    settings = settings_from({"jobs_dir": str(tmp_path / "jobs")})  # --auth none on loopback: any path
    assert check_server_path("~/mnist/train", settings, want_dir=True) == os.path.realpath(home / "mnist" / "train")
    assert check_server_path("~", settings, want_dir=True) == os.path.realpath(home)
    # What was typed and what it became are both in the message, so a person sees which home was meant.
    assert refusal("~/mnist/test", settings) == f"~/mnist/test ({home}/mnist/test) does not exist"
    assert refusal("~/mnist/train", settings, want_dir=False) == f"~/mnist/train ({home}/mnist/train) is not a file"
    # Only the server account's own home: ~name is not expanded, nor a ~ inside a path.
    assert "is not an absolute path on the server" in refusal("~root/x", settings)
    assert "is not an absolute path on the server: start it with / (or with ~/" in refusal("mnist/train", settings)
    assert "does not exist" in refusal(f"{home}/~/mnist", settings)


@pytest.mark.parametrize("home_inside_a_root", [True, False])
def test_a_tilde_never_widens_what_a_server_with_data_roots_reads(tmp_path, monkeypatch, home_inside_a_root):
    root, home = tmp_path / "data", tmp_path / "home"
    if home_inside_a_root:
        home = root / "home"
    make_shapes(str(home / "pictures"), per_class=1)
    make_shapes(str(root / "shared"), per_class=1)
    monkeypatch.setenv("HOME", str(home))
    settings = settings_from({"auth": "password", "jobs_dir": str(tmp_path / "jobs"), "data_roots": [str(root)]})
    if home_inside_a_root:
        assert check_server_path("~/pictures", settings, want_dir=True) == os.path.realpath(home / "pictures")
    else:  # outside the roots: the same answer as for a path that does not exist, whatever it holds
        for typed in ("~/pictures", "~", "~/nothing/here"):
            expanded = typed.replace("~", str(home), 1)
            outside = f"does not exist or is outside the data roots ({root})"
            assert refusal(typed, settings) == f"{typed} ({expanded}) {outside}"
    # ~/.. and links out of home are judged by where they lead.
    assert "outside the data roots" in refusal("~/../../etc", settings)
    os.symlink("/etc", home / "etc-link")
    assert "outside the data roots" in refusal("~/etc-link", settings)
    # A team server without data roots reads no server path, ~ or not.
    closed = settings_from({"auth": "password", "jobs_dir": str(tmp_path / "jobs")})
    assert "reads no server folders" in refusal("~/pictures", closed, want_dir=True)
