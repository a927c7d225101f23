"""Refinement of recorded video: a window's online tracks re-decided with the whole window in view.

See :mod:`.refiner`.
"""
