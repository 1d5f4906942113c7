"""Public Caffe networks (tests/data/caffe_nets, sources and licences in its LICENSES.md) against real Caffe.

For every file and stage, our analysis (what the Visualize route draws) gives each blob the shape real Caffe
(pycaffe, built by `make install`) gives it. Caffe builds a copy of the file in a subprocess
(caffe_net_oracle.py: a CHECK failure aborts a process) with its database layers replaced by inputs of the
shapes our analysis gives them and every batch set to BATCH; the file itself is used unchanged by us. Files
we refuse are listed in REFUSED with the message and why; a file that changes status either way fails, so a
newly supported layer type updates that list. Then every file with a train stage trains one step through our
PyTorch compilation on a generated batch. Skipped where real Caffe is not available (the training steps still
run).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from digits.engine.caffe.net import CaffeNet
from digits.model.caffe import CaffeError, analyze
from tests.support.real_caffe import real_caffe
from tests.support.waiting import LONG_S

ROOT = Path(__file__).resolve().parents[2] / "data" / "caffe_nets"
ORACLE = Path(__file__).with_name("caffe_net_oracle.py")
BATCH = 2
PHASES = {"train": "TRAIN", "val": "TEST", "deploy": "TEST"}
DATABASE_TYPES = ("Data", "ImageData", "HDF5Data", "WindowData")


@dataclass(frozen=True)
class Net:
    """How to read one file: its stages, the input where it declares none (C, H, W), DIGITS' class count."""

    stages: tuple[str, ...]
    input: tuple[int, ...] | None = None
    classes: int = 0
    train_input: tuple[int, ...] | None = None  # a smaller input for the training step where the net allows


DEPLOY = ("deploy",)
TRAIN_VAL = ("train", "val")
DIGITS_ALL = ("train", "val", "deploy")  # DIGITS keeps the three variants in one file, chosen by stage rules
IMAGENET = (3, 227, 227)
MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)
TRAIN = ("train",)
VAL = ("val",)

