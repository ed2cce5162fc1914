"""No false replans: carrying an object is not a scene change; a real change still is.

Each test runs the executor's own goal loop in one process against a simulator world:

- the MuJoCo world of ``robotracer_sim`` (UR5 tabletop, G1 room, ``config/scenes/``) steps its
  physics and renders real depth frames (``MUJOCO_GL=egl``);
- the executor's planner (:class:`Ur5Planner`, :class:`G1Planner`), :class:`GoalRunner` and the
  scene watcher the nodes use (:class:`PlanSceneWatcher`, which ``DepthSceneWatcher`` and the
  G1's ``StanceSceneWatcher`` wrap) with the robot masks the nodes use
  (:class:`Ur5BodyMask`, :class:`G1BodyMask`);
- a small in-process backend sends each planned segment to the world (the joint trajectory for
  the UR5, ``rt/arm_sdk``-style targets, Dex3 closures and base velocities for the G1) and
  delivers depth frames *late* (``LATENCY_S`` of simulated time after they were rendered, as
  across processes), so the mask must cover where the robot was when a frame was taken.

Every graspable object of both scenes is picked and carried along a trace with nothing else
changing: the goal must succeed with 0 replans, 0 scene changes and no obstacle seen. Then real
changes of 3 cm or more (an object in the path, one at the destination, the object to pick moved
by 3 cm) must each be reported, where they happened.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import os

import numpy as np
import pytest

pytest.importorskip('mujoco')
pytest.importorskip('pink')
os.environ.setdefault('MUJOCO_GL', 'egl')

from robotracer_sim.g1.scene import load_g1_scene  # noqa: E402
from robotracer_sim.g1.world import G1World, HeadCamera  # noqa: E402
from robotracer_sim.ur5.scene import default_scene_path, load_scene  # noqa: E402
from robotracer_sim.ur5.world import Ur5World  # noqa: E402
from trace_executor.errors import ErrorCode  # noqa: E402
from trace_executor.execution import (  # noqa: E402
    GoalRunner,
    GoalSpec,
    MotionResult,
    MotionStatus,
    Outcome,
    TraceInput,
)
from trace_executor.g1.collision import G1BodyMask  # noqa: E402
from trace_executor.g1.config import G1PlannerConfig  # noqa: E402
from trace_executor.g1.kinematics import SIDES, UPPER_BODY_FIRST_SLOT, G1Kinematics  # noqa: E402
from trace_executor.g1.plan_types import pack_state  # noqa: E402
from trace_executor.g1.planner import G1Planner  # noqa: E402
from trace_executor.g1.walk import WalkLimits, walk_command  # noqa: E402
from trace_executor.g1.watcher import StanceSceneWatcher  # noqa: E402
from trace_executor.plan_watcher import PlanSceneWatcher  # noqa: E402
from trace_executor.scene_monitor import MonitorConfig  # noqa: E402
from trace_executor.ur5.collision import Ur5BodyMask  # noqa: E402
from trace_executor.ur5.planner import Ur5Planner, Ur5PlannerConfig  # noqa: E402

#: how late a depth frame reaches the watcher (simulated seconds), as between processes
LATENCY_S = 0.15
CONFIG_DIR = default_scene_path().parent


class DelayedCamera:
    """Renders a depth frame every ``period_s`` and hands it over ``latency_s`` later."""

    def __init__(
        self,
        render: Callable[[], tuple[np.ndarray, np.ndarray]],
        sink: PlanSceneWatcher,
        period_s: float,
        latency_s: float = LATENCY_S,
    ) -> None:
        self.render, self.sink = render, sink
        self.period_s, self.latency_s = period_s, latency_s
        self.queue: list[tuple[float, np.ndarray, np.ndarray]] = []
        self.next_t = 0.0
        self.frames = 0

    def tick(self, now: float) -> None:
        if now >= self.next_t:
            self.next_t = now + self.period_s
            depth, pose = self.render()
            self.queue.append((now, depth, pose))
            self.frames += 1
        while self.queue and self.queue[0][0] <= now - self.latency_s:
            _, depth, pose = self.queue.pop(0)
            self.sink.on_frame(depth, pose)


# --------------------------------------------------------------------------------- UR5


class Ur5InProcess:
    """The UR5 world driven like the ros2_control backend drives it (RobotBackend)."""

    name = 'ur5 in-process'
    CONTROL_S = 0.02

    def __init__(self, on_tick: Callable[[Ur5InProcess], None] | None = None) -> None:
        self.world = Ur5World(load_scene(CONFIG_DIR / 'ur5_tabletop.yaml'))
        self.planner = Ur5Planner(
            Ur5PlannerConfig(  # config/ur5.yaml's ur5_executor values
                tcp_offset_m=0.15,
                workspace_min_m=(-0.2, -0.75, -0.02),
                workspace_max_m=(0.95, 0.75, 0.8),
            )
        )
        mask = Ur5BodyMask(self.planner.kinematics)
        self.watcher = PlanSceneWatcher(
            MonitorConfig(),
            lambda: mask.at(self.world.joint_positions()),
            clock=lambda: self.world.time,
        )
        self.watcher.set_intrinsics(self.world.k)
        pose = self.world.t_world_camera
        self.camera = DelayedCamera(
            lambda: (self.world.render_rgbd()[1], pose), self.watcher, period_s=0.1
        )
        self.on_tick = on_tick or (lambda h: None)
        for _ in range(10):
            self.tick()

    def tick(self) -> None:
        self.world.step(self.CONTROL_S)
        self.on_tick(self)
        self.camera.tick(self.world.time)

    # RobotBackend
    def joint_positions(self) -> np.ndarray:
        return self.world.joint_positions()

    def execute(self, seg, interrupt, progress) -> MotionResult:
        t = np.asarray(seg.times_s)
        keep = t > 1e-6
        self.world.set_trajectory(
            seg.joint_names,
            t[keep].tolist(),
            np.asarray(seg.positions_rad)[keep].tolist(),
            np.asarray(seg.velocities_rad_s)[keep].tolist(),
        )
        t0 = self.world.time
        while self.world.time - t0 < seg.duration_s + 0.3:
            self.tick()
            why = interrupt()
            if why:
                self.world.stop()
                return MotionResult(MotionStatus.STOPPED, why, why)
        return MotionResult(MotionStatus.DONE)

    def gripper(self, close: bool, segment=None) -> tuple[bool, str]:
        ok, msg = self.world.set_gripper(close)
        for _ in range(10):
            self.tick()
        return ok, msg

    def run(self, trace: np.ndarray, speed: float = 0.5) -> Outcome:
        runner = GoalRunner(self.planner, self, watcher=self.watcher, max_replans=0)
        goal = GoalSpec(trace=TraceInput(trace, 'base_link'), speed_scale=speed, mode='pick_place')
        return runner.run(goal, lambda: False)


def arc(a, b, lift: float = 0.12) -> np.ndarray:
    """An object-centre trace from ``a`` to ``b``: up, across, down (as the model draws it)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    top = max(a[2], b[2]) + lift
    return np.array([a, [*a[:2], top], [*(0.5 * (a[:2] + b[:2])), top], [*b[:2], top], b])


