"""Tracking: per-camera tracks, cross-camera identities, self-calibrating Re-ID, and the refinement of recorded video.

Pure domain logic (numpy and scipy only): no I/O, no transport, no settings. The pipeline
(``spoton_inference.pipeline``) drives it frame by frame; ``bench/`` replays it.
"""
