"""The model wing: image classification models trained on the PyTorch engine."""

from digits.task_kinds import register_task_kind

MODEL_TYPE = "image-classification-model"

register_task_kind("model.train", "digits.model.worker")
