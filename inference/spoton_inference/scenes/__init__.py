"""Seeded synthetic multi-camera scenes with exact ground truth.

No footage of real people can be fetched here, so the project films its own: a
closed hall with a tiled floor, several calibrated pinhole cameras on the walls
and people walking between random waypoints, drawn in perspective as shaded 3-D
figures that the project's SSDLite person detector finds (about 75 % recall on
the demo at IoU 0.5 and score 0.3).

Output of :func:`generate` (a stable format)::

    environment.json              id, name, map {image, metres_per_pixel},
                                  cameras [{id, name, fps, width, height,
                                  homography {image_points, map_points}}]
    map.png                       floor plan, ``metres_per_pixel`` metres a pixel
    cameras/<id>/sub_video_NN.mp4 H.264 (PyAV) or mp4v (OpenCV fallback)
    ground_truth/<id>.txt         MOTChallenge frame,id,x,y,w,h,1,-1,-1,-1
    ground_truth/map_positions.csv
    ground_truth/visibility.csv
    ground_truth/dropped_frames.csv  only when cameras may freeze (frame drops)

Frames are global and 1-based: batch ``k`` of every camera covers frames
``(k-1)*F+1 .. k*F`` for ``F = frames_per_batch``. Person ids are global: the same
person has the same id in every camera. Map coordinates are metres from the
floor plan's top-left corner (x right, y down). See
:mod:`~spoton_inference.scenes.ground_truth` for when a person is annotated.

Example:
    >>> import tempfile
    >>> from dataclasses import replace
    >>> config = replace(demo_config(seed=3), n_people=2, frames_per_batch=2)
    >>> out = generate(config, tempfile.mkdtemp())
    >>> (out / "environment.json").exists()
    True

Difficulty knobs of :class:`SceneConfig` (crowd density, crossings, similar
clothes, occluders, dim light, frame drops) and non-overlapping layouts
(:mod:`~spoton_inference.scenes.layouts`) make harder scenes; the fixed suite of
:mod:`~spoton_inference.scenes.suite` ranks six of them from easy to hard.

Command line: ``python -m spoton_inference.scenes OUT_DIR [--seed N]`` (the demo)
and ``python -m spoton_inference.scenes.suite OUT_DIR`` (the suite).
"""

from spoton_inference.scenes.config import CameraSpec, Occluder, SceneConfig, demo_config
from spoton_inference.scenes.generate import generate

__all__ = ["CameraSpec", "Occluder", "SceneConfig", "demo_config", "generate"]