NETS: dict[str, Net] = {
    "bvlc_caffe/models/bvlc_alexnet/deploy.prototxt": Net(DEPLOY),
    "bvlc_caffe/models/bvlc_alexnet/train_val.prototxt": Net(TRAIN_VAL, IMAGENET),
    "bvlc_caffe/models/bvlc_reference_caffenet/deploy.prototxt": Net(DEPLOY),
    "bvlc_caffe/models/bvlc_reference_caffenet/train_val.prototxt": Net(TRAIN_VAL, IMAGENET),
    "bvlc_caffe/models/bvlc_reference_rcnn_ilsvrc13/deploy.prototxt": Net(DEPLOY),
    "bvlc_caffe/models/finetune_flickr_style/deploy.prototxt": Net(DEPLOY),
    "bvlc_caffe/models/finetune_flickr_style/train_val.prototxt": Net(TRAIN_VAL, IMAGENET),
    "bvlc_caffe/models/bvlc_googlenet/deploy.prototxt": Net(DEPLOY),
    "bvlc_caffe/models/bvlc_googlenet/train_val.prototxt": Net(TRAIN_VAL, (3, 224, 224)),
    "bvlc_caffe/examples/mnist/lenet.prototxt": Net(DEPLOY),
    "digits/examples/fine-tuning/lenet-fine-tune.prototxt": Net(DIGITS_ALL, (1, 28, 28), classes=2),
    "digits/examples/siamese/mnist_siamese_train_test.prototxt": Net(DIGITS_ALL, (3, 28, 28)),
    "digits/examples/binary-segmentation/segmentation-model.prototxt": Net(DIGITS_ALL, (3, 32, 32)),
    "digits/examples/semantic-segmentation/fcn_alexnet.prototxt": Net(DIGITS_ALL, (3, 64, 64)),
    "digits/examples/semantic-segmentation/fcn_alexnet.deploy.prototxt": Net(DEPLOY),
    "digits/standard-networks/caffe/lenet.prototxt": Net(DIGITS_ALL, (1, 28, 28), classes=10),
    "digits/standard-networks/caffe/alexnet.prototxt": Net(DIGITS_ALL, IMAGENET, classes=5),
    "bvlc_caffe/examples/net_surgery/bvlc_caffenet_full_conv.prototxt": Net(DEPLOY),
    "squeezenet/SqueezeNet_v1.0/deploy.prototxt": Net(DEPLOY),
    "squeezenet/SqueezeNet_v1.0/train_val.prototxt": Net(TRAIN_VAL, IMAGENET),
    "squeezenet/SqueezeNet_v1.1/deploy.prototxt": Net(DEPLOY),
    "squeezenet/SqueezeNet_v1.1/train_val.prototxt": Net(TRAIN_VAL, IMAGENET),
    "deep-residual-networks/prototxt/ResNet-101-deploy.prototxt": Net(DEPLOY),
    "mobilenet-caffe/mobilenet_deploy.prototxt": Net(DEPLOY),
    "mobilenet-caffe/mobilenet_train.prototxt": Net(TRAIN_VAL, (3, 224, 224), train_input=(3, 96, 96)),
    "fcn.berkeleyvision.org/voc-fcn8s/deploy.prototxt": Net(DEPLOY),
    "fcn.berkeleyvision.org/voc-fcn32s/train.prototxt": Net(TRAIN_VAL, (3, 64, 64)),
    "hed/examples/hed/deploy.prototxt": Net(DEPLOY),
    "hed/examples/hed/train_val.prototxt": Net(TRAIN_VAL, (3, 64, 64)),
    # BVLC examples over Caffe's history: V0 data params, V1 `layers {}` (shared params by name), V2.
    "bvlc_caffe/examples/lenet/lenet.prototxt": Net(DEPLOY),
    "bvlc_caffe/examples/lenet/lenet_train.prototxt": Net(TRAIN, MNIST),
    "bvlc_caffe/examples/lenet/lenet_test.prototxt": Net(VAL, MNIST),
    "bvlc_caffe/examples/mnist/lenet_train_test.prototxt": Net(TRAIN_VAL, MNIST),
    "bvlc_caffe/examples/mnist/lenet_auto_train.prototxt": Net(TRAIN, MNIST),
    "bvlc_caffe/examples/mnist/lenet_auto_test.prototxt": Net(VAL, MNIST),
    "bvlc_caffe/examples/mnist/mnist_autoencoder.prototxt": Net(TRAIN, MNIST),  # TEST needs its own stages
    "bvlc_caffe/examples/mnist/mnist_autoencoder_test.prototxt": Net(VAL, MNIST),
    "bvlc_caffe/examples/siamese/mnist_siamese.prototxt": Net(DEPLOY),
    "bvlc_caffe/examples/siamese/mnist_siamese_train_test.prototxt": Net(TRAIN_VAL, (2, 28, 28)),
    "bvlc_caffe/examples/cifar10/cifar10_full.prototxt": Net(DEPLOY),
    "bvlc_caffe/examples/cifar10/cifar10_quick_train_test.prototxt": Net(TRAIN_VAL, CIFAR),
    "bvlc_caffe/examples/cifar10/cifar10_full_train_test.prototxt": Net(TRAIN_VAL, CIFAR),
    "bvlc_caffe/examples/cifar10/cifar10_full_sigmoid_train_test.prototxt": Net(TRAIN_VAL, CIFAR),
    "bvlc_caffe/examples/cifar10/cifar10_full_sigmoid_train_test_bn.prototxt": Net(TRAIN_VAL, CIFAR),
    "bvlc_caffe/examples/imagenet/imagenet_deploy.prototxt": Net(DEPLOY),
    "bvlc_caffe/examples/imagenet/imagenet_val.prototxt": Net(VAL, IMAGENET),
    "bvlc_caffe/examples/imagenet/rcnn_imagenet_deploy.prototxt": Net(DEPLOY),
    "bvlc_caffe/examples/feature_extraction/imagenet_val.prototxt": Net(VAL),  # ImageData: sizes from its params
    "bvlc_caffe/examples/net_surgery/conv.prototxt": Net(DEPLOY),
    "bvlc_caffe/examples/hdf5_classification/train_val.prototxt": Net(TRAIN_VAL, (4,)),
    "bvlc_caffe/examples/hdf5_classification/nonlinear_train_val.prototxt": Net(TRAIN_VAL, (4,)),
    "bvlc_caffe/examples/coco_caption/lstm_language_model.prototxt": Net(TRAIN, (20,)),
    "bvlc_caffe/examples/pycaffe/linreg.prototxt": Net(DEPLOY),
    "bvlc_caffe/examples/finetune_pascal_detection/pascal_finetune_trainval_test.prototxt": Net(TRAIN_VAL),
    "digits/standard-networks/lenet.prototxt": Net(TRAIN_VAL, MNIST, classes=10),  # DIGITS 2's, by phase
}

