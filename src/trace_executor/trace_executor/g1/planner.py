"""Trace (odom) → G1 whole-body plan: base goals, hand targets, upper-body motions, grasps.

:class:`G1Planner` turns a trace — object-centre points in the odometry frame, or in another
frame with its transform to odom — into a :class:`G1Plan`, a sequence of segments the executor
runs one after the other:

``walk``
    a base goal ``(x, y, yaw)`` in odom (:class:`WalkSegment`); the arms do not move while the
    robot walks (they are at rest, or hold a carried object still);
``motion``
    an upper-body (waist + arms, 17 joints) trajectory sampled at 50 Hz (:class:`ArmMotion`);
``gripper``
    closing or opening one Dex3 hand (:class:`HandSegment`);
``arm_release``
    handing the arms back to the locomotion controller (``rt/arm_sdk`` weight ramped to 0).

Pick and place (``mode='pick_place'``) plans, for a scene that stays as perceived:

1. if the trace start is not in comfortable reach of a hand from the current stance
   (:class:`~trace_executor.g1.stance.ReachRegion`), walk to the stance that puts it at the
   hand's working point;
2. raise the hand beside the body, move above the object, descend to the grasp pose, close;
3. if the trace end is in reach from that stance, carry along the trace, set down, open,
   retreat; otherwise lift to a carry pose close to the body, walk to a stance in front of the
   destination, then carry along the rest of the trace, set down, open, retreat;
4. bring the arm back to the standing pose and release the arms.

A walk marks the plan ``look_again``: the executor re-perceives from the new stance (closer
view, and the object may have moved while the robot walked) and plans the rest again, so the
part after a walk is provisional (it is planned, and checked, before anything moves).

When the destination is not in view (``plan(..., destination_known=False)``: the object was
seen, where it goes was not), the plan picks the object up, lifts it to the carry pose and ends
with a walk that stays where it is and says ``look_again``: the executor then looks for the
destination holding the object (:mod:`trace_executor.g1.search`) and plans the rest from there.
:meth:`G1Planner.waist_turn` is the upper-body motion that turns the head camera with the waist
while looking around.

Hand choice: the hand whose shoulder is nearer the pick point (ties: the hand on the side the
object travels to, so the arm does not cross the body); a hand that holds an object keeps it.
Hand orientation: fingers forward (the stance's heading), palm vertical facing the object,
approaching from above; the grasp pose stands off the object by ``grasp_standoff_m`` along the
palm normal and ``grasp_height_m`` above its centre (the palm clears the table and the cup),
and that offset is kept while carrying, so the object centre follows the trace.

Every check (goal, frame, NaN, heights, walk distance, IK with joint limits and arm/torso
collision, timing) happens before the plan is returned. Rejections raise
:class:`~trace_executor.errors.PlanningError` with the ``ExecuteInstruction`` error code and a
message naming the trace waypoint.

ROS-free: numpy in, numpy out. Not thread-safe: one planner per executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
import time
from typing import ClassVar, Optional, Union

import numpy as np
import pinocchio as pin

from .. import trace_check
from ..errors import ErrorCode, PlanningError
from ..execution import SegmentKind
from ..timing import TimeParameterizer, TimingError
from ..trace_check import fmt_point
from .collision import BodyCollisionModel
from .ik import HandIk
from .kinematics import ARM, G1_UPPER_BODY_JOINTS, SIDES, G1Kinematics, standing_upper_body
from .stance import (
    SIGN,
    ReachRegion,
    base_goal_for,
    choose_hand,
    stance_matrix,
    to_pelvis,
    wrap_angle,
    yaw_rotation,
)

MODES = ('pick_place', 'follow')
STATE_SIZE = 4 + len(G1_UPPER_BODY_JOINTS)


def pack_state(base: tuple[float, float, float, float], q: np.ndarray) -> np.ndarray:
    """The planner's state vector: ``[x, y, z, yaw]`` of the pelvis in odom + 17 joints.

    Args:
        base: pelvis position (m) and heading (rad) in odom.
        q: (17,) upper-body joints (rad), :data:`G1_UPPER_BODY_JOINTS` order.

    Returns:
        (21,) state.
    """
    return np.concatenate([np.asarray(base, dtype=float), np.asarray(q, dtype=float)])


def unpack_state(state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(base (4,) [x, y, z, yaw], q (17,))`` of a state vector from :func:`pack_state`."""
    s = np.asarray(state, dtype=float).reshape(-1)
    return s[:4].copy(), s[4:].copy()


