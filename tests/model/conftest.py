"""A small dataset ready to train on, built once per session with the real create-db code."""

from __future__ import annotations

import pytest

from digits.job import Job
from tests.support.datasets import add_ready_dataset, create_db
from tests.support.imagegen import make_shapes

__all__ = ["add_ready_dataset"]  # older imports from here; new code imports tests.support.datasets


@pytest.fixture(scope="session")
def shapes_dataset_dir(tmp_path_factory) -> str:
    """Gray 28x28 shapes, 3 classes: 90 train / 30 val images, as a dataset folder."""
    root = tmp_path_factory.mktemp("shapes-ds")
    make_shapes(str(root / "src"), per_class=40, size=(24, 40))
    return create_db(root / "dataset", root / "src")


@pytest.fixture
def dataset(workspace, shapes_dataset_dir) -> Job:
    return add_ready_dataset(workspace, shapes_dataset_dir)
