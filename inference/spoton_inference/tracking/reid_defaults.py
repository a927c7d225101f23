"""The default embedder's Re-ID distances, in a module of its own so settings can read them cheaply.

Cosine distances typical of two crops of one person and of two people for the default
embedder (MobileNetV2 ImageNet features with colour histograms): medians over the generated
suite. They are the prior of :mod:`spoton_inference.tracking.calibration`, which fits them
again on each task's own frames.
"""

DEFAULT_SAME_DISTANCE = 0.16
DEFAULT_DIFFERENT_DISTANCE = 0.39
