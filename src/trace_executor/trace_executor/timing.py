"""Time-optimal parameterisation of joint paths, and sampling at a fixed period.

Design notes: docs/design-notes.md (trace_executor.timing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
from math import inf
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
    """No feasible time parameterisation was found."""


class CubicPath:
    """Natural cubic spline ``q(s)`` through joint waypoints, evaluated vectorised.

    Args:
        ss: (M,) strictly increasing path parameters of the waypoints.
        qs: (M, J) waypoints.
    """

    def __init__(self, ss: np.ndarray, qs: np.ndarray) -> None:
        ss = np.asarray(ss, dtype=float)
        qs = np.asarray(qs, dtype=float)
        h = np.diff(ss)
        m = len(ss)
        second = np.zeros_like(qs)
        if m > 2:
            # tridiagonal system for the second derivatives at the inner knots (natural ends)
            n = m - 2
            a = np.zeros((n, n))
            idx = np.arange(n)
            a[idx, idx] = 2.0 * (h[:-1] + h[1:])
            a[idx[1:], idx[:-1]] = h[1:-1]
            a[idx[:-1], idx[1:]] = h[1:-1]
            slope = np.diff(qs, axis=0) / h[:, None]
            second[1:-1] = np.linalg.solve(a, 6.0 * np.diff(slope, axis=0))
        self.ss = ss
        self._c0 = qs[:-1]
        self._c1 = (
            np.diff(qs, axis=0) / h[:, None] - h[:, None] * (2.0 * second[:-1] + second[1:]) / 6.0
        )
        self._c2 = second[:-1] / 2.0
        self._c3 = np.diff(second, axis=0) / (6.0 * h[:, None])

    def derivatives(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(q(s), q'(s), q''(s))`` at path parameters ``s`` (each (K, J))."""
        s = np.asarray(s, dtype=float)
        # (np.minimum/np.maximum: np.clip's Python wrapper costs more than the work here)
        i = np.minimum(
            np.maximum(np.searchsorted(self.ss, s, side='right') - 1, 0), len(self.ss) - 2
        )
        t = (s - self.ss[i])[:, None]
        c1, c2, c3 = self._c1[i], self._c2[i], self._c3[i]
        q = self._c0[i] + t * (c1 + t * (c2 + t * c3))
        qs = c1 + t * (2.0 * c2 + 3.0 * t * c3)
        qss = 2.0 * c2 + 6.0 * t * c3
        return q, qs, qss

    def __call__(self, s: np.ndarray, order: int = 0) -> np.ndarray:
        """``q``, ``q'`` or ``q''`` (``order`` 0, 1, 2) at ``s`` (toppra's interpolator call)."""
        return self.derivatives(np.atleast_1d(s))[order]


