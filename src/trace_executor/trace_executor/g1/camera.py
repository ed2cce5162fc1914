"""Where the G1's head camera was when it took an image: stamped pose buffers.

The camera moves with the robot, so a trace (points in the camera's optical frame, stamped with
the image time) is expressed in odom with the camera pose *at that stamp*:

- in the simulator the pose comes stamped with every frame (``/sim/g1/camera_pose``);
- on the robot it is ``odom_T_pelvis(stamp)`` from odometry (interpolated between samples)
  times ``pelvis_T_camera`` from the URDF for the current waist joints
  (:meth:`~trace_executor.g1.kinematics.G1Kinematics.camera_pose`).

ROS-free: stamps are seconds (float), poses 4×4 numpy arrays.
"""

from __future__ import annotations

from collections import deque
import threading

import numpy as np
import pinocchio as pin


def pose_from_xyz_quat(xyz: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    """4×4 transform from a position and a quaternion ``(x, y, z, w)``.

    Raises:
        ValueError: a non-finite value or a zero quaternion.
    """
    p = np.asarray(xyz, dtype=float).reshape(3)
    q = np.asarray(quat_xyzw, dtype=float).reshape(4)
    n = float(np.linalg.norm(q))
    if not (np.all(np.isfinite(p)) and np.isfinite(n) and n > 1e-9):
        raise ValueError(f'invalid pose: position {p.tolist()}, quaternion {q.tolist()}')
    x, y, z, w = q / n
    t = np.eye(4)
    t[:3, :3] = pin.Quaternion(w, x, y, z).toRotationMatrix()
    t[:3, 3] = p
    return t


def interpolate_pose(a: np.ndarray, b: np.ndarray, f: float) -> np.ndarray:
    """The pose a fraction ``f`` of the way from ``a`` to ``b`` (linear + slerp)."""
    out = np.eye(4)
    out[:3, 3] = a[:3, 3] + f * (b[:3, 3] - a[:3, 3])
    out[:3, :3] = a[:3, :3] @ pin.exp3(f * pin.log3(a[:3, :3].T @ b[:3, :3]))
    return out


class PoseBuffer:
    """The last ``size`` stamped poses; lookup by stamp with interpolation. Thread-safe.

    Args:
        size: poses kept.
        max_gap_s: a stamp farther than this from any stored pose is unknown.
    """

    def __init__(self, size: int = 400, max_gap_s: float = 0.1) -> None:
        self._poses: deque[tuple[float, np.ndarray]] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.max_gap_s = float(max_gap_s)

    def add(self, stamp: float, pose: np.ndarray) -> None:
        """Store a pose (stamps should increase; an older one is ignored)."""
        with self._lock:
            if self._poses and stamp < self._poses[-1][0]:
                return
            self._poses.append((float(stamp), np.asarray(pose, dtype=float).copy()))

    def latest(self) -> tuple[float, np.ndarray] | None:
        """The newest ``(stamp, pose)``, if any."""
        with self._lock:
            return self._poses[-1] if self._poses else None

    def lookup(self, stamp: float) -> np.ndarray | None:
        """The pose at ``stamp``, or None when no stored pose is close enough.

        Interpolated between the neighbouring poses, else the nearest within ``max_gap_s``.
        """
        with self._lock:
            poses = list(self._poses)
        if not poses:
            return None
        stamps = np.array([s for s, _ in poses])
        i = int(np.searchsorted(stamps, stamp))
        if 0 < i < len(poses):
            (s0, p0), (s1, p1) = poses[i - 1], poses[i]
            if s1 - s0 <= 2 * self.max_gap_s:
                f = 0.0 if s1 == s0 else (stamp - s0) / (s1 - s0)
                return interpolate_pose(p0, p1, f)
        j = int(np.argmin(np.abs(stamps - stamp)))
        if abs(stamps[j] - stamp) <= self.max_gap_s:
            return poses[j][1].copy()
        return None

    def span(self) -> tuple[float, float] | None:
        """Oldest and newest stamps."""
        with self._lock:
            return (self._poses[0][0], self._poses[-1][0]) if self._poses else None


def pose_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Translation (m) and rotation angle (rad) between two poses."""
    dt = float(np.linalg.norm(a[:3, 3] - b[:3, 3]))
    dr = float(np.linalg.norm(pin.log3(a[:3, :3].T @ b[:3, :3])))
    return dt, dr


def at_image_border(u: float, v: float, width: int, height: int, margin_px: float = 2.0) -> bool:
    """Whether a pixel lies on the image border (a model clips what it cannot see there)."""
    return (
        u <= margin_px
        or v <= margin_px
        or u >= width - 1 - margin_px
        or (v >= height - 1 - margin_px)
    )


def continue_trace(
    new_points: np.ndarray, end_visible: bool, previous: np.ndarray | None
) -> tuple[np.ndarray, str]:
    """The trace to plan with after looking again from a new stance (odom points).

    A walk brings the robot close to the object; the destination may then be out of the
    camera's view (behind the robot, or clipped at the image border). The new view is trusted
    for where the object is now (the trace start); when its end is not visible, the rest of the
    trace comes from the previous view, where the destination was seen.

    Args:
        new_points: (N, 3) trace from the new view, odom.
        end_visible: the new trace's end lies inside its image.
        previous: (M, 3) the trace this goal planned with before, odom (None: first view).

    Returns:
        ``(points, note)``: the trace to plan with and what was combined ('' when unchanged).
    """
    if end_visible or previous is None or len(previous) < 2:
        return np.asarray(new_points, dtype=float), ''
    merged = np.vstack([np.asarray(new_points, dtype=float)[:1], previous[1:]])
    return merged, 'destination out of view: kept from the previous view'