#: where each object of the UR5 tabletop goes (free table spots)
UR5_DESTINATIONS = {
    'red_cube': (0.35, -0.38),
    'blue_cube': (0.72, 0.20),
    'green_cube': (0.30, -0.10),
    'cup': (0.40, -0.05),
    'bowl': (0.32, -0.30),
    'plate': (0.30, 0.30),
}


def ur5_pick_trace(world: Ur5World, name: str, dest_xy) -> np.ndarray:
    p = world.object_poses([name])[name].position.copy()
    p[2] = max(p[2], 0.02)  # the plate's centre is below the TCP's minimum height
    return arc(p, [*dest_xy, p[2]])


def assert_no_change(outcome: Outcome, watcher: PlanSceneWatcher, min_compared: int = 20) -> None:
    change = watcher.last_change
    assert change is None, f'false scene change: {change.reason}'
    assert outcome.success and outcome.replans == 0, outcome.message
    assert watcher.stats['changes'] == 0
    assert watcher.stats['compared'] >= min_compared, f'too few frames compared: {watcher.stats}'


@pytest.mark.parametrize('name', list(UR5_DESTINATIONS))
def test_ur5_carrying_each_object_is_not_a_scene_change(name):
    sim = Ur5InProcess()
    dest = UR5_DESTINATIONS[name]
    outcome = sim.run(ur5_pick_trace(sim.world, name, dest))
    assert_no_change(outcome, sim.watcher)
    assert sim.watcher.stats['references'] >= 2, 'watched before and after the grasp'
    end = sim.world.object_poses([name])[name].position
    assert np.linalg.norm(end[:2] - dest) < 0.04, f'{name} was carried to {end}'


