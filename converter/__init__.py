"""Keras model -> TFLite variants with sidecar metadata and a parity report (`python -m converter`).

Converts v1 runs (the paper's model, the four TTA views) and v2 runs from `trainer/ship.py` (pooled backbone
blocks -> head; threshold.json gives the views, e.g. a native-resolution crop, and the escalation band).
"""
