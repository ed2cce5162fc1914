"""What the UR5 planner returns: a :class:`Plan` of timed motions and gripper actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Union

import numpy as np

from ..execution import SegmentKind
from ..timing import TimedPath
from .tool_path import ToolPath


@dataclass(frozen=True)
class MotionSegment:
    """A timed joint trajectory, at rest at both ends.

    Attributes:
        joint_names: order of the columns.
        times_s: (K,) sample times from the segment start (s), uniform except the last.
        positions_rad: (K, 6) joint positions.
        velocities_rad_s: (K, 6) joint velocities (zero at both ends).
        accelerations_rad_s2: (K, 6) joint accelerations.
        path_range: first and last tool path sample this segment moves through.
        entered_moving: the segment starts with a blend from a moving state
            (:meth:`Ur5Planner.blend`): it does not start at rest and cannot be re-timed.
    """

    kind: ClassVar[SegmentKind] = SegmentKind.MOTION

    joint_names: tuple[str, ...]
    times_s: np.ndarray
    positions_rad: np.ndarray
    velocities_rad_s: np.ndarray
    accelerations_rad_s2: np.ndarray
    path_range: tuple[int, int]
    timed: TimedPath = field(repr=False, compare=False)
    entered_moving: bool = False

    @property
    def duration_s(self) -> float:
        """Duration of the segment (s)."""
        return float(self.times_s[-1])


@dataclass(frozen=True)
class GripperSegment:
    """Stop and actuate the gripper: ``close=True`` grasps, ``False`` releases."""

    kind: ClassVar[SegmentKind] = SegmentKind.GRIPPER

    close: bool


Segment = Union[MotionSegment, GripperSegment]


@dataclass(frozen=True)
class Plan:
    """A validated, timed plan for one trace.

    Attributes:
        segments: motions and gripper actions, in execution order.
        tool_path: the dense TCP path (for markers and progress).
        joint_path_rad: (M, 6) IK solution at every tool path sample.
        trace_base: (N, 3) the trace in the base frame.
        joint_names: joint order.
        mode: ``pick_place``, ``push`` or ``follow``.
        speed_scale: fraction of the joint limits the timing uses.
        base_frame: frame of ``tool_path`` and ``trace_base``.
        timings_ms: planning time per stage (``validate``, ``ik``, ``collision``, ``timing``,
            ``total``).
    """

    segments: tuple[Segment, ...]
    tool_path: ToolPath
    joint_path_rad: np.ndarray
    trace_base: np.ndarray
    joint_names: tuple[str, ...]
    mode: str
    speed_scale: float
    base_frame: str
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def motions(self) -> list[MotionSegment]:
        """The motion segments, in order."""
        return [s for s in self.segments if isinstance(s, MotionSegment)]

    @property
    def duration_s(self) -> float:
        """Total motion time (s), excluding the time the gripper takes to act."""
        return float(sum(m.duration_s for m in self.motions))

    @property
    def events(self) -> list[tuple[bool, float]]:
        """Gripper actions as ``(close, time_s)`` on the motion-only timeline."""
        out: list[tuple[bool, float]] = []
        t = 0.0
        for seg in self.segments:
            if isinstance(seg, MotionSegment):
                t += seg.duration_s
            else:
                out.append((seg.close, t))
        return out

    @property
    def final_positions_rad(self) -> np.ndarray:
        """(6,) joint positions at the end of the plan."""
        return self.joint_path_rad[-1].copy()
