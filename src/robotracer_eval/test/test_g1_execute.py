"""``robotracer eval --world g1 --execute``: the G1 planner's plan run on the in-process G1."""

import argparse
import os

import numpy as np
import pytest

pytest.importorskip('mujoco')
pytest.importorskip('pink')
os.environ.setdefault('MUJOCO_GL', 'egl')

from robotracer_eval import execute, g1_execute, sim_scenes  # noqa: E402


def _args(**kw):
    base = dict(
        world='g1',
        model='oracle',
        episodes=2,
        seed=1,
        noise=0.0,
        failure_rate=0.0,
        execute=True,
        camera_jitter=0.03,  # the CLI's default: the head camera moved on the head
        limit=None,
        model_name=None,
        quiet=True,
        parser='auto',
    )
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.fixture(scope='module')
def run():
    scenes = sim_scenes.G1Scenes()
    calls = []
    real = g1_execute.execute_g1

    def spy(sc, trace, target, goal, perceive=None):
        out = real(sc, trace, target, goal, perceive)
        end = sc.world.object_poses([target])[0].position.copy()
        calls.append((target, np.asarray(goal, dtype=float), end, out))
        return out

    g1_execute.execute_g1 = spy
    try:
        result = sim_scenes.evaluate_world(_args(), scenes)
        world = scenes.world
        n_calls = len(calls)
        t0, base0 = world.time, world.base_state().position.copy()
        depth_mm = np.zeros((scenes.height, scenes.width), dtype=np.uint16)
        ep = {'t_world_camera': np.eye(4), 'target': scenes.names[0], 'goal_world': np.zeros(3)}
        ep['row'] = {'prompt': 'put it there'}
        malformed = sim_scenes._execute(scenes, ep, 'I cannot see it.', depth_mm, 'model')
        far = np.array([[10.0, 0.0, 0.8], [10.2, 0.0, 0.8]])
        bad = real(scenes, far, scenes.names[0], far[-1])
        moved = (world.time - t0, float(np.linalg.norm(world.base_state().position - base0)))
        malformed_calls = len(calls) - n_calls
    finally:
        g1_execute.execute_g1 = real
        scenes.close()
    return result, calls, bad, moved, (malformed, malformed_calls)


def test_the_g1_carries_the_object_to_its_goal(run):
    (_, summary, scores), calls, *_ = run
    assert summary['n'] == 2 and summary['depth_source'] == 'model'
    assert len(calls) == 2, 'both answers are executed'
    done = [np.linalg.norm(end - goal) for _, goal, end, _ in calls]
    assert min(done) < execute.EXECUTE_TOLERANCE_M, calls  # by the object's position
    assert any(out['success'] for *_, out in calls)
    assert [sc.execution for sc in scores] == [out for *_, out in calls]
    assert summary['execution_success_rate'] >= 0.5


def test_a_malformed_answer_is_not_executed(run):
    *_, (moved_dt, moved_m), (ex, n_calls) = run
    assert not ex['executed'] and not ex['success'] and ex['final_error_m'] is None
    assert ex['reason'] and n_calls == 0
    assert moved_dt == 0.0 and moved_m == 0.0, 'the robot did not move'


def test_a_trace_out_of_reach_is_not_executed(run):
    _, _, bad, (dt, moved), _ = run
    assert not bad['executed'] and not bad['success'], bad
    assert 'away' in bad['reason'] or 'WORKSPACE' in bad['reason'], bad['reason']
    assert dt == 0.0 and moved == 0.0, 'the robot did not move'


def test_planner_config_is_the_nodes():
    from trace_executor.nodes.g1_parameters import planner_config

    cfg = planner_config({'reach_tolerance_y_m': 0.1, 'arm_rate_hz': 25.0, 'grip_closure': 0.5})
    assert cfg.reach.tolerance_y == 0.1 and cfg.sample_period_s == 0.04
    assert cfg.release_closure == pytest.approx(min(0.33, 0.45))
