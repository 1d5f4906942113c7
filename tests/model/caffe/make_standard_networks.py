"""Writes digits/model/networks/caffe/{alexnet,googlenet}.prototxt.

Run by hand: python -m tests.model.caffe.make_standard_networks

The committed .prototxt files are the source of truth users read and edit; this script only saved typing
the long GoogLeNet. It is not a test module; test_standard_networks.py counts GoogLeNet's parameters from its
INCEPTIONS, the paper's table.
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parents[3] / "digits" / "model" / "networks" / "caffe"
LEARN = "  param { lr_mult: 1 decay_mult: 1 }\n  param { lr_mult: 2 decay_mult: 0 }\n"
EXCLUDE_DEPLOY = '  exclude { stage: "deploy" }\n'


def layer(name, kind, bottoms, tops, body="", rules=""):
    lines = [f'layer {{\n  name: "{name}"\n  type: "{kind}"\n']
    lines += [f'  bottom: "{b}"\n' for b in bottoms]
    lines += [f'  top: "{t}"\n' for t in tops]
    return "".join(lines) + rules + body + "}\n"


def data_layers(batch, crop):
    train = f"  transform_param {{\n    mirror: true\n    crop_size: {crop}\n  }}\n"
    val = f"  transform_param {{\n    crop_size: {crop}\n  }}\n"
    data = f"  data_param {{\n    batch_size: {batch}\n  }}\n"
    return layer("train-data", "Data", [], ["data", "label"], train + data, '  include { stage: "train" }\n') + layer(
        "val-data", "Data", [], ["data", "label"], val + data, '  include { stage: "val" }\n'
    )


def conv(name, bottom, num, kernel, *, stride=1, pad=0, group=1, weight="", bias=0.2, top=None, rules=""):
    opts = [f"    num_output: {num}\n"]
    opts += [f"    pad: {pad}\n"] if pad else []
    opts += [f"    kernel_size: {kernel}\n"]
    opts += [f"    stride: {stride}\n"] if stride != 1 else []
    opts += [f"    group: {group}\n"] if group != 1 else []
    opts += [
        f"    weight_filler {{\n      {weight}\n    }}\n",
        f'    bias_filler {{\n      type: "constant"\n      value: {bias}\n    }}\n',
    ]
    body = LEARN + "  convolution_param {\n" + "".join(opts) + "  }\n"
    return layer(name, "Convolution", [bottom], [top or name], body, rules)


def fc(name, bottom, num, *, weight, bias, rules=""):
    opts = f"    num_output: {num}\n" if num else "    # num_output is filled in by DIGITS with the number of classes\n"
    body = LEARN + "  inner_product_param {\n" + opts
    body += f"    weight_filler {{\n      {weight}\n    }}\n"
    body += f'    bias_filler {{\n      type: "constant"\n      value: {bias}\n    }}\n  }}\n'
    return layer(name, "InnerProduct", [bottom], [name], body, rules)


def relu(name, blob, rules=""):
    return layer(name, "ReLU", [blob], [blob], "", rules)


def pool(name, bottom, kind, kernel, stride, pad=0, rules=""):
    body = f"  pooling_param {{\n    pool: {kind}\n    kernel_size: {kernel}\n    stride: {stride}\n"
    body += f"    pad: {pad}\n" if pad else ""
    return layer(name, "Pooling", [bottom], [name], body + "  }\n", rules)


def lrn(name, bottom):
    body = "  lrn_param {\n    local_size: 5\n    alpha: 0.0001\n    beta: 0.75\n  }\n"
    return layer(name, "LRN", [bottom], [name], body)


def dropout(name, blob, ratio, rules=""):
    return layer(name, "Dropout", [blob], [blob], f"  dropout_param {{\n    dropout_ratio: {ratio}\n  }}\n", rules)


def heads(prefix, logits, loss_name, weight, rules):
    """Loss (train/val), top-1 and top-5 accuracy (val) for one classifier."""
    out = layer(f"{prefix}/{loss_name}", "SoftmaxWithLoss", [logits, "label"], [f"{prefix}/{prefix}"], "", rules)
    if weight != 1:
        out = out[: -len("}\n")] + f"  loss_weight: {weight}\n}}\n"
    for k in (1, 5):
        body = f"  accuracy_param {{\n    top_k: {k}\n  }}\n" if k != 1 else ""
        out += layer(
            f"{prefix}/top-{k}",
            "Accuracy",
            [logits, "label"],
            [f"{prefix}/top-{k}"],
            body,
            '  include { stage: "val" }\n',
        )
    return out


def softmax(logits):
    return layer("softmax", "Softmax", [logits], ["softmax"], "", '  include { stage: "deploy" }\n')


GAUSS = 'type: "gaussian"\n      std: {}'


def alexnet():
    text = """# AlexNet (Krizhevsky et al., 2012), the BVLC reference version, in DIGITS' layout.
