"""The goal runner: perceive → plan → execute → (scene changed) → re-perceive → replan → ...

The contracts it runs on (goal, trace, plan, backend, watcher, phases, interrupts) are in
:mod:`trace_executor.contracts` and re-exported here.

Design notes: docs/design-notes.md (trace_executor.execution).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import threading
import time
from typing import Any

import numpy as np

from trace_executor.contracts import (
    CANCELED,
    PUSH_VERBS,
    BackendError,
    BlendingPlanner,
    Continuation,
    Feedback,
    GoalSpec,
    GripperStep,
    Halting,
    Interrupt,
    InterruptKind,
    MeasuringBackend,
    MotionResult,
    MotionStatus,
    Outcome,
    Phase,
    Plan,
    RobotBackend,
    SceneEvent,
    SceneWatcher,
    Segment,
    SegmentKind,
    TraceInput,
    WalkStep,
    validate_goal,
)
from trace_executor.errors import ErrorCode, PlanningError


@dataclass
class _Moving:
    """A motion handed over while it still runs: where its trajectory is at any time."""

    segment: Any
    started: float  # time.monotonic() when the backend was given the segment
    changed: float  # time.monotonic() when the change was seen

    def state_at(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Commanded joint positions, velocities, accelerations at monotonic time ``t``."""
        seg = self.segment
        times = np.asarray(seg.times_s, dtype=float)
        e = t - self.started
        if e >= times[-1]:
            q = np.asarray(seg.positions_rad[-1], dtype=float)
            return q.copy(), np.zeros_like(q), np.zeros_like(q)
        e = max(e, 0.0)
        k = min(max(int(np.searchsorted(times, e, side='right')) - 1, 0), len(times) - 2)
        f = (e - times[k]) / max(times[k + 1] - times[k], 1e-9)

        def lerp(x: Any) -> np.ndarray:
            x = np.asarray(x, dtype=float)
            return x[k] + f * (x[k + 1] - x[k])

        return lerp(seg.positions_rad), lerp(seg.velocities_rad_s), lerp(seg.accelerations_rad_s2)


