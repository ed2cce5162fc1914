"""Hand paths of the G1: IK along straight lines through grasp-point waypoints, then timing.

:class:`HandPathSolver` samples the lines between waypoints every ``cartesian_step_m``, solves
the hand IK at each sample from the previous solution (smaller steps where a joint would jump),
checks joint limits and arm/torso collision, and times the joint path with TOPP-RA.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import time
from typing import TYPE_CHECKING, Optional

import numpy as np
import pinocchio as pin

from ..errors import ErrorCode, PlanningError
from ..timing import TimingError
from ..trace_check import fmt_point
from .plan_types import ArmMotion
from .stance import stance_matrix

if TYPE_CHECKING:
    from .planner import G1Planner


@dataclass
class Waypoint:
    """A point the working hand's grasp point passes through (odom).

    Attributes:
        position: (3,) grasp point, odom.
        phase: what the motion does (``reach``, ``carry``, ``retreat``, ...).
        trace_index: the trace waypoint it serves (-1: none), for error messages.
    """

    position: np.ndarray
    phase: str
    trace_index: int


def slerp(r0: np.ndarray, r1: np.ndarray, f: float) -> np.ndarray:
    """Rotation a fraction ``f`` of the way from ``r0`` to ``r1``."""
    return r0 @ pin.exp3(f * pin.log3(r0.T @ r1))


class HandPathSolver:
    """IK and timing of hand paths for one plan (accumulates the time spent in each).

    Args:
        planner: the planner whose kinematics, IK, collision model and limits are used.
        trace_len: number of trace waypoints (for error messages).
        speed: fraction of the joint limits the timing uses.
    """

    def __init__(self, planner: G1Planner, trace_len: int, speed: float) -> None:
        self.planner = planner
        self.cfg = planner.config
        self.trace_len = trace_len
        self.speed = speed
        self.ik_s = 0.0
        self.timing_s = 0.0
        self._start_distances: np.ndarray | None = None  # arm/body distances at the plan's start

    def joint_path(
        self,
        q: np.ndarray,
        base: np.ndarray,
        side: str,
        waypoints: list[Waypoint],
        use_waist: Optional[bool] = None,
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Joint path from ``q`` moving ``side``'s grasp point through ``waypoints``.

        Args:
            q: (17,) start joints.
            base: (4,) pelvis ``[x, y, z, yaw]`` (the stance, fixed during the path).
            side: the hand.
            waypoints: where the grasp point goes, in order (odom).
            use_waist: let the IK move the waist; ``None`` = the configured default.

        Returns:
            ``(qs, at_waypoints)``: every joint sample (the first is ``q``), and the joints
            reached at each waypoint.

        Raises:
            PlanningError: UNREACHABLE / JOINT_LIMIT / COLLISION naming the waypoint.
        """
        cfg, planner = self.cfg, self.planner
        self._note_start(q)
        stance = stance_matrix(*base)
        stance_inv = np.linalg.inv(stance)
        start = stance @ planner.kinematics.grasp_pose(q, side)
        rot_start = start[:3, :3]
        rot_goal = planner.hand_rotation(base[3])
        qs = [q.copy()]
        at_waypoints = []
        prev = start[:3, 3]
        t0 = time.perf_counter()

        def solve(f: float, w_i: int, wp: Waypoint, seed: np.ndarray) -> np.ndarray:
            # orientation: from the start's to the working one over the first waypoint
            rot = slerp(rot_start, rot_goal, f) if w_i == 0 else rot_goal
            pos = prev + (wp.position - prev) * f
            return self._solve_sample(pos, rot, seed, stance_inv, wp, side, base, use_waist)

        for w_i, wp in enumerate(waypoints):
            seg_len = float(np.linalg.norm(wp.position - prev))
            n = max(1, int(math.ceil(seg_len / cfg.cartesian_step_m)))
            for i in range(1, n + 1):
                f = i / n
                q_next = solve(f, w_i, wp, qs[-1])
                if float(np.max(np.abs(q_next - qs[-1]))) > cfg.max_joint_step_rad:
                    # a jump: approach this sample in smaller steps from the previous one
                    f0 = (i - 1) / n
                    q_sub = qs[-1]
                    for k in range(1, 5):
                        q_sub = solve(f0 + (f - f0) * k / 4, w_i, wp, q_sub)
                        qs.append(q_sub)
                    continue
                qs.append(q_next)
            prev = wp.position
            at_waypoints.append(qs[-1].copy())
        self.ik_s += time.perf_counter() - t0
        return qs, at_waypoints

    def joint_move(self, q: np.ndarray, q_goal: np.ndarray, phase: str, side: str) -> list:
        """Joint-space interpolation from ``q`` to ``q_goal``, checked like a hand path.

        Args:
            q: (17,) start joints.
            q_goal: (17,) goal joints (within the limits).
            phase: what the motion does (for error messages).
            side: the hand that moves.

        Returns:
            Every joint sample (the first is ``q``), consecutive ones at most half
            ``max_joint_step_rad`` apart.

        Raises:
            PlanningError: COLLISION where a sample breaks the arm/body margin.
        """
        self._note_start(q)
        span = float(np.max(np.abs(q_goal - q)))
        n = max(2, int(math.ceil(span / (0.5 * self.cfg.max_joint_step_rad))) + 1)
        qs = [q + f * (q_goal - q) for f in np.linspace(0.0, 1.0, n)]
        for qk in qs[1:]:
            self._check_body(qk, None, f'{phase} ({side} hand, in joint space)')
        return qs

    def _note_start(self, q: np.ndarray) -> None:
        """Remember the arm/body distances at the plan's first configuration."""
        if self._start_distances is None:
            self._start_distances = self.planner.collision.distances(q)

    def _check_body(self, q: np.ndarray, k: Optional[int], where: str) -> None:
        """Raise COLLISION (naming ``where``) when ``q`` breaks the arm/body margin."""
        collision = self.planner.collision
        hit = collision.first_collision(q, start=self._start_distances)
        if hit is not None:
            raise PlanningError(
                ErrorCode.COLLISION,
                k,
                f'{where}: {hit.sphere} would come within {hit.distance_m * 100:.1f} cm of the '
                f'{hit.box} (margin {collision.margin_m * 100:.0f} cm)',
            )

    def _solve_sample(
        self,
        pos: np.ndarray,
        rot: np.ndarray,
        seed: np.ndarray,
        stance_inv: np.ndarray,
        wp: Waypoint,
        side: str,
        base: np.ndarray,
        use_waist: Optional[bool],
    ) -> np.ndarray:
        target = np.eye(4)
        target[:3, :3] = rot
        target[:3, 3] = pos
        waist = self.cfg.use_waist if use_waist is None else use_waist
        res = self.planner.ik.solve(side, stance_inv @ target, seed, q_ref=seed, use_waist=waist)
        self._check_ik(res, wp, pos, side, base)
        return res.q

    def _check_ik(self, res, wp: Waypoint, pos: np.ndarray, side: str, base: np.ndarray) -> None:
        planner, cfg = self.planner, self.cfg
        k = wp.trace_index if wp.trace_index >= 0 else None
        where = (
            (f'waypoint {k} of {self.trace_len}' if k is not None else 'the hand path')
            + f' ({wp.phase}, {side} hand at {fmt_point(pos)} m, stance '
            f'({base[0]:.2f}, {base[1]:.2f}, {math.degrees(base[3]):.0f}°))'
        )
        if not res.converged:
            if res.joints_at_limit:
                j = res.joints_at_limit[0]
                raise PlanningError(
                    ErrorCode.JOINT_LIMIT,
                    k,
                    f'{where}: reaching it needs {planner.joint_names[j]} beyond its limits '
                    f'[{planner.lower_rad[j]:.2f}, {planner.upper_rad[j]:.2f}] rad '
                    f'(IK stopped {res.position_error_m * 1e3:.0f} mm away)',
                )
            raise PlanningError(
                ErrorCode.UNREACHABLE,
                k,
                f'{where} is out of reach: no IK solution within '
                f'{cfg.ik_position_tolerance_m * 1e3:.0f} mm (closest '
                f'{res.position_error_m * 1e3:.0f} mm, palm tilt {res.tilt_error_rad:.2f} rad)',
            )
        self._check_body(res.q, k, where)

    def timed(
        self, qs: np.ndarray, phase: str, side: str, joint_space: bool = False
    ) -> Optional[ArmMotion]:
        """Time a joint path (samples that do not move are dropped).

        Args:
            qs: (K, 17) joint samples.
            phase: what the motion does (for the segment and error messages).
            side: the working hand.
            joint_space: the samples are a joint-space interpolation (no step limit).

        Returns:
            The timed :class:`ArmMotion`, or None when nothing moves.

        Raises:
            PlanningError: UNREACHABLE for an IK branch change on the path or no feasible
                timing.
        """
        joint_names = self.planner.joint_names
        keep = [0]
        for i in range(1, len(qs)):
            step = np.abs(qs[i] - qs[keep[-1]])
            if not joint_space and float(np.max(step)) > self.cfg.max_joint_step_rad:
                j = int(np.argmax(step))
                raise PlanningError(
                    ErrorCode.UNREACHABLE,
                    None,
                    f'{phase}: {joint_names[j]} would turn {step[j]:.2f} rad between '
                    f'two hand path samples (an IK branch change on the path)',
                )
            if float(np.max(step)) > 1e-6:
                keep.append(i)
        if len(keep) < 2:
            return None
        t0 = time.perf_counter()
        try:
            timed = self.planner.timer.parameterize(qs[keep])
        except (TimingError, ValueError) as exc:
            raise PlanningError(
                ErrorCode.UNREACHABLE, None, f'no feasible timing for the {phase} motion: {exc}'
            ) from exc
        t, pos, vel, _ = timed.sample(self.speed, self.cfg.sample_period_s)
        self.timing_s += time.perf_counter() - t0
        return ArmMotion(joint_names, t, pos, vel, side, phase)