def _when_carried(after_s: float, action: Callable[[Ur5World], None]):
    """An ``on_tick`` that runs ``action`` once, ``after_s`` after the object was grasped."""
    state: dict[str, float] = {}

    def on_tick(sim: Ur5InProcess) -> None:
        w = sim.world
        if w.held_object is None or 'done' in state:
            return
        state.setdefault('grasped', w.time)
        if w.time - state['grasped'] >= after_s:
            state['done'] = w.time
            action(w)

    return on_tick


def test_ur5_an_object_put_in_the_path_during_the_carry_is_seen_there():
    start, dest = (0.35, 0.10, 0.0225), (0.35, -0.32, 0.0225)  # green cube, across the table
    # the cup (9 cm tall) stands in the middle of the path, which passes 10 cm above the table
    obstacle = np.array([0.35, -0.11, 0.045])
    sim = Ur5InProcess(
        _when_carried(0.4, lambda w: w.set_object_pose('cup', obstacle, (0, 0, 0, 1)))
    )
    outcome = sim.run(arc(start, dest, lift=0.08))
    assert not outcome.success and outcome.code == ErrorCode.REPLAN_LIMIT, outcome.message
    change = sim.watcher.last_change
    assert change is not None and change.region == 'path corridor', change
    assert change.median_shift_m < -0.03, 'something appeared (closer)'
    # The obstacle points are on the cup, not on the gripper or the cube it carries.
    pts = change.appeared_points
    assert np.all(np.linalg.norm(pts[:, :2] - obstacle[:2], axis=1) < 0.06), pts
    assert np.all(np.abs(pts[:, 2] - obstacle[2]) < 0.06), pts


def test_ur5_an_object_put_at_the_destination_during_the_carry_is_seen():
    start, dest = (0.35, 0.10, 0.0225), (0.35, -0.32, 0.0225)
    sim = Ur5InProcess(
        _when_carried(0.4, lambda w: w.set_object_pose('blue_cube', dest, (0, 0, 0, 1)))
    )
    outcome = sim.run(arc(start, dest))
    assert not outcome.success and outcome.code == ErrorCode.REPLAN_LIMIT, outcome.message
    change = sim.watcher.last_change
    assert change is not None and change.region == 'destination', change
    assert np.linalg.norm(np.median(change.appeared_points, axis=0)[:2] - dest[:2]) < 0.04


def test_ur5_the_object_moved_by_3_cm_before_the_grasp_is_seen():
    state: dict[str, bool] = {}

    def nudge(sim: Ur5InProcess) -> None:
        w = sim.world
        if not state and w.trajectory_active and w.time > 0.5:
            state['moved'] = True
            w.set_object_pose('green_cube', (0.35, 0.13, 0.0225), (0, 0, 0, 1))  # +3 cm in y

    sim = Ur5InProcess(nudge)
    outcome = sim.run(arc((0.35, 0.10, 0.0225), (0.35, -0.32, 0.0225)))
    assert state, 'the cube was moved'
    assert not outcome.success and outcome.code == ErrorCode.REPLAN_LIMIT, outcome.message
    change = sim.watcher.last_change
    assert change is not None and change.region == 'object at the trace start', change
    assert sim.world.held_object is None, 'stopped before closing on the old position'


# --------------------------------------------------------------------------------- G1


