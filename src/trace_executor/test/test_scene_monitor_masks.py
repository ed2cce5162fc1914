"""Robot masks of the scene monitor: spheres, the held object, frames that arrive late.

Synthetic depth (a camera 1 m above a table, looking down; boxes drawn as their top faces), fed
through :class:`PlanSceneWatcher` (what both executor nodes use) with a simulated clock. The
simulator-rendered versions of these cases are in test_no_false_replans.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from trace_executor import body_mask
from trace_executor.body_mask import BodyMaskHistory, RobotMask, chain_spheres, mask_spheres
from trace_executor.execution import SceneEvent
from trace_executor.plan_watcher import PlanSceneWatcher
from trace_executor.scene_monitor import MonitorConfig, Region, SceneMonitor

W, H = 640, 480
K = np.array([[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]])
T_BASE_CAM = np.eye(4)
T_BASE_CAM[:3, :3] = np.column_stack([[0, -1, 0], [-1, 0, 0], [0, 0, -1]])
T_BASE_CAM[:3, 3] = [0.5, 0.0, 1.0]


def render(boxes) -> np.ndarray:
    """Depth of the table (z = 0) and boxes ``(cx, cy, half_size, bottom, top)``."""
    depth = np.full((H, W), 1.0, dtype=np.float32)
    inv = np.linalg.inv(T_BASE_CAM)
    for cx, cy, hs, _, top in sorted(boxes, key=lambda b: b[4]):
        c = np.array([[cx - hs, cy - hs, top, 1], [cx + hs, cy + hs, top, 1]])
        pc = (inv @ c.T).T[:, :3]
        u = np.sort((K[0, 0] * pc[:, 0] / pc[:, 2] + K[0, 2]).astype(int))
        v = np.sort((K[1, 1] * pc[:, 1] / pc[:, 2] + K[1, 2]).astype(int))
        depth[max(v[0], 0) : max(v[1], 0), max(u[0], 0) : max(u[1], 0)] = 1.0 - top
    return depth


START, END = np.array([0.45, 0.20, 0.03]), np.array([0.55, -0.20, 0.03])
TRACE = np.array([START, START + [0, 0, 0.15], END + [0, 0, 0.15], END])
PLAN = SimpleNamespace(trace_base=TRACE, mode='pick_place')


class FakeRobot:
    """A hand (a 5 cm sphere) at ``hand`` with a top-down orientation, and a clock."""

    def __init__(self) -> None:
        self.t = 0.0
        self.hand = START + [0, 0, 0.05]

    def mask(self) -> RobotMask:
        pose = np.eye(4)
        pose[:3, 3] = self.hand
        return RobotMask(np.array([[*self.hand, 0.05]]), pose)

    def boxes(self, carried: float | None) -> list[tuple]:
        """The hand as a 4 cm box, and the carried object below it (half size ``carried``,
        6 cm tall: a bowl)."""
        x, y, z = self.hand
        out = [(x, y, 0.04, z - 0.02, z + 0.02)]
        if carried:
            out.append((x, y, carried, z - 0.09, z - 0.03))
        return out


def watcher(robot: FakeRobot, **kw) -> PlanSceneWatcher:
    w = PlanSceneWatcher(MonitorConfig(), robot.mask, clock=lambda: robot.t, **kw)
    w.set_intrinsics(K)
    return w


def test_sphere_masks_have_their_own_radius_and_points_the_default():
    assert mask_spheres(None, 0.09).shape == (0, 4)
    pts = mask_spheres(np.zeros((3, 3)), 0.09)
    assert pts.shape == (3, 4) and np.all(pts[:, 3] == 0.09)
    assert np.all(mask_spheres(RobotMask(np.ones((2, 4)) * 0.2), 0.09)[:, 3] == 0.2)
    with pytest.raises(ValueError, match='robot mask'):
        mask_spheres(np.zeros((3, 2)), 0.09)
    chain = chain_spheres(np.array([[0, 0, 0], [0, 0, 0.2]]), 0.05, step_m=0.05)
    assert len(chain) == 5 and np.all(chain[:, 3] == 0.05)
    # A 12 cm block under a 3 cm sphere is mostly outside the sphere's disk: still a change.
    m = SceneMonitor(K, T_BASE_CAM, (W, H), MonitorConfig())
    m.set_regions([Region('spot', np.array([[0.5, 0.0, 0.05]]), 0.08)])
    m.set_reference(render([]))
    frame = render([(0.5, 0.0, 0.06, 0.0, 0.12)])
    assert m.check(frame, np.array([[0.5, 0.0, 0.12, 0.03]])) is not None
    assert m.check(frame, np.array([[0.5, 0.0, 0.12, 0.12]])) is None


def test_the_held_object_is_carried_with_the_hand_from_grasp_to_release():
    robot = FakeRobot()
    history = BodyMaskHistory(robot.mask, 0.09, held_radius_m=0.1, clock=lambda: robot.t)
    history.sample(force=True)
    assert len(history.spheres_since(0.0)) == 1
    history.grasp(robot.hand - [0, 0, 0.06])  # the object's centre, 6 cm below the hand
    assert history.holding
    robot.t, robot.hand = 1.0, robot.hand + [0.1, -0.2, 0.1]
    history.sample()
    now = history.spheres_since(1.0)
    held = now[now[:, 3] == 0.1]
    assert np.allclose(held[0, :3], robot.hand - [0, 0, 0.06]), 'carried with the hand'
    # a trace start far from the hand (a perception error) is clamped near the hand
    history.release()
    history.grasp(robot.hand + [0.5, 0, 0])
    assert np.linalg.norm(history.held_offset) == pytest.approx(history.max_held_offset_m)
    history.release()
    robot.t = 2.0
    history.sample(force=True)
    assert not history.holding and len(history.spheres_since(1.9)) == 1


def test_carrying_a_box_along_the_path_is_not_a_change_nor_an_obstacle():
    robot = FakeRobot()
    w = watcher(robot)
    w.on_frame(render(robot.boxes(None) + [(*START[:2], 0.06, 0.0, 0.06)]), T_BASE_CAM)
    w.arm(PLAN, holding=False)
    robot.t += 0.5
    w.on_frame(render(robot.boxes(0.06)), T_BASE_CAM)  # grasped: the box is in the hand
    w.arm(PLAN, holding=True)
    for s in np.linspace(0.0, 1.0, 15):
        robot.t += 0.1
        robot.hand = (1 - s) * (START + [0, 0, 0.2]) + s * (END + [0, 0, 0.2])
        w.on_frame(render(robot.boxes(0.06)), T_BASE_CAM)
        assert w.poll() is None, f'false change at {s:.2f}: {w.last_change}'
    assert w.stats['compared'] == 15 and w.last_change is None


def test_without_the_held_object_mask_the_same_carry_looks_like_a_change():
    robot = FakeRobot()
    w = watcher(robot, held_object_radius_m=0.0)
    w.on_frame(render(robot.boxes(0.06)), T_BASE_CAM)
    w.arm(PLAN, holding=True)
    reasons = []
    for s in np.linspace(0.0, 1.0, 15):
        robot.t += 0.1
        robot.hand = (1 - s) * (START + [0, 0, 0.2]) + s * (END + [0, 0, 0.2])
        w.on_frame(render(robot.boxes(0.06)), T_BASE_CAM)
        reasons.append(w.poll())
    assert any(r and 'something appeared' in r.reason for r in reasons), reasons


def test_a_late_frame_is_masked_with_where_the_robot_was_when_it_was_taken():
    def run(latency_s: float) -> str | None:
        robot = FakeRobot()
        robot.hand = START + [0, 0, 0.2]
        w = watcher(robot, mask_latency_s=latency_s)
        w.on_frame(render(robot.boxes(None)), T_BASE_CAM)
        w.arm(PLAN, holding=True)
        out = None
        for s in np.linspace(0.0, 1.0, 20):
            robot.t += 0.05
            robot.hand = (1 - s) * (START + [0, 0, 0.2]) + s * (END + [0, 0, 0.2])
            w.poll()  # the goal thread samples the robot's mask at its control rate
            frame = render(robot.boxes(None))  # taken now ...
            robot.t += 0.15  # ... delivered 150 ms later, the hand 7 cm further on
            robot.hand = robot.hand + (END - START) * 0.15 / 1.0
            w.on_frame(frame, T_BASE_CAM)
            out = out or w.poll()
        return out

    assert run(0.3) is None
    assert run(0.0) is not None, 'a mask of the robot now misses where it was'


def test_a_frame_later_than_the_latency_window_is_masked_from_its_stamp():
    """A starved camera or subscriber delivers a frame 0.8 s after it was taken (the window is
    0.3 s): masked from when it was taken, going by its age, it shows no change; without its age
    the robot's pose then is missed and the hand reads as something that appeared."""

    def run(with_age: bool) -> SceneEvent | None:
        robot = FakeRobot()
        robot.hand = START + [0, 0, 0.2]
        w = watcher(robot, mask_latency_s=0.3)
        w.on_frame(render(robot.boxes(0.06)), T_BASE_CAM)
        w.arm(PLAN, holding=True)
        out = None
        for s in np.linspace(0.0, 1.0, 12):
            robot.t += 0.1
            robot.hand = (1 - s) * (START + [0, 0, 0.2]) + s * (END + [0, 0, 0.2])
            w.poll()  # the goal thread samples the mask
            frames.append((robot.t, render(robot.boxes(0.06))))
            taken, frame = frames[0]
            if robot.t - taken >= 0.8:
                frames.pop(0)
                w.on_frame(frame, T_BASE_CAM, robot.t - taken if with_age else None)
                out = out or w.poll()
        return out

    frames: list = []
    assert run(with_age=True) is None
    frames.clear()
    event = run(with_age=False)
    assert event is not None and 'appeared' in event.reason, event