@dataclass(frozen=True)
class G1PlannerConfig:
    """Parameters of the G1 planner (metres, radians, seconds; odom frame unless stated).

    Attributes:
        odom_frame: the world frame plans are made in.
        urdf_path: G1 URDF with hands; ``None`` = example-robot-data's.
        grasp_point_left: left hand grasp point in ``left_hand_palm_link``.
        grasp_point_right: right hand grasp point in ``right_hand_palm_link``.
        reach: the comfortable-reach region of the hands.
        min_point_height_m: trace points below this height (odom z) are out of reach.
        max_point_height_m: trace points above this height are out of reach.
        max_walk_m: trace points farther than this from the robot are rejected (WORKSPACE).
        max_trace_step_m: consecutive trace points farther apart are an invalid trace.
        base_tolerance_m: a stance within this distance of the base goal needs no walk.
        grasp_standoff_m: grasp pose offset from the object centre along the palm normal.
        grasp_height_m: grasp pose offset above the object centre.
        approach_height_m: pre-grasp / retreat height above the grasp and place poses.
        place_clearance_m: the object is let go this far above its resting pose.
        carry_pose: hand position (pelvis frame, x and |y|) while walking with an object.
        carry_lift_m: the object is lifted at least this far before walking with it.
        tuck_arms_for_walks: before a walk of ``tuck_min_walk_m`` or more, raise the free
            hands in front of the chest (``tuck_pose``: x, |y|, z in the pelvis frame) and
            carry an object at least that high: the arms stay clear of table tops while the
            robot walks past furniture (in the simulator the legs even pass through it; there
            is no obstacle-aware base path). False: free arms hang (weight out) while walking.
        tuck_min_walk_m: shorter walks (steps) keep the arms as they are.
        hand_yaw_rad: hand heading relative to the stance heading (0: fingers forward).
        grip_closure: Dex3 closure (0 open .. 1 fist) commanded to grasp.
        release_closure: closure the hand opens to (gently) before it lets go.
        use_waist: let the IK use the waist joints.
        joint_margin_rad: planned joint positions stay this far inside the URDF limits.
        max_joint_velocity_rad_s: joint speed limit at speed_scale 1 (capped by the URDF's).
        max_joint_acceleration_rad_s2: joint acceleration limit at speed_scale 1.
        cartesian_step_m: hand path sampling step (IK at every sample).
        max_joint_step_rad: largest joint change between two hand path samples.
        collision_margin_m: arm spheres keep this distance from the torso/pelvis boxes.
        ik_position_tolerance_m: a hand target is reached within this distance.
        ik_tilt_tolerance_rad: ... and this palm tilt.
        sample_period_s: arm trajectory sample period (the arm_sdk rate).
        walk_speed_m_s: nominal walking speed (for durations and progress).
        walk_yaw_rate_rad_s: nominal turning rate.
    """

    odom_frame: str = 'odom'
    urdf_path: Optional[str] = None
    grasp_point_left: tuple[float, float, float] = (0.10, -0.035, 0.0)
    grasp_point_right: tuple[float, float, float] = (0.10, 0.035, 0.0)
    reach: ReachRegion = field(default_factory=ReachRegion)
    min_point_height_m: float = 0.45
    max_point_height_m: float = 1.2
    max_walk_m: float = 5.0
    max_trace_step_m: float = 1.0
    base_tolerance_m: float = 0.05
    grasp_standoff_m: float = 0.02
    grasp_height_m: float = 0.03
    approach_height_m: float = 0.10
    place_clearance_m: float = 0.005
    carry_pose: tuple[float, float] = (0.22, 0.20)
    carry_lift_m: float = 0.10
    tuck_arms_for_walks: bool = True
    tuck_min_walk_m: float = 0.3
    tuck_pose: tuple[float, float, float] = (0.25, 0.20, 0.12)
    hand_yaw_rad: float = 0.0
    grip_closure: float = 0.6
    release_closure: float = 0.33
    use_waist: bool = True
    joint_margin_rad: float = 0.02
    max_joint_velocity_rad_s: float = 1.5
    max_joint_acceleration_rad_s2: float = 4.0
    cartesian_step_m: float = 0.03
    max_joint_step_rad: float = 0.5
    collision_margin_m: float = 0.02
    ik_position_tolerance_m: float = 0.005
    ik_tilt_tolerance_rad: float = 0.25
    sample_period_s: float = 0.02
    walk_speed_m_s: float = 0.4
    walk_yaw_rate_rad_s: float = 0.8

    def __post_init__(self) -> None:
        """Reject values the planner cannot work with.

        Raises:
            ValueError: naming the parameter.
        """
        positive = (
            'max_walk_m', 'max_trace_step_m', 'base_tolerance_m', 'approach_height_m',
            'carry_lift_m', 'max_joint_velocity_rad_s', 'max_joint_acceleration_rad_s2',
            'cartesian_step_m', 'max_joint_step_rad', 'ik_position_tolerance_m',
            'ik_tilt_tolerance_rad', 'sample_period_s', 'walk_speed_m_s', 'walk_yaw_rate_rad_s',
        )  # fmt: skip
        for name in positive:
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f'G1PlannerConfig.{name} must be > 0, got {v}')
        for name in ('grasp_standoff_m', 'place_clearance_m', 'joint_margin_rad',
                     'collision_margin_m'):  # fmt: skip
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f'G1PlannerConfig.{name} must be >= 0, got {v}')
        if not 0.0 <= self.release_closure < self.grip_closure <= 1.0:
            raise ValueError('G1PlannerConfig: need 0 <= release_closure < grip_closure <= 1')
        if self.min_point_height_m >= self.max_point_height_m:
            raise ValueError('G1PlannerConfig.min_point_height_m must be < max_point_height_m')


