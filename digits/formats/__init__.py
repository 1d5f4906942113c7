"""Formats both wings share: Caffe's Datum and BlobProto, images and their resize modes, LMDB.

The exact preprocessing used to build a dataset is the one used to classify an image: both import it
from here. Nothing in this package imports Flask or torch.
"""
