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
