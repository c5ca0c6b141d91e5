//! xnpu as an ONNX Runtime plugin execution provider.
