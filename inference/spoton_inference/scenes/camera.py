"""An ideal pinhole camera in the scene's world frame.

World frame: ``x`` to the right of the floor plan, ``y`` downwards on it (both in
metres, equal to the map coordinates) and ``z`` *into* the floor, so the frame is
right-handed and a point ``h`` metres above the floor has ``z = -h``.

Image frame: continuous pixel coordinates where pixel ``(i, j)`` covers
``[i, i+1) x [j, j+1)`` (so its centre is ``(i + 0.5, j + 0.5)``), the convention of
detector boxes; OpenCV drawing, which puts centres at integers, needs a -0.5 shift.

Example:
    >>> import numpy as np
    >>> camera = PinholeCamera.look_at((0.0, 0.0, 3.0), (4.0, 0.0), hfov_deg=60.0,
    ...                                width=640, height=480)
    >>> uv, depth = camera.project(np.array([[4.0, 0.0, 0.0]]))
    >>> uv.round(6).tolist()
    [[320.0, 240.0]]
    >>> ground = camera.image_to_ground(uv)
    >>> np.abs(ground - [[4.0, 0.0]]).max() < 1e-9
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: World "up": heights are negative z.
UP = np.array([0.0, 0.0, -1.0])


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics ``K`` and extrinsics (``rotation``, ``centre``) of one camera.

    Attributes:
        K: 3x3 intrinsic matrix (principal point at the image centre).
        rotation: 3x3 world-to-camera rotation; rows are the camera's right, down
            and forward axes in world coordinates.
        centre: Optical centre in world coordinates, shape ``(3,)``.
        width: Image width in pixels.
        height: Image height in pixels.
    """

    K: np.ndarray
    rotation: np.ndarray
    centre: np.ndarray
    width: int
    height: int

    @classmethod
    def look_at(
        cls,
        position: tuple[float, float, float],
        target: tuple[float, float],
        hfov_deg: float,
        width: int,
        height: int,
    ) -> PinholeCamera:
        """A level (no roll) camera at ``(x, y, height)`` aimed at floor point ``target``."""
        centre = np.array([position[0], position[1], -position[2]])
        forward = np.array([target[0], target[1], 0.0]) - centre
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, UP)
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        focal = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
        K = np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
        return cls(K=K, rotation=np.stack([right, down, forward]), centre=centre, width=width, height=height)

    @property
    def focal(self) -> float:
        """Focal length in pixels."""
        return float(self.K[0, 0])

    @property
    def forward(self) -> np.ndarray:
        """Viewing direction in world coordinates."""
        return self.rotation[2]

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Distance of world ``points`` ``(..., 3)`` along the viewing direction."""
        return (points - self.centre) @ self.forward

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates ``(..., 2)`` and depths ``(...)`` of world ``points`` ``(..., 3)``.

        Points at or behind the camera get meaningless pixels: check ``depth > 0``.
        """
        in_camera = (points - self.centre) @ self.rotation.T
        depth = in_camera[..., 2]
        safe = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
        uv = in_camera[..., :2] / safe[..., None] * self.focal + self.K[:2, 2]
        return uv, depth

    def rays(self, uv: np.ndarray) -> np.ndarray:
        """World directions ``(..., 3)`` (not normalised) through pixels ``uv`` ``(..., 2)``."""
        in_camera = np.concatenate([(uv - self.K[:2, 2]) / self.focal, np.ones_like(uv[..., :1])], axis=-1)
        return in_camera @ self.rotation

    def pixel_rays(self, scale: int = 1) -> np.ndarray:
        """World directions ``(height*scale, width*scale, 3)`` through (sub-)pixel centres."""
        us = (np.arange(self.width * scale) + 0.5) / scale
        vs = (np.arange(self.height * scale) + 0.5) / scale
        return self.rays(np.stack(np.meshgrid(us, vs), axis=-1))

    def ground_to_image(self) -> np.ndarray:
        """Homography ``(3, 3)`` from floor points ``(x, y, 1)`` (metres) to pixels."""
        translation = -self.rotation @ self.centre
        return self.K @ np.column_stack([self.rotation[:, 0], self.rotation[:, 1], translation])

    def image_to_ground(self, uv: np.ndarray) -> np.ndarray:
        """Floor points ``(N, 2)`` in metres seen at pixels ``uv`` ``(N, 2)``."""
        homogeneous = np.column_stack([uv, np.ones(len(uv))]) @ np.linalg.inv(self.ground_to_image()).T
        return homogeneous[:, :2] / homogeneous[:, 2:]

    def horizon_v(self) -> float:
        """Image row of the horizon (may lie outside the image)."""
        # The horizon is where rays are level: the camera's down-axis component of a
        # level ray is cancelled by its forward component.
        down_z, forward_z = self.rotation[1, 2], self.rotation[2, 2]
        return float(self.K[1, 2] - self.focal * forward_z / down_z) if abs(down_z) > 1e-12 else -math.inf
