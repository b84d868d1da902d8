"""Runtime backends (LiteRT, ONNX Runtime, Core ML, PyTorch), each imported lazily."""
