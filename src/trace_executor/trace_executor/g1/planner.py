"""Trace (odom) → G1 whole-body plan: base goals, hand targets, upper-body motions, grasps.

:class:`G1Planner` validates a trace (the shared rules of :mod:`trace_executor.trace_check`
plus the G1's reach), decides the hand and the stances, and has
:class:`~trace_executor.g1.choreography.Choreography` build the :class:`G1Plan`; every check
(IK with joint limits, arm/torso collision, timing) happens before the plan is returned, and a
rejection names the trace waypoint. How a pick and place is choreographed, the hand choice and
the look-again rule: docs/architecture.md ("The G1 planner"). ROS-free; one planner per executor.
"""

from __future__ import annotations

from collections.abc import Callable
import math
import time
from typing import Any, Optional

import numpy as np

from .. import trace_check
from ..errors import ErrorCode, PlanningError
from ..timing import TimeParameterizer, TimingError
from ..trace_check import fmt_point
from .choreography import Choreography
from .collision import BodyCollisionModel
from .config import G1PlannerConfig
from .ik import HandIk
from .kinematics import SIDES, G1Kinematics, standing_upper_body
from .plan_types import MODES, STATE_SIZE, ArmMotion, G1Plan, HandPath, unpack_state
from .stance import (
    SIGN,
    base_goal_for,
    choose_hand,
    stance_matrix,
    to_pelvis,
    wrap_angle,
    yaw_rotation,
)


