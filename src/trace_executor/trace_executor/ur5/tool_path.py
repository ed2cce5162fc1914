"""Trace (object-centre path) → validated, densely interpolated TCP path for the UR5.

Design notes: docs/design-notes.md (trace_executor.ur5.tool_path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math
from typing import Optional

import numpy as np
import pinocchio as pin

from .. import trace_check
from ..errors import ErrorCode, PlanningError
from ..trace_check import MODES, fmt_point


def top_down_rotation(yaw_rad: float) -> np.ndarray:
    """TCP orientation pointing straight down (TCP z = −base z), turned by ``yaw_rad`` about z.

    Args:
        yaw_rad: angle of the TCP x axis from the base x axis, in the table plane (rad).

    Returns:
        (3, 3) rotation base_R_tcp.
    """
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    return np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])


def validate_trace(
    points: object,
    frame_id: str,
    base_frame: str,
    workspace_min_m: Sequence[float],
    workspace_max_m: Sequence[float],
    table_height_m: float,
    transform: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Check a trace and express it in the base frame.

    Args:
        points: (N, 3) object-centre points (m) in ``frame_id``.
        frame_id: frame of ``points``.
        base_frame: the robot base frame.
        workspace_min_m: (3,) lower corner of the allowed box in the base frame (m).
        workspace_max_m: (3,) upper corner of the allowed box (m).
        table_height_m: z of the table top in the base frame (m); points below it are rejected.
        transform: (4, 4) base_T_frame mapping ``frame_id`` coordinates to the base frame;
            required when ``frame_id`` is not ``base_frame``.

    Returns:
        (N, 3) points in the base frame (a new array).

    Raises:
        PlanningError: ``INVALID_TRACE`` (not an N×3 array, empty, NaN/inf point, wrong frame
            without a transform, transform not rigid) or ``WORKSPACE`` (a point outside the
            box or below the table), naming the offending point.
    """
    pts = trace_check.check_points(points)
    pts = trace_check.to_frame(pts, frame_id, base_frame, transform)
    trace_check.check_box(pts, workspace_min_m, workspace_max_m, base_frame, table_height_m)
    return pts


@dataclass(frozen=True)
class ToolPathParams:
    """Geometry of the tool path (all lengths in metres, in the base frame).

    Attributes:
        tool_rotation: (3, 3) TCP orientation while working (top-down by default).
        table_height_m: z of the table top.
        min_tcp_height_m: the TCP never goes closer to the table than this.
        approach_height_m: height of the approach/retreat poses above grasp, place, push.
        carry_height_m: the carried object's centre stays at least this high above its resting
            height (≥ ``min_tcp_height_m``, so its bottom clears the table).
        push_backoff_m: the push starts this far behind the first contact point.
        push_contact_offset_m: the TCP pushes this far behind the object's centre.
        cartesian_step_m: maximum distance between consecutive tool path samples.
        angular_step_rad: maximum rotation between consecutive tool path samples.
        workspace_min_m: (3,) lower corner of the box every tool pose must stay in.
        workspace_max_m: (3,) upper corner of that box.
    """

    tool_rotation: np.ndarray
    table_height_m: float = 0.0
    min_tcp_height_m: float = 0.01
    approach_height_m: float = 0.10
    carry_height_m: float = 0.10
    push_backoff_m: float = 0.05
    push_contact_offset_m: float = 0.04
    cartesian_step_m: float = 0.02
    angular_step_rad: float = 0.1
    workspace_min_m: tuple[float, float, float] = (-1.2, -1.2, 0.0)
    workspace_max_m: tuple[float, float, float] = (1.2, 1.2, 1.2)


@dataclass(frozen=True)
class ToolPath:
    """Densely sampled TCP path in the base frame.

    Attributes:
        positions: (M, 3) TCP positions (m); ``positions[0]`` is the start pose.
        rotations: (M, 3, 3) TCP orientations.
        trace_index: (M,) index of the trace point each sample belongs to (the point the
            segment leading to it heads for; approach samples belong to point 0).
        phases: M labels: ``start``, ``rise``, ``approach``, ``descend``, ``lift``, ``carry``,
            ``place``, ``retreat``, ``push``, ``follow``.
        events: ``(sample index, close)`` gripper actions to perform on arrival at that sample
            (``close=True``: grasp, ``False``: release).
        key_indices: sample indices of the key poses the path was interpolated between.
    """

    positions: np.ndarray
    rotations: np.ndarray
    trace_index: np.ndarray
    phases: tuple[str, ...]
    events: tuple[tuple[int, bool], ...]
    key_indices: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.positions)


