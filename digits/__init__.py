"""DIGITS: train and inspect image classifiers from a browser."""

__version__ = "0.1.0"