# --------------------------------------------------------------------------------- segments


@dataclass(frozen=True)
class WalkSegment:
    """Walk to a base goal (the arms hold still), then stop.

    Attributes:
        goal: ``(x, y, yaw)`` in ``frame_id`` (m, rad).
        frame_id: the odometry frame.
        duration_s: nominal duration (for progress).
        look_again: after arriving, perceive again and replan the rest.
        holding: an object is carried (its side).
    """

    kind: ClassVar[SegmentKind] = SegmentKind.WALK

    goal: tuple[float, float, float]
    frame_id: str
    duration_s: float
    look_again: bool = True
    holding: Optional[str] = None


@dataclass(frozen=True)
class ArmMotion:
    """An upper-body trajectory, at rest at both ends, sampled at the arm_sdk period.

    Attributes:
        joint_names: column order (:data:`G1_UPPER_BODY_JOINTS`).
        times_s: (K,) sample times from the segment start.
        positions_rad: (K, 17) joint positions.
        velocities_rad_s: (K, 17) joint velocities.
        side: the working hand.
        phase: what the motion does (``reach``, ``carry``, ``retreat``, ``rest``).
    """

    kind: ClassVar[SegmentKind] = SegmentKind.MOTION

    joint_names: tuple[str, ...]
    times_s: np.ndarray
    positions_rad: np.ndarray
    velocities_rad_s: np.ndarray
    side: str
    phase: str

    @property
    def duration_s(self) -> float:
        """Duration (s)."""
        return float(self.times_s[-1])


@dataclass(frozen=True)
class HandSegment:
    """Close (grasp) or open (release) one Dex3 hand.

    Attributes:
        close: True grasps, False releases.
        side: ``'left'`` or ``'right'``.
        closure: target closure (0 open .. 1 fist).
        release_closure: when opening, the closure to open to gently before letting go.
        duration_s: how long the hand takes.
    """

    kind: ClassVar[SegmentKind] = SegmentKind.GRIPPER

    close: bool
    side: str
    closure: float
    release_closure: float = 0.0
    duration_s: float = 0.8


@dataclass(frozen=True)
class ArmRelease:
    """Ramp the ``rt/arm_sdk`` weight out: the locomotion controller takes the arms back."""

    kind: ClassVar[SegmentKind] = SegmentKind.ARM_RELEASE

    duration_s: float = 1.0


Segment = Union[WalkSegment, ArmMotion, HandSegment, ArmRelease]


@dataclass(frozen=True)
class BodyTarget:
    """One whole-body target (what ``robotracer_msgs/WholeBodyTarget`` carries).

    Attributes:
        phase: ``walk``, ``reach``, ``grasp``, ``carry``, ``release``, ``retreat``, ``rest``.
        base_goal: ``(x, y, yaw)`` in odom, or None (the base stays).
        side: the working hand.
        hand_pose: (4, 4) odom_T_grasp of that hand, or None.
        grip: closure of the working hand.
        joint_positions: (17,) upper-body joints reaching ``hand_pose``.
        trace_index: the trace waypoint this target serves (-1: none).
    """

    phase: str
    base_goal: Optional[tuple[float, float, float]]
    side: str
    hand_pose: Optional[np.ndarray]
    grip: float
    joint_positions: np.ndarray
    trace_index: int = -1


@dataclass(frozen=True)
class HandPath:
    """The planned path of the working hand's grasp point in odom (for markers and checks)."""

    positions: np.ndarray


