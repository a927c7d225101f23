"""Default Re-ID calibration, in a module of its own so that settings can use it cheaply.

Re-ID cosine distances typical of the same person and of two different people for the
embedder in use: a distance maps linearly from 0 (same) to 1 (different) between them.
Measured for the default embedder on the generated suite (bench/replay.py); a stronger
model spreads them further apart.
"""

REID_SAME_DISTANCE = 0.16
REID_DIFFERENT_DISTANCE = 0.39
