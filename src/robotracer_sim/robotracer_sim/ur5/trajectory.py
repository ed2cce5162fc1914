"""Time-interpolated joint trajectories, followed as ros2_control's trajectory controller does.

A trajectory is a list of waypoints with ``time_from_start``; the robot starts from where it is
when the trajectory arrives. Between waypoints the desired state is interpolated like the JTC
does: linearly when the waypoints carry positions only, with cubic Hermite splines when they
carry velocities too. Joints the message does not name keep their current position.
After the last waypoint the last position is held with zero velocity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class TrajectoryError(ValueError):
    """A trajectory was rejected; the message says what was wrong. The robot does not move."""


@dataclass(frozen=True)
class JointLimits:
    """Position limits (rad) per joint, in the robot's joint order."""

    lower: np.ndarray
    upper: np.ndarray


@dataclass
class TimedTrajectory:
    """A validated trajectory over all of the robot's joints.

    Attributes:
        start_time: when ``time_from_start = 0`` is, in the world's clock (s).
        times: (N+1,) knot times from start, the first being 0 (the start state).
        positions: (N+1, J) knot positions, the first being the start state.
        velocities: (N+1, J) knot velocities, or None for linear interpolation.

    """

    start_time: float
    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray | None

    @property
    def end_time(self) -> float:
        """World time at which the last waypoint is reached."""
        return self.start_time + float(self.times[-1])

    @property
    def goal(self) -> np.ndarray:
        """The final joint positions."""
        return self.positions[-1].copy()

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Desired joint positions and velocities at world time ``t``.

        Args:
            t: world time, seconds.

        Returns:
            ``(q, qd)``, each (J,).

        """
        s = t - self.start_time
        n = len(self.times)
        if s <= 0.0:
            return self.positions[0].copy(), np.zeros(self.positions.shape[1])
        if s >= self.times[-1]:
            return self.positions[-1].copy(), np.zeros(self.positions.shape[1])
        i = int(np.searchsorted(self.times, s, side='right')) - 1
        i = min(max(i, 0), n - 2)
        t0, t1 = self.times[i], self.times[i + 1]
        h = t1 - t0
        p0, p1 = self.positions[i], self.positions[i + 1]
        if h <= 0.0:
            return p1.copy(), np.zeros_like(p1)
        u = (s - t0) / h
        if self.velocities is None:
            return p0 + u * (p1 - p0), (p1 - p0) / h
        v0, v1 = self.velocities[i] * h, self.velocities[i + 1] * h
        h00, h10 = 2 * u**3 - 3 * u**2 + 1, u**3 - 2 * u**2 + u
        h01, h11 = -2 * u**3 + 3 * u**2, u**3 - u**2
        q = h00 * p0 + h10 * v0 + h01 * p1 + h11 * v1
        d00, d10 = 6 * u**2 - 6 * u, 3 * u**2 - 4 * u + 1
        d01, d11 = -6 * u**2 + 6 * u, 3 * u**2 - 2 * u
        qd = (d00 * p0 + d10 * v0 + d01 * p1 + d11 * v1) / h
        return q, qd


def build_trajectory(
    robot_joints: Sequence[str],
    limits: JointLimits,
    current: np.ndarray,
    now: float,
    joint_names: Sequence[str],
    times: Sequence[float],
    positions: Sequence[Sequence[float]],
    velocities: Sequence[Sequence[float]] | None = None,
    start_time: float | None = None,
) -> TimedTrajectory:
    """Validate a JointTrajectory's content and turn it into a :class:`TimedTrajectory`.

    Args:
        robot_joints: the robot's joint names, in its order.
        limits: position limits in that order.
        current: current joint positions (the trajectory's start state).
        now: current world time (s).
        joint_names: the message's joint names (a subset of ``robot_joints``, any order).
        times: ``time_from_start`` of each waypoint, seconds, strictly increasing, >= 0.
        positions: per waypoint, one position per name in ``joint_names``.
        velocities: per waypoint, one velocity per name, or None/empty (linear interpolation).
            Either every waypoint has velocities or none has.
        start_time: world time of ``time_from_start = 0``; ``now`` when None or in the past.

    Returns:
        The trajectory over all robot joints.

    Raises:
        TrajectoryError: unknown or duplicate joint names, size mismatches, non-finite values,
            times not increasing, or positions outside the joint limits.

    """
    index = {n: i for i, n in enumerate(robot_joints)}
    names = list(joint_names)
    if not names:
        raise TrajectoryError('trajectory names no joints')
    unknown = [n for n in names if n not in index]
    if unknown:
        raise TrajectoryError(f'unknown joint(s) {unknown} (this robot has {list(robot_joints)})')
    if len(set(names)) != len(names):
        raise TrajectoryError(f'duplicate joint names in {names}')
    if len(times) != len(positions):
        raise TrajectoryError(f'{len(times)} times but {len(positions)} waypoints')
    if not len(times):
        raise TrajectoryError('trajectory has no waypoints')
    t = np.asarray(times, dtype=float)
    if not np.all(np.isfinite(t)) or t[0] < 0.0 or np.any(np.diff(t) <= 0.0):
        raise TrajectoryError(
            f'time_from_start must be finite, >= 0 and strictly increasing, got {t.tolist()}'
        )
    cols = [index[n] for n in names]
    full = np.repeat(np.asarray(current, dtype=float)[None, :], len(t), axis=0)
    for k, p in enumerate(positions):
        if len(p) != len(names):
            raise TrajectoryError(f'waypoint {k} has {len(p)} positions for {len(names)} joints')
        row = np.asarray(p, dtype=float)
        if not np.all(np.isfinite(row)):
            raise TrajectoryError(f'waypoint {k} has non-finite positions {row.tolist()}')
        full[k, cols] = row
    bad = np.argwhere((full < limits.lower - 1e-9) | (full > limits.upper + 1e-9))
    if len(bad):
        k, j = bad[0]
        raise TrajectoryError(
            f'waypoint {k}: {robot_joints[j]} = {full[k, j]:.4f} rad is outside its limits '
            f'[{limits.lower[j]:.4f}, {limits.upper[j]:.4f}]'
        )
    vel = None
    vs = [v for v in (velocities or [])]
    if vs and any(len(v) for v in vs):
        if len(vs) != len(t) or any(len(v) != len(names) for v in vs):
            raise TrajectoryError(
                'velocities must be given for every waypoint and every joint, or for none'
            )
        vel = np.zeros_like(full)
        for k, v in enumerate(vs):
            row = np.asarray(v, dtype=float)
            if not np.all(np.isfinite(row)):
                raise TrajectoryError(f'waypoint {k} has non-finite velocities {row.tolist()}')
            vel[k, cols] = row
    start = now if start_time is None or start_time < now else float(start_time)
    cur = np.asarray(current, dtype=float)[None, :]
    if t[0] > 0.0:
        times_all = np.concatenate([[0.0], t])
        pos_all = np.concatenate([cur, full])
        vel_all = None if vel is None else np.concatenate([np.zeros_like(cur), vel])
    else:  # the first waypoint is "now": start there (as the JTC does)
        times_all, pos_all, vel_all = t, full, vel
        if len(t) == 1:
            times_all = np.array([0.0, 1e-3])
            pos_all = np.concatenate([full, full])
            vel_all = None
    return TimedTrajectory(start, times_all, pos_all, vel_all)
