"""The execution core's contracts, and the typed signals between its parts.

What a goal, a trace, a plan, a robot backend and a scene watcher are; phases, interrupts,
scene events and outcomes.

ROS-free apart from the generated constants: the runner (:mod:`trace_executor.execution`)
and every robot's planner and backend are written against these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import enum
from typing import Any, Protocol, runtime_checkable

import numpy as np

from robotracer_msgs.action import ExecuteInstruction
from trace_executor.errors import ErrorCode, PlanningError
from trace_executor.trace_check import MODES

_FEEDBACK = ExecuteInstruction.Feedback


class Phase(enum.IntEnum):
    """The feedback phases: ``ExecuteInstruction.Feedback.PHASE_*`` (the generated constants)."""

    PERCEIVING = _FEEDBACK.PHASE_PERCEIVING
    PLANNING = _FEEDBACK.PHASE_PLANNING
    EXECUTING = _FEEDBACK.PHASE_EXECUTING
    REPLANNING = _FEEDBACK.PHASE_REPLANNING  # planning again after a scene change
    WALKING = _FEEDBACK.PHASE_WALKING


class SegmentKind(enum.Enum):
    """What a plan segment does (each planner's segment classes set ``kind``)."""

    MOTION = 'motion'  # a timed joint trajectory
    GRIPPER = 'gripper'  # close or open a gripper / hand
    WALK = 'walk'  # walk the base to a new stance (G1)
    ARM_RELEASE = 'arm_release'  # hand the arms back to the robot's own controller (G1)


class Segment(Protocol):
    """One step of a plan."""

    kind: SegmentKind
    duration_s: float


class GripperStep(Segment, Protocol):
    """A :attr:`SegmentKind.GRIPPER` segment."""

    close: bool


class WalkStep(Segment, Protocol):
    """A :attr:`SegmentKind.WALK` segment: ``look_again`` re-perceives after arriving."""

    look_again: bool


class Plan(Protocol):
    """What the runner needs from a planner's plan."""

    mode: str
    segments: tuple[Segment, ...]
    duration_s: float
    tool_path: Any  # has ``positions``: (M, 3) tool / hand path in the base frame


class InterruptKind(enum.Enum):
    """Why a running motion must stop."""

    CANCELED = 'canceled'  # the goal was canceled or preempted
    SCENE_CHANGED = 'scene changed'  # the scene watcher saw a change that matters


@dataclass(frozen=True)
class Interrupt:
    """What ``interrupt()`` hands a backend: the kind, and details for people.

    ``keep_moving``: the runner will send the next motion while this one still runs; a backend
    that can (see :class:`MotionStatus`) returns ``HANDED_OVER`` at once without stopping.
    Backends that cannot simply stop, as for any interrupt.
    """

    kind: InterruptKind
    detail: str = ''
    keep_moving: bool = False

    def __str__(self) -> str:
        return self.kind.value + (f': {self.detail}' if self.detail else '')


CANCELED = Interrupt(InterruptKind.CANCELED)


@dataclass(frozen=True)
class SceneEvent:
    """A scene change a watcher reports: why, and where something appeared (base frame)."""

    reason: str
    obstacles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))


class Continuation(enum.Enum):
    """Why :meth:`GoalRunner._execute` hands back without an outcome."""

    REPLAN = 'replan'  # the scene changed (or a grasp closed on nothing): perceive, replan
    LOOK_AGAIN = 'look again'  # a walk ended at a new stance: perceive from there (not a replan)


@dataclass
class TraceInput:
    """A trace to execute: object-centre points and where they are expressed.

    Attributes:
        points: (N, 3) metres in ``frame_id``.
        frame_id: frame of the points.
        transform: (4, 4) base_T_frame when ``frame_id`` is not the base frame, else None.
        message: the original trace message (echoed in feedback and result), if any.
    """

    points: np.ndarray
    frame_id: str
    transform: np.ndarray | None = None
    message: Any = None


@dataclass
class GoalSpec:
    """What the user asked for (validated by :func:`validate_goal`)."""

    instruction: str = ''
    trace: TraceInput | None = None
    dry_run: bool = False
    speed_scale: float = 0.0
    replanning: bool = True
    mode: str = ''


@dataclass
class Outcome:
    """How a goal ended."""

    success: bool
    code: ErrorCode
    message: str
    trace: TraceInput | None = None
    replans: int = 0
    plan: Plan | None = None
    timings: dict[str, float] = field(default_factory=dict)


