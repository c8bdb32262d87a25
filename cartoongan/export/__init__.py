"""Export trained generators to ONNX and TensorRT (needs the `export` extra)."""
