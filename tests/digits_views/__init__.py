"""Our port of DIGITS 6's view tests (NVIDIA/DIGITS: digits/test_views.py,
digits/dataset/images/classification/test_views.py, digits/model/images/classification/test_views.py), written in
our words from reading them: the same routes, form fields, fixtures (3 classes x 10 small PNG gradients, 10x10) and
expected answers, posted the way DIGITS' Flask test client posted them (form-encoded, no Accept header).

Each module's docstring maps its tests to the DIGITS tests they port. What is not ported, and why, is NOT_PORTED
below (tests/digits_views/README.md says the same for people).
"""

# DIGITS test (file: class.test) -> why it is not ported.
NOT_PORTED: dict[str, str] = {
    "test_views.py: TestViews.test_models_page": (
        "only in DIGITS 4's copy of the file (DIGITS 6 removed it): GET /models, a page DIGITS 6 no longer has"
    ),
    "model/.../test_views.py: BaseTestCreation.test_select_gpu, test_select_gpus": (
        "GPUs: they pick each GPU of DIGITS' gpu_list in turn (skipped in DIGITS without CUDA too); our GPU "
        "selection is tested where the server has GPUs (tests/test_hardware.py)"
    ),
    "model/.../test_views.py: BaseTestCreated.test_save": (
        "DIGITS' server objects: digits.webapp.scheduler.get_job(id).save(), a pickled job; ours are job.json "
        "files written by the store (tests/test_store.py)"
    ),
    "model/.../test_views.py: BaseTestCreated.test_get_snapshot": (
        "DIGITS' server objects: the scheduler's job.train_task().get_snapshot(-1); the snapshots themselves "
        "are checked through /models/<id>.json and the downloads here"
    ),
    "model/.../test_views.py: TestPythonLayer.test_python_layer": (
        "Caffe internals: a Caffe Python layer (python_layer_server_file, a caffe.Layer subclass run inside "
        "pycaffe); our Caffe networks are compiled to PyTorch and have no Python layer type"
    ),
    "model/.../test_views.py: TestBatchAccumulationCaffe.test_batch_accumulation_calculations": (
        "Caffe internals: it parses the job's Caffe solver.prototxt (caffe_pb2.SolverParameter iter_size, "
        "max_iter); we write no solver.prototxt. Batch accumulation itself trains in test_model_views"
    ),
    "model/.../test_views.py: TestTorchViews.test_visualize_network": (
        "a Lua Torch7 network drawn by running th; our torch framework is PyTorch, whose networks are Python "
        "code the web process never runs (it never imports torch), so visualize-network answers 400 for it"
    ),
    "model/.../test_views.py: the Torch7 (Lua) TORCH_NETWORK of every TestTorch* class": (
        "Lua Torch7 cannot run here; the Torch classes' scenarios are ported once with DIGITS' Caffe network, "
        "and a PyTorch network equivalent to DIGITS' Torch one (flatten, a zeroed Linear) trains and classifies "
        "in test_model_views.test_a_pytorch_network_like_digits_torch_one"
    ),
    "dataset/.../test_views.py: TestCreatedHdf5.test_explore_train, test_explore_val": (
        "they assert DIGITS' own limitation (500 'expected backend is lmdb' for an HDF5 dataset's explorer); "
        "ours explores HDF5 datasets (tests/dataset/test_hdf5.py)"
    ),
}
