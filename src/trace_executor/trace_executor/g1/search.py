"""Looking for what the G1 cannot see: a bounded scan with the waist, then the base.

Design notes: docs/design-notes.md (trace_executor.g1.search).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import enum
import math
import re
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from trace_executor.errors import ErrorCode, PlanningError
from trace_executor.execution import (
    CANCELED,
    GoalRunner,
    GoalSpec,
    Interrupt,
    MotionResult,
    MotionStatus,
    Outcome,
    PerceptionError,
    Phase,
    TraceInput,
)
from trace_executor.g1.camera import at_image_border, continue_trace
from trace_executor.g1.plan_types import ArmRelease, WalkSegment
from trace_executor.g1.stance import wrap_angle

if TYPE_CHECKING:
    from trace_executor.g1.planner import G1Planner

#: GetTrace error codes this module reads (robotracer_msgs/srv/GetTrace).
BAD_ANSWER = 4
NOT_VISIBLE = 8

# ------------------------------------------------------------------------------------ sight


class Sight(enum.Enum):
    """What one look at the scene gave."""

    BOTH = 'the object and its destination are in view'
    OBJECT_ONLY = 'the object is in view, its destination is not'
    NOTHING = 'the object is not in view'


_BEHIND = re.compile(r'\bpoint (?P<i>\d+): d=(?P<d>[-+0-9.eE]+) m is outside')


def failure_sight(error_code: int, error_msg: str) -> Sight | None:
    """What a failed trace request says about visibility (None: it says nothing about it).

    The perception node reports an answer saying the object cannot be seen as
    ``ERROR_NOT_VISIBLE``, and a trace point behind the camera as ``ERROR_BAD_ANSWER`` with
    ``point k: d=-0.02 m is outside (0, 100] m``.

    Args:
        error_code: ``GetTrace`` ``error_code``.
        error_msg: its ``error_msg``.

    Returns:
        :attr:`Sight.NOTHING` for ``ERROR_NOT_VISIBLE`` (or the first point, the object,
        behind the camera); :attr:`Sight.OBJECT_ONLY` when a later point (the destination) is
        behind the camera — the model saw the object, the trace leaves the view; None for every
        other failure (model down, malformed answer, ...), which looking around would not fix.
    """
    if int(error_code) == NOT_VISIBLE:
        return Sight.NOTHING
    if int(error_code) != BAD_ANSWER:
        return None
    behind = _BEHIND.search(error_msg or '')
    if behind is not None:
        try:
            depth = float(behind.group('d'))
        except ValueError:
            return None
        if depth <= 0.0:
            return Sight.NOTHING if int(behind.group('i')) <= 1 else Sight.OBJECT_ONLY
    return None


def trace_sight(
    pixel_u: Sequence[float], pixel_v: Sequence[float], width: int, height: int
) -> Sight:
    """What a usable trace says about visibility: is its end (the destination) in the image?

    A model clips what it cannot see to the image border; a trace that ends there has its
    destination out of view (its 3D end is not where the destination is).

    Args:
        pixel_u: per-point image column (pixels).
        pixel_v: per-point image row.
        width: image width (0: unknown).
        height: image height.

    Returns:
        :attr:`Sight.OBJECT_ONLY` when the last point lies on the border, else
        :attr:`Sight.BOTH` (also when the pixels are unknown).
    """
    n = len(pixel_u)
    if n == 0 or len(pixel_v) != n or width <= 0 or height <= 0:
        return Sight.BOTH
    if at_image_border(pixel_u[-1], pixel_v[-1], width, height):
        return Sight.OBJECT_ONLY
    return Sight.BOTH


_CARRY_VERB = (
    r'(?:put|place|move|set|drop|stack|bring|carry|transfer|take|give|hand|push|slide|nudge'
    r'|shift|drag|pick\s+up|grab|lift)'
)
_RELATION = (
    r'(?:on\s+top\s+of|onto|on|into|inside(?:\s+of)?|in|next\s+to|beside|near|close\s+to|by'
    r'|to\s+the\s+(?:left|right)\s+(?:side\s+)?of|(?:left|right)\s+of|in\s+front\s+of|behind'
    r'|to|toward|towards|at|over|under|from|and)'
)
_DIRECTION = r'(?:left|right|forwards?|backwards?|up|down|away|closer|back)'
_OBJECT = re.compile(
    rf'^(?:please\s+)?{_CARRY_VERB}\s+(?P<x>.+?)'
    rf'(?:\s+(?:{_RELATION}\b|{_DIRECTION}\b|\d).*)?[.!]?$',
    re.IGNORECASE,
)


def object_phrase(instruction: str) -> str | None:
    """The phrase naming the object an instruction moves, e.g. ``the red cup``.

    Best effort for the usual "verb object relation destination" sentences; used to say what
    the robot looks for and to ask the model about the object alone.

    Args:
        instruction: e.g. ``put the red cup on the plate``.

    Returns:
        ``the red cup``; None when the sentence does not have that shape.
    """
    text = ' '.join((instruction or '').split())
    m = _OBJECT.match(text)
    if m is None:
        return None
    x = m.group('x').strip(' ,.')
    if not x or len(x) > 60:
        return None
    words = x.split()
    if words[0].lower() not in ('the', 'a', 'an', 'this', 'that', 'my', 'your'):
        x = 'the ' + x
    return x


# ----------------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class View:
    """Where the head camera looks, relative to where the search started.

    Attributes:
        waist_yaw_rad: waist yaw offset from the waist at the start (+ left).
        base_yaw_rad: base heading offset from the start heading (+ left).
    """

    waist_yaw_rad: float = 0.0
    base_yaw_rad: float = 0.0

    def describe(self) -> str:
        """E.g. ``the waist turned left 60°``, ``the body turned left 120°``, ``the start``."""
        parts = []
        if abs(self.base_yaw_rad) > 1e-6:
            parts.append(f'the body turned {_turn_words(self.base_yaw_rad)}')
        if abs(self.waist_yaw_rad) > 1e-6:
            parts.append(f'the waist turned {_turn_words(self.waist_yaw_rad)}')
        return ' and '.join(parts) or 'the start'


def _turn_words(rad: float) -> str:
    deg = math.degrees(rad)
    return f'{"left" if deg > 0 else "right"} {abs(deg):.0f}°'


@dataclass(frozen=True)
class SearchConfig:
    """The scan.

    Attributes:
        waist_yaws_deg: waist yaws to look with first, from the start heading (+ left).
        base_yaws_deg: then base headings to turn to (from the start, + left, turning the same
            way: each step under 180°), waist straight.
        time_budget_s: the search gives up after this long (then turns back).
        speed_scale: speed of the waist turns (fraction of the joint limits).
        settle_s: after a waist turn, wait at most this long for the waist to get there.
        settle_tolerance_rad: ... within this angle.
    """

    waist_yaws_deg: tuple[float, ...] = (60.0, -60.0)
    base_yaws_deg: tuple[float, ...] = (120.0, 180.0, 240.0)
    time_budget_s: float = 120.0
    speed_scale: float = 0.6
    settle_s: float = 1.5
    settle_tolerance_rad: float = 0.05

    def __post_init__(self) -> None:
        """Reject a scan that cannot be run.

        Raises:
            ValueError: naming the field.
        """
        for w in self.waist_yaws_deg:
            if not (math.isfinite(w) and 0.0 < abs(w) <= 150.0):
                raise ValueError(f'waist_yaws_deg must be in [-150, 150] and not 0, got {w}')
        prev = 0.0
        for b in self.base_yaws_deg:
            if not (math.isfinite(b) and 0.0 < abs(b - prev) < 180.0 and abs(b) < 360.0):
                raise ValueError(
                    f'base_yaws_deg must step by less than 180° (not 0) within ±360°, got '
                    f'{list(self.base_yaws_deg)}'
                )
            prev = b
        if prev and not abs(abs(prev) - 360.0) < 180.0:
            raise ValueError(
                f'base_yaws_deg must end within 180° of a full turn, got {prev}° (the return '
                'to the start heading continues the turn)'
            )
        if not (math.isfinite(self.time_budget_s) and self.time_budget_s > 0):
            raise ValueError(f'time_budget_s must be > 0, got {self.time_budget_s}')
        if not 0.0 < self.speed_scale <= 1.0:
            raise ValueError(f'speed_scale must be in (0, 1], got {self.speed_scale}')


class LookAround:
    """The scan: the views to try in order, what each move is, when to give up.

    Usage: ``view = policy.next_view()`` until it returns None (everything tried or the time
    budget spent), moving the robot to each view and asking the model there; then move to
    :attr:`home` (the start view) and fail with :meth:`summary`.

    Args:
        config: the views and the time budget.
        clock: monotonic seconds (injected for tests).
    """

    home = View()

    def __init__(
        self, config: SearchConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or SearchConfig()
        self._clock = clock
        self._t0 = clock()
        cfg = self.config
        self.views: list[View] = [View(waist_yaw_rad=math.radians(w)) for w in cfg.waist_yaws_deg]
        self.views += [View(base_yaw_rad=math.radians(b)) for b in cfg.base_yaws_deg]
        self.tried: list[tuple[View, Sight]] = []
        self.current = View()
        self._next = 0
        self.out_of_time = False

    @property
    def elapsed_s(self) -> float:
        """Seconds since the search started."""
        return self._clock() - self._t0

    @property
    def progress(self) -> float:
        """Fraction of the views tried (0..1)."""
        return len(self.tried) / max(1, len(self.views))

    def next_view(self) -> View | None:
        """The next view to try, or None: give up (all tried, or out of time)."""
        if self._next >= len(self.views):
            return None
        if self.elapsed_s > self.config.time_budget_s:
            self.out_of_time = True
            return None
        view = self.views[self._next]
        self._next += 1
        return view

    def record(self, view: View, sight: Sight) -> None:
        """What the model said at ``view`` (the robot is there now)."""
        self.tried.append((view, sight))
        self.current = view

    def moved_to(self, view: View) -> None:
        """The robot is at ``view`` now (without a look: e.g. back home)."""
        self.current = view

    def move_words(self, view: View) -> str:
        """What moving from the current view to ``view`` does, e.g. ``turning left 60°``."""
        if view == self.home and self.current != self.home:
            return 'turning back to where it started'
        d_base = wrap_angle(view.base_yaw_rad - self.current.base_yaw_rad)
        if abs(d_base) > 1e-6:
            return f'turning the body {_turn_words(d_base)}'
        d_waist = view.waist_yaw_rad - self.current.waist_yaw_rad
        if abs(d_waist) > 1e-6:
            return f'turning the waist {_turn_words(d_waist)}'
        return 'looking again'

    def summary(self) -> str:
        """What was tried, for the failure message."""
        waist = [v for v, _ in self.tried if v.waist_yaw_rad and not v.base_yaw_rad]
        base = [v for v, _ in self.tried if v.base_yaw_rad]
        parts = ['asked the model from where it stood']
        if waist:
            parts.append(
                'with the waist turned ' + _join([_turn_words(v.waist_yaw_rad) for v in waist])
            )
        if base:
            parts.append(
                'with the body turned left to '
                + _join([f'{math.degrees(v.base_yaw_rad):.0f}°' for v in base])
            )
        text = f'{len(self.tried) + 1} views ({", ".join(parts)})'
        text += f' in {self.elapsed_s:.0f} s'
        if self.out_of_time:
            text += f' (time budget {self.config.time_budget_s:.0f} s spent)'
        return text


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ', '.join(items[:-1]) + ' and ' + items[-1]


# ----------------------------------------------------------------------------------- runner


@dataclass
class Seen:
    """One look: what the model gave for the instruction from where the robot is now.

    Attributes:
        sight: what is in view.
        trace: the trace (when the model gave a usable one), in any frame with its transform
            to odom (:class:`~trace_executor.execution.TraceInput`).
        note: what the perception node said (for messages), e.g. its failure.
    """

    sight: Sight
    trace: TraceInput | None = None
    note: str = ''


class SearchAborted(PerceptionError):
    """The search could not go on: canceled, or a look motion failed (``code`` says which)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)


