"""The engine: every module that imports torch, and only those. Training (the trainer, its data, solvers,
augmentation, exports and the training worker), the Caffe-to-PyTorch compiler, and the inference worker.

The web process never imports this package; workers run its modules (`python -m digits.confined
digits.engine.train_worker ...`, `python -m digits.engine.inference.worker`).
"""