class MotionStatus(enum.Enum):
    """How a timed motion ended."""

    DONE = 'done'
    STOPPED = 'stopped'
    FAILED = 'failed'
    #: interrupted with ``keep_moving``: the arm still follows the motion; the runner sends
    #: the next one (which replaces it) or calls :meth:`RobotBackend.stop`
    HANDED_OVER = 'handed over'


@dataclass
class MotionResult:
    """Result of :meth:`RobotBackend.execute`."""

    status: MotionStatus
    message: str = ''
    reason: str = ''


class BackendError(RuntimeError):
    """The robot backend cannot run (no joint state, driver not connected, ...)."""


class RobotBackend(Protocol):
    """What the goal runner needs from a robot."""

    name: str

    def joint_positions(self) -> np.ndarray:
        """Current joint positions (rad), planner order. Raises BackendError when stale."""

    def execute(
        self,
        segment: Any,
        interrupt: Callable[[], Interrupt | None],
        progress: Callable[[float], None],
    ) -> MotionResult:
        """Run a timed motion; stop smoothly as soon as ``interrupt()`` returns an Interrupt."""

    def gripper(self, close: bool, segment: GripperStep | None = None) -> tuple[bool, str]:
        """Close/open the gripper (a hand that the segment names, if any).

        Returns:
            (object grasped / released, message).
        """

    def stop(self) -> None:
        """Bring the robot to rest now (used when a goal crashed or the node shuts down)."""

    def halt(self, reason: str) -> None:
        """Stop for good (the executor shuts down): stop now and refuse every later motion."""


class Halting:
    """:meth:`RobotBackend.halt` for backends whose :meth:`stop` stops the robot."""

    _halted = ''

    def halt(self, reason: str) -> None:
        """Stop now; the running motion and every later one end STOPPED with ``reason``."""
        self._halted = reason or 'halted'
        self.stop()

    def halted(self) -> MotionResult | None:
        """The result a motion returns after :meth:`halt` (None until then)."""
        return (
            MotionResult(MotionStatus.STOPPED, self._halted, self._halted)
            if self._halted
            else None
        )


@runtime_checkable
class MeasuringBackend(Protocol):
    """A backend that reports joint velocities too (needed to blend into a new plan)."""

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Joint positions (rad) and velocities (rad/s), planner order."""


@runtime_checkable
class BlendingPlanner(Protocol):
    """A planner that can enter a new plan from a moving state (replanning without stopping)."""

    def blend(self, plan: Any, q: np.ndarray, v: np.ndarray, a: np.ndarray) -> Any:
        """``plan`` entered from positions ``q``, velocities ``v``, accelerations ``a``."""


class SceneWatcher(Protocol):
    """Watches the scene while a plan runs."""

    def arm(self, plan: Plan, holding: bool) -> None:
        """Take a reference frame now and watch the regions that matter for ``plan``."""

    def poll(self) -> SceneEvent | None:
        """What changed since :meth:`arm` (reason and new obstacles), else None."""

    def disarm(self) -> None:
        """Stop watching."""


Feedback = Callable[[Phase, float, int, str, 'TraceInput | None'], None]


PUSH_VERBS = ('push', 'slide', 'nudge', 'shove', 'drag')


def _mode_from_instruction(instruction: str) -> str:
    """``push`` for instructions that start with a pushing verb ("push the cube left"), else ''."""
    words = instruction.strip().lower().split()
    return 'push' if words and words[0] in PUSH_VERBS else ''


def validate_goal(goal: GoalSpec, default_mode: str, default_speed: float) -> GoalSpec:
    """Fill defaults and reject bad goals before anything happens.

    An empty mode becomes ``push`` for an instruction starting with a pushing verb, else
    ``default_mode``.

    Raises:
        PlanningError: BAD_GOAL naming the field.
    """
    mode = goal.mode or _mode_from_instruction(goal.instruction) or default_mode
    if mode not in MODES:
        raise PlanningError(
            ErrorCode.BAD_GOAL, None, f'unknown mode {mode!r}; expected one of {", ".join(MODES)}'
        )
    speed = goal.speed_scale if goal.speed_scale else default_speed
    if not (0.0 < speed <= 1.0) or not np.isfinite(speed):
        raise PlanningError(
            ErrorCode.BAD_GOAL, None, f'speed_scale must be in (0, 1], got {goal.speed_scale}'
        )
    if goal.trace is None and not goal.instruction.strip():
        raise PlanningError(ErrorCode.BAD_GOAL, None, 'instruction is empty')
    return GoalSpec(
        goal.instruction.strip(), goal.trace, goal.dry_run, speed, goal.replanning, mode
    )