class G1InProcess:
    """The G1 world driven like the unitree backend drives it (RobotBackend).

    Arm motions stream their targets at 50 Hz with the backend's gains (weight ramped in first),
    hands ramp their Dex3 closure, walks follow the backend's walk controller on the odometry.
    """

    name = 'g1 in-process'
    CONTROL_S = 0.02
    KP = np.array([200.0] * 3 + [60.0] * 14)  # UnitreeConfig kp_waist, kp_arm
    KD = np.array([5.0] * 3 + [1.5] * 14)

    def __init__(
        self,
        start: tuple[float, float, float] = (0.0, 0.0, 0.0),
        on_tick: Callable[[G1InProcess], None] | None = None,
    ) -> None:
        scene = load_g1_scene(CONFIG_DIR / 'g1_room.yaml')
        scene = dataclasses.replace(scene, robot=dataclasses.replace(scene.robot, start=start))
        self.world = G1World(scene)
        self.head = HeadCamera(self.world)
        self.kin = G1Kinematics()
        mask = G1BodyMask(G1Kinematics())
        self.watcher = StanceSceneWatcher(
            MonitorConfig(),
            lambda: mask.at(self.joint_positions(), self.holding()),
            clock=lambda: self.world.time,
        )
        self.watcher.set_intrinsics(self.world.camera_intrinsics())
        self.camera = DelayedCamera(self._render, self.watcher, period_s=0.2)
        self.planner = G1Planner(G1PlannerConfig())
        self.hands = {s: np.zeros(7) for s in SIDES}
        self.weight = 0.0
        self.q_cmd: np.ndarray | None = None
        self.on_tick = on_tick or (lambda h: None)
        for _ in range(10):
            self.tick()

    def _render(self) -> tuple[np.ndarray, np.ndarray]:
        _, depth, pose, _ = self.head.capture()
        return depth, pose

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            self.world.step(int(round(self.CONTROL_S / 0.002)))
            self.on_tick(self)
            self.camera.tick(self.world.time)

    def upper_body(self) -> np.ndarray:
        return self.world.joint_state()[1][UPPER_BODY_FIRST_SLOT:29].copy()

    def _send(self, q: np.ndarray) -> None:
        full = np.zeros((5, 29))
        full[0, 12:], full[3, 12:], full[4, 12:] = q, self.KP, self.KD
        self.world.apply_arm_sdk(self.weight, *full)
        self.q_cmd = np.asarray(q, dtype=float)

    # RobotBackend
    def joint_positions(self) -> np.ndarray:
        b = self.world.base_state()
        return pack_state((*b.position, b.yaw), self.upper_body())

    def holding(self) -> str | None:
        for side, q in self.hands.items():
            closed = self.kin.finger_closed_rad[side]
            if float(np.mean(q[2:] / closed[2:])) > 0.3:
                return side
        return None

    def execute(self, seg, interrupt, progress) -> MotionResult:
        if seg.kind.value == 'walk':
            return self._walk(seg, interrupt)
        if seg.kind.value == 'arm_release':
            n = max(1, int(seg.duration_s / self.CONTROL_S))
            w0, q = self.weight, self.q_cmd if self.q_cmd is not None else self.upper_body()
            for i in range(n):
                self.weight = w0 * (1 - (i + 1) / n)
                self._send(q)
                self.tick()
            return MotionResult(MotionStatus.DONE)
        times, qs = np.asarray(seg.times_s), np.asarray(seg.positions_rad)
        if self.weight < 1.0:  # ramp the arm_sdk weight in at the segment's start
            for i in range(25):
                self.weight = (i + 1) / 25
                self._send(qs[0])
                self.tick()
        t0 = self.world.time
        while True:
            el = self.world.time - t0
            self._send(np.array([np.interp(el, times, qs[:, j]) for j in range(qs.shape[1])]))
            self.tick()
            why = interrupt()
            if why:
                return MotionResult(MotionStatus.STOPPED, why, why)
            if el > times[-1] + 0.3:
                return MotionResult(MotionStatus.DONE)

    def _walk(self, seg, interrupt) -> MotionResult:
        t0 = self.world.time
        while self.world.time - t0 < 2 * seg.duration_s + 10:
            b = self.world.base_state()
            (vx, vy, wz), reached, _ = walk_command(
                (b.position[0], b.position[1], b.yaw), seg.goal, WalkLimits()
            )
            if reached:
                self.world.set_base_velocity(0.0, 0.0, 0.0, 0.1)
                self.tick(25)
                return MotionResult(MotionStatus.DONE)
            self.world.set_base_velocity(vx, vy, wz, 0.2)
            self.tick()
            why = interrupt()
            if why:
                self.world.set_base_velocity(0.0, 0.0, 0.0, 0.1)
                return MotionResult(MotionStatus.STOPPED, why, why)
        return MotionResult(MotionStatus.FAILED, 'walk timed out')

    def _ramp_hand(self, side: str, target: np.ndarray, ramp_s: float, total_s: float) -> None:
        q0 = self.hands[side]
        steps = max(1, int(round(total_s / self.CONTROL_S)))
        ramp = max(1, int(round(ramp_s / self.CONTROL_S)))
        for i in range(steps):
            q = q0 + (target - q0) * min(1.0, (i + 1) / ramp)
            self.hands[side] = q
            self.world.apply_hand(side, q, *np.zeros((2, 7)), np.full(7, 1.5), np.full(7, 0.1))
            self.tick()

    def gripper(self, close: bool, seg=None) -> tuple[bool, str]:
        """Dex3 closure ramps as the unitree backend sends them."""
        side, d = seg.side, seg.duration_s
        closed = self.kin.finger_closed_rad[side]
        if close:
            self._ramp_hand(side, closed * seg.closure, 0.6 * d, d)
            held = self.world.grasp_state()[side]
            return held is not None, f'{side} hand closed on {held}'
        self._ramp_hand(side, closed * seg.release_closure, 0.5 * d, d)  # open gently first
        self._ramp_hand(side, np.zeros(7), 0.1, 0.1 + 0.5 * d)
        return True, f'{side} hand opened'

    def run(self, name: str, dest_xy, speed: float = 0.5) -> Outcome:
        """Carry ``name`` to ``dest_xy``; the model's answer from every stance is the oracle's:
        from where the object is now (in the hand, once grasped) to the destination."""

        def perceive(instruction: str = '') -> TraceInput:
            p = self.world.object_poses([name])[0].position
            rest = self.world.scene.object(name).position[2]  # its centre when on a table
            return TraceInput(arc(p, [*dest_xy, rest]), 'odom')

        runner = GoalRunner(
            self.planner, self, perceive=perceive, watcher=self.watcher, max_replans=0
        )
        goal = GoalSpec(f'put the {name} there', speed_scale=speed, mode='pick_place')
        return runner.run(goal, lambda: False)


