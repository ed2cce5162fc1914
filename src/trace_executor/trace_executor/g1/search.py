"""The G1's goal runner: it looks for what it cannot see (waist scan, then the base).

Design notes: docs/design-notes.md (trace_executor.g1.search).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
from trace_executor.g1.camera import continue_trace
from trace_executor.g1.look_around import LookAround, SearchConfig, View
from trace_executor.g1.plan_types import ArmRelease, WalkSegment
from trace_executor.g1.sight import Seen, Sight, failure_sight, object_phrase, trace_sight
from trace_executor.g1.stance import wrap_angle

if TYPE_CHECKING:
    from trace_executor.g1.planner import G1Planner


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

    def begin_goal(self, goal: GoalSpec, cancelled: Callable[[], bool]) -> None:
        """Forget the last goal's destination and search state."""
        self._memory = _GoalMemory()
        self._cancelled = cancelled

    def end_goal(self, outcome: Outcome) -> Outcome:
        """A search that ended in a cancel or a failed look motion reports that code."""
        abort = self._memory.abort
        if abort is not None and not outcome.success and outcome.code == ErrorCode.PERCEPTION:
            outcome.code = abort.code
        return outcome

    def get_trace(self, goal: GoalSpec, replans: int) -> TraceInput:
        """Look; when what is needed is not in view, look around for it (bounded)."""
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
