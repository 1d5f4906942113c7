"""The folder preview of New Dataset: class folders and image counts under a server folder, the warnings for a
folder one level too high or with no class folders, its limit, and its route (paths, data roots, sign-in, the
event loop)."""

import os

from digits.datapaths import PathRules
from digits.dataset import explore, preview
from digits.dataset.preview import preview_folder
from tests.support.accounts import add_accounts
from tests.support.apps import sign_in
from tests.support.imagegen import make_shapes

EVERYTHING = PathRules(None)


def touch(path, names):
    os.makedirs(path, exist_ok=True)
    for name in names:
        open(os.path.join(path, name), "wb").close()


def test_counts_the_images_of_each_class_folder_as_the_parse_task_does(tmp_path):
    make_shapes(str(tmp_path / "shapes"), per_class=4)
    touch(tmp_path / "shapes" / "circle" / "more" / "deeper", ["a.png", "b.JPG", "notes.txt", ".hidden.png"])
    touch(tmp_path / "shapes" / ".cache", ["x.png"])  # hidden folders are no class
    os.symlink(tmp_path / "shapes" / "square", tmp_path / "shapes" / "linked")  # nor links to folders
    found = preview_folder(str(tmp_path / "shapes"), EVERYTHING)
    assert [(c.name, c.images, c.complete) for c in found.classes] == [
        ("circle", 6, True),
        ("square", 4, True),
        ("triangle", 4, True),
    ]
    assert found.complete and found.images == 14 and found.warning is None
    assert found.summary() == "3 classes, 14 images: circle 6, square 4, triangle 4"


def test_a_limit_on_the_entries_read_makes_counts_at_least(tmp_path):
    for name in ("a", "b", "c"):
        touch(tmp_path / "big" / name, [f"{i}.png" for i in range(100)])
    found = preview_folder(str(tmp_path / "big"), EVERYTHING, max_entries=63)
    assert not found.complete and found.limit == 63
    # Every class gets its share of what the top folder left, so none is starved of a count.
    assert [(c.name, c.complete) for c in found.classes] == [("a", False), ("b", False), ("c", False)]
    assert all(0 < c.images <= 20 for c in found.classes)
    assert found.summary().startswith(f"3 classes, at least {found.images} images: a at least ")
    whole = preview_folder(str(tmp_path / "big"), EVERYTHING)
    assert whole.complete and whole.summary() == "3 classes, 300 images: a 100, b 100, c 100"


def test_class_folders_past_the_limit_are_counted_by_number_only(tmp_path):
    for i in range(15):
        touch(tmp_path / "many" / f"class{i:02d}", ["x.png"])
    found = preview_folder(str(tmp_path / "many"), EVERYTHING, max_classes=13)
    assert len(found.classes) == 13 and found.uncounted_classes == 2
    assert found.summary().endswith("class11 1, and 3 more") and found.summary().startswith("15 classes")


def test_a_folder_one_level_too_high_suggests_the_one_meant(tmp_path):
    make_shapes(str(tmp_path / "one" / "shapes"), per_class=2)
    found = preview_folder(str(tmp_path / "one"), EVERYTHING)
    assert found.warning.kind == "too_high"
    assert found.warning.suggestions == [str(tmp_path / "one" / "shapes")]
    assert "holds a single folder, shapes, that holds the class folders: did you mean" in found.warning.message
    # ~/mnist with train/ and test/, each of class folders: train and test would become the classes.
    make_shapes(str(tmp_path / "mnist" / "train"), per_class=2)
    make_shapes(str(tmp_path / "mnist" / "test"), per_class=1)
    found = preview_folder(str(tmp_path / "mnist"), EVERYTHING)
    assert found.warning.kind == "too_high" and "so test, train would be the classes" in found.warning.message
    assert found.warning.suggestions == [str(tmp_path / "mnist" / "test"), str(tmp_path / "mnist" / "train")]
    # A chain of single folders is followed down to the class folders.
    make_shapes(str(tmp_path / "zip" / "export" / "data"), per_class=1)
    assert preview_folder(str(tmp_path / "zip"), EVERYTHING).warning.suggestions == [
        str(tmp_path / "zip" / "export" / "data")
    ]


def test_class_folders_that_each_hold_a_single_subfolder_are_named(tmp_path):
    for name in ("cat", "dog"):
        touch(tmp_path / "pets" / name / "images", ["1.png", "2.png"])
    found = preview_folder(str(tmp_path / "pets"), EVERYTHING)
    assert [(c.name, c.images) for c in found.classes] == [("cat", 2), ("dog", 2)]
    assert found.warning.kind == "nested" and "(cat/images, dog/images)" in found.warning.message


def test_images_without_class_folders_ask_for_the_folder_above(tmp_path):
    make_shapes(str(tmp_path / "shapes"), per_class=3)
    found = preview_folder(str(tmp_path / "shapes" / "circle"), EVERYTHING)
    assert found.classes == [] and found.loose_images == 3
    assert found.summary() == "No class folders; 3 images directly inside."
    assert found.warning.kind == "no_classes"
    assert "pick the folder that holds one folder per class" in found.warning.message
    assert found.warning.suggestions == [str(tmp_path / "shapes")]
    touch(tmp_path / "flat", ["a.png", "b.png"])  # a folder above without class folders is not suggested
    lonely = preview_folder(str(tmp_path / "flat"), EVERYTHING)
    assert lonely.warning.kind == "no_classes" and lonely.warning.suggestions == []
    touch(tmp_path / "nothing", ["readme.txt"])
    assert preview_folder(str(tmp_path / "nothing"), EVERYTHING).warning.kind == "empty"


