"""The dataset wing: image classification datasets as LMDBs of Caffe Datum records."""

from digits.datapaths import allowed_roots
from digits.task_kinds import register_task_kind

DATASET_TYPE = "image-classification-dataset"


def dataset_access(workspace, job, task) -> dict:
    """What a dataset's workers read besides their own folder: the data roots (on a loopback server without
    any, every path but the jobs folder)."""
    roots = allowed_roots(workspace.settings)
    return {"data": [None] if roots is None else roots}


register_task_kind("dataset.parse", "digits.dataset.worker", dataset_access)
register_task_kind("dataset.create_db", "digits.dataset.worker", dataset_access)
register_task_kind("dataset.import_lmdb", "digits.dataset.worker", dataset_access)
register_task_kind("dataset.generic", "digits.dataset.generic_task", dataset_access)
