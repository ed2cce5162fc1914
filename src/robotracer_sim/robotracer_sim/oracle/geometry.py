"""Pinhole camera and rigid-transform helpers shared by the worlds and the oracle.

Conventions (the same everywhere in robotracer_sim):

- Quaternions in public APIs and YAML are ``(x, y, z, w)`` (ROS order). MuJoCo stores
  ``(w, x, y, z)``; :func:`quat_xyzw_to_wxyz` / :func:`quat_wxyz_to_xyzw` convert.
- Camera frames are *optical* frames: x right, y down, z forward (REP 103 ``_optical_frame``).
- Pixel coordinates follow OpenCV: the centre of pixel column ``i`` is at ``u = i``. A
  symmetric frustum (MuJoCo's) therefore has its principal point at ``cx = (W - 1) / 2``,
  ``cy = (H - 1) / 2``; ``fx = fy = (H / 2) / tan(fovy / 2)``.
- RoboTracer's normalised image coordinates: ``x = 1000 * u / W``, ``y = 1000 * v / H`` (so a
  client's ``u = x / 1000 * W`` inverts it exactly).
"""

from __future__ import annotations

from collections.abc import Sequence
import math

import numpy as np

# MuJoCo cameras look along their -z axis with y up; optical frames look along +z with y down.
MJ_CAMERA_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])


def quat_xyzw_to_wxyz(q: Sequence[float]) -> np.ndarray:
    """Reorder a ROS ``(x, y, z, w)`` quaternion into MuJoCo's ``(w, x, y, z)``."""
    x, y, z, w = (float(v) for v in q)
    return np.array([w, x, y, z])


def quat_wxyz_to_xyzw(q: Sequence[float]) -> np.ndarray:
    """Reorder a MuJoCo ``(w, x, y, z)`` quaternion into ROS ``(x, y, z, w)``."""
    w, x, y, z = (float(v) for v in q)
    return np.array([x, y, z, w])


def quat_xyzw_to_matrix(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix of a unit quaternion ``(x, y, z, w)``.

    Args:
        q: the quaternion; it is normalised first.

    Returns:
        The 3×3 rotation matrix.

    Raises:
        ValueError: the quaternion has (almost) zero norm or non-finite entries.

    """
    v = np.asarray(q, dtype=float)
    n = float(np.linalg.norm(v))
    if v.shape != (4,) or not np.all(np.isfinite(v)) or n < 1e-9:
        raise ValueError(f'not a valid quaternion (x, y, z, w): {list(q)}')
    x, y, z, w = v / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat_xyzw(r: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(x, y, z, w)`` (with ``w >= 0``) of a 3×3 rotation matrix."""
    m = np.asarray(r, dtype=float)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        w, x = 0.25 * s, (m[2, 1] - m[1, 2]) / s
        y, z = (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        w, x = (m[2, 1] - m[1, 2]) / s, 0.25 * s
        y, z = (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        w, x = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s
        y, z = 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        w, x = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s
        y, z = (m[1, 2] + m[2, 1]) / s, 0.25 * s
    q = np.array([x, y, z, w])
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def pose_matrix(position: Sequence[float], quat_xyzw: Sequence[float]) -> np.ndarray:
    """4×4 homogeneous transform from a position and a ``(x, y, z, w)`` quaternion."""
    t = np.eye(4)
    t[:3, :3] = quat_xyzw_to_matrix(quat_xyzw)
    t[:3, 3] = np.asarray(position, dtype=float)
    return t


def look_at_optical(
    position: Sequence[float], target: Sequence[float], up: Sequence[float] = (0.0, 0.0, 1.0)
) -> np.ndarray:
    """Pose (4×4, optical frame → world) of a camera at ``position`` looking at ``target``.

    Args:
        position: camera centre in the world, metres.
        target: the point the optical axis passes through, metres.
        up: world direction that appears "up" in the image.

    Returns:
        The 4×4 transform whose columns are the optical x (right), y (down), z (forward) axes.

    Raises:
        ValueError: ``target`` equals ``position`` or the view direction is parallel to ``up``.

    """
    p = np.asarray(position, dtype=float)
    z = np.asarray(target, dtype=float) - p
    if np.linalg.norm(z) < 1e-9:
        raise ValueError('look_at: target equals the camera position')
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=float))
    if np.linalg.norm(x) < 1e-9:
        raise ValueError('look_at: view direction is parallel to the up vector')
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    t = np.eye(4)
    t[:3, 0], t[:3, 1], t[:3, 2], t[:3, 3] = x, y, z, p
    return t


def intrinsics_from_fovy(width: int, height: int, fovy_deg: float) -> np.ndarray:
    """Pinhole intrinsics of a symmetric-frustum camera (MuJoCo's) with vertical FOV ``fovy``.

    Args:
        width: image width in pixels.
        height: image height in pixels.
        fovy_deg: vertical field of view in degrees.

    Returns:
        K (3×3) with ``fx = fy = (H/2)/tan(fovy/2)``, ``cx = (W-1)/2``, ``cy = (H-1)/2``.

    Raises:
        ValueError: non-positive size or a FOV outside (0, 180).

    """
    if width <= 0 or height <= 0:
        raise ValueError(f'image size must be positive, got {width}x{height}')
    if not 0.0 < fovy_deg < 180.0:
        raise ValueError(f'fovy must be in (0, 180) degrees, got {fovy_deg}')
    f = (height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def project(points_world: np.ndarray, k: np.ndarray, t_world_camera: np.ndarray) -> np.ndarray:
    """Project world points into an optical camera.

    Args:
        points_world: (N, 3) points in the world, metres.
        k: 3×3 intrinsics.
        t_world_camera: 4×4 optical camera → world transform.

    Returns:
        (N, 3) array of ``(u, v, z)``: pixel coordinates (OpenCV convention) and z-depth in
        metres (``z <= 0`` means behind the camera; u, v are then meaningless).

    """
    p = np.atleast_2d(np.asarray(points_world, dtype=float))
    t_cw = np.linalg.inv(t_world_camera)
    pc = p @ t_cw[:3, :3].T + t_cw[:3, 3]
    z = pc[:, 2]
    safe = np.where(np.abs(z) < 1e-12, 1e-12, z)
    u = k[0, 0] * pc[:, 0] / safe + k[0, 2]
    v = k[1, 1] * pc[:, 1] / safe + k[1, 2]
    return np.stack([u, v, z], axis=1)


def unproject(
    u: np.ndarray | float, v: np.ndarray | float, z: np.ndarray | float, k: np.ndarray
) -> np.ndarray:
    """Lift pixels with z-depth to 3D points in the optical camera frame.

    Args:
        u: pixel column(s) (OpenCV convention).
        v: pixel row(s).
        z: z-depth(s) in metres.
        k: 3×3 intrinsics.

    Returns:
        (N, 3) points in the camera optical frame, metres.

    """
    u, v, z = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (u, v, z))
    x = (u - k[0, 2]) * z / k[0, 0]
    y = (v - k[1, 2]) * z / k[1, 1]
    return np.stack([x, y, z], axis=1)


def transform_points(t: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4×4 transform to (N, 3) points."""
    p = np.atleast_2d(np.asarray(points, dtype=float))
    return p @ t[:3, :3].T + t[:3, 3]
