"""Running an evaluated trace on a simulated robot (``robotracer eval --execute``).

The UR5's plan and run, and what both robots' runs share: the executors' parameters from
``config/`` and the success tolerance.

The G1's run (walking, reaching, grasping) is :mod:`robotracer_eval.g1_execute`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EXECUTE_TOLERANCE_M = 0.03  # the object must end this close to the goal


def executor_parameters(name: str = 'ur5.yaml', node: str = 'ur5_executor') -> dict[str, Any]:
    """An executor's parameters from the workspace's ``config/<name>`` (``<node>`` block).

    Raises:
        FileNotFoundError: the config folder cannot be found.
    """
    import yaml

    from robotracer_sim.common.scene_schema import scene_file_path

    path = scene_file_path('ur5_tabletop.yaml').parents[1] / name
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)[node]['ros__parameters']


def execute_ur5(
    scenes: Any, trace_world: np.ndarray, target: str, goal_world: np.ndarray
) -> dict[str, Any]:
    """Have the simulated UR5 carry out a trace (pick and place), as the executor plans it.

    The product's planner (``trace_executor.ur5.Ur5Planner``, the executor's parameters from
    ``config/ur5.yaml``) turns the trace into timed joint motions and gripper actions; the
    simulator runs them (joint trajectory controller, grasp model) in process.

    Returns:
        ``executed`` (a plan was made and run), ``success`` (the object's centre ends within
        :data:`EXECUTE_TOLERANCE_M` of the goal), ``final_error_m``, ``reason``.
    """
    from trace_executor.errors import PlanningError
    from trace_executor.ur5.planner import MotionSegment, Ur5Planner, Ur5PlannerConfig

    if getattr(scenes, 'planner', None) is None:
        p = executor_parameters()
        scenes.planner = Ur5Planner(
            Ur5PlannerConfig(
                tcp_offset_m=p['tcp_offset_m'],
                approach_height_m=p['approach_height_m'],
                min_tcp_height_m=p['min_tcp_height_m'],
                workspace_min_m=tuple(p['workspace_min_m']),
                workspace_max_m=tuple(p['workspace_max_m']),
            )
        )
    world = scenes.world
    try:
        plan = scenes.planner.plan(trace_world, world.joint_positions(), mode='pick_place')
    except PlanningError as exc:
        return {'executed': False, 'success': False, 'final_error_m': None, 'reason': str(exc)}
    reason = ''
    for seg in plan.segments:
        if isinstance(seg, MotionSegment):
            world.set_trajectory(
                list(seg.joint_names),
                seg.times_s.tolist(),
                seg.positions_rad.tolist(),
                seg.velocities_rad_s.tolist(),
            )
            world.step(seg.duration_s + 0.3)
        else:
            ok, msg = world.set_gripper(seg.close)
            world.step(0.3)
            if not ok:
                reason = f'gripper: {msg}'
                break
    world.step(0.5)
    return run_result(world.object_poses([target])[target].position, goal_world, reason)


def run_result(final: np.ndarray, goal: np.ndarray, reason: str) -> dict[str, Any]:
    """A carried-out run's result.

    Success when the object's centre ends within :data:`EXECUTE_TOLERANCE_M` of the goal and
    nothing failed (``reason`` empty).
    """
    err = float(np.linalg.norm(np.asarray(final) - np.asarray(goal)))
    return {
        'executed': True,
        'success': bool(err < EXECUTE_TOLERANCE_M and not reason),
        'final_error_m': err,
        'reason': reason,
    }