@dataclass(frozen=True)
class G1Plan:
    """A validated G1 plan for one trace.

    Attributes:
        segments: in execution order.
        targets: the whole-body target sequence (for visibility and recording).
        trace_base: (N, 3) the trace in odom (name shared with the UR5 plan).
        tool_path: the hand path.
        side: the working hand.
        mode: ``pick_place`` or ``follow``.
        speed_scale: fraction of the joint limits used.
        base_frame: odom frame id.
        timings_ms: planning time per stage.
        note: what the planner decided (walks, hand), for logs and feedback.
    """

    segments: tuple[Segment, ...]
    targets: tuple[BodyTarget, ...]
    trace_base: np.ndarray
    tool_path: HandPath
    side: str
    mode: str
    speed_scale: float
    base_frame: str
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)
    note: str = ''

    @property
    def motions(self) -> list[Segment]:
        """The motion segments (arm trajectories and walks), in order."""
        return [s for s in self.segments if s.kind in ('motion', 'walk')]

    @property
    def duration_s(self) -> float:
        """Nominal total duration of the motions (s)."""
        return float(sum(s.duration_s for s in self.motions))

    @property
    def walks(self) -> list[WalkSegment]:
        """The walks, in order."""
        return [s for s in self.segments if isinstance(s, WalkSegment)]


# --------------------------------------------------------------------------------- planner


@dataclass
class _Waypoint:
    position: np.ndarray  # odom, grasp point
    phase: str
    trace_index: int


class G1Planner:
    """Plan G1 whole-body motions that carry out a trace (see the module docstring).

    Args:
        config: planner parameters; ``None`` = defaults.

    Raises:
        FileNotFoundError: the URDF is missing.
        ValueError: the URDF is not a G1 or a parameter is invalid.
    """

    def __init__(self, config: Optional[G1PlannerConfig] = None) -> None:
        self.config = config or G1PlannerConfig()
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
        self._timer = TimeParameterizer(self.velocity_limit_rad_s, self.acceleration_limit_rad_s2)
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
        bad = np.flatnonzero((q < self.kinematics.lower_rad - 0.05)
                             | (q > self.kinematics.upper_rad + 0.05))  # fmt: skip
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

    def _hand_rotation(self, yaw: float) -> np.ndarray:
        return yaw_rotation(yaw + self.config.hand_yaw_rad)

    def _grasp_offset(self, side: str, yaw: float) -> np.ndarray:
        """Hand grasp point minus object centre at the grasp (odom)."""
        cfg = self.config
        palm_normal_away = np.array([0.0, SIGN[side] * cfg.grasp_standoff_m, 0.0])
        return self._hand_rotation(yaw) @ palm_normal_away + np.array([0, 0, cfg.grasp_height_m])

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
        if self.in_reach(start + self._grasp_offset(side, base[3]), base, side):
            return None
        region = cfg.reach
        goal = None
        if float(np.linalg.norm(end[:2] - start[:2])) < 2 * region.tolerance_y + 0.1:
            g = base_goal_for(0.5 * (start + end), side, base[[0, 1, 3]], region)
            stance = np.array([g[0], g[1], base[2], g[2]])
            off = self._grasp_offset(side, g[2])
            if self.in_reach(start + off, stance, side) and self.in_reach(end + off, stance, side):
                goal = stance
        if goal is None:
            g = base_goal_for(start, side, base[[0, 1, 3]], region)
            goal = np.array([g[0], g[1], base[2], g[2]])
        if float(np.hypot(goal[0] - base[0], goal[1] - base[1])) < cfg.base_tolerance_m and \
                abs(wrap_angle(goal[3] - base[3])) < 0.05:  # fmt: skip
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
            if self.in_reach(pts[-1] + self._grasp_offset(side, at[3]), at, side):
                return side
        return first

    def in_reach(self, point: np.ndarray, base: np.ndarray, side: str) -> bool:
        """Whether ``point`` (odom) is in comfortable reach of ``side`` from ``base``."""
        return self.config.reach.excess(to_pelvis(point, self._stance(base)), side) <= 1e-9

    # --- planning ------------------------------------------------------------------------
    def plan(
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
        builder = _PlanBuilder(self, pts, base, q, speed)
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
            'ik': builder.ik_s * 1e3,
            'timing': builder.timing_s * 1e3,
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
                ErrorCode.UNREACHABLE, None,
                f'{side} hand pose {fmt_point(hand_pose_odom[:3, 3])} m is out of reach '
                f'({res.position_error_m * 1e3:.0f} mm short)',
            )  # fmt: skip
        return res.q

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
            return ArmMotion(self.joint_names, t, np.array([q0, q0]), np.zeros((2, len(q0))),
                             'left', 'look')  # fmt: skip
        try:
            timed = self._timer.parameterize(dense)
        except (TimingError, ValueError) as exc:
            raise PlanningError(
                ErrorCode.UNREACHABLE, None, f'no feasible timing for the waist turn: {exc}'
            ) from exc
        t, pos, vel, _ = timed.sample(speed, self.config.sample_period_s)
        return ArmMotion(self.joint_names, t, pos, vel, 'left', 'look')


