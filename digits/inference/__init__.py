"""Classifying images with trained models: warm worker processes (torch) behind a pool, and views (torch-free).
The app factory wires them with digits.inference.app.install; the workers' own side is digits.engine.inference."""