@dataclass
class _Scan:
    """Where a scan started and what it commanded."""

    origin: tuple[float, float, float]  # base (x, y, yaw) in odom at the start
    waist0: float  # waist yaw at the start, rad
    commanded: np.ndarray | None = None  # upper body commanded by the last waist turn
    arms_raised: bool = False  # the free hands were raised for the body turns


@dataclass
class _GoalMemory:
    destination: TraceInput | None = None  # the last trace whose destination was in view
    pick_only: bool = False  # the trace handed to the planner has no destination (pick first)
    abort: SearchAborted | None = None
    replans: int = 0


class SearchingGoalRunner(GoalRunner):
    """The G1's goal runner: a perception step that looks around for what it cannot see.

    Args:
        planner: the G1 planner (``plan(..., destination_known=...)`` and ``waist_turn``).
        backend: the robot (its ``execute`` runs the look motions too).
        look: ``look(instruction) -> Seen``: one trace request from where the robot stands
            (raises :class:`~trace_executor.execution.PerceptionError` for failures that say
            nothing about visibility).
        holding: whether a hand holds an object now.
        search: the scan.
        odom_frame: the frame merged traces are expressed in.
        clock: monotonic seconds (injected for tests).
        **kwargs: the :class:`~trace_executor.execution.GoalRunner` arguments (``watcher``,
            ``feedback``, ``max_replans``, ``publish_plan``, ``log``).
    """

    def __init__(
        self,
        planner: G1Planner,
        backend: Any,
        *,
        look: Callable[[str], Seen],
        holding: Callable[[], bool],
        search: SearchConfig | None = None,
        odom_frame: str = 'odom',
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        self._memory = _GoalMemory()
        super().__init__(planner, backend, **kwargs)
        self.look = look
        self.holding = holding
        self.search = search or SearchConfig()
        self.odom_frame = odom_frame
        self.clock = clock
        self._cancelled: Callable[[], bool] = lambda: False

    # --- goal ----------------------------------------------------------------------------
    def plan_options(self, holding: bool) -> dict[str, Any]:
        """A pick-first trace (the destination not seen yet): pick, lift and look again."""
        return {'destination_known': False} if self._memory.pick_only and not holding else {}

    def _run(self, goal: GoalSpec, cancelled: Callable[[], bool]) -> Outcome:
        self._memory = _GoalMemory()
        self._cancelled = cancelled
        out = super()._run(goal, cancelled)
        abort = self._memory.abort
        if abort is not None and not out.success and out.code == ErrorCode.PERCEPTION:
            out.code = abort.code
        return out

    def _perceive(self, goal: GoalSpec, phase: Phase, replans: int) -> TraceInput:
        if goal.trace is not None and replans == 0:
            return goal.trace
        mem = self._memory
        mem.replans = replans
        mem.pick_only = False
        self.feedback(
            Phase.PERCEIVING, 0.0, replans, f'asking the model: "{goal.instruction}"', None
        )
        holding = bool(self.holding())
        try:
            seen = self._look(goal.instruction, holding)
        except PerceptionError as exc:
            if holding and mem.destination is not None:
                # Carrying, and looking again failed: go on to the destination seen before.
                self.log(f'looking again failed ({exc}): keeping the last trace')
                return mem.destination
            raise
        trace = self._use(seen, holding)
        if trace is not None:
            return trace
        if holding and mem.destination is not None:
            self.log(f'looking again: {seen.sight.value}: keeping the last trace')
            return mem.destination
        if goal.dry_run:
            raise PerceptionError(seen.note or seen.sight.value)  # a dry run never moves
        try:
            return self._search(goal, seen, holding)
        except SearchAborted as exc:
            mem.abort = exc
            raise

    def _look(self, instruction: str, holding: bool) -> Seen:
        """One look; the object alone when the trace left the view without a usable trace."""
        seen = self.look(instruction)
        if seen.sight is not Sight.OBJECT_ONLY or seen.trace is not None or holding:
            return seen
        # The model saw the object, but its trace left the view (a point behind the camera):
        # ask where the object is by itself, to pick it up first.
        phrase = object_phrase(instruction)
        if phrase is None:
            return seen
        try:
            alone = self.look(f'pick up {phrase}')
        except PerceptionError as exc:
            self.log(f'asking for {phrase} alone failed: {exc}')
            return seen
        if alone.trace is None or alone.sight is Sight.NOTHING:
            return seen
        self.log(f'the trace left the view; {phrase} is in view: asked for it alone')
        return Seen(Sight.OBJECT_ONLY, alone.trace, seen.note)

    def _use(self, seen: Seen, holding: bool) -> TraceInput | None:
        """The trace to plan with after a look, or None: look on."""
        mem = self._memory
        if seen.trace is None or seen.sight is Sight.NOTHING:
            return None
        if seen.sight is Sight.BOTH:
            mem.destination = seen.trace
            return seen.trace
        pts = self.odom_points(seen.trace)
        if mem.destination is not None:
            merged, note = continue_trace(pts, False, self.odom_points(mem.destination))
            self.log(f'looking again: {note}')
            trace = TraceInput(merged, self.odom_frame, None, None)
            mem.destination = trace
            return trace
        if holding:
            return None  # looking for the destination, holding the object
        mem.pick_only = True
        self.log('the destination is not in view: picking the object up first')
        lift = np.array([0.0, 0.0, 0.1])
        return TraceInput(np.array([pts[0], pts[0] + lift]), self.odom_frame, None, None)

    def odom_points(self, trace: TraceInput) -> np.ndarray:
        """A trace's points in odom."""
        pts = np.asarray(trace.points, dtype=float)
        if trace.transform is None:
            return pts.copy()
        t = trace.transform
        return pts @ t[:3, :3].T + t[:3, 3]

    # --- the scan ------------------------------------------------------------------------
    def _search(self, goal: GoalSpec, first: Seen, holding: bool) -> TraceInput:
        policy = LookAround(self.search, self.clock)
        phrase = object_phrase(goal.instruction) or 'the object'
        what = f'where to put {phrase}' if holding else phrase
        state = np.asarray(self.backend.joint_positions(), dtype=float)
        scan = _Scan((float(state[0]), float(state[1]), float(state[3])), float(state[4]))
        notes = [first.note or first.sight.value]
        self.log(f'{what} is not in view ({notes[0]}): looking around')
        while True:
            view = policy.next_view()
            if view is None:
                break
            self._check_cancel(what)
            words = policy.move_words(view)
            self._say(policy, f'looking for {what}: {words}')
            self._move(policy.current, view, scan, what)
            seen = self._look(goal.instruction, holding)
            policy.record(view, seen.sight)
            if seen.note:
                notes.append(seen.note)
            trace = self._use(seen, holding)
            if trace is not None:
                self.log(f'found {what} with {view.describe()} after {policy.elapsed_s:.1f} s')
                if view.waist_yaw_rad:
                    # Face it with the body, waist straight (plans start with the waist ahead).
                    self._say(policy, f'found {what}: turning to face it')
                    facing = View(0.0, view.base_yaw_rad + view.waist_yaw_rad)
                    self._move(view, facing, scan, what)
                if scan.commanded is not None and not holding:
                    self._release()
                return trace
        self._say(policy, f'looking for {what}: {policy.move_words(policy.home)}')
        self._move(policy.current, policy.home, scan, what)
        policy.moved_to(policy.home)
        if scan.commanded is not None and not holding:
            self._release()
        seen_object = any(s is Sight.OBJECT_ONLY for _, s in policy.tried) or (
            first.sight is Sight.OBJECT_ONLY
        )
        why = (
            'the object was in view but never with its destination'
            if seen_object and not holding
            else notes[-1]
        )
        raise PerceptionError(
            f'{what} not found after looking around: {policy.summary()}, then turned back to '
            f'where it started; {why}'
        )

    def _say(self, policy: LookAround, message: str) -> None:
        self.log(message)
        self.feedback(Phase.PERCEIVING, policy.progress, self._memory.replans, message, None)

    def _check_cancel(self, what: str) -> None:
        if self._cancelled():
            raise SearchAborted(
                ErrorCode.CANCELED, f'canceled while looking for {what}; the robot stopped'
            )

    def _move(self, here: View, there: View, scan: _Scan, what: str) -> None:
        """Turn from one view to another: waist straight, base turn, then the waist."""
        turn_base = abs(wrap_angle(there.base_yaw_rad - here.base_yaw_rad)) > 1e-6
        waist = here.waist_yaw_rad
        if turn_base and abs(waist) > 1e-6:
            self._turn_waist(scan.waist0, scan, what)
            waist = 0.0
        if turn_base:
            self._raise_arms(scan, what)
            self._turn_base(scan.origin, there.base_yaw_rad, what)
        if abs(there.waist_yaw_rad - waist) > 1e-6:
            self._turn_waist(scan.waist0 + there.waist_yaw_rad, scan, what)

    def _turn_waist(self, yaw: float, scan: _Scan, what: str) -> None:
        """Turn the waist to ``yaw`` and wait (bounded) until it is there."""
        start = self._scan_state(scan)[4:]
        motion = self.planner.waist_turn(start, yaw, self.search.speed_scale)
        self._execute_look(motion, what)
        scan.commanded = np.asarray(motion.positions_rad[-1], dtype=float)
        target = float(scan.commanded[0])
        deadline = self.clock() + self.search.settle_s
        while self.clock() < deadline:
            now = float(np.asarray(self.backend.joint_positions(), dtype=float)[4])
            if abs(now - target) < self.search.settle_tolerance_rad:
                return
            time.sleep(0.05)

    def _scan_state(self, scan: _Scan) -> np.ndarray:
        """The planner's state to start a look motion from.

        After a look motion the upper body is the one it commanded: the arms are still held
        there, and the measured joints lag behind it.
        """
        state = np.array(self.backend.joint_positions(), dtype=float)
        if scan.commanded is not None:
            state[4:] = scan.commanded
        return state

    def _raise_arms(self, scan: _Scan, what: str) -> None:
        """Raise the free hands before the body turns in place (see ``G1Planner.tuck_motion``)."""
        if scan.arms_raised:
            return
        scan.arms_raised = True
        try:
            motions = self.planner.tuck_motion(
                self._scan_state(scan), self.holding(), self.search.speed_scale
            )
        except PlanningError as exc:
            self.log(f'turning with the hands where they are: they cannot be raised ({exc})')
            return
        for motion in motions:
            self._execute_look(motion, what)
        if motions:
            scan.commanded = np.asarray(motions[-1].positions_rad[-1], dtype=float)

    def _turn_base(self, origin: tuple[float, float, float], yaw: float, what: str) -> None:
        state = np.asarray(self.backend.joint_positions(), dtype=float)
        turn = abs(wrap_angle(origin[2] + yaw - state[3]))
        side = self.planner.holding_side if self.holding() else None
        seg = WalkSegment(
            (origin[0], origin[1], float(wrap_angle(origin[2] + yaw))),
            self.odom_frame,
            turn / 0.8 + 0.5,
            look_again=False,
            holding=side,
        )
        self._execute_look(seg, what)

    def _execute_look(self, segment: Any, what: str) -> None:
        def interrupt() -> Interrupt | None:
            return CANCELED if self._cancelled() else None

        res: MotionResult = self.backend.execute(segment, interrupt, lambda _f: None)
        if res.status is MotionStatus.DONE:
            return
        if self._cancelled():
            raise SearchAborted(
                ErrorCode.CANCELED, f'canceled while looking for {what}; the robot stopped'
            )
        raise SearchAborted(
            ErrorCode.EXECUTION,
            f'{self.backend.name}: {res.message or res.status.value} (while looking for {what})',
        )

    def _release(self) -> None:
        res = self.backend.execute(ArmRelease(), lambda: None, lambda _f: None)
        if res.status is not MotionStatus.DONE:
            self.log(f'arms not released after looking around: {res.message}')


__all__ = [
    'LookAround',
    'SearchAborted',
    'SearchConfig',
    'SearchingGoalRunner',
    'Seen',
    'Sight',
    'View',
    'failure_sight',
    'object_phrase',
    'trace_sight',
]
