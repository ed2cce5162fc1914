"""Trace → safe, timed UR5 motion: validation, tool path, IK, collision check, timing.

:class:`Ur5Planner` turns a trace (object-centre points in the base frame) into a :class:`Plan`:
a list of segments ``[motion, gripper(close), motion, gripper(open), motion]`` (pick_place) or
``[motion]`` (push, follow), each motion a trajectory sampled at a fixed period with joint
positions, velocities and accelerations. Every check happens before the plan is returned, so a
caller that executes only returned plans never moves on unvalidated data. A rejection raises
:class:`~trace_executor.errors.PlanningError` with the error code of the
``ExecuteInstruction`` action and a message naming the trace point and the reason.

ROS-free: numpy in, numpy out. Not thread-safe: use one planner per thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
import math
import time
from typing import Optional

import numpy as np

from ..errors import ErrorCode, PlanningError
from ..timing import TimedPath, TimeParameterizer, TimingError
from ..trace_check import fmt_point
from .collision import CollisionChecker
from .config import Ur5PlannerConfig
from .ik import AnalyticIk, IkFailure, PinkIk
from .kinematics import Ur5Kinematics
from .plan_types import GripperSegment, MotionSegment, Plan, Segment
from .tool_path import (
    MODES,
    ToolPath,
    ToolPathParams,
    build_tool_path,
    validate_trace,
)


class Ur5Planner:
    """Plan UR5 motions that carry out a trace (see the module docstring).

    Attributes:
        config: the :class:`Ur5PlannerConfig`.
        kinematics: the pinocchio model (:class:`Ur5Kinematics`).
        lower_rad, upper_rad: (6,) joint limits in force.
        velocity_limit_rad_s, acceleration_limit_rad_s2: (6,) limits at speed_scale 1.
    """

    def __init__(self, config: Optional[Ur5PlannerConfig] = None) -> None:
        """Load the robot model and build the IK, collision and timing helpers.

        Args:
            config: planner parameters; ``None`` = defaults.

        Raises:
            FileNotFoundError: if the URDF, SRDF or meshes are missing.
            ValueError: if the URDF is not a UR5 or the QP backend is missing.
        """
        self.config = config or Ur5PlannerConfig()
        cfg = self.config
        self.kinematics = Ur5Kinematics(cfg.urdf_path, cfg.tcp_offset_m)
        kin = self.kinematics
        lower = kin.lower_rad if cfg.joint_lower_rad is None else np.array(cfg.joint_lower_rad)
        upper = kin.upper_rad if cfg.joint_upper_rad is None else np.array(cfg.joint_upper_rad)
        self.lower_rad = np.maximum(np.asarray(lower, dtype=float), kin.lower_rad)
        self.upper_rad = np.minimum(np.asarray(upper, dtype=float), kin.upper_rad)
        if np.any(self.lower_rad >= self.upper_rad):
            raise ValueError('joint_lower_rad must be below joint_upper_rad for every joint')
        self.velocity_limit_rad_s = np.minimum(
            kin.velocity_limit_rad_s, cfg.max_joint_velocity_rad_s
        )
        self.acceleration_limit_rad_s2 = np.full(6, float(cfg.max_joint_acceleration_rad_s2))
        self._ik: AnalyticIk | PinkIk
        if cfg.ik_solver in ('auto', 'analytic'):  # 'auto' kept for existing configurations
            self._ik = AnalyticIk(
                kin,
                self.lower_rad,
                self.upper_rad,
                position_tolerance_m=cfg.ik_position_tolerance_m,
                orientation_tolerance_rad=cfg.ik_orientation_tolerance_rad,
            )
        else:
            self._ik = PinkIk(
                kin,
                self.lower_rad,
                self.upper_rad,
                position_tolerance_m=cfg.ik_position_tolerance_m,
                orientation_tolerance_rad=cfg.ik_orientation_tolerance_rad,
                max_iterations=cfg.ik_max_iterations,
                max_step_rad=cfg.max_joint_step_rad,
                damping=cfg.ik_damping,
            )
        self._collision = (
            CollisionChecker(
                kin,
                table_height_m=cfg.table_height_m,
                table_clearance_m=cfg.table_clearance_m,
                gripper_radius_m=cfg.gripper_radius_m,
                gripper_length_m=cfg.gripper_length_m,
                srdf_path=cfg.srdf_path,
            )
            if cfg.collision_check
            else None
        )
        self._timer = TimeParameterizer(
            self.velocity_limit_rad_s,
            self.acceleration_limit_rad_s2,
            corner_angle_rad=cfg.toppra_corner_angle_rad,
            corner_subdivisions=cfg.toppra_corner_subdivisions,
            method=cfg.timing_method,
        )
        self._path_params = ToolPathParams(
            tool_rotation=cfg.tool_rotation_matrix(),
            table_height_m=cfg.table_height_m,
            min_tcp_height_m=cfg.min_tcp_height_m,
            approach_height_m=cfg.approach_height_m,
            carry_height_m=cfg.carry_height_m,
            push_backoff_m=cfg.push_backoff_m,
            push_contact_offset_m=cfg.push_contact_offset_m,
            cartesian_step_m=cfg.cartesian_step_m,
            angular_step_rad=cfg.angular_step_rad,
            workspace_min_m=tuple(cfg.workspace_min_m),
            workspace_max_m=tuple(cfg.workspace_max_m),
        )

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Joint order of every ``q`` vector."""
        return self.kinematics.joint_names

    def forward_tcp(self, q: np.ndarray) -> np.ndarray:
        """TCP pose for joint positions ``q``.

        Args:
            q: (6,) joint positions (rad).

        Returns:
            (4, 4) base_T_tcp (m).
        """
        return self.kinematics.forward_tcp(q)

    def first_collision(self, q: np.ndarray) -> Optional[tuple[str, str]]:
        """The colliding geometry pair at ``q`` (``None`` if free or checks are off)."""
        return None if self._collision is None else self._collision.first_collision(q)

    # -- validation ---------------------------------------------------------------------------

    @staticmethod
    def _check_speed(speed_scale: float) -> float:
        s = float(speed_scale)
        if not (math.isfinite(s) and 0.0 < s <= 1.0):
            raise PlanningError(
                ErrorCode.BAD_GOAL, None, f'speed_scale must be in (0, 1], got {speed_scale}'
            )
        return s

    def _check_start(self, q_start: np.ndarray) -> np.ndarray:
        try:
            q = np.array(q_start, dtype=float).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise PlanningError(
                ErrorCode.BAD_GOAL, None, f'start configuration is not numeric: {exc}'
            ) from exc
        if q.shape != (6,) or not np.all(np.isfinite(q)):
            raise PlanningError(
                ErrorCode.BAD_GOAL,
                None,
                f'start configuration must be 6 finite joint positions in the order '
                f'{self.joint_names}, got {np.asarray(q_start).tolist()}',
            )
        for j in range(6):
            if not (self.lower_rad[j] - 1e-6 <= q[j] <= self.upper_rad[j] + 1e-6):
                raise PlanningError(
                    ErrorCode.JOINT_LIMIT,
                    None,
                    f'start configuration: {self.joint_names[j]} = {q[j]:.3f} rad is outside '
                    f'its limits [{self.lower_rad[j]:.3f}, {self.upper_rad[j]:.3f}] rad',
                )
        return np.clip(q, self.lower_rad, self.upper_rad)

    # -- planning -----------------------------------------------------------------------------

    def plan(
        self,
        points: np.ndarray,
        q_start: np.ndarray,
        mode: str = 'pick_place',
        speed_scale: float = 1.0,
        frame_id: Optional[str] = None,
        transform: Optional[np.ndarray] = None,
        holding: bool = False,
    ) -> Plan:
        """Plan the motion that carries out a trace, starting at rest at ``q_start``.

        Args:
            points: (N, 3) object-centre trace (m) in ``frame_id``; first = where the object
                is now, last = where it should end.
            q_start: (6,) current joint positions (rad), robot at rest.
            mode: ``pick_place``, ``push`` or ``follow``.
            speed_scale: fraction of the joint velocity limits, in (0, 1] (accelerations are
                scaled by its square: the timing is the full-speed one stretched by 1/scale).
            frame_id: frame of ``points``; ``None`` = the base frame.
            transform: (4, 4) base_T_frame, required when ``frame_id`` is not the base frame.
            holding: ``pick_place``: the object is already grasped (replanning mid-carry).

        Returns:
            The validated, timed :class:`Plan`.

        Raises:
            PlanningError: with code ``BAD_GOAL`` (speed_scale, mode, start vector),
                ``INVALID_TRACE`` (empty, NaN/inf, wrong frame, too few points),
                ``WORKSPACE`` (outside the box, below the table or the minimum TCP height),
                ``UNREACHABLE`` (no IK solution within tolerance, IK branch jump, no feasible
                timing), ``JOINT_LIMIT`` (start outside the limits, a pose needs a joint beyond
                them) or ``COLLISION`` (self or table), naming the trace point.
        """
        t_begin = time.perf_counter()
        cfg = self.config
        speed = self._check_speed(speed_scale)
        if mode not in MODES:
            raise PlanningError(
                ErrorCode.BAD_GOAL, None, f'unknown mode {mode!r}; expected one of {MODES}'
            )
        q0 = self._check_start(q_start)
        pts = validate_trace(
            points,
            cfg.base_frame if frame_id is None else frame_id,
            cfg.base_frame,
            cfg.workspace_min_m,
            cfg.workspace_max_m,
            cfg.table_height_m,
            transform,
        )
        path = build_tool_path(
            pts, mode, self.kinematics.forward_tcp(q0), self._path_params, holding=holding
        )
        t_path = time.perf_counter()
        qs, ik_s, col_s = self._solve_path(path, q0, len(pts))
        t_ik = time.perf_counter()
        segments = self._segments(path, qs, speed)
        t_end = time.perf_counter()
        timings = {
            'validate': (t_path - t_begin) * 1e3,
            'ik': ik_s * 1e3,
            'collision': col_s * 1e3,
            'timing': (t_end - t_ik) * 1e3,
            'total': (t_end - t_begin) * 1e3,
        }
        return Plan(
            segments=tuple(segments),
            tool_path=path,
            joint_path_rad=qs,
            trace_base=pts,
            joint_names=self.joint_names,
            mode=mode,
            speed_scale=speed,
            base_frame=cfg.base_frame,
            timings_ms=timings,
        )

    def plan_from(
        self,
        q_now: np.ndarray,
        remaining_points: np.ndarray,
        mode: str = 'pick_place',
        speed_scale: float = 1.0,
        frame_id: Optional[str] = None,
        transform: Optional[np.ndarray] = None,
        holding: bool = False,
    ) -> Plan:
        """Replan from the current joint state (after a smooth stop).

        Args:
            q_now: (6,) joint positions now (rad); the robot must be at rest.
            remaining_points: (N, 3) the trace still to do: a fresh trace from the model or
                the unexecuted tail of the old one (first point = where the object is now).
            mode: as in :meth:`plan`.
            speed_scale: as in :meth:`plan`.
            frame_id: as in :meth:`plan`.
            transform: as in :meth:`plan`.
            holding: ``pick_place``: the object is already in the gripper, so the new plan
                carries it along the trace and places it without approaching or grasping.

        Returns:
            A new :class:`Plan` starting exactly at ``q_now``.

        Raises:
            PlanningError: as :meth:`plan`.
        """
        return self.plan(
            remaining_points,
            q_now,
            mode=mode,
            speed_scale=speed_scale,
            frame_id=frame_id,
            transform=transform,
            holding=holding,
        )

    def blend(
        self,
        plan: Plan,
        q: np.ndarray,
        v: np.ndarray,
        a: Optional[np.ndarray] = None,
    ) -> Optional[Plan]:
        """Enter ``plan`` from a moving state instead of from rest (replanning while moving).

        The plan was made from about where the arm is (e.g. where its running trajectory will
        be in a few ms). Its first motion is replaced by a jerk-limited ruckig motion from the
        state ``(q, v, a)`` to the state of that motion at one of ``blend_entry_times_s``,
        followed by the rest of it: the arm never stops in between. The entry with the
        shortest total duration whose blend stays within the joint limits and free of
        collisions is taken.

        Args:
            plan: a plan from :meth:`plan` whose first segment is a motion.
            q: (6,) joint positions now (rad).
            v: (6,) joint velocities now (rad/s).
            a: (6,) joint accelerations now (rad/s²); ``None`` = 0.

        Returns:
            The plan with the blended first motion (``timings_ms['blend']`` added), or ``None``
            when no entry works (the caller then stops the arm and plans from rest).
        """
        from ruckig import InputParameter, Result, Ruckig, Trajectory

        t0 = time.perf_counter()
        if not plan.segments or not isinstance(plan.segments[0], MotionSegment):
            return None
        first = plan.segments[0]
        q = np.asarray(q, dtype=float)
        v = np.asarray(v, dtype=float)
        a = np.zeros(6) if a is None else np.asarray(a, dtype=float)
        speed = plan.speed_scale
        vmax = self.velocity_limit_rad_s * speed
        amax = self.acceleration_limit_rad_s2 * speed**2
        otg = Ruckig(6)
        inp = InputParameter(6)
        inp.current_position = q.tolist()
        inp.current_velocity = v.tolist()
        inp.current_acceleration = np.clip(a, -amax, amax).tolist()
        inp.max_velocity = vmax.tolist()
        inp.max_acceleration = amax.tolist()
        inp.max_jerk = [self.config.blend_jerk_rad_s3 * speed**3] * 6
        times = first.times_s
        candidates = []
        for entry in self.config.blend_entry_times_s:
            k = min(int(np.searchsorted(times, entry / speed)), len(times) - 1)
            if candidates and candidates[-1][1] == k:
                continue
            inp.target_position = first.positions_rad[k].tolist()
            inp.target_velocity = np.clip(first.velocities_rad_s[k], -vmax, vmax).tolist()
            inp.target_acceleration = np.clip(first.accelerations_rad_s2[k], -amax, amax).tolist()
            traj = Trajectory(6)
            if otg.calculate(inp, traj) != Result.Working:
                continue
            total = traj.duration + float(times[-1] - times[k])
            candidates.append((total, k, traj))
        period = self.config.sample_period_s
        for _total, k, traj in sorted(candidates, key=lambda c: c[0]):
            dur = traj.duration
            n = max(int(np.ceil(dur / period - 1e-9)), 1)
            bt = np.append(np.arange(n) * period, dur)
            states = [traj.at_time(float(t)) for t in bt]
            bp = np.array([s[0] for s in states])
            bv = np.array([s[1] for s in states])
            ba = np.array([s[2] for s in states])
            bp[-1] = first.positions_rad[k]
            if np.any(bp < self.lower_rad - 1e-9) or np.any(bp > self.upper_rad + 1e-9):
                continue
            if self._collision is not None and any(
                self._collision.first_collision(x) is not None for x in bp[1::2]
            ):
                continue
            rest_t = times[k + 1 :] - times[k] + dur
            blended = replace(
                first,
                times_s=np.concatenate([bt, rest_t]),
                positions_rad=np.vstack([bp, first.positions_rad[k + 1 :]]),
                velocities_rad_s=np.vstack([bv, first.velocities_rad_s[k + 1 :]]),
                accelerations_rad_s2=np.vstack([ba, first.accelerations_rad_s2[k + 1 :]]),
                entered_moving=True,
            )
            timings = dict(plan.timings_ms)
            timings['blend'] = (time.perf_counter() - t0) * 1e3
            return replace(plan, segments=(blended, *plan.segments[1:]), timings_ms=timings)
        return None

    def retime(self, plan: Plan, speed_scale: float) -> Plan:
        """The same path at another speed (no IK or collision work; ~1 ms).

        Args:
            plan: a plan from this planner.
            speed_scale: new fraction of the joint limits, in (0, 1].

        Returns:
            A new :class:`Plan` whose motions are the old ones stretched in time.

        Raises:
            PlanningError: ``BAD_GOAL`` if ``speed_scale`` is outside (0, 1] or the plan was
                entered from a moving state (:meth:`blend`: its start depends on the speed).
        """
        speed = self._check_speed(speed_scale)
        if any(m.entered_moving for m in plan.motions):
            raise PlanningError(
                ErrorCode.BAD_GOAL, None, 'a plan entered from a moving state cannot be re-timed'
            )
        segments: list[Segment] = []
        for seg in plan.segments:
            if isinstance(seg, MotionSegment):
                segments.append(self._sample(seg.timed, seg.path_range, speed))
            else:
                segments.append(seg)
        return replace(plan, segments=tuple(segments), speed_scale=speed)

    def _solve_path(
        self, path: ToolPath, q0: np.ndarray, n_points: int
    ) -> tuple[np.ndarray, float, float]:
        """IK at every tool path sample (on the previous sample's branch) and collision checks.

        Errors are reported at the first sample that fails, whatever the reason: IK (out of
        reach, joint limit, branch jump) or a collision at an earlier sample.
        """
        t0 = time.perf_counter()
        if isinstance(self._ik, AnalyticIk):
            qs, bad, ik_error = self._solve_path_analytic(path, q0, n_points)
        else:
            qs, bad, ik_error = self._solve_path_pink(path, q0, n_points)
        t1 = time.perf_counter()
        if self._collision is not None:
            check = self._collision.first_collision
            for i in range(1, len(qs) if bad is None else bad):
                hit = check(qs[i])
                if hit is not None:
                    a, b = hit
                    raise PlanningError(
                        ErrorCode.COLLISION,
                        int(path.trace_index[i]),
                        f'{self._where(path, i, n_points)}: the robot would collide there '
                        f'({a} touches {b})',
                    )
        col_time = time.perf_counter() - t1
        if ik_error is not None:
            raise ik_error
        return qs, t1 - t0, col_time

    def _branch_jump(
        self, path: ToolPath, qs: np.ndarray, n_points: int
    ) -> tuple[int | None, PlanningError | None]:
        """The first sample whose joints moved more than ``max_joint_step_rad``."""
        steps = np.abs(np.diff(qs, axis=0))
        over = steps.max(axis=1) > self.config.max_joint_step_rad
        if not over.any():
            return None, None
        i = int(np.argmax(over)) + 1
        j = int(np.argmax(steps[i - 1]))
        return i, PlanningError(
            ErrorCode.UNREACHABLE,
            int(path.trace_index[i]),
            f'{self._where(path, i, n_points)}: IK branch jump, {self.joint_names[j]} would '
            f'turn {steps[i - 1, j]:.2f} rad between two tool path samples (limit '
            f'{self.config.max_joint_step_rad:.2f} rad; a singularity or an IK branch change '
            'lies on the path)',
        )

    def _solve_path_analytic(
        self, path: ToolPath, q0: np.ndarray, n_points: int
    ) -> tuple[np.ndarray, int | None, PlanningError | None]:
        assert isinstance(self._ik, AnalyticIk)
        res = self._ik.solve_path(path.positions, path.rotations, q0)
        bad = res.failed_at
        n_ok = len(path) if bad is None else bad
        jump_at, jump = self._branch_jump(path, res.q[:n_ok], n_points)
        if jump_at is not None:
            return res.q, jump_at, jump
        if bad is None:
            return res.q, None, None
        k = int(path.trace_index[bad])
        where = self._where(path, bad, n_points)
        names = self.joint_names
        cfg = self.config
        if res.reason is IkFailure.JOINT_LIMIT:
            j = res.joint
            err = PlanningError(
                ErrorCode.JOINT_LIMIT,
                k,
                f'{where}: reaching it needs {names[j]} beyond its limits '
                f'[{self.lower_rad[j]:.3f}, {self.upper_rad[j]:.3f}] rad (it would reach '
                f'{res.q[bad, j]:.3f} rad on this IK branch)',
            )
        elif res.reason is IkFailure.INACCURATE:
            err = PlanningError(
                ErrorCode.UNREACHABLE,
                k,
                f'{where} is out of reach: the closed-form IK misses it by '
                f'{res.position_error_m * 1e3:.1f} mm / {res.orientation_error_rad:.3f} rad '
                f'(tolerance {cfg.ik_position_tolerance_m * 1e3:.1f} mm / '
                f'{cfg.ik_orientation_tolerance_rad:.3f} rad; a singularity lies there)',
            )
        else:
            err = PlanningError(
                ErrorCode.UNREACHABLE,
                k,
                f'{where} is out of reach: no IK solution for the TCP there (beyond the '
                "arm's reach or inside its base cylinder)",
            )
        return res.q, bad, err

    def _solve_path_pink(
        self, path: ToolPath, q0: np.ndarray, n_points: int
    ) -> tuple[np.ndarray, int | None, PlanningError | None]:
        m = len(path)
        qs = np.empty((m, 6))
        qs[0] = q0
        names = self.joint_names
        for i in range(1, m):
            res = self._ik.solve(path.positions[i], path.rotations[i], qs[i - 1])
            k = int(path.trace_index[i])
            if not res.converged:
                where = self._where(path, i, n_points)
                if res.joints_at_limit:
                    j = res.joints_at_limit[0]
                    return (
                        qs,
                        i,
                        PlanningError(
                            ErrorCode.JOINT_LIMIT,
                            k,
                            f'{where}: reaching it needs {names[j]} beyond its limits '
                            f'[{self.lower_rad[j]:.3f}, {self.upper_rad[j]:.3f}] rad '
                            f'(IK stopped {res.position_error_m * 1e3:.1f} mm away)',
                        ),
                    )
                return (
                    qs,
                    i,
                    PlanningError(
                        ErrorCode.UNREACHABLE,
                        k,
                        f'{where} is out of reach: no IK solution within '
                        f'{self.config.ik_position_tolerance_m * 1e3:.1f} mm / '
                        f'{self.config.ik_orientation_tolerance_rad:.3f} rad (closest '
                        f'{res.position_error_m * 1e3:.1f} mm, '
                        f'{res.orientation_error_rad:.3f} rad)',
                    ),
                )
            qs[i] = res.q
            jump_at, jump = self._branch_jump(path, qs[i - 1 : i + 1], n_points)
            if jump is not None:
                jump_at, jump = self._branch_jump(path, qs[: i + 1], n_points)
                return qs, jump_at, jump
        return qs, None, None

    @staticmethod
    def _where(path: ToolPath, i: int, n_points: int) -> str:
        return (
            f'waypoint {int(path.trace_index[i])} of {n_points} ({path.phases[i]}, TCP at '
            f'{fmt_point(path.positions[i])} m)'
        )

    def _segments(self, path: ToolPath, qs: np.ndarray, speed: float) -> list[Segment]:
        """Split the joint path at the gripper events and time every motion (in one call)."""
        bounds = [0] + [i for i, _ in path.events] + [len(qs) - 1]
        closes = [c for _, c in path.events]
        motions: list[tuple[int, list[int]]] = []  # (index in bounds, waypoints kept)
        for n, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            if b > a:
                # drop repeated configurations (a timing needs distinct consecutive waypoints)
                moved = np.abs(np.diff(qs[a : b + 1], axis=0)).max(axis=1) > 1e-9
                keep = [a, *(a + 1 + np.flatnonzero(moved)).tolist()]
                if len(keep) >= 2:
                    keep[-1] = b
                    motions.append((n, keep))
        try:
            timed = self._timer.parameterize_many([qs[keep] for _, keep in motions])
        except TimingError as exc:
            k = int(path.trace_index[motions[exc.path_index][1][-1]])
            raise PlanningError(
                ErrorCode.UNREACHABLE,
                k,
                f'no feasible timing for the motion to waypoint {k}: {exc}',
            ) from exc
        by_bound = {n: (keep, t) for (n, keep), t in zip(motions, timed, strict=True)}
        segments: list[Segment] = []
        for n in range(len(bounds) - 1):
            if n in by_bound:
                keep, t = by_bound[n]
                segments.append(self._sample(t, (keep[0], keep[-1]), speed))
            if n < len(closes):
                segments.append(GripperSegment(close=closes[n]))
        return segments

    def _sample(
        self, timed: TimedPath, path_range: tuple[int, int], speed: float
    ) -> MotionSegment:
        t, p, v, a = timed.sample(speed, self.config.sample_period_s)
        return MotionSegment(
            joint_names=self.joint_names,
            times_s=t,
            positions_rad=p,
            velocities_rad_s=v,
            accelerations_rad_s2=a,
            path_range=path_range,
            timed=timed,
        )


def tool_path_distance(points: np.ndarray, path_positions: Sequence[np.ndarray]) -> np.ndarray:
    """Distance of each point to a polyline (e.g. FK of trajectory samples to the tool path).

    Args:
        points: (K, 3) points (m).
        path_positions: (M, 3) polyline vertices (m), M ≥ 1.

    Returns:
        (K,) distance of each point to the nearest polyline segment (m).
    """
    pts = np.asarray(points, dtype=float)
    poly = np.asarray(path_positions, dtype=float)
    if len(poly) == 1:
        return np.linalg.norm(pts - poly[0], axis=1)
    a = poly[:-1][None]
    ab = (poly[1:] - poly[:-1])[None]
    ap = pts[:, None] - a
    denom = np.maximum(np.sum(ab * ab, axis=2), 1e-18)
    f = np.clip(np.sum(ap * ab, axis=2) / denom, 0.0, 1.0)
    d = np.linalg.norm(ap - f[..., None] * ab, axis=2)
    return d.min(axis=1)