#
# One file holds three variants, chosen by stage rules: train, val, and deploy (whose input blob is "data").
# Inputs are 227x227 crops of 256x256 images (mirrored at random in training); DIGITS subtracts the mean.
# The last InnerProduct ("fc8") has no num_output: DIGITS sets it to the dataset's number of classes.
name: "AlexNet"
"""
    text += data_layers(128, 227)
    text += conv("conv1", "data", 96, 11, stride=4, weight=GAUSS.format(0.01), bias=0)
    text += relu("relu1", "conv1") + lrn("norm1", "conv1") + pool("pool1", "norm1", "MAX", 3, 2)
    text += conv("conv2", "pool1", 256, 5, pad=2, group=2, weight=GAUSS.format(0.01), bias=0.1)
    text += relu("relu2", "conv2") + lrn("norm2", "conv2") + pool("pool2", "norm2", "MAX", 3, 2)
    text += conv("conv3", "pool2", 384, 3, pad=1, weight=GAUSS.format(0.01), bias=0) + relu("relu3", "conv3")
    text += conv("conv4", "conv3", 384, 3, pad=1, group=2, weight=GAUSS.format(0.01), bias=0.1)
    text += relu("relu4", "conv4")
    text += conv("conv5", "conv4", 256, 3, pad=1, group=2, weight=GAUSS.format(0.01), bias=0.1)
    text += relu("relu5", "conv5") + pool("pool5", "conv5", "MAX", 3, 2)
    text += fc("fc6", "pool5", 4096, weight=GAUSS.format(0.005), bias=0.1) + relu("relu6", "fc6")
    text += dropout("drop6", "fc6", 0.5)
    text += fc("fc7", "fc6", 4096, weight=GAUSS.format(0.005), bias=0.1) + relu("relu7", "fc7")
    text += dropout("drop7", "fc7", 0.5)
    text += fc("fc8", "fc7", None, weight=GAUSS.format(0.01), bias=0)
    text += layer("accuracy", "Accuracy", ["fc8", "label"], ["accuracy"], "", '  include { stage: "val" }\n')
    text += layer("loss", "SoftmaxWithLoss", ["fc8", "label"], ["loss"], "", EXCLUDE_DEPLOY)
    return text + softmax("fc8")


XAVIER = 'type: "xavier"'

# name: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection), from Szegedy et al. (2014), table 1.
INCEPTIONS = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def inception(name, bottom):
    one, r3, three, r5, five, proj = INCEPTIONS[name]
    p = f"inception_{name}"
    text = f"# ---- {p}: 1x1, 3x3, 5x5 and pooled branches, concatenated along channels\n"
    text += conv(f"{p}/1x1", bottom, one, 1, weight=XAVIER) + relu(f"{p}/relu_1x1", f"{p}/1x1")
    text += conv(f"{p}/3x3_reduce", bottom, r3, 1, weight=XAVIER) + relu(f"{p}/relu_3x3_reduce", f"{p}/3x3_reduce")
    text += conv(f"{p}/3x3", f"{p}/3x3_reduce", three, 3, pad=1, weight=XAVIER) + relu(f"{p}/relu_3x3", f"{p}/3x3")
    text += conv(f"{p}/5x5_reduce", bottom, r5, 1, weight=XAVIER) + relu(f"{p}/relu_5x5_reduce", f"{p}/5x5_reduce")
    text += conv(f"{p}/5x5", f"{p}/5x5_reduce", five, 5, pad=2, weight=XAVIER) + relu(f"{p}/relu_5x5", f"{p}/5x5")
    text += pool(f"{p}/pool", bottom, "MAX", 3, 1, pad=1)
    text += conv(f"{p}/pool_proj", f"{p}/pool", proj, 1, weight=XAVIER) + relu(f"{p}/relu_pool_proj", f"{p}/pool_proj")
    branches = [f"{p}/1x1", f"{p}/3x3", f"{p}/5x5", f"{p}/pool_proj"]
    return text + layer(f"{p}/output", "Concat", branches, [f"{p}/output"])


def aux_head(prefix, bottom):
    """An auxiliary classifier (loss1, loss2): trains the middle of the net, absent from deploy."""
    rules = EXCLUDE_DEPLOY
    text = f"# ---- {prefix}: auxiliary classifier, weight 0.3, train and val only\n"
    text += pool(f"{prefix}/ave_pool", bottom, "AVE", 5, 3, rules=rules)
    text += conv(f"{prefix}/conv", f"{prefix}/ave_pool", 128, 1, weight=XAVIER, rules=rules)
    text += relu(f"{prefix}/relu_conv", f"{prefix}/conv", rules)
    text += fc(f"{prefix}/fc", f"{prefix}/conv", 1024, weight=XAVIER, bias=0.2, rules=rules)
    text += relu(f"{prefix}/relu_fc", f"{prefix}/fc", rules) + dropout(f"{prefix}/drop_fc", f"{prefix}/fc", 0.7, rules)
    text += fc(f"{prefix}/classifier", f"{prefix}/fc", None, weight=XAVIER, bias=0, rules=rules)
    return text + heads(prefix, f"{prefix}/classifier", "loss", 0.3, rules)


def googlenet():
    text = """# GoogLeNet (Inception v1, Szegedy et al., 2014), the BVLC version, in DIGITS' layout.
