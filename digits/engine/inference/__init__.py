"""The inference worker's side (torch): a loaded model, its per-layer visualizations, and the worker loop."""