def _path_derivatives(path: Any, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(path, CubicPath):
        return path.derivatives(s)
    return path(s), path(s, 1), path(s, 2)


def topp_box(
    qs: np.ndarray,
    qss: np.ndarray,
    grid_s: np.ndarray,
    vmax: np.ndarray,
    amax: np.ndarray,
) -> np.ndarray:
    """Time-optimal path velocities ``ṡ`` at grid points, at rest at both ends.

    TOPP-RA's two passes for the constraints ``|q'(s) ṡ| ≤ vmax`` and
    ``|q'(s) s̈ + q''(s) ṡ²| ≤ amax`` with ``x = ṡ²`` and a constant ``u = s̈`` per stage
    (``x[i+1] = x[i] + 2 Δs u``), discretised as TOPP-RA's default does ("interpolation"): a
    stage's ``u`` must satisfy the acceleration limits at both of its ends. For fixed ``x`` every
    such limit bounds ``u`` from both sides linearly in ``x``, so TOPP-RA's one-dimensional LPs
    have closed-form answers, evaluated for all joints at once.

    Args:
        qs: (N, J) ``q'`` at the grid points.
        qss: (N, J) ``q''`` at the grid points.
        grid_s: (N,) grid points (strictly increasing), N ≥ 2.
        vmax: (J,) velocity limits.
        amax: (J,) acceleration limits.

    Returns:
        (N,) ``ṡ`` at the grid points (0 at both ends).

    Raises:
        TimingError: if the constraints leave no way to move along the path.
    """
    n = len(grid_s)
    ds = np.diff(grid_s)[:, None]
    eps = 1e-9
    # per stage i: a u + b x within ±lim, at the stage's start and (x_{i+1} = x + 2 Δs u) end
    a = np.concatenate([qs[:-1], qs[1:] + 2.0 * ds * qss[1:]], axis=1)  # (N-1, 2J)
    b = np.concatenate([qss[:-1], qss[1:]], axis=1)
    lim = np.concatenate([amax, amax])
    moving = np.abs(a) > eps
    safe = np.where(moving, a, 1.0)
    # u <= cu + du x and u >= cl + dl x, with cu = lim/|a|, cl = -cu, du = dl = -b/a
    cu = np.where(moving, lim / np.abs(safe), np.inf)
    du = np.where(moving, -b / safe, 0.0)
    with np.errstate(divide='ignore', invalid='ignore'):
        # velocity limits at each grid point
        xv = np.where(np.abs(qs) > eps, (vmax / np.abs(qs)) ** 2, np.inf).min(axis=1)
        # a limit that does not depend on u bounds x: |b| x <= lim
        xz = np.where(~moving & (np.abs(b) > eps), lim / np.abs(b), np.inf).min(axis=1)
        # every lower bound of u below every upper bound: (dl_j - du_k) x <= cu_k + cu_j
        den = du[:, :, None] - du[:, None, :]
        num = cu[:, None, :] + cu[:, :, None]
        xf = np.where(den > eps, num / den, np.inf).min(axis=(1, 2))
        # the largest u must not take x below 0: x + 2 Δs U(x) >= 0
        k = du + 0.5 / ds
        xn = np.where(k < -eps, cu / -k, np.inf).min(axis=1)
    xmax = xv.copy()
    xmax[:-1] = np.minimum.reduce([xv[:-1], xz, xf, xn])
    if not np.all(xmax[1:-1] > 0):
        raise TimingError('the joint limits leave no speed along the path')
    # backward pass: controllable x (from it, rest at the end stays reachable):
    # x + 2 Δs L(x) <= X[i+1] for every lower bound: x (1 + 2 Δs dl) <= X[i+1] + 2 Δs cu
    coef = 1.0 + 2.0 * ds * du
    ok = (coef > eps) & moving
    inv_coef = np.where(ok, 1.0 / np.where(ok, coef, 1.0), 0.0)
    # per stage, every term as plain floats (inactive ones: w = 0, c = inf, never the min);
    # the passes are sequential and short, so Python floats beat numpy calls here
    w_rows = inv_coef.tolist()
    c_rows = np.where(ok, 2.0 * ds * np.where(ok, cu, 0.0) * inv_coef, inf).tolist()
    xmax_l = xmax.tolist()
    big = [0.0] * n
    for i in range(n - 2, -1, -1):
        nxt = big[i + 1]
        bound = min([nxt * w + c for w, c in zip(w_rows[i], c_rows[i], strict=True)])
        big[i] = max(0.0, min(xmax_l[i], bound))
    # forward pass: the largest admissible u that stays controllable
    cu_rows = cu.tolist()  # inf where the joint does not bound u
    du_rows = du.tolist()
    two_ds = (2.0 * ds[:, 0]).tolist()
    xs = [0.0] * n
    for i in range(n - 1):
        xi = xs[i]
        u_hi = min([c + d * xi for c, d in zip(cu_rows[i], du_rows[i], strict=True)])
        xs[i + 1] = max(0.0, min(xi + two_ds[i] * u_hi, big[i + 1]))
    x = np.asarray(xs)
    x[-1] = 0.0
    return np.sqrt(x)


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
    i = np.minimum(np.maximum(stage, 0), len(grid_t) - 2)
    dt = tau - grid_t[i]
    sdd = grid_sdd[i]
    sd = grid_sd[i] + sdd * dt
    s = np.minimum(
        np.maximum(grid_s[i] + grid_sd[i] * dt + 0.5 * sdd * dt * dt, grid_s[0]), grid_s[-1]
    )
    q, qs, qss = _path_derivatives(path, s)
    return q, qs * sd[:, None], qss * (sd * sd)[:, None] + qs * sdd[:, None]


class TimeParameterizer:
    """Time-optimal timing under fixed joint limits (see the module docstring)."""

    #: fewest grid points of a timing (short paths are subdivided evenly up to this)
    MIN_GRID_POINTS = 9

    def __init__(
        self,
        velocity_limit_rad_s: np.ndarray,
        acceleration_limit_rad_s2: np.ndarray,
        corner_angle_rad: float = 0.25,
        corner_subdivisions: int = 4,
        checks_per_stage: int = 3,
        limit_margin: float = 0.02,
        method: str = 'own',
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
            method: ``'own'`` (closed-form TOPP-RA passes, natural cubic spline) or
                ``'toppra'`` (the toppra package, scipy's not-a-knot spline).

        Raises:
            ValueError: if a limit is not positive, the margin is outside [0, 0.5) or the
                method is unknown.
        """
        if method not in ('own', 'toppra'):
            raise ValueError(f"method must be 'own' or 'toppra', got {method!r}")
        self.method = method
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
        self._v_plan = v_plan
        self._a_plan = a_plan
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
        gridpoints = self._gridpoints(qs, ss)
        if len(gridpoints) < self.MIN_GRID_POINTS:
            # too few stages to speed up and slow down again (two waypoints: a single one)
            gridpoints = np.union1d(gridpoints, np.linspace(0.0, ss[-1], self.MIN_GRID_POINTS))
        path: Any
        if self.method == 'own':
            path = CubicPath(ss, qs)
            _, d1, d2 = path.derivatives(gridpoints)
            grid_s = np.asarray(gridpoints, dtype=float)
            grid_sd = topp_box(d1, d2, grid_s, self._v_plan, self._a_plan)
        else:
            path = toppra.SplineInterpolator(ss, qs)
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
            raise TimingError('degenerate timing: the path velocity is stuck at 0')
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
