"""Scene watching with the G1's moving head camera: same-pose comparisons, re-reference when still.

Depth frames are ray-cast here (a table top at 0.72 m and a cup-sized cylinder on it) from the
real head camera pose of the G1 model, so the regions project where they would on the robot.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip('pinocchio')

from trace_executor.g1.kinematics import G1Kinematics, standing_upper_body  # noqa: E402
from trace_executor.g1.stance import stance_matrix  # noqa: E402
from trace_executor.g1.watcher import StanceSceneWatcher  # noqa: E402
from trace_executor.scene_monitor import MonitorConfig  # noqa: E402

W, H = 320, 240
K = np.array(
    [
        [W / 2 / np.tan(np.radians(37.0)), 0, W / 2],
        [0, H / 2 / np.tan(np.radians(29.0)), H / 2],
        [0, 0, 1.0],
    ]
)
TABLE_Z = 0.72


def render(t_odom_cam: np.ndarray, cup_xy: tuple[float, float] | None) -> np.ndarray:
    """z-depth of a table plane and an optional cup (r 3.5 cm, 9 cm tall) on it."""
    v, u = np.mgrid[0:H, 0:W].astype(float)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    r, o = t_odom_cam[:3, :3], t_odom_cam[:3, 3]
    d = rays @ r.T  # odom directions per unit z-depth
    depth = (TABLE_Z - o[2]) / d[..., 2]
    if cup_xy is not None:
        top = (TABLE_Z + 0.09 - o[2]) / d[..., 2]
        hit = o[:2] + top[..., None] * d[..., :2]
        on_cup = np.linalg.norm(hit - np.asarray(cup_xy), axis=-1) < 0.035
        depth = np.where(on_cup, top, depth)
    return np.where(depth > 0, depth, 0.0).astype(np.float32)


def camera(base: tuple[float, float, float], waist_yaw: float = 0.0) -> np.ndarray:
    q = standing_upper_body()
    q[0] = waist_yaw
    return stance_matrix(base[0], base[1], 0.8015, base[2]) @ G1Kinematics().camera_pose(q)


def plan_for(cup: tuple[float, float]) -> SimpleNamespace:
    start = np.array([*cup, TABLE_Z + 0.045])
    end = start + [0.0, -0.18, 0.0]
    trace = np.array([start, start + [0, 0, 0.12], end + [0, 0, 0.12], end])
    return SimpleNamespace(trace_base=trace, mode='pick_place')


def test_reprojects_the_reference_for_small_moves_and_re_references_when_still():
    cam = camera((0.13, -0.02, 0.0))
    watcher = StanceSceneWatcher(MonitorConfig(), robot_points=lambda: None)
    watcher.set_intrinsics(K)
    watcher.on_frame(render(cam, (0.45, 0.12)), cam)
    watcher.arm(plan_for((0.45, 0.12)), holding=False)
    watcher.on_frame(render(cam, (0.45, 0.12)), cam)
    assert watcher.poll() is None, 'nothing changed'
    # the waist turns: the reference is re-projected to the new pose; nothing changed
    moved = camera((0.13, -0.02, 0.0), waist_yaw=0.05)
    watcher.on_frame(render(moved, (0.45, 0.12)), moved)
    assert watcher.poll() is None and watcher.stats['reprojected'] == 1
    # still at the new pose: a new reference, then the cup is taken away -> a change
    for _ in range(2):
        watcher.on_frame(render(moved, (0.45, 0.12)), moved)
        assert watcher.poll() is None
    assert watcher.stats['references'] == 2
    assert watcher.stats['skipped_moving'] == 0
    watcher.on_frame(render(moved, None), moved)
    event = watcher.poll()
    assert event is not None and 'object at the trace start' in event.reason


def test_a_cup_moved_while_the_camera_is_still_is_seen():
    cam = camera((0.0, 0.0, 0.0))
    watcher = StanceSceneWatcher(MonitorConfig(), robot_points=lambda: None)
    watcher.set_intrinsics(K)
    watcher.on_frame(render(cam, (0.45, 0.12)), cam)
    watcher.arm(plan_for((0.45, 0.12)), holding=False)
    watcher.on_frame(render(cam, (0.55, 0.30)), cam)
    assert 'object at the trace start' in _reason(watcher.poll())
    watcher.disarm()
    watcher.on_frame(render(cam, (0.45, 0.12)), cam)
    assert watcher.poll() is None, 'disarmed'


def test_a_cup_moved_while_the_waist_turns_is_seen_and_a_walk_is_not_compared():
    cam = camera((0.0, 0.0, 0.0))
    watcher = StanceSceneWatcher(MonitorConfig(), robot_points=lambda: None)
    watcher.set_intrinsics(K)
    watcher.on_frame(render(cam, (0.45, 0.12)), cam)
    watcher.arm(plan_for((0.45, 0.12)), holding=False)
    for yaw in (0.02, 0.06, 0.1):  # the waist turns; the scene stays
        turned = camera((0.0, 0.0, 0.0), waist_yaw=yaw)
        watcher.on_frame(render(turned, (0.45, 0.12)), turned)
        assert watcher.poll() is None, f'nothing changed (waist {yaw} rad)'
    assert watcher.stats['reprojected'] == 3
    # a 6 cm move of the cup while the waist still turns
    turned = camera((0.0, 0.0, 0.0), waist_yaw=0.12)
    watcher.on_frame(render(turned, (0.45, 0.18)), turned)
    assert 'object at the trace start' in _reason(watcher.poll())
    # a walk: too far to re-project, not compared
    watcher.arm(plan_for((0.45, 0.18)), holding=False)
    walked = camera((0.4, 0.0, 0.0))
    watcher.on_frame(render(walked, None), walked)
    assert watcher.poll() is None and watcher.stats['skipped_moving'] == 1


def _reason(event) -> str:
    return event.reason if event is not None else ''