def test_one_class_and_loose_images_are_warned_about(tmp_path):
    make_shapes(str(tmp_path / "single"), per_class=2, classes=("circle",))
    assert preview_folder(str(tmp_path / "single"), EVERYTHING).warning.kind == "one_class"
    make_shapes(str(tmp_path / "mixed"), per_class=2)
    touch(tmp_path / "mixed", ["stray.png"])
    warning = preview_folder(str(tmp_path / "mixed"), EVERYTHING).warning
    assert warning.kind == "loose_images" and warning.message.startswith("1 image directly in")


def test_the_jobs_folder_and_links_out_of_the_roots_are_not_counted(tmp_path):
    root = tmp_path / "data"
    make_shapes(str(root / "shapes"), per_class=2)
    touch(root / "jobs" / "20240101-000000-abcd", ["secret.png"])
    touch(tmp_path / "outside", ["elsewhere.png"])
    os.symlink(tmp_path / "outside" / "elsewhere.png", root / "shapes" / "circle" / "link.png")
    rules = PathRules([str(root)], [str(root / "jobs")])
    found = preview_folder(str(root), rules)
    assert [c.name for c in found.classes] == ["shapes"]  # never "jobs"
    assert [(c.name, c.images) for c in preview_folder(str(root / "shapes"), rules).classes] == [
        ("circle", 2),
        ("square", 2),
        ("triangle", 2),
    ]


# ---- the route ------------------------------------------------------------------------------------------------
def ask(client, path):
    r = client.get("/datasets/folders/preview/json", query_string={"path": str(path)})
    return r.status_code, r.get_json()


def test_the_route_previews_a_typed_folder_home_included(signed_in, tmp_path, monkeypatch):
    home = tmp_path / "home"
    make_shapes(str(home / "shapes"), per_class=3)
    monkeypatch.setenv("HOME", str(home))
    status, found = ask(signed_in, "~/shapes")
    assert status == 200 and found["ok"] and found["path"] == os.path.realpath(home / "shapes")
    assert found["summary"] == "3 classes, 9 images: circle 3, square 3, triangle 3"
    assert [c["images"] for c in found["classes"]] == [3, 3, 3] and found["warning"] is None
    status, found = ask(signed_in, "~")
    assert found["warning"]["suggestions"] == [os.path.realpath(home / "shapes")]
    # What cannot be previewed is an answer, with the form's own message: the form asks while a person types.
    assert ask(signed_in, "~/sha") == (
        200,
        {"ok": False, "path": "~/sha", "problem": f"~/sha ({home}/sha) does not exist"},
    )
    assert ask(signed_in, "/etc/passwd")[1]["problem"] == "/etc/passwd is not a folder"
    assert signed_in.get("/datasets/folders/preview/json").status_code == 400


def test_the_route_stops_at_its_limit(signed_in, tmp_path, monkeypatch):
    touch(tmp_path / "big" / "a", [f"{i}.png" for i in range(30)])
    touch(tmp_path / "big" / "b", [f"{i}.png" for i in range(30)])
    monkeypatch.setattr(preview, "MAX_ENTRIES", 20)
    _, found = ask(signed_in, tmp_path / "big")
    assert not found["complete"] and found["limit"] == 20 and found["images"] < 20
    assert "at least" in found["summary"]


def test_the_route_counts_off_the_event_loop(signed_in, tmp_path, monkeypatch):
    make_shapes(str(tmp_path / "shapes"), per_class=1)
    ran = []

    def off_loop(fn, *args, **kwargs):
        ran.append((fn, args))
        return fn(*args, **kwargs)

    monkeypatch.setattr(explore, "off_loop", off_loop)
    _, found = ask(signed_in, tmp_path / "shapes")
    assert found["images"] == 3
    [(fn, args)] = ran
    assert fn is preview.preview_folder and args[0] == os.path.realpath(tmp_path / "shapes")
    assert isinstance(args[1], PathRules)  # plain data: no request, no app, nothing gevent patched


def test_the_route_follows_the_data_roots(tmp_path, make_app, monkeypatch):
    root = tmp_path / "data"
    make_shapes(str(root / "shapes"), per_class=1)
    make_shapes(str(tmp_path / "home" / "mine"), per_class=1)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    app = make_app(root / "jobs", data_roots=[str(root)], auth="password")
    add_accounts(app.extensions["digits"].accounts, "ann")
    anonymous = app.test_client()
    r = anonymous.get("/datasets/folders/preview/json", query_string={"path": str(root / "shapes")})
    assert r.status_code == 401  # the same sign-in as the folder picker
    c = sign_in(app)
    assert ask(c, root / "shapes")[1]["images"] == 3
    outside = f"does not exist or is outside the data roots ({root})"
    assert ask(c, "~/mine")[1]["problem"] == f"~/mine ({tmp_path / 'home' / 'mine'}) {outside}"
    assert ask(c, root / "jobs")[1]["problem"] == f"{root / 'jobs'} {outside}"
    assert ask(c, root / "nowhere")[1]["problem"] == f"{root / 'nowhere'} {outside}"
    assert [c["name"] for c in ask(c, root)[1]["classes"]] == ["shapes"]


def test_a_team_server_without_data_roots_previews_nothing(tmp_path, make_app):
    make_shapes(str(tmp_path / "src"), per_class=1)
    app = make_app(auth="password")
    add_accounts(app.extensions["digits"].accounts, "ann")
    _, found = ask(sign_in(app), tmp_path / "src")
    assert not found["ok"] and "reads no server folders" in found["problem"]