def test_a_frame_older_than_max_frame_age_is_not_compared_and_a_foreign_clock_is_ignored():
    robot = FakeRobot()
    logs: list[str] = []
    w = watcher(robot, max_frame_age_s=1.0, log=logs.append)
    w.on_frame(render(robot.boxes(0.06)), T_BASE_CAM)
    w.arm(PLAN, holding=True)
    block = (0.50, 0.0, 0.025, 0.0, 0.16)
    robot.t += 0.1
    w.on_frame(render(robot.boxes(0.06) + [block]), T_BASE_CAM, 1.5)
    assert w.poll() is None and w.stats['skipped_stale'] == 1, 'a 1.5 s old frame tells nothing'
    robot.t += 0.1
    w.on_frame(render(robot.boxes(0.06) + [block]), T_BASE_CAM, 0.1)
    assert w.poll() is not None, 'a fresh frame with the block is a change'
    w.on_frame(render(robot.boxes(0.06)), T_BASE_CAM, -3600.0)  # sim time vs wall time
    assert any('clocks disagree' in m for m in logs), logs


def test_a_starved_goal_thread_still_masks_where_the_hand_passed_between_samples():
    """The goal thread sampled the robot's mask 0.3 s apart (a loaded machine) while the hand
    carried a box 41 cm; a frame taken halfway shows them where neither sample has them: the
    volume swept between the samples is masked. Once the window has passed, an object put
    where the hand went is a change again."""
    robot = FakeRobot()
    a, b = START + [0, 0, 0.2], END + [0, 0, 0.2]
    robot.hand = a.copy()
    w = watcher(robot)
    w.on_frame(render(robot.boxes(0.06)), T_BASE_CAM)
    w.arm(PLAN, holding=True)
    robot.t += 0.15
    robot.hand = (a + b) / 2
    frame = render(robot.boxes(0.06))  # taken halfway
    robot.t += 0.15
    robot.hand = b.copy()
    w.on_frame(frame, T_BASE_CAM)  # delivered with the next sample
    assert w.poll() is None, w.last_change
    tower = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, 0.03, 0.0, 0.16)
    for _ in range(8):  # the hand rests at the end; 0.4 s later a tower is put on the path
        robot.t += 0.05
        w.on_frame(render(robot.boxes(0.06) + [tower]), T_BASE_CAM)
        event = w.poll()
    assert event is not None and 'path corridor' in event.reason, event