#
# One file holds three variants, chosen by stage rules: train, val, and deploy (whose input blob is "data").
# Inputs are 224x224 crops (mirrored at random in training); DIGITS subtracts the mean.
# Two auxiliary classifiers (loss1 after inception_4a, loss2 after inception_4d) add 0.3 x their loss in
# train and val; deploy keeps only the main classifier (loss3). The classifiers' InnerProduct layers have
# no num_output: DIGITS sets it to the dataset's number of classes.
name: "GoogLeNet"
"""
    text += data_layers(32, 224)
    text += conv("conv1/7x7_s2", "data", 64, 7, stride=2, pad=3, weight=XAVIER) + relu("conv1/relu_7x7", "conv1/7x7_s2")
    text += pool("pool1/3x3_s2", "conv1/7x7_s2", "MAX", 3, 2) + lrn("pool1/norm1", "pool1/3x3_s2")
    text += conv("conv2/3x3_reduce", "pool1/norm1", 64, 1, weight=XAVIER)
    text += relu("conv2/relu_3x3_reduce", "conv2/3x3_reduce")
    text += conv("conv2/3x3", "conv2/3x3_reduce", 192, 3, pad=1, weight=XAVIER) + relu("conv2/relu_3x3", "conv2/3x3")
    text += lrn("conv2/norm2", "conv2/3x3") + pool("pool2/3x3_s2", "conv2/norm2", "MAX", 3, 2)
    text += inception("3a", "pool2/3x3_s2") + inception("3b", "inception_3a/output")
    text += pool("pool3/3x3_s2", "inception_3b/output", "MAX", 3, 2)
    text += inception("4a", "pool3/3x3_s2") + aux_head("loss1", "inception_4a/output")
    text += inception("4b", "inception_4a/output") + inception("4c", "inception_4b/output")
    text += inception("4d", "inception_4c/output") + aux_head("loss2", "inception_4d/output")
    text += inception("4e", "inception_4d/output") + pool("pool4/3x3_s2", "inception_4e/output", "MAX", 3, 2)
    text += inception("5a", "pool4/3x3_s2") + inception("5b", "inception_5a/output")
    text += "# ---- main classifier\n"
    text += pool("pool5/7x7_s1", "inception_5b/output", "AVE", 7, 1)
    text += dropout("pool5/drop_7x7_s1", "pool5/7x7_s1", 0.4)
    text += fc("loss3/classifier", "pool5/7x7_s1", None, weight=XAVIER, bias=0)
    return text + heads("loss3", "loss3/classifier", "loss3", 1, EXCLUDE_DEPLOY) + softmax("loss3/classifier")


if __name__ == "__main__":
    (OUT / "alexnet.prototxt").write_text(alexnet())
    (OUT / "googlenet.prototxt").write_text(googlenet())
