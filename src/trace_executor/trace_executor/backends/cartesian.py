"""Tool waypoints of a timed joint motion, for backends that execute Cartesian paths.

``moveL`` (rtde backend) and MoveIt's ``/compute_cartesian_path`` (moveit backend) move the tool
in straight lines between the poses they are given. The planner's motions are joint
trajectories whose tool path is (almost) a chain of straight lines sampled every 2 cm; sending
every 10 ms sample would drown a controller in tiny legs, so :func:`select_waypoints` keeps the
fewest samples whose straight legs stay within a tolerance of the planned tool path, in position
and orientation (Ramer-Douglas-Peucker on the pose samples). Helpers convert poses to the
``[x, y, z, rx, ry, rz]`` (axis-angle) vectors UR controllers take.

ROS-free: numpy and pinocchio only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pinocchio as pin


def tool_poses(
    positions_rad: np.ndarray, forward_tcp: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """TCP poses of joint samples.

    Args:
        positions_rad: (K, 6) joint positions (rad).
        forward_tcp: q → (4, 4) base_T_tcp (e.g. ``Ur5Planner.forward_tcp``).

    Returns:
        (K, 4, 4) TCP poses in the base frame.
    """
    qs = np.asarray(positions_rad, dtype=float)
    return np.array([np.asarray(forward_tcp(q), dtype=float) for q in qs]).reshape(-1, 4, 4)


def _rotation_error(r_a: np.ndarray, r_b: np.ndarray) -> float:
    return float(np.linalg.norm(pin.log3(r_a.T @ r_b)))


def select_waypoints(
    poses: np.ndarray,
    position_tolerance_m: float = 0.002,
    rotation_tolerance_rad: float = 0.02,
) -> list[int]:
    """Indices of the pose samples to keep so straight legs stay close to the sampled path.

    Between two kept samples the tool moves on the straight line between them, its orientation
    interpolated along the way (what ``moveL`` and MoveIt's Cartesian path do). Every dropped
    sample lies within ``position_tolerance_m`` of that line and within
    ``rotation_tolerance_rad`` of the interpolated orientation at the same fraction of the leg.

    Args:
        poses: (K, 4, 4) sampled poses along a path, K ≥ 1.
        position_tolerance_m: allowed position deviation of a dropped sample (m), > 0.
        rotation_tolerance_rad: allowed orientation deviation of a dropped sample (rad), > 0.

    Returns:
        Sorted indices, always including the first and the last sample.

    Raises:
        ValueError: if ``poses`` is not (K, 4, 4) with K ≥ 1 or a tolerance is not positive.
    """
    poses = np.asarray(poses, dtype=float)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) == 0:
        raise ValueError(f'poses must be (K, 4, 4) with K >= 1, got shape {poses.shape}')
    if not (position_tolerance_m > 0 and rotation_tolerance_rad > 0):
        raise ValueError('waypoint tolerances must be positive')
    k = len(poses)
    if k == 1:
        return [0]
    pos = poses[:, :3, 3]
    rot = poses[:, :3, :3]
    step_len = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    step_rot = np.array([_rotation_error(rot[n], rot[n + 1]) for n in range(k - 1)])
    arc = np.concatenate([[0.0], np.cumsum(step_len)])
    arc_rot = np.concatenate([[0.0], np.cumsum(step_rot)])
    keep = {0, k - 1}
    stack = [(0, k - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        inner = np.arange(i + 1, j)
        # fraction of the leg each inner sample is at (by path length, or by rotation when
        # the leg is a pure rotation, or by index when neither moves)
        if arc[j] - arc[i] > 1e-9:
            frac = (arc[inner] - arc[i]) / (arc[j] - arc[i])
        elif arc_rot[j] - arc_rot[i] > 1e-9:
            frac = (arc_rot[inner] - arc_rot[i]) / (arc_rot[j] - arc_rot[i])
        else:
            frac = (inner - i) / (j - i)
        line = pos[i] + frac[:, None] * (pos[j] - pos[i])
        dev_p = np.linalg.norm(pos[inner] - line, axis=1) / position_tolerance_m
        rel = pin.log3(rot[i].T @ rot[j])
        dev_r = np.array(
            [
                _rotation_error(rot[i] @ pin.exp3(f * rel), rot[n])
                for f, n in zip(frac, inner, strict=True)
            ]
        )
        dev = np.maximum(dev_p, dev_r / rotation_tolerance_rad)
        worst = int(np.argmax(dev))
        if dev[worst] > 1.0:
            m = int(inner[worst])
            keep.add(m)
            stack.append((i, m))
            stack.append((m, j))
    return sorted(keep)


def blend_radii(positions_m: np.ndarray, max_blend_m: float) -> np.ndarray:
    """Blend radius at each waypoint of a ``moveL`` path that keeps blends from overlapping.

    UR controllers require a blend not to reach past the middle of either adjoining leg (two
    blends would overlap otherwise) and the last waypoint to have no blend: the radius at an
    inner waypoint is ``min(max_blend_m, 0.45 × shorter adjoining leg)``, 0 at the last one.

    Args:
        positions_m: (K, 3) the start position followed by the K - 1 waypoint positions (m).
        max_blend_m: the blend radius wanted where the legs are long enough (m), ≥ 0.

    Returns:
        (K - 1,) blend radius for each waypoint after the start (m).
    """
    p = np.asarray(positions_m, dtype=float)
    legs = np.linalg.norm(np.diff(p, axis=0), axis=1)
    out = np.zeros(len(legs))
    if len(legs) > 1:
        out[:-1] = np.minimum(max_blend_m, 0.45 * np.minimum(legs[:-1], legs[1:]))
    return out


def ur_pose_vector(pose: np.ndarray) -> list[float]:
    """A 4×4 pose as the ``[x, y, z, rx, ry, rz]`` vector UR controllers take (m, axis-angle).

    Args:
        pose: (4, 4) homogeneous transform.

    Returns:
        Six floats: translation, then the rotation vector (axis × angle, angle in [0, π]).
    """
    t = np.asarray(pose, dtype=float)
    rv = pin.log3(t[:3, :3])
    return [float(v) for v in (*t[:3, 3], *rv)]


def ur_pose_matrix(vector: list[float] | np.ndarray) -> np.ndarray:
    """Inverse of :func:`ur_pose_vector`: ``[x, y, z, rx, ry, rz]`` → (4, 4) pose."""
    v = np.asarray(vector, dtype=float)
    out = np.eye(4)
    out[:3, :3] = pin.exp3(v[3:6])
    out[:3, 3] = v[:3]
    return out