@dataclass
class _Key:
    position: np.ndarray
    rotation: np.ndarray
    trace_index: int
    phase: str
    event: Optional[bool] = None  # gripper action on arrival: True close, False open


def _horizontal_direction(v: np.ndarray) -> Optional[np.ndarray]:
    d = np.array([v[0], v[1], 0.0])
    n = float(np.linalg.norm(d))
    return d / n if n > 1e-3 else None


def _push_directions(pts: np.ndarray) -> np.ndarray:
    """Unit horizontal push direction at each trace point (central differences)."""
    n = len(pts)
    first = None
    for j in range(1, n):
        first = _horizontal_direction(pts[j] - pts[0])
        if first is not None:
            break
    if first is None:
        raise PlanningError(
            ErrorCode.INVALID_TRACE,
            None,
            f'push trace of {n} points has no horizontal motion (all within 1 mm of '
            f'{fmt_point(pts[0])} m): no push direction',
        )
    dirs = np.empty((n, 3))
    prev = first
    for i in range(n):
        d = _horizontal_direction(pts[min(i + 1, n - 1)] - pts[max(i - 1, 0)])
        prev = d if d is not None else prev
        dirs[i] = prev
    dirs[0] = first
    return dirs


def _keys_for_mode(
    pts: np.ndarray, mode: str, start: pin.SE3, params: ToolPathParams, holding: bool
) -> list[_Key]:
    rot = params.tool_rotation
    up = np.array([0.0, 0.0, 1.0])
    n = len(pts)
    keys = [_Key(start.translation.copy(), start.rotation.copy(), 0, 'start')]

    def rise_to(z: float) -> None:
        s = keys[0].position
        if s[2] < z - 0.005:
            keys.append(_Key(np.array([s[0], s[1], z]), rot, 0, 'rise'))

    if mode in MODES:
        trace_check.check_mode_points(pts, mode)
    if mode == 'pick_place':
        rest = pts[-1, 2] if holding else max(pts[0, 2], pts[-1, 2])
        level = rest + params.carry_height_m
        if holding:
            rise_to(level)
        else:
            pre = pts[0] + params.approach_height_m * up
            rise_to(pre[2])
            keys.append(_Key(pre, rot, 0, 'approach'))
            keys.append(_Key(pts[0].copy(), rot, 0, 'descend', event=True))
            keys.append(_Key(np.array([*pts[0, :2], max(pts[0, 2], level)]), rot, 0, 'lift'))
        for i in range(1, n):
            keys.append(_Key(np.array([*pts[i, :2], max(pts[i, 2], level)]), rot, i, 'carry'))
        keys.append(_Key(pts[-1].copy(), rot, n - 1, 'place', event=False))
        keys.append(_Key(pts[-1] + params.approach_height_m * up, rot, n - 1, 'retreat'))
    elif mode == 'push':
        dirs = _push_directions(pts)
        floor = params.table_height_m + params.min_tcp_height_m
        contact = pts - params.push_contact_offset_m * dirs
        contact[:, 2] = np.maximum(pts[:, 2], floor)
        behind = contact[0] - params.push_backoff_m * dirs[0]
        pre = behind + params.approach_height_m * up
        rise_to(pre[2])
        keys.append(_Key(pre, rot, 0, 'approach'))
        keys.append(_Key(behind, rot, 0, 'descend'))
        for i in range(n):
            keys.append(_Key(contact[i], rot, i, 'push'))
        keys.append(_Key(contact[-1] + params.approach_height_m * up, rot, n - 1, 'retreat'))
    elif mode == 'follow':
        pre = pts[0] + params.approach_height_m * up
        rise_to(pre[2])
        keys.append(_Key(pre, rot, 0, 'approach'))
        for i in range(n):
            keys.append(_Key(pts[i].copy(), rot, i, 'descend' if i == 0 else 'follow'))
    else:
        raise PlanningError(
            ErrorCode.BAD_GOAL, None, f'unknown mode {mode!r}; expected one of {MODES}'
        )
    return keys