def test_the_swept_volume_is_filled_at_half_a_radius_and_only_between_matching_samples():
    one = np.array([[0.0, 0.0, 0.0, 0.05]])
    swept = body_mask._swept(one, one + [0.13, 0, 0, 0])
    xs = [s[0, 0] for s in swept]
    assert len(xs) == 5 and np.all(np.diff(xs) > 0) and 0 < xs[0] and xs[-1] < 0.13
    assert body_mask._swept(one, one + [0.02, 0, 0, 0]) == [], 'a small step needs none'
    assert body_mask._swept(one, np.vstack([one, one])) == [], 'different masks'


def test_an_object_put_in_the_path_while_carrying_is_a_change_located_there():
    robot = FakeRobot()
    w = watcher(robot)
    robot.hand = START + [0, 0, 0.2]
    w.on_frame(render(robot.boxes(0.06)), T_BASE_CAM)
    w.arm(PLAN, holding=True)
    robot.t += 0.1
    robot.hand = START + [0.02, -0.08, 0.2]
    block = (0.50, 0.0, 0.025, 0.0, 0.16)  # 5 cm block, 16 cm tall, under the corridor
    w.on_frame(render(robot.boxes(0.06) + [block]), T_BASE_CAM)
    event = w.poll()
    assert event is not None and 'path corridor' in event.reason
    pts = event.obstacles
    assert len(pts) and np.all(np.abs(pts[:, :2] - block[:2]) < 0.04), pts
