"""Time-optimal parameterisation of joint paths, and sampling at a fixed period.

Design notes: docs/design-notes.md (trace_executor.timing).
"""

from __future__ import annotations

from collections.abc import Sequence
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
    """No feasible time parameterisation was found.

    Attributes:
        path_index: which of the paths given to :meth:`TimeParameterizer.parameterize_many`
            failed (0 for :meth:`TimeParameterizer.parameterize`).
    """

    def __init__(self, message: str, path_index: int = 0) -> None:
        super().__init__(message)
        self.path_index = path_index


class CubicPath:
    """Natural cubic spline ``q(s)`` through joint waypoints, evaluated vectorised.

    Several independent paths can share one object (:meth:`TimeParameterizer.parameterize_many`
    times them together): ``natural`` marks the knots where a piece starts or ends, and the
    interval after a piece's last knot continues that piece's last polynomial, so evaluating
    exactly at a piece's end gives its own values.

    Args:
        ss: (M,) strictly increasing path parameters of the waypoints.
        qs: (M, J) waypoints.
        natural: (M,) knots with zero second derivative (pieces' ends); ``None`` = the first
            and the last (one path).
        gap: (M - 1,) intervals between two pieces (not part of any path); ``None`` = none.
    """

    def __init__(
        self,
        ss: np.ndarray,
        qs: np.ndarray,
        natural: Optional[np.ndarray] = None,
        gap: Optional[np.ndarray] = None,
    ) -> None:
        ss = np.asarray(ss, dtype=float)
        qs = np.asarray(qs, dtype=float)
        h = np.diff(ss)
        m = len(ss)
        if natural is None:
            natural = np.zeros(m, dtype=bool)
            natural[[0, -1]] = True
        slope = np.diff(qs, axis=0) / h[:, None]
        # second derivatives: the tridiagonal continuity equations at inner knots, 0 at ends
        inner = np.flatnonzero(~natural)
        second = np.zeros_like(qs)
        if inner.size:
            a = np.zeros((inner.size, m))
            rows = np.arange(inner.size)
            a[rows, inner - 1] = h[inner - 1]
            a[rows, inner] = 2.0 * (h[inner - 1] + h[inner])
            a[rows, inner + 1] = h[inner]
            second[inner] = np.linalg.solve(a[:, inner], 6.0 * (slope[inner] - slope[inner - 1]))
        c1 = slope - h[:, None] * (2.0 * second[:-1] + second[1:]) / 6.0
        c2 = second[:-1] / 2.0
        c3 = np.diff(second, axis=0) / (6.0 * h[:, None])
        if gap is not None and np.any(gap):
            # a gap interval continues the piece before it (its Taylor expansion at the end knot)
            g = np.flatnonzero(gap)
            hp = h[g - 1, None]
            c1[g] = c1[g - 1] + hp * (2.0 * c2[g - 1] + 3.0 * hp * c3[g - 1])
            c2[g] = c2[g - 1] + 3.0 * hp * c3[g - 1]
            c3[g] = c3[g - 1]
        self.ss = ss
        self._c0 = qs[:-1]
        self._c1 = c1
        self._c2 = c2
        self._c3 = c3

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
    gap: Optional[np.ndarray] = None,
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
        gap: (N-1,) stages that join two independent paths timed together (each at rest at
            both of its ends); ``None`` = one path.

    Returns:
        (N,) ``ṡ`` at the grid points (0 at both ends of every path).

    Raises:
        TimingError: if the constraints leave no way to move along a path (``path_index``
            says which).
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
    # at rest: the first and last point of every path
    rest = np.zeros(n, dtype=bool)
    rest[[0, -1]] = True
    if gap is not None:
        rest[:-1] |= gap
        rest[1:] |= gap
    stuck = ~rest & ~(xmax > 0)
    if np.any(stuck):
        path_index = 0 if gap is None else int(np.count_nonzero(gap[: np.argmax(stuck)]))
        raise TimingError('the joint limits leave no speed along the path', path_index)
    xmax[rest] = 0.0
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
        if xmax_l[i] == 0.0:  # at rest (or a gap stage, whose start is a path's end)
            continue
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
    x[rest] = 0.0
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

    def parameterize(self, waypoints_rad: np.ndarray) -> TimedPath:
        """Time a joint path through ``waypoints_rad`` (at rest at both ends).

        Args:
            waypoints_rad: (M, J) joint configurations, M ≥ 2, consecutive ones distinct.

        Returns:
            The :class:`TimedPath`.

        Raises:
            ValueError: if fewer than two distinct waypoints are given.
            TimingError: if TOPP-RA finds no feasible parameterisation.
        """
        return self.parameterize_many([waypoints_rad])[0]

    def parameterize_many(self, paths: Sequence[np.ndarray]) -> list[TimedPath]:
        """Time several joint paths, each at rest at both ends, in one vectorised pass.

        The result is the same as timing each path alone (:meth:`parameterize`); together
        they share the fixed cost of the numpy calls (a plan's motions between gripper events
        are timed at once).

        Args:
            paths: joint paths, each (M, J) with M ≥ 2 and consecutive waypoints distinct.

        Returns:
            One :class:`TimedPath` per path, in order.

        Raises:
            ValueError: if a path has fewer than two distinct waypoints.
            TimingError: if a path has no feasible timing (``path_index`` says which).
        """
        if not paths:
            return []
        if self.method == 'toppra':
            return [self._parameterize_toppra(np.asarray(w, dtype=float)) for w in paths]
        qs = np.concatenate([np.asarray(w, dtype=float) for w in paths])
        sizes = np.array([len(w) for w in paths])
        first = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # first knot of each path
        last = first + sizes - 1
        gap_knots = np.zeros(len(qs) - 1, dtype=bool)  # intervals from a path's end to the next
        gap_knots[last[:-1]] = True
        steps = np.linalg.norm(np.diff(qs, axis=0), axis=1)
        if np.any(sizes < 2) or np.any(steps[~gap_knots] <= 0):
            raise ValueError('a timed path needs two or more waypoints, consecutive ones distinct')
        steps[gap_knots] = 1.0  # any positive length: nothing is evaluated inside a gap
        ss = np.concatenate([[0.0], np.cumsum(steps)])
        natural = np.zeros(len(qs), dtype=bool)
        natural[first] = natural[last] = True
        path = CubicPath(ss, qs, natural, gap_knots)
        grid_s = self._gridpoints(qs, ss, gap_knots, ss[first], ss[last])
        # which path each grid point belongs to, and the stages that join two paths
        owner = np.searchsorted(ss[first], grid_s, side='right') - 1
        gap = np.diff(owner) > 0
        _, d1, d2 = path.derivatives(grid_s)
        grid_sd = topp_box(
            d1, d2, grid_s, self._v_plan, self._a_plan, gap if len(paths) > 1 else None
        )
        ds = np.diff(grid_s)
        with np.errstate(divide='ignore', invalid='ignore'):
            dt = 2.0 * ds / (grid_sd[:-1] + grid_sd[1:])
            sdd = (grid_sd[1:] ** 2 - grid_sd[:-1] ** 2) / (2.0 * ds)
        dt[gap] = 0.0
        sdd[gap] = 0.0
        stage_owner = owner[:-1]
        bad = ~np.isfinite(dt)
        if np.any(bad):
            raise TimingError(
                'degenerate timing: the path velocity is stuck at 0',
                int(stage_owner[np.argmax(bad)]),
            )
        # TOPP-RA enforces the limits at its grid points only: check each stage at both ends
        # (with that stage's path acceleration) and ``checks_per_stage`` times inside it, and
        # stretch the timing if a limit is exceeded.
        real = np.flatnonzero(~gap)
        frac = np.linspace(0.0, 1.0, self._checks_per_stage + 2)
        tau = (dt[real, None] * frac[None, :]).ravel()
        stage = np.repeat(real, len(frac))
        sdd_k = sdd[stage]
        sd_k = grid_sd[stage] + sdd_k * tau
        s_k = grid_s[stage] + grid_sd[stage] * tau + 0.5 * sdd_k * tau * tau
        s_k = np.minimum(s_k, grid_s[stage + 1])
        _, qs_k, qss_k = path.derivatives(s_k)
        v_ratio = np.max(np.abs(qs_k * sd_k[:, None]) / self.vmax, axis=1)
        a_ratio = np.max(
            np.abs(qss_k * (sd_k * sd_k)[:, None] + qs_k * sdd_k[:, None]) / self.amax, axis=1
        )
        # per path (its check points are consecutive)
        starts = np.searchsorted(stage_owner[stage], np.arange(len(paths)))
        v_max = np.maximum.reduceat(v_ratio, starts)
        a_max = np.maximum.reduceat(a_ratio, starts)
        stretch = self._stretch(v_max, a_max)
        grid_t = np.concatenate([[0.0], np.cumsum(dt)])
        g_first = np.searchsorted(owner, np.arange(len(paths)))
        g_end = np.append(g_first[1:], len(grid_s))
        out = []
        for k in range(len(paths)):
            a, b = int(g_first[k]), int(g_end[k])
            t_k = grid_t[a:b] - grid_t[a]
            duration = float(t_k[-1])
            if not duration > 0:
                raise TimingError('degenerate timing: the path velocity is stuck at 0', k)
            out.append(
                TimedPath(
                    duration_s=duration * float(stretch[k]),
                    stretch=float(stretch[k]),
                    start_rad=qs[first[k]].copy(),
                    end_rad=qs[last[k]].copy(),
                    _path=path,
                    _grid_s=grid_s[a:b],
                    _grid_sd=grid_sd[a:b],
                    _grid_t=t_k,
                    _grid_sdd=sdd[a : b - 1],
                )
            )
        return out

    def _stretch(self, v_ratio: np.ndarray, a_ratio: np.ndarray) -> np.ndarray:
        """The factor (≥ 1) that brings the check's largest limit ratios within the limits.

        The check aims at (1 - margin/2) of the limits: the other half of the margin covers the
        times between its check points.
        """
        target = 1.0 - self._margin / 2
        return np.maximum(1.0, np.maximum(v_ratio / target, np.sqrt(a_ratio / target)))

    def _gridpoints(
        self,
        qs: np.ndarray,
        ss: np.ndarray,
        gap: np.ndarray,
        path_start: np.ndarray,
        path_end: np.ndarray,
    ) -> np.ndarray:
        """TOPP-RA grid: the waypoints, with the intervals around sharp turns subdivided.

        The spline's curvature peaks where the joint path turns (e.g. from a transit into a
        vertical descent); TOPP-RA only sees the limits at grid points, so those intervals get
        ``corner_subdivisions`` stages each. A path with fewer than :attr:`MIN_GRID_POINTS`
        points is subdivided evenly up to that (a single stage cannot speed up and slow down).
        """
        chords = np.diff(qs, axis=0)
        length = np.linalg.norm(chords, axis=1, keepdims=True)
        unit = chords / np.where(length > 0, length, 1.0)  # (0 only across a gap)
        cos_turn = np.sum(unit[1:] * unit[:-1], axis=1)
        turns = (cos_turn < self._cos_corner) & ~gap[1:] & ~gap[:-1]
        sharp = np.flatnonzero(turns) + 1  # knot indices
        n = self._corner_subdivisions
        grid = ss
        if sharp.size and n > 1:
            intervals = np.unique(np.concatenate([sharp - 1, sharp]))
            frac = np.arange(1, n) / n
            extra = (ss[intervals, None] + np.diff(ss)[intervals, None] * frac[None, :]).ravel()
            grid = np.union1d(ss, extra)
        counts = np.diff(np.searchsorted(grid, path_start, side='left'), append=len(grid))
        short = np.flatnonzero(counts < self.MIN_GRID_POINTS)
        if short.size:
            grid = np.union1d(
                grid,
                np.concatenate(
                    [np.linspace(path_start[k], path_end[k], self.MIN_GRID_POINTS) for k in short]
                ),
            )
        return grid

    def _parameterize_toppra(self, qs: np.ndarray) -> TimedPath:
        """:meth:`parameterize` with the toppra package (the reference the tests compare to)."""
        steps = np.linalg.norm(np.diff(qs, axis=0), axis=1)
        if len(qs) < 2 or np.any(steps <= 0):
            raise ValueError('a timed path needs two or more waypoints, consecutive ones distinct')
        ss = np.concatenate([[0.0], np.cumsum(steps)])
        gap = np.zeros(len(qs) - 1, dtype=bool)
        gridpoints = self._gridpoints(qs, ss, gap, ss[:1], ss[-1:])
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
        frac = np.linspace(0.0, 1.0, self._checks_per_stage + 2)
        tau = (grid_t[:-1, None] + np.diff(grid_t)[:, None] * frac[None, :]).ravel()
        stage = np.repeat(np.arange(len(grid_t) - 1), len(frac))
        _, dq, ddq = _evaluate(path, grid_s, grid_sd, grid_t, grid_sdd, tau, stage)
        stretch = float(
            self._stretch(np.max(np.abs(dq) / self.vmax), np.max(np.abs(ddq) / self.amax))
        )
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