# Files our analysis refuses: (words of the message, why). Supporting a layer type moves a file out of here.
REFUSED: dict[str, tuple[str, str]] = {
    "digits/examples/binary-segmentation/segmentation-model.prototxt": (
        "unknown layer type 'L1Loss'",
        "L1Loss is not a BVLC Caffe layer (DIGITS' example ran on NVIDIA's Caffe fork); real Caffe refuses it too",
    ),
    "fcn.berkeleyvision.org/voc-fcn32s/train.prototxt": (
        "Python layers run code from a module named in the network",
        "its data layer is a Python layer (voc_layers.SBDDSegDataLayer); DIGITS never imports a network's code",
    ),
    "bvlc_caffe/examples/pycaffe/linreg.prototxt": ("Python layers run code", "its loss is a Python layer"),
    "bvlc_caffe/examples/finetune_pascal_detection/pascal_finetune_trainval_test.prototxt": (
        "WindowData reads image windows",
        "R-CNN's window files are not a DIGITS dataset; refused by its type before any input shape is asked for",
    ),
    "bvlc_caffe/examples/cifar10/cifar10_full_sigmoid_train_test_bn.prototxt": (
        "unknown field 'scale_filler' in layer[4].batch_norm_param",
        "this stored version gives BatchNorm scale/bias fillers, fields of a pull request that BVLC's "
        "BatchNormParameter never took; real Caffe's parser refuses the file too",
    ),
    "bvlc_caffe/examples/coco_caption/lstm_language_model.prototxt": (
        "uses the label blob 'input_sentence'",
        "an HDF5Data of three time-major sentence blobs: DIGITS reads a data layer's second top as the label, "
        "and the sequences (time axis first) come from HDF5 files no generated dataset stands in for",
    ),
    "hed/examples/hed/train_val.prototxt": (
        "every layer needs a name",
        "its Crop and SigmoidCrossEntropyLoss layers are unnamed (Caffe allows that; our analysis keys layers by "
        "name), and its data layer is HED's own ImageLabelmapData, which BVLC Caffe does not have either",
    ),
}

# Files whose shapes differ from Caffe's and are not fixed yet: (the first difference, why).
MISMATCHED: dict[str, tuple[str, str]] = {}


@dataclass
class Outcome:
    """One file's result: 'exact', 'refused' or 'mismatched', with the message or the differences."""

    status: str
    detail: list[str] = field(default_factory=list)


def _ours(rel: str, stage: str):
    net = NETS[rel]
    text = (ROOT / rel).read_text()
    return analyze(text, stage=stage, input_shape=net.input, num_classes=net.classes, trainable=False)


def _feeds(spec) -> dict[str, list[int]]:
    """The blobs Caffe's copy gets as inputs: the tops of database layers, or the data (and label) blob DIGITS
    adds to a file with no data layer."""
    feeds = {top: list(shape) for layer in spec.layers if layer.type in DATABASE_TYPES for top, shape in
             layer.output_shapes.items()}  # fmt: skip
    if not any(layer.type in (*DATABASE_TYPES, "Input", "MemoryData") for layer in spec.layers):
        if spec.data_blob in spec.blob_shapes and not any(spec.data_blob in layer.tops for layer in spec.layers):
            feeds[spec.data_blob] = list(spec.blob_shapes[spec.data_blob])
        if spec.label_blob and any(spec.label_blob in layer.bottoms for layer in spec.layers):
            feeds[spec.label_blob] = []
    return feeds


