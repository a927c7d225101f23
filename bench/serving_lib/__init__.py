"""Parts of ``bench/serving.py``: each serving figure beside its ceiling."""