#: object -> (robot start x, y, yaw_deg; destination x, y) in the G1 room
G1_CARRIES = {
    'red_cup': ((0.0, 0.0, 0.0), (0.50, 0.32)),
    'blue_block': ((0.0, 0.0, 0.0), (0.46, -0.01)),
    'yellow_bottle': ((0.0, 0.0, 0.0), (0.45, -0.36)),
    'plate': ((1.0, 0.7, 0.0), (1.42, 0.50)),
    'green_bowl': ((1.0, 0.7, 0.0), (1.60, 0.82)),
}


@pytest.mark.slow
@pytest.mark.parametrize('name', list(G1_CARRIES))
def test_g1_carrying_each_object_is_not_a_scene_change_nor_an_obstacle(name):
    start, dest = G1_CARRIES[name]
    sim = G1InProcess(start)
    outcome = sim.run(name, dest)
    # (the head camera moves with the waist while the arm reaches: those frames are skipped)
    assert_no_change(outcome, sim.watcher, min_compared=10)
    assert sim.watcher.last_change is None, 'no change, so no obstacle either'
    end = sim.world.object_poses([name])[0].position
    assert np.linalg.norm(end[:2] - dest) < 0.06, f'{name} was carried to {end}'


@pytest.mark.slow
@pytest.mark.parametrize(
    'region, obstacle, where',
    [
        ('destination', 'blue_block', (0.50, 0.32, 0.7425)),  # on the place point
        ('path corridor', 'yellow_bottle', (0.475, 0.22, 0.80)),  # 16 cm tall, mid-path
    ],
)
def test_g1_an_object_put_in_the_way_during_the_carry_is_seen_there(region, obstacle, where):
    """The red cup carried to (0.50, 0.32); 0.5 s after the grasp something appears."""
    where = np.asarray(where)
    state: dict[str, float] = {}

    def put(sim: G1InProcess) -> None:
        w = sim.world
        if state.get('done') or not any(w.grasp_state().values()):
            return
        state.setdefault('grasped', w.time)
        if w.time - state['grasped'] > 0.5:
            state['done'] = True
            w.set_object_pose(obstacle, where, (0, 0, 0, 1))

    sim = G1InProcess(on_tick=put)
    outcome = sim.run('red_cup', (0.50, 0.32))
    assert state.get('done'), f'the {obstacle} was put there'
    assert not outcome.success and outcome.code == ErrorCode.REPLAN_LIMIT, outcome.message
    change = sim.watcher.last_change
    assert change is not None and change.region == region, change
    # what the G1's obstacle check gets: points on that object, none on the hand or the cup
    pts = change.appeared_points
    assert len(pts) and np.all(np.linalg.norm(pts[:, :2] - where[:2], axis=1) < 0.07), pts
