"""Networks as DIGITS' own tests post them, shared by our ports of those tests."""

# DIGITS' CAFFE_NETWORK (digits/model/images/classification/test_views.py in NVIDIA/DIGITS), as its tests post it.
DIGITS_CAFFE_NETWORK = """
layer {
    name: "hidden"
    type: 'InnerProduct'
    bottom: "data"
    top: "output"
}
layer {
    name: "loss"
    type: "SoftmaxWithLoss"
    bottom: "output"
    bottom: "label"
    top: "loss"
    exclude { stage: "deploy" }
}
layer {
    name: "accuracy"
    type: "Accuracy"
    bottom: "output"
    bottom: "label"
    top: "accuracy"
    include { stage: "val" }
}
layer {
    name: "softmax"
    type: "Softmax"
    bottom: "output"
    top: "softmax"
    include { stage: "deploy" }
}
"""