class G1Planner:
    """Plan G1 whole-body motions that carry out a trace (see the module docstring).

    Args:
        config: planner parameters; ``None`` = defaults.

    Raises:
        FileNotFoundError: the URDF is missing.
        ValueError: the URDF is not a G1 or a parameter is invalid.
    """

    def __init__(
        self,
        config: Optional[G1PlannerConfig] = None,
        log_rejection: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.config = config or G1PlannerConfig()
        #: called with the inputs of every rejected plan (to reproduce it offline)
        self.log_rejection = log_rejection
        cfg = self.config
        self.kinematics = G1Kinematics(
            cfg.urdf_path, {'left': cfg.grasp_point_left, 'right': cfg.grasp_point_right}
        )
        kin = self.kinematics
        self.collision = BodyCollisionModel(kin, margin_m=cfg.collision_margin_m)
        self.lower_rad = kin.lower_rad + cfg.joint_margin_rad
        self.upper_rad = kin.upper_rad - cfg.joint_margin_rad
        self.velocity_limit_rad_s = np.minimum(
            kin.velocity_limit_rad_s, cfg.max_joint_velocity_rad_s
        )
        self.acceleration_limit_rad_s2 = np.full(
            len(kin.joint_names), cfg.max_joint_acceleration_rad_s2
        )
        self.ik = HandIk(
            kin,
            self.collision,
            self.lower_rad,
            self.upper_rad,
            position_tolerance_m=cfg.ik_position_tolerance_m,
            tilt_tolerance_rad=cfg.ik_tilt_tolerance_rad,
        )
        self.timer = TimeParameterizer(self.velocity_limit_rad_s, self.acceleration_limit_rad_s2)
        self.rest_q = np.clip(standing_upper_body(), self.lower_rad, self.upper_rad)
        #: the hand that closed in the last plan with a grasp (used when ``holding``)
        self.holding_side: Optional[str] = None

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Upper-body joint order."""
        return self.kinematics.joint_names

    # --- validation ----------------------------------------------------------------------
    def _check_goal(self, mode: str, speed_scale: float, state: np.ndarray) -> tuple:
        if mode not in MODES:
            raise PlanningError(
                ErrorCode.BAD_GOAL,
                None,
                f'mode {mode!r} is not supported by the G1 executor (supported: '
                f'{", ".join(MODES)})',
            )
        s = float(speed_scale)
        if not (math.isfinite(s) and 0.0 < s <= 1.0):
            raise PlanningError(
                ErrorCode.BAD_GOAL, None, f'speed_scale must be in (0, 1], got {speed_scale}'
            )
        st = np.asarray(state, dtype=float).reshape(-1)
        if st.shape != (STATE_SIZE,) or not np.all(np.isfinite(st)):
            raise PlanningError(
                ErrorCode.BAD_GOAL,
                None,
                f'robot state must be {STATE_SIZE} finite numbers ([x, y, z, yaw] + 17 joints), '
                f'got {np.asarray(state).tolist()}',
            )
        base, q = unpack_state(st)
        outside = (q < self.kinematics.lower_rad - 0.05) | (q > self.kinematics.upper_rad + 0.05)
        bad = np.flatnonzero(outside)
        if bad.size:
            j = int(bad[0])
            raise PlanningError(
                ErrorCode.JOINT_LIMIT,
                None,
                f'current {self.joint_names[j]} = {q[j]:.3f} rad is outside its limits '
                f'[{self.kinematics.lower_rad[j]:.3f}, {self.kinematics.upper_rad[j]:.3f}]',
            )
        return s, base, np.clip(q, self.lower_rad, self.upper_rad)

    def validate_trace(
        self,
        points: np.ndarray,
        frame_id: Optional[str],
        transform: Optional[np.ndarray],
        base: np.ndarray,
        mode: str = 'pick_place',
    ) -> np.ndarray:
        """Check a trace and express it in odom (the shared rules of :mod:`trace_check`).

        Args:
            points: (N, 3) points in ``frame_id``.
            frame_id: their frame; ``None``/empty = odom.
            transform: (4, 4) odom_T_frame when ``frame_id`` is not odom.
            base: (4,) current pelvis ``[x, y, z, yaw]``.
            mode: the goal's mode (how many points it needs).

        Returns:
            (N, 3) points in odom.

        Raises:
            PlanningError: INVALID_TRACE (shape, NaN/inf, too few points, unknown frame,
                bad transform, a jump between waypoints), UNREACHABLE (a waypoint too low or
                too high for a hand), WORKSPACE (a waypoint farther than a walk may go).
        """
        cfg = self.config
        pts = trace_check.check_points(points)
        trace_check.check_mode_points(pts, mode)
        pts = trace_check.to_frame(pts, frame_id, cfg.odom_frame, transform)
        trace_check.check_continuity(pts, cfg.max_trace_step_m)
        for k, p in enumerate(pts):
            if p[2] < cfg.min_point_height_m or p[2] > cfg.max_point_height_m:
                raise PlanningError(
                    ErrorCode.UNREACHABLE,
                    k,
                    f'waypoint {k} of {len(pts)} at {fmt_point(p)} m '
                    f'({frame_id or cfg.odom_frame} → {cfg.odom_frame}) is at height '
                    f'{p[2]:.2f} m: the hands reach '
                    f'{cfg.min_point_height_m:.2f}..{cfg.max_point_height_m:.2f} m',
                )
            dist = float(np.hypot(p[0] - base[0], p[1] - base[1]))
            if dist > cfg.max_walk_m:
                raise PlanningError(
                    ErrorCode.WORKSPACE,
                    k,
                    f'waypoint {k} of {len(pts)} at {fmt_point(p)} m is {dist:.1f} m away: '
                    f'farther than the G1 may walk for a trace ({cfg.max_walk_m:.1f} m)',
                )
        return pts

    # --- geometry helpers ---------------------------------------------------------------
    def _stance(self, base: np.ndarray) -> np.ndarray:
        return stance_matrix(*base)

    def hand_rotation(self, yaw: float) -> np.ndarray:
        """Working hand orientation (odom) for a stance heading: fingers forward, palm vertical."""
        return yaw_rotation(yaw + self.config.hand_yaw_rad)

    def grasp_offset(self, side: str, yaw: float) -> np.ndarray:
        """Hand grasp point minus object centre at the grasp (odom)."""
        cfg = self.config
        palm_normal_away = np.array([0.0, SIGN[side] * cfg.grasp_standoff_m, 0.0])
        return self.hand_rotation(yaw) @ palm_normal_away + np.array([0, 0, cfg.grasp_height_m])

    def grasp_position(self, state: np.ndarray, side: str) -> np.ndarray:
        """(3,) grasp point of a hand in odom for a state vector."""
        base, q = unpack_state(state)
        return (self._stance(base) @ self.kinematics.grasp_pose(q, side))[:3, 3]

    def shoulders(self, base: np.ndarray, q: np.ndarray) -> dict[str, np.ndarray]:
        """Shoulder positions in odom."""
        t = self._stance(base)
        return {s: t[:3, :3] @ self.kinematics.shoulder_position(q, s) + t[:3, 3] for s in SIDES}

    def pick_stance(self, pts: np.ndarray, base: np.ndarray, side: str) -> np.ndarray | None:
        """Where to stand to pick ``pts[0]`` with ``side``: None when the current stance will do.

        When the destination is near the pick, the stance centres the hand's working point
        between both, so the whole move is done from one stance if the reach region allows.
        A stance closer than ``base_tolerance_m`` to the current one is no walk.
        """
        cfg = self.config
        start, end = pts[0], pts[-1]
        if self.in_reach(start + self.grasp_offset(side, base[3]), base, side):
            return None
        region = cfg.reach
        goal = None
        if float(np.linalg.norm(end[:2] - start[:2])) < 2 * region.tolerance_y + 0.1:
            g = base_goal_for(0.5 * (start + end), side, base[[0, 1, 3]], region)
            stance = np.array([g[0], g[1], base[2], g[2]])
            off = self.grasp_offset(side, g[2])
            if self.in_reach(start + off, stance, side) and self.in_reach(end + off, stance, side):
                goal = stance
        if goal is None:
            g = base_goal_for(start, side, base[[0, 1, 3]], region)
            goal = np.array([g[0], g[1], base[2], g[2]])
        step = float(np.hypot(goal[0] - base[0], goal[1] - base[1]))
        if step < cfg.base_tolerance_m and abs(wrap_angle(goal[3] - base[3])) < 0.05:
            return None
        return goal

    def pick_hand(self, pts: np.ndarray, base: np.ndarray, q: np.ndarray) -> str:
        """The hand for a pick and place (see the module docstring).

        The better-placed one, unless only the other does the whole move from one stance.
        """
        first = choose_hand(pts[0], pts[-1], self.shoulders(base, q))
        order = [first, 'right' if first == 'left' else 'left']
        for side in order:
            stance = self.pick_stance(pts, base, side)
            at = base if stance is None else stance
            if self.in_reach(pts[-1] + self.grasp_offset(side, at[3]), at, side):
                return side
        return first

    def in_reach(self, point: np.ndarray, base: np.ndarray, side: str) -> bool:
        """Whether ``point`` (odom) is in comfortable reach of ``side`` from ``base``."""
        return self.config.reach.excess(to_pelvis(point, self._stance(base)), side) <= 1e-9

    # --- planning ------------------------------------------------------------------------
    def _plan(
        self,
        points: np.ndarray,
        q_start: np.ndarray,
        mode: str = 'pick_place',
        speed_scale: float = 1.0,
        frame_id: Optional[str] = None,
        transform: Optional[np.ndarray] = None,
        holding: bool = False,
        destination_known: bool = True,
    ) -> G1Plan:
        """Plan the whole-body motion that carries out a trace.

        Args:
            points: (N, 3) object-centre trace in ``frame_id`` (first = where the object is).
            q_start: (21,) robot state from :func:`pack_state` (pelvis pose in odom + upper
                body joints), robot at rest.
            mode: ``pick_place`` or ``follow`` (the hand's grasp point follows the trace).
            speed_scale: fraction of the joint velocity limits, in (0, 1].
            frame_id: frame of ``points``; ``None`` = odom.
            transform: (4, 4) odom_T_frame, required when ``frame_id`` is not odom.
            holding: an object is in a hand already (replanning mid-carry).
            destination_known: False when only the trace start (the object) was seen: pick
                the object up, lift it to the carry pose and look again from where the robot
                stands (``pick_place`` without ``holding`` only; the rest of the trace is
                ignored).

        Returns:
            The validated :class:`G1Plan`.

        Raises:
            PlanningError: BAD_GOAL, INVALID_TRACE, WORKSPACE, UNREACHABLE, JOINT_LIMIT,
                COLLISION (see :meth:`validate_trace` and the module docstring), naming the
                waypoint.
        """
        t0 = time.perf_counter()
        speed, base, q = self._check_goal(mode, speed_scale, q_start)
        pts = self.validate_trace(points, frame_id, transform, base, mode)
        t_valid = time.perf_counter()
        builder = Choreography(self, pts, base, q, speed)
        try:
            if mode == 'follow':
                builder.follow()
            elif holding:
                side = self.holding_side or choose_hand(pts[0], pts[-1], self.shoulders(base, q))
                builder.place(side, measured_offset=True)
            elif not destination_known:
                start = np.vstack([pts[0], pts[0]])
                builder.pick_and_hold(self.pick_hand(start, base, q))
            else:
                side = self.pick_hand(pts, base, q)
                builder.pick_and_place(side)
        except PlanningError as exc:
            if builder.commit is None:
                raise
            # What comes after a look-again walk is planned from a far view: provisional.
            # Keep the validated part; the rest is planned again from the new stance.
            builder.truncate()
            builder.notes.append(f'after the walk: replanned from there ({exc.message})')
        if builder.grasped:
            self.holding_side = builder.side
        t_end = time.perf_counter()
        timings = {
            'validate': (t_valid - t0) * 1e3,
            'ik': builder.paths.ik_s * 1e3,
            'timing': builder.paths.timing_s * 1e3,
            'total': (t_end - t0) * 1e3,
        }
        return G1Plan(
            segments=tuple(builder.segments),
            targets=tuple(builder.targets),
            trace_base=pts,
            tool_path=HandPath(np.array(builder.path) if builder.path else pts.copy()),
            side=builder.side,
            mode=mode,
            speed_scale=speed,
            base_frame=self.config.odom_frame,
            timings_ms=timings,
            note='; '.join(builder.notes),
        )

    def plan(self, points: np.ndarray, q_start: np.ndarray, **kw: Any) -> G1Plan:
        """Plan the whole-body motion that carries out a trace (see :meth:`_plan`).

        A rejection is also reported to ``log_rejection`` with the inputs that caused it.
        """
        try:
            return self._plan(points, q_start, **kw)
        except PlanningError as exc:
            if self.log_rejection is not None:
                tf = kw.get('transform')
                self.log_rejection(
                    f'plan rejected ({exc.code.name}): points {np.round(points, 4).tolist()} in '
                    f'{kw.get("frame_id")} (transform '
                    f'{None if tf is None else np.round(tf, 4).tolist()}), state '
                    f'{np.round(q_start, 4).tolist()}, holding {kw.get("holding")} '
                    f'({self.holding_side})'
                )
            raise

    def solve_target(
        self, side: str, hand_pose_odom: np.ndarray, base: np.ndarray, q_seed: np.ndarray
    ) -> np.ndarray:
        """One whole-body target: upper-body joints putting a hand at an odom pose.

        Args:
            side: the hand.
            hand_pose_odom: (4, 4) odom_T_grasp target.
            base: (4,) pelvis ``[x, y, z, yaw]``.
            q_seed: (17,) seed (e.g. the previous target's joints).

        Returns:
            (17,) joint positions.

        Raises:
            PlanningError: UNREACHABLE / JOINT_LIMIT / COLLISION when the pose cannot be held.
        """
        target = np.linalg.inv(self._stance(base)) @ hand_pose_odom
        res = self.ik.solve(side, target, q_seed, use_waist=self.config.use_waist)
        if not res.converged:
            raise PlanningError(
                ErrorCode.UNREACHABLE,
                None,
                f'{side} hand pose {fmt_point(hand_pose_odom[:3, 3])} m is out of reach '
                f'({res.position_error_m * 1e3:.0f} mm short)',
            )
        return res.q

    def tuck_motion(
        self, state: np.ndarray, holding: bool = False, speed_scale: float = 1.0
    ) -> list[ArmMotion]:
        """The free hands raised in front of the chest, as before a walk (for turns in place).

        A hand hanging in the standing pose is at table height: a body turned in place next
        to a table sweeps it across the table (and can be dragged behind the body).

        Args:
            state: (21,) robot state from :func:`pack_state`.
            holding: a hand (:attr:`holding_side`) holds an object: it stays where it is.
            speed_scale: fraction of the joint limits, in (0, 1].

        Returns:
            The arm motions (none when the hands are there already).

        Raises:
            PlanningError: BAD_GOAL for a bad state or speed; UNREACHABLE / COLLISION when
                the hands cannot get there.
        """
        speed, base, q = self._check_goal('pick_place', speed_scale, state)
        builder = Choreography(self, np.zeros((0, 3)), base, q, speed)
        if holding and self.holding_side:
            builder.side = self.holding_side
        builder.tuck(holding)
        return [s for s in builder.segments if isinstance(s, ArmMotion)]

    def waist_turn(
        self, q_start: np.ndarray, waist_yaw_rad: float, speed_scale: float = 1.0
    ) -> ArmMotion:
        """Turn the waist (and with it the torso, the head camera and the arms) to a yaw.

        The arm joints keep their values: the hands, and whatever one holds, turn with the
        torso. Used to look around (:mod:`trace_executor.g1.search`).

        Args:
            q_start: (17,) current upper-body joints.
            waist_yaw_rad: the waist yaw to turn to (clipped to the joint's limits).
            speed_scale: fraction of the joint limits, in (0, 1].

        Returns:
            The timed :class:`ArmMotion` (phase ``look``; at rest at both ends).

        Raises:
            PlanningError: BAD_GOAL for a bad state or speed.
        """
        speed = float(speed_scale)
        q0 = np.asarray(q_start, dtype=float).reshape(-1)
        if q0.shape != (len(self.joint_names),) or not np.all(np.isfinite(q0)):
            raise PlanningError(
                ErrorCode.BAD_GOAL, None, f'upper-body state must be 17 finite numbers, got {q0}'
            )
        if not (math.isfinite(speed) and 0.0 < speed <= 1.0):
            raise PlanningError(
                ErrorCode.BAD_GOAL, None, f'speed_scale must be in (0, 1], got {speed_scale}'
            )
        q0 = np.clip(q0, self.lower_rad, self.upper_rad)
        q1 = q0.copy()
        q1[0] = float(np.clip(waist_yaw_rad, self.lower_rad[0], self.upper_rad[0]))
        dense = q0 + np.linspace(0.0, 1.0, 12)[:, None] * (q1 - q0)
        if float(abs(q1[0] - q0[0])) < 1e-4:
            t = np.array([0.0, self.config.sample_period_s])
            return ArmMotion(
                self.joint_names, t, np.array([q0, q0]), np.zeros((2, len(q0))), 'left', 'look'
            )
        try:
            timed = self.timer.parameterize(dense)
        except (TimingError, ValueError) as exc:
            raise PlanningError(
                ErrorCode.UNREACHABLE, None, f'no feasible timing for the waist turn: {exc}'
            ) from exc
        t, pos, vel, _ = timed.sample(speed, self.config.sample_period_s)
        return ArmMotion(self.joint_names, t, pos, vel, 'left', 'look')
