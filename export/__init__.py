"""Export: ONNX, TFLite and Core ML artifacts, the fidelity gate and model bundles."""
