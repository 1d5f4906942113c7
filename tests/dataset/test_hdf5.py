"""backend=hdf5 (DIGITS 6): a dataset of HDF5 files through the form and real dataset workers, checked with h5py
against the LMDB build of the same folder; explore reads it; a bad backend or compression names its field."""

import io
import os
import re

import h5py
import numpy as np
import pytest
from PIL import Image

from digits.formats.caffe_pb import datum_to_array, read_mean
from digits.formats.lmdb_io import LmdbReader
from tests.support.forms import dataset_form
from tests.support.imagegen import make_shapes
from tests.support.waiting import LONG_S

# Color 16x16, as DIGITS' tests post an HDF5 dataset: encoding png too (HDF5 holds raw pixels whatever it says).
COLOR = {"resize_channels": "3", "resize_width": "16", "resize_height": "16", "encoding": "png", "random_seed": "5"}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    make_shapes(str(root), per_class=8)
    return root


def build(client, recorder, folder, **fields) -> tuple[str, dict]:
    r = client.post("/datasets/images/classification/json", data=dataset_form(folder, **{**COLOR, **fields}))
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.get_json()["id"]
    assert recorder.wait_status(job_id, timeout=LONG_S) == "Done", client.get(f"/datasets/{job_id}/status").get_json()
    return job_id, client.get(f"/datasets/{job_id}/json").get_json()


def h5_records(split_dir) -> tuple[np.ndarray, np.ndarray, list[h5py.Dataset]]:
    """All of a split folder's data (N x C x H x W) and labels, through list.txt, as DIGITS' readers find them."""
    with open(os.path.join(split_dir, "list.txt")) as fh:
        names = [line.strip() for line in fh if line.strip()]
    data, labels, datasets = [], [], []
    for name in names:
        assert not os.path.isabs(name)
        with h5py.File(os.path.join(split_dir, name), "r") as f:
            data.append(f["data"][:])
            labels.append(f["label"][:])
            datasets.append((f["data"].dtype, f["data"].compression, f["label"].dtype, f["label"].compression))
    return np.concatenate(data), np.concatenate(labels), datasets


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_an_hdf5_dataset_holds_what_the_lmdb_build_of_the_same_folder_holds(
    signed_in, recorder, workspace, shapes, compression
):
    lmdb_id, lmdb_js = build(signed_in, recorder, shapes, folder_pct_val="25")
    hdf5_id, js = build(signed_in, recorder, shapes, folder_pct_val="25", backend="hdf5", compression=compression)

    assert [(t["name"], t["backend"], t["compression"], t["encoding"]) for t in js["CreateDbTasks"]] == [
        ("Create DB (train)", "hdf5", compression, "none"),
        ("Create DB (val)", "hdf5", compression, "none"),
    ]
    assert js["image"]["backend"] == "hdf5" and js["image"]["compression"] == compression
    assert [t["entries"] for t in js["CreateDbTasks"]] == [t["entries"] for t in lmdb_js["CreateDbTasks"]] == [18, 6]
    assert js["CreateDbTasks"][0]["mean_file"] == "mean.binaryproto" and js["CreateDbTasks"][1]["mean_file"] is None

    lmdb_dir, hdf5_dir = workspace.store.job_dir(lmdb_id), workspace.store.job_dir(hdf5_id)
    for split, count in (("train", 18), ("val", 6)):
        data, labels, datasets = h5_records(os.path.join(hdf5_dir, f"{split}_db"))
        assert data.shape == (count, 3, 16, 16) and labels.shape == (count,)
        stored = None if compression == "none" else "gzip"
        assert set(datasets) == {(np.dtype("float32"), stored, np.dtype("float32"), stored)}
        with LmdbReader(os.path.join(lmdb_dir, f"{split}_db")) as db:
            expected = [datum_to_array(raw) for _, raw in db.items()]
        # The same images in the same order (PNG records are lossless): channels first, RGB, pixels 0..255.
        assert labels.tolist() == [float(label) for _, label in expected]
        assert np.array_equal(data, np.stack([a.transpose(2, 0, 1) for a, _ in expected]).astype(np.float32))
    assert np.allclose(
        read_mean(os.path.join(hdf5_dir, "mean.binaryproto")), read_mean(os.path.join(lmdb_dir, "mean.binaryproto"))
    )

    page = signed_in.get(f"/datasets/{hdf5_id}").get_data(as_text=True)
    assert re.search(r"Backend</dt><dd[^>]*>hdf5<", page) and re.search(
        rf"Compression</dt><dd[^>]*>{compression}<", page
    )

    # Explore reads the HDF5 records (DIGITS 6 answered 500 "expected backend is lmdb" here).
    page = signed_in.get(f"/datasets/{hdf5_id}/explore?split=val")
    assert page.status_code == 200 and f"/datasets/{hdf5_id}/records/val/5" in page.get_data(as_text=True)
    with signed_in.get(f"/datasets/{hdf5_id}/records/val/5") as r:
        assert r.status_code == 200 and r.mimetype == "image/png"
        picture = np.asarray(Image.open(io.BytesIO(r.data)))
    assert np.array_equal(picture, data[5].transpose(1, 2, 0).astype(np.uint8))
    assert signed_in.get(f"/datasets/{hdf5_id}/records/val/6").status_code == 404


@pytest.mark.parametrize(
    "change, field, label",
    [
        ({"backend": "hdf5", "compression": "lzf"}, "compression", "Compression"),
        ({"backend": "tfrecords"}, "backend", "Database backend"),
    ],
)
def test_a_backend_or_compression_we_do_not_write_is_refused_by_its_label(
    signed_in, workspace, shapes, change, field, label
):
    r = signed_in.post("/datasets/images/classification/json", data=dataset_form(shapes, **change))
    assert r.status_code == 400
    body = r.get_json()
    assert field in body["errors"] and "Choose one of" in body["errors"][field][0]
    assert f"{label}: Choose one of" in body["error"]["message"], body
    assert workspace.store.all() == []


def test_an_lmdb_is_never_compressed_as_in_digits(signed_in, recorder, shapes):
    # DIGITS' form sets compression to none for LMDB whatever was posted; so does ours.
    _, js = build(signed_in, recorder, shapes, folder_pct_val="0", compression="gzip")
    assert [(t["backend"], t["compression"], t["encoding"]) for t in js["CreateDbTasks"]] == [("lmdb", "none", "png")]
