"""Keras model -> TFLite variants with sidecar metadata and a parity report (`python -m converter`)."""