def _check_keys(keys: list[_Key], n_points: int, params: ToolPathParams) -> None:
    floor = params.table_height_m + params.min_tcp_height_m
    lo = np.asarray(params.workspace_min_m, dtype=float)
    hi = np.asarray(params.workspace_max_m, dtype=float)
    pos = np.array([key.position for key in keys[1:]]).reshape(-1, 3)
    low = pos[:, 2] < floor - 1e-9
    out = np.any((pos < lo - 1e-9) | (pos > hi + 1e-9), axis=1)
    bad = np.flatnonzero(low | out)
    if not bad.size:
        return
    i = int(bad[0])
    key = keys[1 + i]
    where = (
        f'waypoint {key.trace_index} of {n_points} ({key.phase}, TCP at '
        f'{fmt_point(key.position)} m)'
    )
    if low[i]:
        raise PlanningError(
            ErrorCode.WORKSPACE,
            key.trace_index,
            f'{where} is below the minimum TCP height {params.min_tcp_height_m:.3f} m '
            'above the table',
        )
    raise PlanningError(
        ErrorCode.WORKSPACE,
        key.trace_index,
        f'{where} is outside the workspace box {fmt_point(lo)}..{fmt_point(hi)} m',
    )


def build_tool_path(
    points_base: np.ndarray,
    mode: str,
    start_pose: np.ndarray,
    params: ToolPathParams,
    holding: bool = False,
) -> ToolPath:
    """Turn a validated trace into a dense TCP path for ``mode``.

    Args:
        points_base: (N, 3) object-centre points in the base frame (from
            :func:`validate_trace`).
        mode: ``pick_place``, ``push`` or ``follow``.
        start_pose: (4, 4) current TCP pose base_T_tcp (the path starts exactly there).
        params: the path geometry.
        holding: ``pick_place`` only: the object is already in the gripper (replanning
            mid-carry), so skip approach and grasp.

    Returns:
        The :class:`ToolPath`.

    Raises:
        PlanningError: ``BAD_GOAL`` (unknown mode), ``INVALID_TRACE`` (too few points, no push
            direction), ``WORKSPACE`` (a tool pose below the minimum TCP height or outside the
            workspace box), naming the trace point.
    """
    pts = np.asarray(points_base, dtype=float)
    start = pin.SE3(np.asarray(start_pose, dtype=float))
    keys = _keys_for_mode(pts, mode, start, params, holding)
    _check_keys(keys, len(pts), params)

    # per key: the straight segment from the previous key in equal steps (positions
    # interpolated linearly, orientations along the geodesic)
    positions = [keys[0].position[None]]
    rotations = [keys[0].rotation[None]]
    index = [0]
    phases = [keys[0].phase]
    events: list[tuple[int, bool]] = []
    key_indices = [0]
    count = 1
    p0, r0 = keys[0].position, keys[0].rotation
    for key in keys[1:]:
        delta = key.position - p0
        dist = float(np.linalg.norm(delta))
        omega = pin.log3(r0.T @ key.rotation)
        angle = float(np.linalg.norm(omega))
        if dist > 1e-6 or angle > 1e-6:
            steps = max(
                1,
                math.ceil(dist / params.cartesian_step_m - 1e-9),
                math.ceil(angle / params.angular_step_rad - 1e-9),
            )
            f = np.arange(1, steps + 1) / steps
            seg_p = p0 + f[:, None] * delta
            seg_p[-1] = key.position
            if angle > 1e-6:
                seg_r = np.array([r0 @ pin.exp3(x * omega) for x in f[:-1]] + [key.rotation])
            else:
                seg_r = np.repeat(np.asarray(r0, dtype=float)[None], steps, axis=0)
                seg_r[-1] = key.rotation
            positions.append(seg_p)
            rotations.append(seg_r)
            index.extend([key.trace_index] * steps)
            phases.extend([key.phase] * steps)
            count += steps
            p0, r0 = key.position, np.asarray(key.rotation, dtype=float)
        key_indices.append(count - 1)
        if key.event is not None:
            events.append((count - 1, key.event))
    return ToolPath(
        positions=np.concatenate(positions),
        rotations=np.concatenate(rotations),
        trace_index=np.array(index, dtype=int),
        phases=tuple(phases),
        events=tuple(events),
        key_indices=tuple(key_indices),
    )
