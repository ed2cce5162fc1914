"""What the G1 planner produces: the robot state vector, plan segments and the plan.

Segments, run one after the other by the executor: ``WALK`` (a base goal in odom; the arms hold
still), ``MOTION`` (an upper-body trajectory at the arm_sdk rate), ``GRIPPER`` (one Dex3 hand)
and ``ARM_RELEASE`` (the arm_sdk weight ramped out: the locomotion controller takes the arms).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

import numpy as np

from ..execution import SegmentKind
from .kinematics import G1_UPPER_BODY_JOINTS

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
        return [s for s in self.segments if s.kind in (SegmentKind.MOTION, SegmentKind.WALK)]

    @property
    def duration_s(self) -> float:
        """Nominal total duration of the motions (s)."""
        return float(sum(s.duration_s for s in self.motions))

    @property
    def walks(self) -> list[WalkSegment]:
        """The walks, in order."""
        return [s for s in self.segments if isinstance(s, WalkSegment)]
