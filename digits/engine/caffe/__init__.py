"""Caffe networks compiled to PyTorch: layers, fillers and the network module (the torch-free parser, schema
and shape analysis are in digits.model.caffe)."""