def _oracle(jobs: list[dict]) -> dict[str, dict]:
    """Real Caffe's blobs per job; a job that aborts the process is reported as a crash with its stderr."""
    results: dict[str, dict] = {}
    todo = list(jobs)
    while todo:
        proc = subprocess.run(
            [sys.executable, str(ORACLE)],
            input=json.dumps(todo),
            capture_output=True,
            text=True,
            timeout=LONG_S,
            check=False,
        )
        started = None
        for line in proc.stdout.splitlines():
            record = json.loads(line)
            if record.get("started"):
                started = record["id"]
            else:
                results[record["id"]] = record
                started = None
        if started is None and all(job["id"] in results for job in todo):
            break
        if started is None:
            raise AssertionError(
                f"the Caffe oracle stopped before any job (rc {proc.returncode}): {proc.stderr[-2000:]}"
            )
        tail = [line for line in proc.stderr.splitlines() if line.strip()][-3:]
        results[started] = {"id": started, "error": f"Caffe aborted (rc {proc.returncode}): {' | '.join(tail)}"}
        todo = [job for job in todo if job["id"] not in results]
    return results


def _compare(spec, caffe_blobs: dict[str, list[int]]) -> list[str]:
    """Differences between our blob shapes (batch axis left out; () for a scalar loss or a label) and Caffe's."""
    diffs = []
    ours = spec.blob_shapes
    for name, shape in caffe_blobs.items():
        if name.startswith("(automatic)"):
            continue  # the unnamed top Caffe gives a loss layer written without one; nothing reads it
        if name not in ours:
            diffs.append(f"blob {name}: Caffe {shape}, ours none")
        elif shape == [] and ours[name] != ():
            diffs.append(f"blob {name}: Caffe scalar, ours N x {list(ours[name])}")
        elif shape and (shape[0] != BATCH or tuple(shape[1:]) != ours[name]):
            diffs.append(f"blob {name}: Caffe {shape}, ours N x {list(ours[name])}")
    # The label input DIGITS adds to a file without data layers is left out of Caffe's copy where no layer reads it.
    unread = {spec.label_blob} - {b for layer in spec.layers for b in layer.bottoms}
    extra = [name for name in ours if name not in caffe_blobs and name not in unread]
    diffs.extend(f"blob {name}: ours N x {list(ours[name])}, Caffe none" for name in extra)
    return diffs


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    """Every file's status against real Caffe (one oracle process for all jobs unless one aborts it)."""
    real_caffe()  # fails where the build was expected, else skips (tests/support/real_caffe.py)
    found: dict[str, Outcome] = {}
    jobs, specs = [], {}
    for rel, net in NETS.items():
        try:
            for stage in net.stages:
                specs[(rel, stage)] = _ours(rel, stage)
        except CaffeError as error:
            found[rel] = Outcome("refused", [str(error)])
            continue
        for stage in net.stages:
            spec = specs[(rel, stage)]
            job = {"path": str(ROOT / rel), "phase": PHASES[stage], "stage": stage, "batch": BATCH}
            jobs.append({**job, "id": f"{rel}:{stage}", "feeds": _feeds(spec), "num_output": net.classes})
    results = _oracle(jobs)
    for rel, net in NETS.items():
        if rel in found:
            continue
        diffs = []
        for stage in net.stages:
            result = results[f"{rel}:{stage}"]
            if "error" in result:
                diffs.append(f"{stage}: Caffe refuses what we accept: {result['error']}")
            else:
                diffs.extend(f"{stage}: {d}" for d in _compare(specs[(rel, stage)], result["blobs"]))
        found[rel] = Outcome("mismatched", diffs) if diffs else Outcome("exact")
    return found


@pytest.mark.parametrize("rel", list(NETS))
def test_public_net_has_caffes_shapes_or_is_a_listed_refusal(outcomes, rel):
    outcome = outcomes[rel]
    if rel in REFUSED:
        words, _why = REFUSED[rel]
        assert outcome.status == "refused", f"listed as refused but now {outcome.status}: {outcome.detail}"
        assert words in outcome.detail[0]
    elif rel in MISMATCHED:
        words, _why = MISMATCHED[rel]
        assert outcome.status == "mismatched", f"listed as mismatched but now {outcome.status}: {outcome.detail}"
        assert any(words in d for d in outcome.detail), outcome.detail
    else:
        assert outcome.status == "exact", f"{outcome.status}: {outcome.detail[:8]}"


