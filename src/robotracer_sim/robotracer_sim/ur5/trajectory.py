"""Time-interpolated joint trajectories, followed as ros2_control's trajectory controller does.

Design notes: docs/design-notes.md (robotracer_sim.ur5.trajectory).
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
        accelerations: (N+1, J) knot accelerations (quintic interpolation), or None.

    """

    start_time: float
    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray | None
    accelerations: np.ndarray | None = None

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
            v0 = (
                np.zeros(self.positions.shape[1])
                if self.velocities is None
                else self.velocities[0]
            )
            return self.positions[0].copy(), v0.copy()
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
        if self.accelerations is not None:
            return _quintic(
                p0,
                self.velocities[i],
                self.accelerations[i],
                p1,
                self.velocities[i + 1],
                self.accelerations[i + 1],
                h,
                s - t0,
            )
        v0, v1 = self.velocities[i] * h, self.velocities[i + 1] * h
        h00, h10 = 2 * u**3 - 3 * u**2 + 1, u**3 - 2 * u**2 + u
        h01, h11 = -2 * u**3 + 3 * u**2, u**3 - u**2
        q = h00 * p0 + h10 * v0 + h01 * p1 + h11 * v1
        d00, d10 = 6 * u**2 - 6 * u, 3 * u**2 - 4 * u + 1
        d01, d11 = -6 * u**2 + 6 * u, 3 * u**2 - 2 * u
        qd = (d00 * p0 + d10 * v0 + d01 * p1 + d11 * v1) / h
        return q, qd


def _quintic(
    p0: np.ndarray,
    v0: np.ndarray,
    a0: np.ndarray,
    p1: np.ndarray,
    v1: np.ndarray,
    a1: np.ndarray,
    h: float,
    t: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Position and velocity at ``t`` of the quintic through two states ``h`` apart (JTC's)."""
    c0, c1, c2 = p0, v0, 0.5 * a0
    h2, h3, h4, h5 = h * h, h**3, h**4, h**5
    c3 = (20 * (p1 - p0) - (8 * v1 + 12 * v0) * h - (3 * a0 - a1) * h2) / (2 * h3)
    c4 = (30 * (p0 - p1) + (14 * v1 + 16 * v0) * h + (3 * a0 - 2 * a1) * h2) / (2 * h4)
    c5 = (12 * (p1 - p0) - (6 * v1 + 6 * v0) * h - (a0 - a1) * h2) / (2 * h5)
    q = c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * c5))))
    qd = c1 + t * (2 * c2 + t * (3 * c3 + t * (4 * c4 + t * 5 * c5)))
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
    current_velocity: np.ndarray | None = None,
    accelerations: Sequence[Sequence[float]] | None = None,
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
        current_velocity: the measured joint velocities (the start state's); None = 0.
        accelerations: per waypoint, one acceleration per name, or None/empty (then cubic or
            linear). Only used together with velocities, as the JTC does.

    Returns:
        The trajectory over all robot joints.

    Raises:
        TrajectoryError: unknown or duplicate joint names, size mismatches, non-finite values,
            times not increasing, positions outside the joint limits, or a last waypoint that
            is not at rest.

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
        if np.any(np.abs(vel[-1]) > np.finfo(np.float32).eps):
            raise TrajectoryError(
                f'the last waypoint has non-zero velocities {vel[-1].tolist()}: a trajectory '
                'must end at rest'
            )
    acc = None
    acs = [a for a in (accelerations or [])]
    if vel is not None and acs and any(len(a) for a in acs):
        if len(acs) != len(t) or any(len(a) != len(names) for a in acs):
            raise TrajectoryError(
                'accelerations must be given for every waypoint and every joint, or for none'
            )
        acc = np.zeros_like(full)
        for k, a in enumerate(acs):
            row = np.asarray(a, dtype=float)
            if not np.all(np.isfinite(row)):
                raise TrajectoryError(f'waypoint {k} has non-finite accelerations {row.tolist()}')
            acc[k, cols] = row
    start = now if start_time is None or start_time < now else float(start_time)
    cur = np.asarray(current, dtype=float)[None, :]
    cur_v = (
        np.zeros_like(cur)
        if current_velocity is None
        else np.asarray(current_velocity, dtype=float)[None, :]
    )
    if t[0] > 0.0:
        times_all = np.concatenate([[0.0], t])
        pos_all = np.concatenate([cur, full])
        vel_all = None if vel is None else np.concatenate([cur_v, vel])
        acc_all = None if acc is None else np.concatenate([np.zeros_like(cur), acc])
    else:  # the first waypoint is "now": start there (as the JTC does)
        times_all, pos_all, vel_all, acc_all = t, full, vel, acc
        if len(t) == 1:
            times_all = np.array([0.0, 1e-3])
            pos_all = np.concatenate([full, full])
            vel_all = acc_all = None
    return TimedTrajectory(start, times_all, pos_all, vel_all, acc_all)
