"""How the G1 carries out a trace: the sequence of walks, arm motions and grasps of a plan.

:class:`Choreography` builds one plan for :class:`~trace_executor.g1.planner.G1Planner`
(pick and place, pick and hold, place while holding, follow), step by step: walks to stances,
hand paths solved and timed by :class:`~trace_executor.g1.hand_path.HandPathSolver`, hand
closures, the return to the standing pose. A walk marks the first ``look_again`` point: what
comes after it is provisional (:meth:`Choreography.truncate` drops it when it cannot be planned
from the far view).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from ..errors import ErrorCode, PlanningError
from .hand_path import HandPathSolver, Waypoint
from .kinematics import ARM, SIDES
from .plan_types import ArmRelease, BodyTarget, HandSegment, Segment, WalkSegment
from .stance import SIGN, base_goal_for, choose_hand, stance_matrix, to_pelvis, wrap_angle

if TYPE_CHECKING:
    from .planner import G1Planner


class Choreography:
    """Builds one plan: the sequence of walks, arm motions and grasps, segment by segment."""

    def __init__(
        self, planner: G1Planner, pts: np.ndarray, base: np.ndarray, q: np.ndarray, speed: float
    ) -> None:
        self.planner = planner
        self.cfg = planner.config
        self.paths = HandPathSolver(planner, len(pts), speed)
        self.pts = pts
        self.base = base.copy()
        self.q = q.copy()
        self.speed = speed
        self.segments: list[Segment] = []
        self.targets: list[BodyTarget] = []
        self.path: list[np.ndarray] = []
        self.notes: list[str] = []
        self.side = 'left'
        self.grasped = False
        self.arms_active = bool(np.max(np.abs(q - planner.rest_q)) > 0.2)
        self.look_again_set = False
        #: sizes of segments/targets/path (and grasped) up to the first look-again walk
        self.commit: tuple[int, int, int, bool] | None = None

    def truncate(self) -> None:
        """Drop everything planned after the first look-again walk."""
        assert self.commit is not None
        n_seg, n_tgt, n_path, grasped = self.commit
        del self.segments[n_seg:], self.targets[n_tgt:], self.path[n_path:]
        self.grasped = grasped

    # --- building blocks -----------------------------------------------------------------
    def walk_to(self, goal: tuple[float, float, float], why: str, holding: bool) -> None:
        """Walk to a base goal (free arms tucked or rested first); the first walk looks again."""
        cfg = self.cfg
        dist = float(np.hypot(goal[0] - self.base[0], goal[1] - self.base[1]))
        turn = abs(wrap_angle(goal[2] - self.base[3]))
        dur = dist / cfg.walk_speed_m_s + turn / cfg.walk_yaw_rate_rad_s + 0.5
        if cfg.tuck_arms_for_walks and dist >= cfg.tuck_min_walk_m:
            self.tuck(holding)
        elif not holding and self.arms_active:
            self.rest()
            self.release()
        self.segments.append(
            WalkSegment(
                goal,
                cfg.odom_frame,
                dur,
                look_again=not self.look_again_set,
                holding=self.side if holding else None,
            )
        )
        self.targets.append(
            BodyTarget('walk', goal, self.side, None, self.grip(holding), self.q.copy())
        )
        if not self.look_again_set:
            self.commit = (len(self.segments), len(self.targets), len(self.path), self.grasped)
        self.look_again_set = True
        self.notes.append(f'walk {dist:.2f} m to ({goal[0]:.2f}, {goal[1]:.2f}) {why}')
        self.base = np.array([goal[0], goal[1], self.base[2], goal[2]])

    def grip(self, holding: bool) -> float:
        """Closure of the working hand: gripping while holding, else open."""
        return self.cfg.grip_closure if holding else 0.0

    def tuck(self, holding: bool) -> None:
        """Raise the free arm(s) in front of the chest, above table height, for a walk.

        Each hand goes straight up beside the body first, then forward (clear of a table edge
        in front), with the waist still; a hand that holds an object is already at its carry
        pose.
        """
        cfg = self.cfg
        sides = [s for s in SIDES if not (holding and s == self.side)]
        self._hands_to(
            sides,
            lambda side, here: [
                np.array([here[0], here[1], max(here[2], cfg.tuck_pose[2])]),
                np.array([cfg.tuck_pose[0], SIGN[side] * cfg.tuck_pose[1], cfg.tuck_pose[2]]),
            ],
            'tuck',
            holding,
            joint_space_fallback=True,
        )

    def _hands_to(
        self,
        sides: list[str],
        waypoints,
        phase: str,
        holding: bool,
        joint_space_fallback: bool = False,
    ) -> None:
        """Move several hands at once through pelvis-frame waypoints (waist still).

        ``waypoints(side, here_pelvis) -> [p_pelvis, ...]``. Each arm's path is independent
        when the waist does not move, so the paths are solved one by one and merged. With
        ``joint_space_fallback``, a hand that no straight path leads from (an arm left behind
        the body, a wrist pushed to its limit by the table) goes to the last waypoint in joint
        space instead, checked against the body the same way.
        """
        stance = stance_matrix(*self.base)
        paths = []
        for side in sides:
            here = to_pelvis(self.hand_position(side), stance)
            wps = [stance[:3, :3] @ w + stance[:3, 3] for w in waypoints(side, here)]
            if float(np.linalg.norm(wps[-1] - self.hand_position(side))) < 0.03:
                continue
            try:
                path = self._ik_path(
                    [Waypoint(w, phase, -1) for w in wps], holding, use_waist=False, side=side
                )
            except PlanningError as exc:
                if not joint_space_fallback or exc.code not in (
                    ErrorCode.UNREACHABLE,
                    ErrorCode.JOINT_LIMIT,
                ):
                    raise
                path = self._joint_space_to(side, wps[-1], phase, holding, exc)
            paths.append((side, path))
        if paths:
            n = max(len(path) for _, path in paths)
            merged = np.repeat(self.q[None], n, axis=0)
            for side, path in paths:
                arm = np.array([path[min(i, len(path) - 1)][ARM[side]] for i in range(n)])
                merged[:, ARM[side]] = arm
            self._timed(merged, phase)

    def _joint_space_to(
        self, side: str, goal: np.ndarray, phase: str, holding: bool, why: PlanningError
    ) -> list[np.ndarray]:
        """Joint path taking ``side``'s hand to ``goal`` (odom) in joint space (see _hands_to).

        The goal's joints are solved from the standing pose's arm, not from where the arm is.

        Raises:
            PlanningError: ``why`` when the goal itself is out of reach; COLLISION from the
                body check.
        """
        planner = self.planner
        target = np.linalg.inv(stance_matrix(*self.base)) @ self.hand_pose(goal)
        seed = self.q.copy()
        seed[ARM[side]] = planner.rest_q[ARM[side]]
        for _ in range(4):  # the IK takes small steps: a far goal needs a few calls
            res = planner.ik.solve(side, target, seed, use_waist=False)
            if res.converged:
                break
            seed = res.q
        else:
            raise why
        q_goal = self.q.copy()
        q_goal[ARM[side]] = res.q[ARM[side]]
        qs = self.paths.joint_move(self.q, q_goal, phase, side)
        self.path.append(goal.copy())
        self.targets.append(
            BodyTarget(phase, None, side, self.hand_pose(goal), self.grip(holding), q_goal)
        )
        self.notes.append(
            f'{phase}: no straight hand path from where the {side} hand is ({why.message}); '
            'it moves there in joint space'
        )
        return qs

    def hand_pose(self, position: np.ndarray) -> np.ndarray:
        """(4, 4) odom pose of the working hand at a grasp-point position (working orientation)."""
        t = np.eye(4)
        t[:3, :3] = self.planner.hand_rotation(self.base[3])
        t[:3, 3] = position
        return t

    def arm_path(
        self, waypoints: list[Waypoint], phase: str, holding: bool, use_waist: bool | None = None
    ) -> None:
        """IK along straight lines through ``waypoints`` (grasp point, odom), then timing."""
        self._timed(np.array(self._ik_path(waypoints, holding, use_waist)), phase)

    def _ik_path(
        self,
        waypoints: list[Waypoint],
        holding: bool,
        use_waist: bool | None = None,
        side: str | None = None,
    ) -> list[np.ndarray]:
        """Joint path (from ``self.q``) moving a hand (the working one) through ``waypoints``."""
        side = side or self.side
        qs, reached = self.paths.joint_path(self.q, self.base, side, waypoints, use_waist)
        for wp, q in zip(waypoints, reached, strict=True):
            self.path.append(wp.position.copy())
            self.targets.append(
                BodyTarget(
                    wp.phase,
                    None,
                    side,
                    self.hand_pose(wp.position),
                    self.grip(holding),
                    q,
                    wp.trace_index,
                )
            )
        return qs

    def _timed(self, qs: np.ndarray, phase: str, joint_space: bool = False) -> None:
        motion = self.paths.timed(qs, phase, self.side, joint_space)
        if motion is None:
            self.q = qs[-1].copy()
            return
        self.segments.append(motion)
        self.q = motion.positions_rad[-1].copy()
        self.arms_active = True

    def rest(self) -> None:
        """Back to the standing pose: hands pulled in close to the body, then joint space."""
        stance = stance_matrix(*self.base)
        forward = [s for s in SIDES if to_pelvis(self.hand_position(s), stance)[0] > 0.12]
        if forward:
            try:
                self._hands_to(
                    forward,
                    lambda side, here: [
                        np.array([0.08, SIGN[side] * max(abs(here[1]), 0.2), here[2]])
                    ],
                    'rest',
                    False,
                    joint_space_fallback=True,
                )
            except PlanningError as exc:
                if exc.code not in (ErrorCode.UNREACHABLE, ErrorCode.JOINT_LIMIT):
                    raise
                # no pose close to the body at that height (an arm raised for a turn): the
                # joint-space move below, checked against the body, takes the hands down
                self.notes.append(
                    f'rest: the hands are not pulled in first ({exc.message}); they go to the '
                    'standing pose in joint space'
                )
        qs = np.array([self.q, self.planner.rest_q])
        if float(np.max(np.abs(qs[1] - qs[0]))) > 1e-3:
            # Into the locomotion controller's own standing pose: only actual contact with the
            # body boxes counts here (the boxes are generous around the thighs).
            for f in np.linspace(0.0, 1.0, 11)[1:-1]:
                c = self.planner.collision.closest(qs[0] + f * (qs[1] - qs[0]))
                if c.distance_m < 0.0:
                    raise PlanningError(
                        ErrorCode.COLLISION,
                        None,
                        f'returning the arms to the standing pose: {c.sphere} would touch the '
                        f'{c.box} ({c.distance_m * 100:.1f} cm)',
                    )
            dense = qs[0] + np.linspace(0.0, 1.0, 12)[:, None] * (qs[1] - qs[0])
            self._timed(dense, 'rest', joint_space=True)
            self.targets.append(
                BodyTarget('rest', None, self.side, None, 0.0, self.planner.rest_q.copy())
            )

    def release(self) -> None:
        """Hand the arms back to the locomotion controller."""
        self.segments.append(ArmRelease())
        self.arms_active = False

    def hand(self, close: bool) -> None:
        """Close (grasp) or open (release) the working hand."""
        cfg = self.cfg
        self.segments.append(
            HandSegment(
                close,
                self.side,
                cfg.grip_closure if close else 0.0,
                release_closure=cfg.release_closure,
            )
        )
        here = self.planner.grasp_position(np.concatenate([self.base, self.q]), self.side)
        self.targets.append(
            BodyTarget(
                'grasp' if close else 'release',
                None,
                self.side,
                self.hand_pose(here),
                cfg.grip_closure if close else 0.0,
                self.q.copy(),
            )
        )

    def hand_position(self, side: str | None = None) -> np.ndarray:
        """Grasp point of a hand (the working one) in odom."""
        state = np.concatenate([self.base, self.q])
        return self.planner.grasp_position(state, side or self.side)

    def safe_height(self, *zs: float) -> float:
        """Height to move across at: the highest of ``zs`` plus the approach height."""
        return max(zs) + self.cfg.approach_height_m

    # --- tasks ---------------------------------------------------------------------------
    def ensure_reach(self, point: np.ndarray, k: int, holding: bool, why: str) -> bool:
        """Walk (plan) to a stance reaching ``point`` if needed; True when a walk was added."""
        if self.planner.in_reach(point, self.base, self.side):
            return False
        goal = base_goal_for(point, self.side, self.base[[0, 1, 3]], self.cfg.reach)
        step = np.hypot(goal[0] - self.base[0], goal[1] - self.base[1])
        if step < self.cfg.base_tolerance_m and abs(wrap_angle(goal[2] - self.base[3])) < 0.05:
            return False
        self.walk_to(goal, f'to reach waypoint {k} ({why})', holding)
        return True

    def pick_and_place(self, side: str) -> None:
        """Grasp the object at the trace start with ``side`` and carry it along the trace."""
        self.side = side
        self.notes.append(f'{side} hand')
        off = self.grasp_object(side, self.pts)
        self.place(side, measured_offset=False, offset=off)

    def pick_and_hold(self, side: str) -> None:
        """Pick the object at the trace start, lift it to the carry pose, look again here."""
        pts = self.pts
        self.side = side
        self.notes.append(
            f'{side} hand; the destination is not in view: pick the object up '
            'first, then look for it'
        )
        off = self.grasp_object(side, np.vstack([pts[0], pts[0]]))
        self.lift_to_carry(side, pts[0][2] + off[2])
        # Stay, holding the object, and look again: the executor looks for the destination.
        goal = (float(self.base[0]), float(self.base[1]), float(self.base[3]))
        self.segments.append(
            WalkSegment(
                goal, self.cfg.odom_frame, 0.5, look_again=not self.look_again_set, holding=side
            )
        )
        self.targets.append(BodyTarget('walk', goal, side, None, self.grip(True), self.q.copy()))
        if not self.look_again_set:
            self.commit = (len(self.segments), len(self.targets), len(self.path), self.grasped)
        self.look_again_set = True
        self.notes.append('holding it: look for the destination')

    def grasp_object(self, side: str, stance_pts: np.ndarray) -> np.ndarray:
        """Walk to a stance reaching the trace start if needed, reach down to it and grasp.

        Args:
            side: the hand.
            stance_pts: the points the pick stance is chosen for (start and destination).

        Returns:
            The grasp offset (hand grasp point minus object centre, odom).
        """
        pts = self.pts
        stance = self.planner.pick_stance(stance_pts, self.base, side)
        if stance is not None:
            self.walk_to(
                (float(stance[0]), float(stance[1]), float(stance[3])),
                'to reach waypoint 0 (the object)',
                False,
            )
        off = self.planner.grasp_offset(side, self.base[3])
        grasp = pts[0] + off
        here = self.hand_position()
        top = self.safe_height(grasp[2], here[2])
        rise = here.copy()
        rise[2] = max(here[2], top)
        self.arm_path(
            [
                Waypoint(rise, 'reach', -1),
                Waypoint(np.array([*grasp[:2], top]), 'reach', 0),
                Waypoint(grasp, 'reach', 0),
            ],
            'reach',
            False,
        )
        self.hand(True)
        self.grasped = True
        return off

    def lift_to_carry(self, side: str, object_z: float) -> None:
        """Lift the held object straight up, then bring it close to the body (carry pose)."""
        cfg = self.cfg
        here = self.hand_position()
        lift_z = max(here[2], object_z + cfg.carry_lift_m, self.base[2] + cfg.tuck_pose[2])
        carry_local = np.array([cfg.carry_pose[0], SIGN[side] * cfg.carry_pose[1], 0.0])
        stance = stance_matrix(*self.base)
        carry = stance[:3, :3] @ carry_local + stance[:3, 3]
        carry[2] = lift_z
        self.arm_path(
            [Waypoint(np.array([*here[:2], lift_z]), 'carry', 0), Waypoint(carry, 'carry', -1)],
            'carry',
            True,
        )

    def place(self, side: str, measured_offset: bool, offset: Optional[np.ndarray] = None) -> None:
        """Carry the held object along the trace to its end, set it down, retreat, rest."""
        cfg, pts = self.cfg, self.pts
        self.side = side
        if measured_offset:
            # Where the perceived object is relative to the hand now (kept while carrying).
            meas = self.hand_position() - pts[0]
            nominal = self.planner.grasp_offset(side, self.base[3])
            off = meas if np.linalg.norm(meas - nominal) < 0.08 else nominal
            self.notes.append(
                f'the perceived held object is {np.linalg.norm(meas - nominal) * 100:.1f} cm '
                'from the nominal grasp point ('
                + (
                    'using the nominal grasp offset)'
                    if off is nominal
                    else 'carrying it from there)'
                )
            )
        else:
            off = offset if offset is not None else self.planner.grasp_offset(side, self.base[3])
        end = pts[-1]
        if not self.planner.in_reach(end + off, self.base, side):
            # Lift, bring the object close to the body, walk to the destination.
            self.lift_to_carry(side, pts[0][2] + off[2])
            walked = self.ensure_reach(end + off, len(pts) - 1, True, 'the destination')
            if walked:
                # From the new stance: the hand keeps its pose relative to the body; the
                # object's offset turns with the body.
                off = self.planner.grasp_offset(side, self.base[3])
        # Carry along the trace points that lie ahead of the hand, set down at the end: after
        # a walk (or a re-perception while holding) only the part of the trace near the
        # destination is left to do.
        here = self.hand_position()
        start_k = self.remaining_from(off, skip_rise=measured_offset)
        travel = max(float(np.max(pts[start_k:, 2])) + off[2], here[2])
        wps: list[Waypoint] = []
        across = np.linalg.norm((pts[start_k] + off)[:2] - here[:2]) > 0.05
        if across and pts[start_k][2] + off[2] < travel - 0.01:
            # Go over, not through: rise before moving across.
            wps.append(Waypoint(np.array([*here[:2], travel]), 'carry', start_k))
        for k in range(start_k, len(pts) - 1):
            wps.append(Waypoint(pts[k] + off, 'carry', k))
        down = pts[-1] + off + np.array([0.0, 0.0, cfg.place_clearance_m])
        wps.append(Waypoint(down, 'carry', len(pts) - 1))
        self.arm_path(wps, 'carry', True)
        self.hand(False)
        self.retreat()

    def remaining_from(self, off: np.ndarray, skip_rise: bool) -> int:
        """First trace index still to carry through from the current stance.

        The trace points from there on are all within reach (with 15 cm of slack); with
        ``skip_rise`` the leading points straight above the start (the lift the hand already
        did) are skipped too.
        """
        pts, n = self.pts, len(self.pts)
        stance = stance_matrix(*self.base)
        region = self.cfg.reach
        k = 1
        for i in range(n - 1, 0, -1):
            if region.excess(to_pelvis(pts[i] + off, stance), self.side) > 0.15:
                k = i + 1
                break
        k = min(k, n - 1)
        if skip_rise:
            here = self.hand_position()

            def lifted(k: int) -> bool:  # straight above the start, below the hand
                above = np.linalg.norm(pts[k][:2] - pts[0][:2]) < 0.02
                return above and pts[k][2] + off[2] <= here[2] + 0.01

            while k < n - 1 and lifted(k):
                k += 1
        return k

    def retreat(self) -> None:
        """Move the open hand up and back beside the body, then rest and release the arms."""
        cfg = self.cfg
        here = self.hand_position()
        up = here + np.array([0.0, 0.0, cfg.approach_height_m])
        stance = stance_matrix(*self.base)
        near = (
            stance[:3, :3]
            @ np.array([cfg.carry_pose[0], SIGN[self.side] * cfg.carry_pose[1], 0.0])
            + stance[:3, 3]
        )
        near[2] = up[2]
        self.arm_path(
            [Waypoint(up, 'retreat', -1), Waypoint(near, 'retreat', -1)], 'retreat', False
        )
        self.rest()
        self.release()

    def follow(self) -> None:
        """Move the nearer hand's grasp point along the trace (no grasp), then retreat."""
        pts = self.pts
        self.side = choose_hand(pts[0], pts[-1], self.planner.shoulders(self.base, self.q))
        self.notes.append(f'{self.side} hand follows the trace')
        self.ensure_reach(pts[0], 0, False, 'the trace start')
        here = self.hand_position()
        top = self.safe_height(pts[0][2], here[2])
        wps = [
            Waypoint(np.array([*here[:2], max(here[2], top)]), 'reach', -1),
            Waypoint(np.array([*pts[0][:2], top]), 'reach', 0),
        ]
        wps += [Waypoint(p.copy(), 'carry', k) for k, p in enumerate(pts)]
        self.arm_path(wps, 'carry', False)
        self.retreat()
