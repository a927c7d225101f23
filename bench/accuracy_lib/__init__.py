"""The pieces of ``bench/accuracy.py``: the service run, the ByteTrack baseline, the
ground-truth oracle, scoring, target checks and the report.

``motfile`` is imported by ``bench/baseline_bytetrack.py`` inside ``.venv-baseline`` too, so
it depends on numpy alone; everything else runs in the main venv.
"""
