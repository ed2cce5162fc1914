"""The rules a trace must pass before any robot plans with it, in one place for both robots.

Each rule is one function that raises :class:`~trace_executor.errors.PlanningError` naming
what was wrong (and the offending waypoint). The UR5 and G1 planners and the executor nodes
call these; robot-specific limits (workspace box, hand heights, walking range) stay with the
robot, as parameters of these rules or as checks of their own after them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from trace_executor.errors import ErrorCode, PlanningError

#: rotation part of a transform: |R Rᵀ - I| and |det R - 1| must stay below this
RIGID_TOLERANCE = 1e-4
#: fewest points per mode: an object needs where it is and where it goes; follow needs one
MIN_POINTS = {'pick_place': 2, 'push': 2, 'follow': 1}
#: what a trace can ask a robot to do (each robot supports some of them)
MODES: tuple[str, ...] = tuple(MIN_POINTS)
#: the status value of SpatialTrace.STATUS_INVALID (a test checks it against the message)
STATUS_INVALID = 2


def fmt_point(p: Sequence[float]) -> str:
    """``[x, y, z]`` with millimetre resolution, for messages."""
    return '[' + ', '.join(f'{v:.3f}' for v in np.asarray(p, dtype=float)) + ']'


def check_message(n_points: int, status: int, quality_note: str) -> None:
    """A SpatialTrace message: it has points and the perception node did not mark it invalid.

    Raises:
        PlanningError: INVALID_TRACE.
    """
    if n_points == 0:
        raise PlanningError(ErrorCode.INVALID_TRACE, None, 'the trace has no points')
    if status == STATUS_INVALID:
        raise PlanningError(
            ErrorCode.INVALID_TRACE,
            None,
            f'the trace is marked invalid: {quality_note or "no reason"}',
        )


def check_points(points: Any, min_points: int = 1) -> np.ndarray:
    """An (N, 3) array of finite numbers with at least ``min_points`` rows.

    Returns:
        The points as a new float array.

    Raises:
        PlanningError: INVALID_TRACE naming the shape, the count or the first bad waypoint.
    """
    try:
        pts = np.array(points, dtype=float)
    except (TypeError, ValueError) as exc:
        raise PlanningError(
            ErrorCode.INVALID_TRACE, None, f'trace is not an array of 3D points: {exc}'
        ) from exc
    if pts.size == 0:
        raise PlanningError(ErrorCode.INVALID_TRACE, None, 'empty trace: no points to execute')
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise PlanningError(
            ErrorCode.INVALID_TRACE, None, f'trace must be N×3 points, got shape {pts.shape}'
        )
    if len(pts) < min_points:
        raise PlanningError(
            ErrorCode.INVALID_TRACE,
            None,
            f'trace needs at least {min_points} points, got {len(pts)}',
        )
    bad = np.flatnonzero(~np.all(np.isfinite(pts), axis=1))
    if bad.size:
        i = int(bad[0])
        raise PlanningError(
            ErrorCode.INVALID_TRACE,
            i,
            f'waypoint {i} of {len(pts)} is not finite: {pts[i].tolist()}',
        )
    return pts


def check_mode_points(pts: np.ndarray, mode: str) -> None:
    """Enough points for ``mode`` (see :data:`MIN_POINTS`).

    Raises:
        PlanningError: INVALID_TRACE.
    """
    need = MIN_POINTS.get(mode, 1)
    if len(pts) < need:
        what = {'pick_place': ' (where the object is, where it goes)', 'push': ' (a direction)'}
        raise PlanningError(
            ErrorCode.INVALID_TRACE,
            0,
            f'{mode} needs at least {need} trace points{what.get(mode, "")}, got {len(pts)}',
        )


def check_rigid(transform: Any, target: str, source: str) -> np.ndarray:
    """A 4×4 proper rigid transform ``target_T_source`` (finite, orthonormal, det +1).

    Raises:
        PlanningError: INVALID_TRACE naming both frames.
    """
    tf = np.asarray(transform, dtype=float)
    ok = tf.shape == (4, 4) and bool(np.all(np.isfinite(tf)))
    if ok:
        r = tf[:3, :3]
        ok = (
            np.allclose(r @ r.T, np.eye(3), atol=RIGID_TOLERANCE)
            and abs(np.linalg.det(r) - 1.0) < RIGID_TOLERANCE
            and np.allclose(tf[3], [0.0, 0.0, 0.0, 1.0])
        )
    if not ok:
        raise PlanningError(
            ErrorCode.INVALID_TRACE,
            None,
            f'the transform {target!r} <- {source!r} is not a 4×4 rigid transform',
        )
    return tf


def to_frame(
    pts: np.ndarray, frame_id: Optional[str], target: str, transform: Optional[np.ndarray]
) -> np.ndarray:
    """Express points given in ``frame_id`` in ``target`` (empty frame = ``target``).

    Raises:
        PlanningError: INVALID_TRACE when another frame comes without a rigid transform.
    """
    frame = frame_id or target
    if frame == target:
        return pts
    if transform is None:
        raise PlanningError(
            ErrorCode.INVALID_TRACE,
            None,
            f'trace is in frame {frame!r} but the planner works in {target!r} and no transform '
            'between them was given',
        )
    tf = check_rigid(transform, target, frame)
    return pts @ tf[:3, :3].T + tf[:3, 3]


def check_continuity(pts: np.ndarray, max_step_m: Optional[float]) -> None:
    """No two consecutive waypoints farther apart than ``max_step_m`` (None: no limit).

    Raises:
        PlanningError: INVALID_TRACE naming the waypoint after the jump.
    """
    if max_step_m is None or len(pts) < 2:
        return
    steps = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    jump = np.flatnonzero(steps > max_step_m)
    if jump.size:
        k = int(jump[0]) + 1
        raise PlanningError(
            ErrorCode.INVALID_TRACE,
            k,
            f'waypoint {k} of {len(pts)} at {fmt_point(pts[k])} m is {steps[k - 1]:.2f} m from '
            f'the previous one (limit {max_step_m:.2f} m): not a continuous path',
        )


def check_box(
    pts: np.ndarray, lo: Sequence[float], hi: Sequence[float], frame: str, floor_z: float
) -> None:
    """Every waypoint inside the box ``lo..hi`` and not below ``floor_z`` (a table top).

    Raises:
        PlanningError: WORKSPACE naming the waypoint.
    """
    lo_a, hi_a = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    pts = np.asarray(pts, dtype=float).reshape(-1, 3)
    low = pts[:, 2] < floor_z
    bad = np.flatnonzero(low | np.any((pts < lo_a) | (pts > hi_a), axis=1))
    if not bad.size:
        return
    i = int(bad[0])
    p = pts[i]
    if low[i]:
        raise PlanningError(
            ErrorCode.WORKSPACE,
            i,
            f'waypoint {i} of {len(pts)} at {fmt_point(p)} m is {floor_z - p[2]:.3f} m '
            f'below the table top (z = {floor_z:.3f} m in {frame!r})',
        )
    raise PlanningError(
        ErrorCode.WORKSPACE,
        i,
        f'waypoint {i} of {len(pts)} at {fmt_point(p)} m is outside the workspace box '
        f'{fmt_point(lo_a)}..{fmt_point(hi_a)} m ({frame!r})',
    )
