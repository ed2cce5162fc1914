"""Scene monitor: real changes in watched regions trigger; noise, robot, far changes do not."""

from __future__ import annotations

import numpy as np
import pytest

from trace_executor.scene_monitor import MonitorConfig, Region, SceneMonitor

W, H = 640, 480
K = np.array([[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]])
CAM_HEIGHT = 1.0
# Camera 1 m above the table at (0.5, 0), looking straight down.
T_BASE_CAM = np.eye(4)
T_BASE_CAM[:3, :3] = np.array([[0, -1, 0], [-1, 0, 0], [0, 0, -1]]).T
T_BASE_CAM[:3, 3] = [0.5, 0.0, CAM_HEIGHT]
T_BASE_CAM[:3, :3] = np.column_stack([[0, -1, 0], [-1, 0, 0], [0, 0, -1]])


def render(boxes: list[tuple[float, float, float, float]], noise: float = 0.0, seed: int = 0):
    """Depth of a table (z = 0) with axis-aligned boxes (cx, cy, half_size, height)."""
    depth = np.full((H, W), CAM_HEIGHT, dtype=np.float32)
    cam_inv = np.linalg.inv(T_BASE_CAM)
    for cx, cy, hs, h in boxes:
        corners = np.array([[cx - hs, cy - hs, h, 1], [cx + hs, cy + hs, h, 1]])
        pc = (cam_inv @ corners.T).T[:, :3]
        u = K[0, 0] * pc[:, 0] / pc[:, 2] + K[0, 2]
        v = K[1, 1] * pc[:, 1] / pc[:, 2] + K[1, 2]
        u0, u1 = sorted(u.astype(int))
        v0, v1 = sorted(v.astype(int))
        depth[max(v0, 0) : max(v1, 0), max(u0, 0) : max(u1, 0)] = CAM_HEIGHT - h
    if noise:
        depth += np.random.default_rng(seed).normal(0, noise, depth.shape).astype(np.float32)
    return depth


CUBE = (0.45, 0.10, 0.025, 0.05)  # the object to pick, 5 cm cube
PLATE = (0.55, -0.20, 0.08, 0.01)


def monitor() -> SceneMonitor:
    m = SceneMonitor(K, T_BASE_CAM, (W, H), MonitorConfig())
    m.set_regions(
        [
            Region('object at trace start', np.array([[0.45, 0.10, 0.025]]), 0.05),
            Region('destination', np.array([[0.55, -0.20, 0.02]]), 0.07),
            Region.corridor(
                'path corridor', np.array([[0.47, 0.02, 0.1], [0.55, -0.20, 0.1]]), 0.04
            ),
        ]
    )
    m.set_reference(render([CUBE, PLATE], noise=0.003, seed=1))
    return m


def test_sensor_noise_alone_is_not_a_change():
    m = monitor()
    for seed in range(2, 6):
        assert m.check(render([CUBE, PLATE], noise=0.003, seed=seed)) is None


def test_object_moved_away_is_detected_in_the_start_region():
    m = monitor()
    moved = (0.45, 0.22, 0.025, 0.05)  # 12 cm sideways
    change = m.check(render([moved, PLATE], noise=0.003, seed=3))
    assert change is not None and change.region == 'object at trace start'
    assert change.median_shift_m > 0.03  # the table is farther than the cube top was
    assert 'object at trace start' in change.reason


def test_obstacle_in_the_corridor_is_detected():
    m = monitor()
    obstacle = (0.50, -0.05, 0.03, 0.15)  # a 15 cm tall block between start and destination
    change = m.check(render([CUBE, PLATE, obstacle], noise=0.003, seed=4))
    assert change is not None and change.region == 'path corridor'
    assert change.median_shift_m < -0.05  # something closer to the camera


def test_changes_outside_the_watched_regions_are_ignored():
    m = monitor()
    far = (0.20, 0.35, 0.04, 0.10)
    assert m.check(render([CUBE, PLATE, far], noise=0.003, seed=5)) is None


def test_the_robot_arm_in_view_is_masked_by_its_kinematics():
    m = monitor()
    # The arm hovers 30 cm above the object: a big near blob over the start region.
    arm_blob = (0.45, 0.10, 0.06, 0.30)
    frame = render([CUBE, PLATE, arm_blob], noise=0.003, seed=6)
    arm_points = np.array(
        [[0.45 + dx, 0.10 + dy, 0.30] for dx in (-0.04, 0, 0.04) for dy in (-0.04, 0, 0.04)]
    )
    assert m.check(frame, robot_points_base=arm_points) is None
    # Without the robot mask the same frame would (wrongly) look like a scene change.
    assert m.check(frame) is not None


def test_bad_use_is_reported():
    m = SceneMonitor(K, T_BASE_CAM, (W, H))
    with pytest.raises(RuntimeError, match='reference'):
        m.check(render([CUBE]))
    m.set_reference(render([CUBE]))
    with pytest.raises(ValueError, match='640x480'):
        m.check(np.ones((240, 320), dtype=np.float32))
    with pytest.raises(ValueError, match='depth_threshold_m'):
        MonitorConfig(depth_threshold_m=0)


def test_moving_the_camera_drops_the_reference():
    m = monitor()
    assert m.has_reference
    moved = T_BASE_CAM.copy()
    moved[0, 3] += 0.2
    m.set_camera(moved)
    assert not m.has_reference and len(m.regions) == 3


def test_an_object_moved_behind_the_hovering_arm_is_still_noticed():
    # The arm's mask disks cover the object's pixels, but the depth there is the table/object,
    # well beyond the arm: those pixels still count, so the move is seen.
    m = monitor()
    arm_points = np.array([[0.45, 0.10, 0.35], [0.45, 0.16, 0.35], [0.45, 0.04, 0.35]])
    m.set_reference(render([CUBE, PLATE], noise=0.003, seed=1), robot_points_base=arm_points)
    moved = (0.45, 0.25, 0.025, 0.05)
    change = m.check(render([moved, PLATE], noise=0.003, seed=7), robot_points_base=arm_points)
    assert change is not None and change.region == 'object at trace start'


def test_an_obstacle_is_located_in_the_base_frame():
    m = monitor()
    obstacle = (0.50, -0.05, 0.03, 0.15)
    change = m.check(render([CUBE, PLATE, obstacle], noise=0.003, seed=4))
    pts = change.appeared_points
    assert len(pts) > 20
    # the changed pixels lie on the obstacle's top face: x, y inside it, z at its height
    centre = np.median(pts, axis=0)
    assert abs(centre[0] - 0.50) < 0.02 and abs(centre[1] + 0.05) < 0.02
    assert abs(centre[2] - 0.15) < 0.02