class _Deadline:
    """Calls ``action`` after ``delay_s`` unless cancelled first (on its own thread)."""

    def __init__(self, delay_s: float, action: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._fired = False
        self._action = action
        self._timer = threading.Timer(max(delay_s, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            self._fired = True
        self._action()

    def cancel(self) -> bool:
        """Cancel; True when it had fired (then returns once the action has finished)."""
        with self._lock:
            self._cancelled = True
            fired = self._fired
        self._timer.cancel()
        if fired:
            self._timer.join()
        return fired


@dataclass
class _Step:
    """How running a plan ended: an outcome, or what to do next and why."""

    outcome: Outcome | None
    holding: bool
    then: Continuation | None = None
    reason: str = ''
    obstacles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    moving: _Moving | None = None  # the arm still follows this motion (handed over)


class PerceptionError(RuntimeError):
    """The trace service failed; the message carries its reason."""


class GoalRunner:
    """Run one goal at a time (see the module docstring)."""

    def __init__(
        self,
        planner: Any,
        backend: RobotBackend,
        *,
        perceive: Callable[[str], TraceInput] | None = None,
        watcher: SceneWatcher | None = None,
        feedback: Feedback | None = None,
        max_replans: int = 3,
        obstacle_clearance_m: float = 0.06,
        endpoint_margin_m: float = 0.12,
        publish_plan: Callable[[Any], None] | None = None,
        log: Callable[[str], None] | None = None,
        blend: bool = True,
        blend_deadline_s: float = 1.5,
        plan_lead_s: float = 0.02,
    ) -> None:
        self.planner = planner
        self.backend = backend
        self.perceive = perceive
        self.watcher = watcher
        self.feedback = feedback or (lambda *a: None)
        self.max_replans = max_replans
        self.obstacle_clearance_m = obstacle_clearance_m
        #: appeared points this close to the trace's start or end are the object / destination
        self.endpoint_margin_m = endpoint_margin_m
        self.publish_plan = publish_plan or (lambda plan: None)
        self.log = log or (lambda msg: None)
        #: replan without stopping where planner and backend allow it (module docstring)
        self.blend = blend
        #: brake when the new plan is not ready this long after the change, s (the model's
        #: answer is part of it: ~0.7 s for the simulator's oracle through perception here;
        #: the arm meanwhile follows its validated motion, which ends at rest if it ends first)
        self.blend_deadline_s = blend_deadline_s
        #: plan from where the running trajectory will be this much later, s
        self.plan_lead_s = plan_lead_s
        #: the motion still running after a hand-over (None when the arm is not moving)
        self._moving: _Moving | None = None
        self._lock = threading.Lock()

    def run(
        self,
        goal: GoalSpec,
        cancelled: Callable[[], bool],
        feedback: Feedback | None = None,
    ) -> Outcome:
        """Execute a goal (from :func:`validate_goal`) until done, failed or cancelled.

        Args:
            goal: the validated goal.
            cancelled: True once the goal must stop (cancel or preemption).
            feedback: this goal's feedback callable (None: the runner's default).
        """
        if not self._lock.acquire(blocking=False):
            return Outcome(False, ErrorCode.BUSY, 'another goal is running')
        default_feedback = self.feedback
        if feedback is not None:
            self.feedback = feedback
        try:
            self.begin_goal(goal, cancelled)
            return self.end_goal(self._run(goal, cancelled))
        finally:
            if self._moving is not None:  # ended (error, cancel) while a motion still ran
                self._moving = None
                self.backend.stop()
            if self.watcher:
                self.watcher.disarm()
            self.feedback = default_feedback
            self._lock.release()

    # --- hooks a robot's runner overrides (e.g. the G1's, which looks around) -----------------
    def begin_goal(self, goal: GoalSpec, cancelled: Callable[[], bool]) -> None:
        """Called once before a goal runs (reset per-goal state here)."""

    def end_goal(self, outcome: Outcome) -> Outcome:
        """Called once with a goal's outcome; returns the outcome to report."""
        return outcome

    def get_trace(self, goal: GoalSpec, replans: int) -> TraceInput:
        """The trace to plan with: the goal's own the first time, else asked from perception.

        Raises:
            PerceptionError: perception failed (the goal then fails with ``PERCEPTION``).
        """
        if goal.trace is not None and replans == 0:
            return goal.trace
        if self.perceive is None:
            raise PerceptionError('no perception available to re-query the trace')
        # Asking the model is PERCEIVING, first time or during a replan (replans > 0 tells).
        self.feedback(
            Phase.PERCEIVING, 0.0, replans, f'asking the model: "{goal.instruction}"', None
        )
        return self.perceive(goal.instruction)

    def plan_options(self, holding: bool) -> dict[str, Any]:
        """More keyword arguments of the planner's ``plan`` (a subclass's policy; none here)."""
        return {}

    def _can_blend(self) -> bool:
        return (
            self.blend
            and isinstance(self.planner, BlendingPlanner)
            and isinstance(self.backend, MeasuringBackend)
        )

    def _brake(self, why: str) -> None:
        """Stop a handed-over motion and wait (bounded) until the arm is at rest."""
        if self._moving is None:
            return
        self._moving = None
        self.log(f'braking: {why}')
        self.backend.stop()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                _, v = self.backend.joint_state()
            except BackendError:
                return
            if float(np.max(np.abs(v))) < 0.02:
                return
            time.sleep(0.005)

    def _would_hit(self, plan: Plan, seg: Any, started: float, obstacles: np.ndarray) -> bool:
        """Whether what remains of a running motion passes within the clearance of obstacles."""
        if not len(obstacles):
            return False
        path = np.asarray(plan.tool_path.positions, dtype=float)
        a, b = seg.path_range  # a blending planner's motions know their part of the path
        frac = (time.monotonic() - started) / max(float(seg.duration_s), 1e-6)
        first = min(max(a + int(frac * (b - a)) - 1, a), b)
        rest = path[first : b + 1]
        d = np.linalg.norm(rest[:, None, :] - obstacles[None, :, :], axis=2)
        return bool(d.min() < self.obstacle_clearance_m)

    def _plan_start(self) -> np.ndarray:
        """Where to plan from: the arm at rest, or where the handed-over trajectory will be."""
        if self._moving is None:
            return self.backend.joint_positions()
        return self._moving.state_at(time.monotonic() + self.plan_lead_s)[0]

    def _enter_moving(self, plan: Any) -> Any:
        """The plan entered from the moving arm's state, or the plan itself after braking."""
        if self._moving is None:
            return plan
        moving = self._moving
        try:
            q, v = self.backend.joint_state()
        except BackendError:
            q, v = moving.state_at(time.monotonic())[:2]
        a = moving.state_at(time.monotonic())[2]
        blended = self.planner.blend(plan, q, v, a)
        if blended is None:
            self._brake('no feasible blend into the new plan')
            return None
        self.log(
            'replanned while moving: new motion '
            f'{(time.monotonic() - moving.changed) * 1e3:.0f} ms after the change was seen'
        )
        return blended

    def _run(self, goal: GoalSpec, cancelled: Callable[[], bool]) -> Outcome:
        t0 = time.monotonic()
        timings = {'model_s': 0.0, 'planning_s': 0.0, 'motion_s': 0.0}
        replans = 0
        holding = False
        trace: TraceInput | None = None
        reason = ''
        obstacles = np.zeros((0, 3))
        looks = 0
        while True:
            if cancelled():
                return Outcome(
                    False,
                    ErrorCode.CANCELED,
                    'canceled before motion',
                    trace,
                    replans,
                    timings=timings,
                )
            # 1. perceive (first time, or again after a scene change)
            t = time.monotonic()
            timer = None
            if self._moving is not None:
                # the arm keeps moving while the new plan is made, up to the deadline
                timer = _Deadline(
                    self._moving.changed + self.blend_deadline_s - time.monotonic(),
                    lambda: self._brake('the new plan was not ready in time'),
                )
            try:
                trace = self.get_trace(goal, replans)
            except PerceptionError as exc:
                if timer is not None:
                    timer.cancel()
                return Outcome(
                    False, ErrorCode.PERCEPTION, str(exc), trace, replans, timings=timings
                )
            timings['model_s'] += time.monotonic() - t
            # 2. plan from the current joint state
            t = time.monotonic()
            self.feedback(
                Phase.PLANNING if replans == 0 else Phase.REPLANNING,
                0.0,
                replans,
                'planning' + (f' (replan {replans}: {reason})' if replans else ''),
                trace,
            )
            was_moving = self._moving is not None
            try:
                q_now = self._plan_start()
            except BackendError as exc:
                if timer is not None:
                    timer.cancel()
                return Outcome(
                    False,
                    ErrorCode.EXECUTION,
                    f'{self.backend.name}: {exc}',
                    trace,
                    replans,
                    timings=timings,
                )
            try:
                plan = self.planner.plan(
                    trace.points,
                    q_now,
                    mode=goal.mode,
                    speed_scale=goal.speed_scale,
                    frame_id=trace.frame_id,
                    transform=trace.transform,
                    holding=holding,
                    **self.plan_options(holding),
                )
            except PlanningError as exc:
                if timer is not None:
                    timer.cancel()
                return Outcome(False, exc.code, exc.message, trace, replans, timings=timings)
            if timer is not None:
                timer.cancel()  # a brake that already began ends before we go on
            blocked = self._blocked(plan, obstacles, trace, holding)
            if blocked:
                timings['planning_s'] += time.monotonic() - t
                return Outcome(False, ErrorCode.COLLISION, blocked, trace, replans, plan, timings)
            if was_moving:
                # braked meanwhile (deadline), or no feasible blend: plan again from rest
                entered = self._enter_moving(plan) if self._moving is not None else None
                if entered is None:
                    try:
                        plan = self.planner.plan(
                            trace.points,
                            self.backend.joint_positions(),
                            mode=goal.mode,
                            speed_scale=goal.speed_scale,
                            frame_id=trace.frame_id,
                            transform=trace.transform,
                            holding=holding,
                            **self.plan_options(holding),
                        )
                    except PlanningError as exc:
                        return Outcome(False, exc.code, str(exc), trace, replans, timings=timings)
                    except BackendError as exc:
                        failed = f'{self.backend.name}: {exc}'
                        return Outcome(
                            False, ErrorCode.EXECUTION, failed, trace, replans, timings=timings
                        )
                else:
                    plan = entered
            timings['planning_s'] += time.monotonic() - t
            self.publish_plan(plan)
            if goal.dry_run:
                return Outcome(
                    True,
                    ErrorCode.NONE,
                    f'dry run: planned {len(plan.motions)} motions, '
                    f'{plan.duration_s:.1f} s; nothing moved',
                    trace,
                    replans,
                    plan,
                    timings,
                )
            # 3. execute, watching the scene
            step = self._execute(goal, plan, trace, replans, holding, cancelled, timings)
            holding, reason = step.holding, step.reason
            self._moving = step.moving
            if step.outcome is not None:
                step.outcome.timings = timings
                step.outcome.timings['total_s'] = time.monotonic() - t0
                return step.outcome
            if step.then is Continuation.LOOK_AGAIN:
                # A mobile robot walked as planned: perceive from where it stands now and plan
                # the rest (the object may have moved meanwhile). Bounded, not a replan.
                looks += 1
                if looks > 2 * self.max_replans + 4:
                    return Outcome(
                        False,
                        ErrorCode.REPLAN_LIMIT,
                        f'walked {looks - 1} times without reaching the goal',
                        trace,
                        replans,
                        timings=timings,
                    )
                self.log(f'{reason} ({looks})')
                continue
            replans += 1
            if len(step.obstacles):
                obstacles = np.vstack([obstacles, step.obstacles])
            self.log(f'replan {replans}/{self.max_replans}: {reason}')
            if replans > self.max_replans:
                return Outcome(
                    False,
                    ErrorCode.REPLAN_LIMIT,
                    f'the scene kept changing: {replans - 1} replans done, limit '
                    f'{self.max_replans} (last: {reason})',
                    trace,
                    replans - 1,
                    timings=timings,
                )

    def _blocked(
        self, plan: Plan, obstacles: np.ndarray, trace: TraceInput, holding: bool = False
    ) -> str:
        """A reason when the plan's tool path passes through something that appeared.

        In a pick-and-place, what appeared where the new trace starts (the object, moved there,
        or the hand holding it) or ends (the destination, with the object arriving) is not an
        obstacle: the fresh trace was perceived with them in view. A push sweeps the tool to
        its end, so there everything counts.
        """
        if not len(obstacles):
            return ''
        if plan.mode != 'pick_place':
            ends = trace.points[:0]  # push / follow: the tool sweeps to the end; all counts
        else:
            # the start is the object (before the grasp) or the hand holding it; the end is the
            # destination where the object arrives: both are in the fresh trace's view
            ends = trace.points[[0, -1]]
        if trace.transform is not None:
            ends = ends @ trace.transform[:3, :3].T + trace.transform[:3, 3]
        if len(ends):
            near = np.linalg.norm(obstacles[:, None, :] - ends[None, :, :], axis=2).min(axis=1)
            obstacles = obstacles[near > self.endpoint_margin_m]
        if not len(obstacles):
            return ''
        path = np.asarray(plan.tool_path.positions, dtype=float)
        d = np.linalg.norm(path[:, None, :] - obstacles[None, :, :], axis=2)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        if d[i, j] >= self.obstacle_clearance_m:
            return ''
        o = obstacles[j]
        return (
            f'an obstacle appeared at ({o[0]:.2f}, {o[1]:.2f}, {o[2]:.2f}) m and the new plan '
            f'passes {d[i, j] * 100:.0f} cm from it (clearance '
            f'{self.obstacle_clearance_m * 100:.0f} cm): stopped instead of colliding'
        )

    def _execute(
        self,
        goal: GoalSpec,
        plan: Plan,
        trace: TraceInput,
        replans: int,
        holding: bool,
        cancelled: Callable[[], bool],
        timings: dict[str, float],
    ) -> _Step:
        """Run the plan's segments: an outcome, or how to go on (replan, look again)."""
        watch = goal.replanning and self.watcher is not None
        if watch:
            self.watcher.arm(plan, holding)
        if plan.mode == 'push' and not holding:
            # Push with the closed gripper: the closed fingers are the paddle (open fingers
            # would straddle the object). Closing on nothing is expected here.
            _, msg = self.backend.gripper(True)
            self.log(f'gripper closed for pushing: {msg}')
        total = max(plan.duration_s, 1e-6)
        done = 0.0
        for seg in plan.segments:
            if seg.kind is SegmentKind.GRIPPER:
                # the segment names the hand where a robot has several (G1: left/right Dex3)
                ok, msg = self.backend.gripper(seg.close, seg)
                self.log(f'gripper {"close" if seg.close else "open"}: {msg}')
                if seg.close and not ok:
                    if watch:
                        return _Step(None, False, Continuation.REPLAN, f'grasp failed ({msg})')
                    failed = f'grasp failed: {msg}'
                    return _Step(
                        Outcome(False, ErrorCode.EXECUTION, failed, trace, replans), False
                    )
                released = holding and not seg.close
                holding = bool(seg.close and ok)
                if watch and released:
                    # The object is where it was put: what remains (the retreat) has nothing
                    # to replan for. Watching on would read the placed object at the
                    # destination as a change, and a fresh trace would pick it up again.
                    self.watcher.disarm()
                    watch = False
                elif watch:
                    self.watcher.arm(plan, holding)  # the start region no longer matters
                continue
            scene: list[SceneEvent] = []
            started = [time.monotonic()]
            blendable = self._can_blend() and seg.kind is SegmentKind.MOTION

            def interrupt(
                scene: list[SceneEvent] = scene,
                seg: Any = seg,
                started: list[float] = started,
                blendable: bool = blendable,
                watching: bool = watch,
            ) -> Interrupt | None:
                if cancelled():
                    return CANCELED
                if watching:
                    event = self.watcher.poll()
                    if event is not None:
                        scene.append(event)
                        keep = blendable and not self._would_hit(
                            plan, seg, started[0], event.obstacles
                        )
                        return Interrupt(InterruptKind.SCENE_CHANGED, event.reason, keep)
                return None

            walking = seg.kind is SegmentKind.WALK

            def progress(
                frac: float, base: float = done, dur: float = seg.duration_s, walk: bool = walking
            ) -> None:
                self.feedback(
                    Phase.WALKING if walk else Phase.EXECUTING,
                    min(1.0, (base + frac * dur) / total),
                    replans,
                    'walking' if walk else 'executing',
                    trace,
                )

            t = time.monotonic()
            started[0] = t
            self._moving = None  # this motion replaces any handed-over one
            res = self.backend.execute(seg, interrupt, progress)
            timings['motion_s'] += time.monotonic() - t
            done += seg.duration_s
            if res.status is MotionStatus.DONE:
                if walking and seg.look_again:
                    return _Step(None, holding, Continuation.LOOK_AGAIN, 'arrived at a new stance')
                continue
            if res.status is MotionStatus.HANDED_OVER:
                moving = _Moving(seg, started[0], time.monotonic())
                if cancelled() or not scene:
                    self._moving = moving
                    self._brake('canceled')
                    stopped = f'canceled; the robot stopped ({res.message or "at rest"})'
                    out = Outcome(False, ErrorCode.CANCELED, stopped, trace, replans)
                    return _Step(out, holding)
                event = scene[0]
                return _Step(
                    None, holding, Continuation.REPLAN, event.reason, event.obstacles, moving
                )
            if res.status is MotionStatus.FAILED:
                failed = f'{self.backend.name}: {res.message}'
                return _Step(Outcome(False, ErrorCode.EXECUTION, failed, trace, replans), holding)
            if cancelled() or not scene:
                stopped = f'canceled; the robot stopped ({res.message or "at rest"})'
                return _Step(Outcome(False, ErrorCode.CANCELED, stopped, trace, replans), holding)
            event = scene[0]
            return _Step(None, holding, Continuation.REPLAN, event.reason, event.obstacles)
        self.feedback(Phase.EXECUTING, 1.0, replans, 'done', trace)
        done_msg = f'done: {plan.mode} along {len(trace.points)} trace points' + (
            f' after {replans} replan(s)' if replans else ''
        )
        return _Step(Outcome(True, ErrorCode.NONE, done_msg, trace, replans, plan), holding)


__all__ = [
    'BackendError',
    'BlendingPlanner',
    'CANCELED',
    'Continuation',
    'Feedback',
    'GoalRunner',
    'GoalSpec',
    'GripperStep',
    'Halting',
    'Interrupt',
    'InterruptKind',
    'MeasuringBackend',
    'MotionResult',
    'MotionStatus',
    'Outcome',
    'PerceptionError',
    'Phase',
    'Plan',
    'PUSH_VERBS',
    'RobotBackend',
    'SceneEvent',
    'SceneWatcher',
    'Segment',
    'SegmentKind',
    'TraceInput',
    'validate_goal',
    'WalkStep',
]
