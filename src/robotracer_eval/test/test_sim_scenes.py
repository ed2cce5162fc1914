"""``robotracer eval --world``: the oracle is a calibrated model."""

import argparse
import os

import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')

from robotracer_eval import sim_scenes  # noqa: E402


def _args(**kw):
    base = dict(
        world='ur5',
        model='oracle',
        episodes=2,
        seed=5,
        noise=0.0,
        failure_rate=0.0,
        execute=False,
        limit=None,
        model_name=None,
        quiet=True,
        parser='auto',
    )
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.fixture(scope='module')
def runs():
    scenes = sim_scenes.Ur5Scenes()
    try:
        exact = sim_scenes.evaluate_world(_args(), scenes)
        noisy = sim_scenes.evaluate_world(_args(noise=0.3), scenes)
        executed = sim_scenes.evaluate_world(
            _args(episodes=1, execute=True, depth_source='model'), scenes
        )
    finally:
        scenes.close()
    return exact, noisy, executed


def test_zero_noise_scores_100_percent(runs):
    _, s, scores = runs[0]
    assert s['n'] == 2 and s['skipped'] == 0
    assert s['success_rate'] == 1.0 and s['no_collision_rate'] == 1.0
    assert s['dfd'] < 0.01  # answers are rounded to whole 0-1000 pixels and millimetres
    assert all(sc.success for sc in scores)


def test_noise_beyond_the_thresholds_fails(runs):
    _, s, _ = runs[1]
    # 0.3 m per axis: a point lands within 0.2 m of its target with probability ~0.2
    assert s['success_rate'] < 0.7
    assert s['dfd'] > 0.3


def test_the_robot_executes_the_oracle_trace(runs):
    _, s, scores = runs[2]
    assert s['execution_success_rate'] == 1.0, scores[0].execution
    assert scores[0].execution['final_error_m'] < 0.03


def test_bad_options():
    with pytest.raises(ValueError, match='episodes'):
        sim_scenes.evaluate_world(_args(episodes=0))


def test_ground_truth_obstacles_leave_contact_free():
    import numpy as np

    solid = sim_scenes.SolidOccupancy([(np.zeros(3), np.eye(3), np.array([0.1, 0.1, 0.1]))])
    pts = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.1], [0.0, 0.0, 0.2]])
    assert solid.occupied(pts).tolist() == [True, False, False]


@pytest.fixture(scope='module')
def g1_jitter():
    import numpy as np

    scenes = sim_scenes.G1Scenes()
    try:
        home = scenes.world.camera_pose()
        rng = np.random.default_rng(3)
        poses = []
        for _ in range(3):
            ep = sim_scenes.make_episode(scenes, rng, 0.03)
            if ep is not None:
                poses.append((ep['t_world_camera'], scenes.snapshot().t_world_camera))
        kw = dict(world='g1', episodes=3, seed=2, camera_jitter=0.03)
        runs = [sim_scenes.evaluate_world(_args(**kw), scenes) for _ in range(2)]
        # 30 scenes of seed 0: before the draws were checked, two of them scored 0 with the
        # exact oracle (the cup hidden by the head's own shell; a cube hidden behind a
        # cylinder leaning over it), and seed 3 drew a goal where another object stood
        kw = dict(world='g1', episodes=30, seed=0, camera_jitter=0.03)
        runs.append(sim_scenes.evaluate_world(_args(**kw), scenes))
        after = scenes.world.camera_pose()
    finally:
        scenes.close()
    return home, poses, runs, after


def test_g1_head_camera_moves_per_episode(g1_jitter):
    import numpy as np

    home, poses, _, after = g1_jitter
    assert len(poses) >= 2
    for rendered, truth in poses:
        assert np.allclose(rendered, truth)  # the oracle sees from the rendered camera
        assert 1e-3 < np.linalg.norm(rendered[:3, 3] - home[:3, 3]) < 0.2
    assert np.linalg.norm(poses[0][0][:3, 3] - poses[1][0][:3, 3]) > 1e-3
    assert not np.allclose(poses[0][0][:3, :3], poses[1][0][:3, :3])
    assert np.allclose(after, home)  # a reused world's camera is put back


def test_g1_jittered_oracle_scores_100_percent_reproducibly(g1_jitter):
    _, _, runs, _ = g1_jitter
    (_, s, scores), (_, s2, scores2) = runs[:2]
    assert s['camera_jitter_m'] == 0.03 and s['n'] == 3
    assert s['start_rate'] == 1.0 and s['end_rate'] == 1.0 and s['success_rate'] == 1.0
    assert s['dfd'] < 0.01
    s.pop('episodes_per_min'), s2.pop('episodes_per_min')
    assert s == s2
    assert [sc.end_distance for sc in scores] == [sc.end_distance for sc in scores2]


def test_g1_jittered_exact_oracle_is_perfect_on_many_scenes(g1_jitter):
    """Calibration: zero noise scores 100 % on every drawn scene (its target in view, its goal
    free), with the camera moved per episode."""
    _, _, runs, _ = g1_jitter
    _, s, _ = runs[2]
    assert s['n'] >= 28
    rates = ('start_rate', 'end_rate', 'no_collision_rate', 'success_rate')
    assert {k: s[k] for k in rates} == dict.fromkeys(rates, 1.0)


def test_a_goal_where_another_object_stands_is_not_drawn():
    import numpy as np

    class Obj:
        def __init__(self, name, xy, half, shape='box'):
            self.name, self.shape = name, shape
            self.position = np.array([*xy, 0.8])
            self.world_half_extents = np.array([half, half, half])

    class Snap:
        objects = [Obj('cup', (0.0, 0.0), 0.04), Obj('can', (0.3, 0.0), 0.03)]

        def get(self, name):
            return next(o for o in self.objects if o.name == name)

    snap = Snap()
    assert sim_scenes._goal_taken(snap, 'cup', None, np.array([0.32, 0.02, 0.8]))
    assert not sim_scenes._goal_taken(snap, 'cup', None, np.array([0.15, 0.0, 0.8]))
    # "in" / "on" a holder: the holder itself is where it goes
    assert not sim_scenes._goal_taken(snap, 'cup', 'can', np.array([0.3, 0.0, 0.85]))
