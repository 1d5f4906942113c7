"""The dataset wing: image classification datasets as LMDBs of Caffe Datum records."""

from digits.task_kinds import register_task_kind

DATASET_TYPE = "image-classification-dataset"

register_task_kind("dataset.parse", "digits.dataset.worker")
register_task_kind("dataset.create_db", "digits.dataset.worker")
