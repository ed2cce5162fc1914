import numpy as np
import pytest

from robotracer_eval import geometry3d as g
from robotracer_eval.metrics import Intrinsics
from robotracer_eval.testing import K, scene_arrays

INTR = Intrinsics.from_matrix(K)


def test_object_cloud_of_the_hand_scene():
    depth, mask = scene_arrays()
    cloud = g.object_cloud(mask, depth, INTR)
    # 11 x 11 pixels 1 cm apart at 1 m, one per voxel; the 4 corners fall to the outlier filter
    assert len(cloud) == 117
    np.testing.assert_allclose(cloud[:, 2], 1.0)
    np.testing.assert_allclose(cloud[:, :2].min(axis=0), [-0.05, -0.05], atol=1e-9)
    np.testing.assert_allclose(cloud[:, :2].max(axis=0), [0.05, 0.05], atol=1e-9)


def test_object_cloud_ignores_far_and_missing_depth_and_keeps_the_largest_cluster():
    depth, mask = scene_arrays()
    mask[10:13, 10:13] = 255  # a speck far from the object: a small separate cluster
    depth[45, 45] = 0  # no return
    depth[46, 46] = 16000  # beyond 15 m
    cloud = g.object_cloud(mask, depth, INTR)
    # the speck widens the raw cloud's spread, so the voxel size grows (the benchmark's rule)
    assert len(cloud) >= 10
    assert np.all(np.abs(cloud[:, :2]) <= 0.05 + 1e-9)


def test_statistical_outliers_drop_a_far_point():
    rng = np.random.default_rng(0)
    pts = np.vstack([rng.normal(0, 0.01, (200, 3)), [[1.0, 1.0, 1.0]]])
    kept = g.remove_statistical_outliers(pts)
    assert len(kept) < 201
    assert not np.any(np.all(kept == [1.0, 1.0, 1.0], axis=1))


def test_voxel_down_sample_averages_per_voxel():
    pts = np.array([[0.0, 0, 0], [0.004, 0, 0], [0.05, 0, 0]])
    out = g.voxel_down_sample(pts, 0.01)
    np.testing.assert_allclose(sorted(out[:, 0]), [0.002, 0.05])


def test_dbscan_noise_and_clusters():
    a = np.column_stack([np.arange(12) * 0.01, np.zeros(12), np.zeros(12)])
    b = a + [1.0, 0, 0]
    lone = np.array([[5.0, 5.0, 5.0]])
    labels = g.dbscan_labels(np.vstack([a, b[:6], lone]), eps=0.025, min_points=5)
    assert len(set(labels[:12])) == 1 and labels[0] >= 0
    assert labels[-1] == -1
    big = g.largest_cluster(np.vstack([a, b[:6], lone]), eps=0.025, min_points=5)
    assert len(big) == 12


def test_tsdf_surface_of_a_flat_wall_lies_on_it():
    depth = np.full((100, 100), 1.013, dtype=np.float32)  # not at a voxel centre
    pts = g.tsdf_surface(depth, INTR)
    assert len(pts) > 500
    assert np.all(np.abs(pts[:, 2] - 1.013) < 0.02)


def test_tsdf_ignores_depth_beyond_the_cut():
    assert len(g.tsdf_surface(np.full((50, 50), 5.5, dtype=np.float32), INTR)) == 0
    with pytest.raises(ValueError, match='no surface'):
        g.scene_occupancy(np.full((50, 50), 5500, np.uint16), None, INTR)


def test_a_trace_through_a_wall_collides():
    depth, mask = scene_arrays(wall=True)
    grid = g.scene_occupancy(depth, mask, INTR)
    cloud = g.object_cloud(mask, depth, INTR)
    through = np.array([[0.0, 0.0, 1.0], [0.2, 0.0, 1.0]])  # slides into the wall at 1 m
    ratios = g.collision_ratios(grid, cloud, through)
    assert ratios[0] < 0.05  # the object's own pixels are not obstacles
    assert ratios[1] > 0.8
    assert g.collides(ratios)
    over = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.6], [0.2, 0.0, 0.6]])  # in front of it
    assert not g.collides(g.collision_ratios(grid, cloud, over))


def test_no_wall_no_collision():
    depth, mask = scene_arrays(wall=False)
    grid = g.scene_occupancy(depth, mask, INTR)
    cloud = g.object_cloud(mask, depth, INTR)
    ratios = g.collision_ratios(grid, cloud, np.array([[0.0, 0.0, 1.0], [0.2, 0.0, 1.0]]))
    assert ratios.max() < 0.05


def test_occupancy_lookup_truncates_like_the_benchmark():
    grid = g.OccupancyGrid.from_points(np.array([[0.0, 0.0, 0.0], [0.1, 0.1, 0.1]]), 0.02)
    assert grid.size == 2
    assert grid.occupied(np.array([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0]])).tolist() == [True, False]
    # just below the origin: int() truncates -0.5 to 0, the first voxel
    assert grid.occupied(np.array([[-0.015, -0.015, -0.015]])).tolist() == [True]
    assert grid.occupied(np.array([[-0.05, 0.0, 0.0]])).tolist() == [False]