def test_public_net_counts(outcomes, capsys):
    counts = {s: sorted(r for r, o in outcomes.items() if o.status == s) for s in ("exact", "refused", "mismatched")}
    with capsys.disabled():
        print(f"\npublic Caffe nets: {len(outcomes)} files, " + ", ".join(f"{s} {len(r)}" for s, r in counts.items()))
        for rel in counts["refused"] + counts["mismatched"]:
            print(f"  {outcomes[rel].status}: {rel}: {outcomes[rel].detail[0]}")
    assert len(outcomes) == len(NETS)
    assert set(counts["refused"]) == set(REFUSED)
    assert set(counts["mismatched"]) == set(MISMATCHED)


def test_every_file_not_listed_as_refused_is_analyzed_in_every_stage():
    """Without real Caffe too: DIGITS' own examples (a fine-tuned deploy stage whose logits layer is filled from the
    loss in another stage, a per-pixel Accuracy) and every public file analyze; the refused ones say why."""
    for rel, net in NETS.items():
        for stage in net.stages:
            if rel in REFUSED:
                with pytest.raises(CaffeError, match=re.escape(REFUSED[rel][0])):
                    _ours(rel, stage)
                break
            assert _ours(rel, stage).blob_shapes, (rel, stage)


TRAINABLE = [rel for rel, net in NETS.items() if "train" in net.stages and rel not in REFUSED]


def _loss(net: CaffeNet, blobs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The net's objective as Caffe sums it: each loss top times its loss_weight."""
    total = torch.zeros(())
    for layer in net.spec.layers:
        if not layer.type.endswith("Loss"):
            continue
        weight = layer.config.get("loss_weight", 1.0)
        bottoms = [blobs[b] for b in layer.bottoms]
        if layer.type == "SoftmaxWithLoss":
            logits = bottoms[0]
            target = bottoms[1].reshape(logits.shape[0], *logits.shape[2:]).long()
            value = F.cross_entropy(logits, target)
        elif layer.tops and layer.tops[0] in blobs:
            value = blobs[layer.tops[0]]
        else:
            (value,) = net.layer(layer.name)(*bottoms)
        total = total + weight * value
    return total


def _labels(spec) -> dict[str, torch.Tensor]:
    """Generated labels (0 or 1, valid for every loss here) for the inputs other than the data blob: the
    label DIGITS adds, or the tops of a second data layer (a segmentation network's per-pixel labels)."""
    names = {spec.label_blob} if spec.label_blob else set()
    names |= {t for layer in spec.layers if layer.type in DATABASE_TYPES for t in layer.tops} - {spec.data_blob}
    generator = torch.Generator().manual_seed(1)
    return {n: torch.randint(0, 2, (BATCH, *spec.blob_shapes.get(n, ())), generator=generator).float() for n in names}


@pytest.mark.slow
@pytest.mark.parametrize("rel", TRAINABLE)
def test_public_train_net_trains_a_step(rel):
    net_info = NETS[rel]
    shape = net_info.train_input or net_info.input
    torch.manual_seed(0)
    spec = analyze((ROOT / rel).read_text(), stage="train", input_shape=shape, num_classes=net_info.classes,
                   trainable=False)  # fmt: skip
    net = CaffeNet(spec).train()
    for layer in spec.layers:
        if layer.type == "BatchNorm" and layer.config["use_global_stats"]:
            # Frozen statistics (a file meant for fine-tuning): give them what pretrained weights would, unit
            # variance, instead of Caffe's empty ones (x / sqrt(eps) per layer overflows a deep stack).
            net.layer(layer.name).variance.fill_(1.0)
            net.layer(layer.name).scale_factor.fill_(1.0)
    x = torch.randn(BATCH, *spec.blob_shapes[spec.data_blob])
    labels = _labels(spec)
    loss = _loss(net, {**net.forward_blobs(x), **labels})
    assert loss.requires_grad and torch.isfinite(loss)
    params = [p for p in net.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.SGD(params, lr=0.01)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    changed = sum(not torch.equal(a, p.detach()) for a, p in zip(before, params, strict=True))
    assert changed > 0
    assert all(torch.isfinite(p).all() for p in params)
    after = _loss(net, {**net.forward_blobs(x), **labels})
    assert torch.isfinite(after)