class _PlanBuilder:
    """Accumulates the segments and targets of one plan (internal to :class:`G1Planner`)."""

    def __init__(
        self, planner: G1Planner, pts: np.ndarray, base: np.ndarray, q: np.ndarray, speed: float
    ) -> None:
        self.p = planner
        self.cfg = planner.config
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
        self.ik_s = 0.0
        self.timing_s = 0.0
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
                goal, cfg.odom_frame, dur, look_again=not self.look_again_set,
                holding=self.side if holding else None,
            )
        )  # fmt: skip
        self.targets.append(
            BodyTarget('walk', goal, self.side, None, self.grip(holding), self.q.copy())
        )
        if not self.look_again_set:
            self.commit = (len(self.segments), len(self.targets), len(self.path), self.grasped)
        self.look_again_set = True
        self.notes.append(f'walk {dist:.2f} m to ({goal[0]:.2f}, {goal[1]:.2f}) {why}')
        self.base = np.array([goal[0], goal[1], self.base[2], goal[2]])

    def grip(self, holding: bool) -> float:
        return self.cfg.grip_closure if holding else 0.0

    def tuck(self, holding: bool) -> None:
        """Raise the free arm(s) in front of the chest, above table height, for a walk.

        Each hand goes straight up beside the body first, then forward (clear of a table edge
        in front), with the waist still; a hand that holds an object is already at its carry
        pose.
        """
        cfg = self.cfg
        sides = [s for s in SIDES if not (holding and s == self.side)]
        self._hands_to(sides, lambda side, here: [
            np.array([here[0], here[1], max(here[2], cfg.tuck_pose[2])]),
            np.array([cfg.tuck_pose[0], SIGN[side] * cfg.tuck_pose[1], cfg.tuck_pose[2]]),
        ], 'tuck', holding)  # fmt: skip

    def _hands_to(self, sides: list[str], waypoints, phase: str, holding: bool) -> None:
        """Move several hands at once through pelvis-frame waypoints (waist still).

        ``waypoints(side, here_pelvis) -> [p_pelvis, ...]``. Each arm's path is independent
        when the waist does not move, so the paths are solved one by one and merged.
        """
        working = self.side
        stance = stance_matrix(*self.base)
        paths = []
        for side in sides:
            self.side = side
            here = to_pelvis(self.hand_position(), stance)
            wps = [stance[:3, :3] @ w + stance[:3, 3] for w in waypoints(side, here)]
            if float(np.linalg.norm(wps[-1] - self.hand_position())) < 0.03:
                continue
            path = self._ik_path([_Waypoint(w, phase, -1) for w in wps], holding, use_waist=False)
            paths.append((side, path))
        self.side = working
        if paths:
            n = max(len(path) for _, path in paths)
            merged = np.repeat(self.q[None], n, axis=0)
            for side, path in paths:
                arm = np.array([path[min(i, len(path) - 1)][ARM[side]] for i in range(n)])
                merged[:, ARM[side]] = arm
            self._timed(merged, phase)

    def hand_pose(self, position: np.ndarray) -> np.ndarray:
        t = np.eye(4)
        t[:3, :3] = self.p._hand_rotation(self.base[3])
        t[:3, 3] = position
        return t

    def arm_path(
        self, waypoints: list[_Waypoint], phase: str, holding: bool, use_waist: bool | None = None
    ) -> None:
        """IK along straight lines through ``waypoints`` (grasp point, odom), then timing."""
        self._timed(np.array(self._ik_path(waypoints, holding, use_waist)), phase)

    def _ik_path(
        self, waypoints: list[_Waypoint], holding: bool, use_waist: bool | None = None
    ) -> list[np.ndarray]:
        """Joint path (from ``self.q``) moving the working hand through ``waypoints``."""
        cfg, p = self.cfg, self.p
        stance = stance_matrix(*self.base)
        stance_inv = np.linalg.inv(stance)
        start = stance @ p.kinematics.grasp_pose(self.q, self.side)
        rot_start = start[:3, :3]
        rot_goal = p._hand_rotation(self.base[3])
        qs = [self.q.copy()]
        prev = start[:3, 3]
        t0 = time.perf_counter()
        for w_i, wp in enumerate(waypoints):
            seg_len = float(np.linalg.norm(wp.position - prev))
            n = max(1, int(math.ceil(seg_len / cfg.cartesian_step_m)))
            for i in range(1, n + 1):
                f = i / n
                # orientation: from the start's to the working one over the first waypoint
                rot = _slerp(rot_start, rot_goal, f) if w_i == 0 else rot_goal
                q_next = self._solve_sample(prev + (wp.position - prev) * f, rot, qs[-1],
                                            stance_inv, wp, use_waist)  # fmt: skip
                if float(np.max(np.abs(q_next - qs[-1]))) > cfg.max_joint_step_rad:
                    # a jump: approach this sample in smaller steps from the previous one
                    f0 = (i - 1) / n
                    q_sub = qs[-1]
                    for k in range(1, 5):
                        fk = f0 + (f - f0) * k / 4
                        rk = _slerp(rot_start, rot_goal, fk) if w_i == 0 else rot_goal
                        q_sub = self._solve_sample(prev + (wp.position - prev) * fk, rk, q_sub,
                                                   stance_inv, wp, use_waist)  # fmt: skip
                        qs.append(q_sub)
                    continue
                qs.append(q_next)
            prev = wp.position
            self.path.append(wp.position.copy())
            self.targets.append(
                BodyTarget(wp.phase, None, self.side, self.hand_pose(wp.position),
                           self.grip(holding), qs[-1].copy(), wp.trace_index)
            )  # fmt: skip
        self.ik_s += time.perf_counter() - t0
        return qs

    def _solve_sample(
        self, pos: np.ndarray, rot: np.ndarray, seed: np.ndarray, stance_inv: np.ndarray,
        wp: _Waypoint, use_waist: bool | None = None,
    ) -> np.ndarray:  # fmt: skip
        target = np.eye(4)
        target[:3, :3] = rot
        target[:3, 3] = pos
        waist = self.cfg.use_waist if use_waist is None else use_waist
        res = self.p.ik.solve(self.side, stance_inv @ target, seed, q_ref=seed, use_waist=waist)
        self._check_ik(res, wp, pos)
        return res.q

    def _check_ik(self, res, wp: _Waypoint, pos: np.ndarray) -> None:
        p, cfg = self.p, self.cfg
        k = wp.trace_index if wp.trace_index >= 0 else None
        n = len(self.pts)
        where = (
            (f'waypoint {k} of {n}' if k is not None else 'the hand path')
            + f' ({wp.phase}, {self.side} hand at {fmt_point(pos)} m, stance '
            f'({self.base[0]:.2f}, {self.base[1]:.2f}, {math.degrees(self.base[3]):.0f}°))'
        )
        if not res.converged:
            if res.joints_at_limit:
                j = res.joints_at_limit[0]
                raise PlanningError(
                    ErrorCode.JOINT_LIMIT, k,
                    f'{where}: reaching it needs {p.joint_names[j]} beyond its limits '
                    f'[{p.lower_rad[j]:.2f}, {p.upper_rad[j]:.2f}] rad '
                    f'(IK stopped {res.position_error_m * 1e3:.0f} mm away)',
                )  # fmt: skip
            raise PlanningError(
                ErrorCode.UNREACHABLE, k,
                f'{where} is out of reach: no IK solution within '
                f'{cfg.ik_position_tolerance_m * 1e3:.0f} mm (closest '
                f'{res.position_error_m * 1e3:.0f} mm, palm tilt {res.tilt_error_rad:.2f} rad)',
            )  # fmt: skip
        hit = p.collision.first_collision(res.q)
        if hit is not None:
            raise PlanningError(
                ErrorCode.COLLISION, k,
                f'{where}: {hit.sphere} would come within {hit.distance_m * 100:.1f} cm of the '
                f'{hit.box} (margin {p.collision.margin_m * 100:.0f} cm)',
            )  # fmt: skip

    def _timed(self, qs: np.ndarray, phase: str, joint_space: bool = False) -> None:
        keep = [0]
        for i in range(1, len(qs)):
            step = np.abs(qs[i] - qs[keep[-1]])
            if not joint_space and float(np.max(step)) > self.cfg.max_joint_step_rad:
                j = int(np.argmax(step))
                raise PlanningError(
                    ErrorCode.UNREACHABLE, None,
                    f'{phase}: {self.p.joint_names[j]} would turn {step[j]:.2f} rad between '
                    f'two hand path samples (an IK branch change on the path)',
                )  # fmt: skip
            if float(np.max(step)) > 1e-6:
                keep.append(i)
        if len(keep) < 2:
            self.q = qs[-1].copy()
            return
        t0 = time.perf_counter()
        try:
            timed = self.p._timer.parameterize(qs[keep])
        except (TimingError, ValueError) as exc:
            raise PlanningError(
                ErrorCode.UNREACHABLE, None, f'no feasible timing for the {phase} motion: {exc}'
            ) from exc
        t, pos, vel, _ = timed.sample(self.speed, self.cfg.sample_period_s)
        self.timing_s += time.perf_counter() - t0
        self.segments.append(ArmMotion(self.p.joint_names, t, pos, vel, self.side, phase))
        self.q = pos[-1].copy()
        self.arms_active = True

    def rest(self) -> None:
        """Back to the standing pose: hands pulled in close to the body, then joint space."""
        stance = stance_matrix(*self.base)
        forward = []
        for side in SIDES:
            self.side, working = side, self.side
            if to_pelvis(self.hand_position(), stance)[0] > 0.12:
                forward.append(side)
            self.side = working
        if forward:
            self._hands_to(forward, lambda side, here: [
                np.array([0.08, SIGN[side] * max(abs(here[1]), 0.2), here[2]])
            ], 'rest', False)  # fmt: skip
        qs = np.array([self.q, self.p.rest_q])
        if float(np.max(np.abs(qs[1] - qs[0]))) > 1e-3:
            # Into the locomotion controller's own standing pose: only actual contact with the
            # body boxes counts here (the boxes are generous around the thighs).
            for f in np.linspace(0.0, 1.0, 11)[1:-1]:
                c = self.p.collision.closest(qs[0] + f * (qs[1] - qs[0]))
                if c.distance_m < 0.0:
                    raise PlanningError(
                        ErrorCode.COLLISION, None,
                        f'returning the arms to the standing pose: {c.sphere} would touch the '
                        f'{c.box} ({c.distance_m * 100:.1f} cm)',
                    )  # fmt: skip
            dense = qs[0] + np.linspace(0.0, 1.0, 12)[:, None] * (qs[1] - qs[0])
            self._timed(dense, 'rest', joint_space=True)
            self.targets.append(
                BodyTarget('rest', None, self.side, None, 0.0, self.p.rest_q.copy())
            )

    def release(self) -> None:
        self.segments.append(ArmRelease())
        self.arms_active = False

    def hand(self, close: bool) -> None:
        cfg = self.cfg
        self.segments.append(
            HandSegment(close, self.side, cfg.grip_closure if close else 0.0,
                        release_closure=cfg.release_closure)
        )  # fmt: skip
        here = self.p.grasp_position(np.concatenate([self.base, self.q]), self.side)
        self.targets.append(
            BodyTarget('grasp' if close else 'release', None, self.side, self.hand_pose(here),
                       cfg.grip_closure if close else 0.0, self.q.copy())
        )  # fmt: skip

    def hand_position(self) -> np.ndarray:
        return self.p.grasp_position(np.concatenate([self.base, self.q]), self.side)

    def safe_height(self, *zs: float) -> float:
        return max(zs) + self.cfg.approach_height_m

    # --- tasks ---------------------------------------------------------------------------
    def ensure_reach(self, point: np.ndarray, k: int, holding: bool, why: str) -> bool:
        """Walk (plan) to a stance reaching ``point`` if needed; True when a walk was added."""
        if self.p.in_reach(point, self.base, self.side):
            return False
        goal = base_goal_for(point, self.side, self.base[[0, 1, 3]], self.cfg.reach)
        if np.hypot(goal[0] - self.base[0], goal[1] - self.base[1]) < self.cfg.base_tolerance_m \
                and abs(wrap_angle(goal[2] - self.base[3])) < 0.05:  # fmt: skip
            return False
        self.walk_to(goal, f'to reach waypoint {k} ({why})', holding)
        return True

    def pick_and_place(self, side: str) -> None:
        self.side = side
        self.notes.append(f'{side} hand')
        off = self.grasp_object(side, self.pts)
        self.place(side, measured_offset=False, offset=off)

    def pick_and_hold(self, side: str) -> None:
        """Pick the object at the trace start, lift it to the carry pose, look again here."""
        pts = self.pts
        self.side = side
        self.notes.append(f'{side} hand; the destination is not in view: pick the object up '
                          'first, then look for it')  # fmt: skip
        off = self.grasp_object(side, np.vstack([pts[0], pts[0]]))
        self.lift_to_carry(side, pts[0][2] + off[2])
        # Stay, holding the object, and look again: the executor looks for the destination.
        goal = (float(self.base[0]), float(self.base[1]), float(self.base[3]))
        self.segments.append(
            WalkSegment(goal, self.cfg.odom_frame, 0.5, look_again=not self.look_again_set,
                        holding=side)
        )  # fmt: skip
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
        stance = self.p.pick_stance(stance_pts, self.base, side)
        if stance is not None:
            self.walk_to((float(stance[0]), float(stance[1]), float(stance[3])),
                         'to reach waypoint 0 (the object)', False)  # fmt: skip
        off = self.p._grasp_offset(side, self.base[3])
        grasp = pts[0] + off
        here = self.hand_position()
        top = self.safe_height(grasp[2], here[2])
        rise = here.copy()
        rise[2] = max(here[2], top)
        self.arm_path(
            [_Waypoint(rise, 'reach', -1), _Waypoint(np.array([*grasp[:2], top]), 'reach', 0),
             _Waypoint(grasp, 'reach', 0)], 'reach', False,
        )  # fmt: skip
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
            [_Waypoint(np.array([*here[:2], lift_z]), 'carry', 0),
             _Waypoint(carry, 'carry', -1)], 'carry', True,
        )  # fmt: skip

    def place(self, side: str, measured_offset: bool, offset: Optional[np.ndarray] = None) -> None:
        """Carry the held object along the trace to its end, set it down, retreat, rest."""
        cfg, pts = self.cfg, self.pts
        self.side = side
        if measured_offset:
            # Where the perceived object is relative to the hand now (kept while carrying).
            meas = self.hand_position() - pts[0]
            nominal = self.p._grasp_offset(side, self.base[3])
            off = meas if np.linalg.norm(meas - nominal) < 0.08 else nominal
            if off is nominal:
                self.notes.append(
                    f'the perceived object is {np.linalg.norm(meas - nominal) * 100:.0f} cm '
                    'from the hand: using the nominal grasp offset'
                )
        else:
            off = offset if offset is not None else self.p._grasp_offset(side, self.base[3])
        end = pts[-1]
        if not self.p.in_reach(end + off, self.base, side):
            # Lift, bring the object close to the body, walk to the destination.
            self.lift_to_carry(side, pts[0][2] + off[2])
            walked = self.ensure_reach(end + off, len(pts) - 1, True, 'the destination')
            if walked:
                # From the new stance: the hand keeps its pose relative to the body; the
                # object's offset turns with the body.
                off = self.p._grasp_offset(side, self.base[3])
        # Carry along the trace points that lie ahead of the hand, set down at the end: after
        # a walk (or a re-perception while holding) only the part of the trace near the
        # destination is left to do.
        here = self.hand_position()
        start_k = self.remaining_from(off, skip_rise=measured_offset)
        travel = max(float(np.max(pts[start_k:, 2])) + off[2], here[2])
        wps: list[_Waypoint] = []
        if np.linalg.norm((pts[start_k] + off)[:2] - here[:2]) > 0.05 and \
                pts[start_k][2] + off[2] < travel - 0.01:  # fmt: skip
            # Go over, not through: rise before moving across.
            wps.append(_Waypoint(np.array([*here[:2], travel]), 'carry', start_k))
        for k in range(start_k, len(pts) - 1):
            wps.append(_Waypoint(pts[k] + off, 'carry', k))
        down = pts[-1] + off + np.array([0.0, 0.0, cfg.place_clearance_m])
        wps.append(_Waypoint(down, 'carry', len(pts) - 1))
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
            while k < n - 1 and np.linalg.norm(pts[k][:2] - pts[0][:2]) < 0.02 and \
                    pts[k][2] + off[2] <= here[2] + 0.01:  # fmt: skip
                k += 1
        return k

    def retreat(self) -> None:
        cfg = self.cfg
        here = self.hand_position()
        up = here + np.array([0.0, 0.0, cfg.approach_height_m])
        stance = stance_matrix(*self.base)
        near = stance[:3, :3] @ np.array([cfg.carry_pose[0], SIGN[self.side] * cfg.carry_pose[1],
                                          0.0]) + stance[:3, 3]  # fmt: skip
        near[2] = up[2]
        self.arm_path(
            [_Waypoint(up, 'retreat', -1), _Waypoint(near, 'retreat', -1)], 'retreat', False
        )
        self.rest()
        self.release()

    def follow(self) -> None:
        pts = self.pts
        self.side = choose_hand(pts[0], pts[-1], self.p.shoulders(self.base, self.q))
        self.notes.append(f'{self.side} hand follows the trace')
        self.ensure_reach(pts[0], 0, False, 'the trace start')
        here = self.hand_position()
        top = self.safe_height(pts[0][2], here[2])
        wps = [_Waypoint(np.array([*here[:2], max(here[2], top)]), 'reach', -1),
               _Waypoint(np.array([*pts[0][:2], top]), 'reach', 0)]  # fmt: skip
        wps += [_Waypoint(p.copy(), 'carry', k) for k, p in enumerate(pts)]
        self.arm_path(wps, 'carry', False)
        self.retreat()


def _slerp(r0: np.ndarray, r1: np.ndarray, f: float) -> np.ndarray:
    """Rotation a fraction ``f`` of the way from ``r0`` to ``r1``."""
    return r0 @ pin.exp3(f * pin.log3(r0.T @ r1))


__all__ = [
    'ARM',
    'MODES',
    'ArmMotion',
    'ArmRelease',
    'BodyTarget',
    'G1Plan',
    'G1Planner',
    'G1PlannerConfig',
    'HandSegment',
    'WalkSegment',
    'pack_state',
    'unpack_state',
]
