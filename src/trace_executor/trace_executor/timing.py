"""Time parameterisation of joint paths with toppra, and sampling at a fixed period.

A joint path (the IK solutions along the tool path) is interpolated by a cubic spline in a
path parameter (cumulative joint-space distance) and timed by TOPP-RA under per-joint velocity
and acceleration limits, starting and ending at rest.

Speed scaling is exact time scaling: ``speed_scale = s`` stretches time by ``1/s``, so velocities
scale by ``s`` and accelerations by ``s²`` (both limits are respected for every ``s ∈ (0, 1]``,
and halving ``s`` doubles the duration). TOPP-RA only enforces the limits at its grid points, so
the timed spline is also checked between them and, where it overshoots a limit between grid
points, stretched uniformly until it does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
from typing import Any, Optional

import numpy as np
import toppra
import toppra.algorithm
import toppra.constraint
import toppra.solverwrapper

# toppra logs every solve at INFO; keep the planner quiet unless asked.
logging.getLogger('toppra').setLevel(logging.WARNING)


def _cache_toppra_solver_probe() -> None:
    """Make toppra probe its optional QP backends once per process instead of per solve.

    ``ReachabilityAlgorithm.__init__`` calls ``toppra.solverwrapper.available_solvers()`` on
    every construction, even with an explicit ``solver_wrapper``; the probe runs
    ``importlib.util.find_spec`` for each optional backend (filesystem stats, ~1 ms, a fifth of
    a whole timing call). Which packages are installed cannot change within a process, so the
    first answer is cached.
    """
    probe = getattr(toppra.solverwrapper, 'available_solvers', None)
    if probe is None or getattr(probe, '_trace_executor_cached', False):
        return
    answers: dict[bool, Any] = {}

    def cached(output_msg: bool = True) -> Any:
        if output_msg not in answers:
            answers[output_msg] = probe(output_msg=output_msg)
        return answers[output_msg]

    cached._trace_executor_cached = True  # type: ignore[attr-defined]
    toppra.solverwrapper.available_solvers = cached


_cache_toppra_solver_probe()


class TimingError(RuntimeError):
    """TOPP-RA found no feasible time parameterisation."""


@dataclass(frozen=True)
class TimedPath:
    """A joint path with its time-optimal timing at ``speed_scale = 1``.

    The timing is TOPP-RA's: path velocities ``ṡ`` at its grid points with constant path
    acceleration in between (the profile toppra's ``ParametrizeConstAccel`` describes),
    evaluated here in vectorised form.

    Attributes:
        duration_s: duration at full speed (after the limit check stretch).
        stretch: factor (≥ 1) applied to TOPP-RA's timing so the limits hold everywhere.
        start_rad: (6,) first configuration (exactly the first waypoint).
        end_rad: (6,) last configuration.
    """

    duration_s: float
    stretch: float
    start_rad: np.ndarray
    end_rad: np.ndarray
    _path: Any = field(repr=False, compare=False)
    _grid_s: np.ndarray = field(repr=False, compare=False)
    _grid_sd: np.ndarray = field(repr=False, compare=False)
    _grid_t: np.ndarray = field(repr=False, compare=False)
    _grid_sdd: np.ndarray = field(repr=False, compare=False)

    def evaluate(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Joint positions, velocities, accelerations at TOPP-RA times ``tau`` (unstretched).

        Args:
            tau: (K,) times in [0, unstretched duration] (s).

        Returns:
            ``(q (K, 6), dq (K, 6), ddq (K, 6))``.
        """
        return _evaluate(
            self._path, self._grid_s, self._grid_sd, self._grid_t, self._grid_sdd, tau
        )

    def sample(
        self, speed_scale: float, period_s: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Sample the timed path at a fixed period.

        Args:
            speed_scale: fraction of the full-speed timing, in (0, 1].
            period_s: time between samples (s); the last sample is at the exact end.

        Returns:
            ``(times_s (K,), positions_rad (K, 6), velocities_rad_s (K, 6),
            accelerations_rad_s2 (K, 6))``, starting at t = 0 with zero velocity and ending at
            rest on the last waypoint.
        """
        k = self.stretch / speed_scale
        total = self.duration_s / speed_scale
        n = max(int(np.ceil(total / period_s - 1e-9)), 1)
        times = np.append(np.arange(n) * period_s, total)
        pos, vel, acc = self.evaluate(np.minimum(times / k, self._grid_t[-1]))
        vel /= k
        acc /= k * k
        pos[0] = self.start_rad
        pos[-1] = self.end_rad
        vel[0] = 0.0
        vel[-1] = 0.0
        return times, pos, vel, acc


def _evaluate(
    path: Any,
    grid_s: np.ndarray,
    grid_sd: np.ndarray,
    grid_t: np.ndarray,
    grid_sdd: np.ndarray,
    tau: np.ndarray,
    stage: Optional[np.ndarray] = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate the constant-path-acceleration profile at times ``tau``.

    ``stage`` forces the stage (grid interval) each time belongs to, so a stage's end can be
    evaluated with that stage's acceleration (the left limit at a grid point).
    """
    if stage is None:
        stage = np.searchsorted(grid_t, tau, side='right') - 1
    i = np.clip(stage, 0, len(grid_t) - 2)
    dt = tau - grid_t[i]
    sdd = grid_sdd[i]
    sd = grid_sd[i] + sdd * dt
    s = np.clip(grid_s[i] + grid_sd[i] * dt + 0.5 * sdd * dt * dt, grid_s[0], grid_s[-1])
    q = path(s)
    qs = path(s, 1)
    qss = path(s, 2)
    return q, qs * sd[:, None], qss * (sd * sd)[:, None] + qs * sdd[:, None]


class TimeParameterizer:
    """TOPP-RA timing under fixed joint limits (the constraint objects are built once)."""

    def __init__(
        self,
        velocity_limit_rad_s: np.ndarray,
        acceleration_limit_rad_s2: np.ndarray,
        corner_angle_rad: float = 0.25,
        corner_subdivisions: int = 4,
        checks_per_stage: int = 3,
        limit_margin: float = 0.02,
    ) -> None:
        """Set the limits.

        Args:
            velocity_limit_rad_s: (6,) symmetric joint velocity limits at full speed.
            acceleration_limit_rad_s2: (6,) symmetric joint acceleration limits at full speed.
            corner_angle_rad: a waypoint where the joint path turns by more than this is a
                corner; TOPP-RA's grid is refined around it.
            corner_subdivisions: stages per interval next to a corner (1 = no refinement).
            checks_per_stage: limit checks inside each TOPP-RA stage (between two grid
                points) besides its two ends.
            limit_margin: fraction of the limits TOPP-RA keeps in reserve, for the times
                between its grid points; the result is checked against the full limits.

        Raises:
            ValueError: if a limit is not positive or the margin is outside [0, 0.5).
        """
        self.vmax = np.asarray(velocity_limit_rad_s, dtype=float)
        self.amax = np.asarray(acceleration_limit_rad_s2, dtype=float)
        if np.any(self.vmax <= 0) or np.any(self.amax <= 0):
            raise ValueError('joint velocity and acceleration limits must be positive')
        if not 0.0 <= limit_margin < 0.5:
            raise ValueError('limit_margin must be in [0, 0.5)')
        # TOPP-RA plans to (1 - margin) of the limits: the rest absorbs what happens between
        # its grid points, where it does not look; the check below guarantees the full limits.
        self._margin = float(limit_margin)
        v_plan = self.vmax * (1.0 - limit_margin)
        a_plan = self.amax * (1.0 - limit_margin)
        self._constraints = [
            toppra.constraint.JointVelocityConstraint(np.stack([-v_plan, v_plan], axis=1)),
            toppra.constraint.JointAccelerationConstraint(np.stack([-a_plan, a_plan], axis=1)),
        ]
        self._cos_corner = float(np.cos(corner_angle_rad))
        self._corner_subdivisions = int(corner_subdivisions)
        self._checks_per_stage = max(int(checks_per_stage), 0)

    def _gridpoints(self, qs: np.ndarray, ss: np.ndarray) -> np.ndarray:
        """TOPP-RA grid: the waypoints, with the intervals around sharp turns subdivided.

        The spline's curvature peaks where the joint path turns (e.g. from a transit into a
        vertical descent); TOPP-RA only sees the limits at grid points, so those intervals get
        ``corner_subdivisions`` stages each.
        """
        chords = np.diff(qs, axis=0)
        unit = chords / np.linalg.norm(chords, axis=1, keepdims=True)
        cos_turn = np.sum(unit[1:] * unit[:-1], axis=1)
        sharp = np.flatnonzero(cos_turn < self._cos_corner) + 1  # knot indices
        n = self._corner_subdivisions
        if sharp.size == 0 or n <= 1:
            return ss
        intervals = np.unique(np.concatenate([sharp - 1, sharp]))
        frac = np.arange(1, n) / n
        extra = (ss[intervals, None] + np.diff(ss)[intervals, None] * frac[None, :]).ravel()
        return np.union1d(ss, extra)

    def parameterize(self, waypoints_rad: np.ndarray) -> TimedPath:
        """Time a joint path through ``waypoints_rad`` (at rest at both ends).

        Args:
            waypoints_rad: (M, 6) joint configurations, M ≥ 2, consecutive ones distinct.

        Returns:
            The :class:`TimedPath`.

        Raises:
            ValueError: if fewer than two distinct waypoints are given.
            TimingError: if TOPP-RA finds no feasible parameterisation.
        """
        qs = np.asarray(waypoints_rad, dtype=float)
        steps = np.linalg.norm(np.diff(qs, axis=0), axis=1)
        if len(qs) < 2 or np.any(steps <= 0):
            raise ValueError('a timed path needs two or more waypoints, consecutive ones distinct')
        ss = np.concatenate([[0.0], np.cumsum(steps)])
        path = toppra.SplineInterpolator(ss, qs)
        gridpoints = self._gridpoints(qs, ss)
        instance = toppra.algorithm.TOPPRA(
            self._constraints, path, gridpoints=gridpoints, solver_wrapper='seidel'
        )
        sd_vec = instance.compute_parameterization(0.0, 0.0)[1]
        if sd_vec is None or not np.all(np.isfinite(sd_vec)):
            raise TimingError('TOPP-RA found no feasible timing for the joint path')
        grid_s = np.asarray(instance.problem_data.gridpoints, dtype=float)
        grid_sd = np.maximum(np.asarray(sd_vec, dtype=float), 0.0)
        ds = np.diff(grid_s)
        grid_t = np.concatenate([[0.0], np.cumsum(2.0 * ds / (grid_sd[:-1] + grid_sd[1:]))])
        grid_sdd = (grid_sd[1:] ** 2 - grid_sd[:-1] ** 2) / (2.0 * ds)
        duration = float(grid_t[-1])
        if not (np.all(np.isfinite(grid_t)) and duration > 0):
            raise TimingError('TOPP-RA returned a degenerate timing (path velocity stuck at 0)')
        # TOPP-RA enforces the limits at its grid points only: check each stage at both ends
        # (with that stage's path acceleration) and ``checks_per_stage`` times inside it, and
        # stretch the timing if a limit is exceeded.
        frac = np.linspace(0.0, 1.0, self._checks_per_stage + 2)
        tau = (grid_t[:-1, None] + np.diff(grid_t)[:, None] * frac[None, :]).ravel()
        stage = np.repeat(np.arange(len(grid_t) - 1), len(frac))
        _, dq, ddq = _evaluate(path, grid_s, grid_sd, grid_t, grid_sdd, tau, stage)
        v_ratio = float(np.max(np.abs(dq) / self.vmax))
        a_ratio = float(np.max(np.abs(ddq) / self.amax))
        # aim the check at (1 - margin/2) of the limits: the other half covers the times
        # between the check points
        target = 1.0 - self._margin / 2
        stretch = max(1.0, v_ratio / target, float(np.sqrt(a_ratio / target)))
        return TimedPath(
            duration_s=duration * stretch,
            stretch=stretch,
            start_rad=qs[0].copy(),
            end_rad=qs[-1].copy(),
            _path=path,
            _grid_s=grid_s,
            _grid_sd=grid_sd,
            _grid_t=grid_t,
            _grid_sdd=grid_sdd,
        )
