"""The moveit_py backend: what runs here, and MoveIt itself where moveit_py exists.

moveit_py is not on PyPI: here the backend must refuse to start naming what is missing. What
runs here: its parameters (``moveit_py.planning: own_path | moveit``, the pipeline), the check
of MoveIt's parameters that the bringup writes (:func:`robotracer_ros.bringup
.moveit_py_config_file`, from a ``moveit_configs_utils`` stand-in), the straight pieces MoveIt
plans, and the plan requests made through moveit_py's Jazzy API (``PlanningComponent``,
``PlanRequestParameters``) against a recorder with the bindings' argument names. The test that
drives MoveIt needs the docker image and is skipped here with that reason; its stop behaviour
(stop, then confirm from /joint_states) is the one the ``moveit`` backend's stand-in tests
cover.
"""

from __future__ import annotations

import importlib.util
import math
import re

import numpy as np
import pytest

from trace_executor.backends.moveit_py import (
    MOVEIT_PY_MISSING,
    PILZ,
    MoveItPyBackend,
    MoveItPyOptions,
    load_moveit_config,
    segment_points,
    straight_pieces,
)
from trace_executor.execution import BackendError
from trace_executor.ur5 import UR5_HOME, UR5_JOINT_NAMES, Ur5Planner

HAVE_MOVEIT_PY = importlib.util.find_spec('moveit') is not None


def test_refuses_to_start_without_moveit_py() -> None:
    if HAVE_MOVEIT_PY:
        pytest.skip('moveit_py is installed here: the refusal cannot happen')
    with pytest.raises(BackendError) as err:
        MoveItPyBackend(None, UR5_JOINT_NAMES)  # fails before touching the node
    assert str(err.value).startswith(MOVEIT_PY_MISSING)


def test_segment_points_leave_out_the_current_state() -> None:
    planner = Ur5Planner()
    trace = np.array(
        [[0.40 + 0.1 * math.cos(a), 0.1 * math.sin(a), 0.12] for a in np.linspace(0, 3, 6)]
    )
    (seg,) = planner.plan(trace, np.array(UR5_HOME), mode='follow', speed_scale=0.5).motions
    times, q, v, a = segment_points(seg)
    assert times[0] > 0 and times[-1] == pytest.approx(seg.times_s[-1])
    assert q.shape == v.shape == a.shape == (len(seg.times_s) - 1, 6)
    np.testing.assert_allclose(q[-1], seg.positions_rad[-1])


@pytest.mark.ros_install
def test_moveit_py_checks_and_executes_on_a_ros_install() -> None:
    if not HAVE_MOVEIT_PY:
        pytest.skip(
            'needs moveit_py (MoveIt 2 Python bindings, not on PyPI) and ur_moveit_config: run '
            'in the docker image with ros2 launch (MoveItPy reads its config from launch)'
        )
    pytest.skip(
        'run through launch_testing in the docker image: MoveItPy needs the robot description '
        "from the UR driver and ur_moveit_config's parameters (robot_backend:=moveit_py)"
    )


# --- parameters ---------------------------------------------------------------------------------


def _declared(*overrides: str) -> dict:
    """ur5_executor's parameters as the node declares them, with command-line overrides."""
    import rclpy

    from robotracer_ros.parameters import declare_all
    from trace_executor.nodes.common import COMMON_PARAMS
    from trace_executor.nodes.ur5_executor import PARAMS

    context = rclpy.Context()
    rclpy.init(args=['--ros-args', *[a for o in overrides for a in ('-p', o)]], context=context)
    node = rclpy.create_node('ur5_executor_params', context=context)
    try:
        return declare_all(node, COMMON_PARAMS + PARAMS)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_planning_is_selected_by_a_parameter() -> None:
    from robotracer_ros.parameters import ConfigError

    default = MoveItPyOptions.from_params(_declared())
    assert (default.planning, default.config_file) == ('own_path', '')
    options = MoveItPyOptions.from_params(
        _declared('moveit_py.planning:=moveit', 'moveit_py.config_file:=/tmp/moveit.yaml')
    )
    assert options == MoveItPyOptions(
        config_file='/tmp/moveit.yaml', planning='moveit', pipeline=PILZ, planner_id='LIN'
    )
    with pytest.raises(ConfigError, match='moveit_py.planning'):
        _declared('moveit_py.planning:=ompl')
    p = dict(_declared(), **{'moveit_py.planning': 'moveit', 'moveit_py.planner_id': ''})
    with pytest.raises(ValueError, match='needs moveit_py.pipeline and moveit_py.planner_id'):
        MoveItPyOptions.from_params(p)


# --- MoveIt's parameters: what the bringup writes, what the backend checks ---------------------


def _write(tmp_path, data) -> str:
    import yaml

    path = tmp_path / 'moveit.yaml'
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_missing_moveit_parameters_are_named(tmp_path) -> None:
    with pytest.raises(BackendError) as err:
        load_moveit_config(MoveItPyOptions())
    assert str(err.value).startswith(
        "moveit_py needs MoveIt's parameters: moveit_py.config_file is empty; the bringup writes "
        'it from ur_moveit_config'
    )
    with pytest.raises(BackendError, match='does not exist'):
        load_moveit_config(MoveItPyOptions(config_file=str(tmp_path / 'none.yaml')))
    bad = _write(tmp_path, {'ur5_executor': {'ros__parameters': {}}})
    with pytest.raises(BackendError, match='not a parameter file with a /\\*\\* block'):
        load_moveit_config(MoveItPyOptions(config_file=bad))
    no_srdf = _write(tmp_path, {'/**': {'ros__parameters': {'planning_pipelines': ['ompl']}}})
    with pytest.raises(BackendError, match='lacks robot_description_semantic'):
        load_moveit_config(MoveItPyOptions(config_file=no_srdf))
    ompl_only = _write(
        tmp_path,
        {
            '/**': {
                'ros__parameters': {
                    'robot_description_semantic': '<robot name="ur5"/>',
                    'planning_pipelines': {'pipeline_names': ['ompl']},
                }
            }
        },
    )
    assert load_moveit_config(MoveItPyOptions(config_file=ompl_only))  # own_path: fine
    with pytest.raises(BackendError) as err:
        load_moveit_config(MoveItPyOptions(config_file=ompl_only, planning='moveit'))
    assert (
        f'plans with the {PILZ} pipeline, which MoveIt does not load here '
        '(planning_pipelines.pipeline_names: ompl)'
    ) in str(err.value)


def test_the_bringups_moveit_parameters_are_what_the_backend_needs(monkeypatch, tmp_path) -> None:
    import sys

    from robotracer_ros import bringup
    from robotracer_ros.testing import moveit_configs

    monkeypatch.setitem(sys.modules, 'moveit_configs_utils', moveit_configs.module())
    values = bringup.UR5.resolve({'sim': 'false', 'robot_ip': '10.0.0.2'})
    path = bringup.moveit_py_config_file(values, str(tmp_path))
    params = load_moveit_config(MoveItPyOptions(config_file=path, planning='moveit'))
    assert PILZ in params['planning_pipelines']['pipeline_names']


# --- planning: moveit (straight pieces through PlanningComponent) --------------------------------


def _pick_plan():
    planner = Ur5Planner()
    trace = np.array([[0.45, -0.20, 0.0225], [0.45, -0.05, 0.10], [0.45, 0.10, 0.0225]])
    return planner, planner.plan(trace, np.array(UR5_HOME), mode='pick_place', speed_scale=0.4)


def test_straight_pieces_end_at_the_key_poses_and_the_tool_moves_straight_between_them() -> None:
    _, plan = _pick_plan()
    pieces = straight_pieces(plan)
    keys = set(plan.tool_path.key_indices)
    assert set(pieces) == {tuple(m.path_range) for m in plan.motions}
    assert len(plan.motions) >= 3  # pick_place: to the grasp, carry, retreat
    pos = plan.tool_path.positions
    for (a, b), targets in pieces.items():
        ends = [k for k in sorted(keys) if a < k < b] + [b]
        assert len(targets) == len(ends)
        for k, q in zip(ends, targets, strict=True):
            np.testing.assert_allclose(q, plan.joint_path_rad[k])
        for s, e in zip([a, *ends[:-1]], ends, strict=True):  # each piece is a straight line
            d = pos[e] - pos[s]
            if np.linalg.norm(d) < 1e-9:
                continue
            off = np.cross(pos[s : e + 1] - pos[s], d / np.linalg.norm(d))
            assert np.abs(off).max() < 1e-9


class _State:
    """moveit.core.robot_state.RobotState (the calls the backend makes)."""

    def __init__(self, robot_model) -> None:
        self.robot_model = robot_model
        self.q = None

    def set_joint_group_positions(self, joint_model_group_name, position_values) -> None:
        self.group = joint_model_group_name
        self.q = np.array(position_values, dtype=float)

    def update(self, force=False) -> None:
        pass


class _Request:
    """moveit.planning.PlanRequestParameters: its constructor takes (moveit_cpp, namespace)."""

    def __init__(self, moveit_cpp, ns) -> None:
        self.moveit_cpp, self.ns = moveit_cpp, ns
        self.planner_id = self.planning_pipeline = ''
        self.planning_attempts, self.planning_time = 5, 1.0
        self.max_velocity_scaling_factor = self.max_acceleration_scaling_factor = 1.0


class _Component:
    """moveit.planning.PlanningComponent with the bindings' argument names; plans straight."""

    def __init__(self, fail_at: int = -1, jump_at: int = -1) -> None:
        self.calls: list[tuple] = []
        self.start = np.array(UR5_HOME, dtype=float)
        self.goal = None
        self.fail_at, self.jump_at = fail_at, jump_at

    def set_start_state_to_current_state(self) -> None:
        self.calls.append(('start', 'current'))

    def set_start_state(self, configuration_name=None, robot_state=None) -> None:
        self.calls.append(('start', robot_state.q.copy()))
        self.start = robot_state.q

    def set_goal_state(
        self,
        configuration_name=None,
        robot_state=None,
        pose_stamped_msg=None,
        pose_link=None,
        motion_plan_constraints=None,
    ) -> bool:
        self.calls.append(('goal', robot_state.q.copy()))
        self.goal = robot_state.q
        return True

    def plan(
        self,
        single_plan_parameters=None,
        multi_plan_parameters=None,
        planning_scene=None,
        solution_selection_function=None,
        stopping_criterion_callback=None,
    ):
        from types import SimpleNamespace

        from builtin_interfaces.msg import Duration
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        i = sum(1 for c in self.calls if c[0] == 'plan')
        self.calls.append(('plan', single_plan_parameters))
        ok = i != self.fail_at
        jt = JointTrajectory(joint_names=list(reversed(UR5_JOINT_NAMES)))  # MoveIt's order
        for k, f in enumerate(np.linspace(0.0, 1.0, 11)):
            q = self.start + f * (self.goal - self.start)
            if i == self.jump_at and k == 5:
                q = q + np.array([0, 0, 1.0, 0, 0, 0])
            jt.points.append(
                JointTrajectoryPoint(
                    positions=[float(x) for x in reversed(q)],
                    time_from_start=Duration(sec=k, nanosec=0),
                )
            )
        msg = SimpleNamespace(joint_trajectory=jt)
        return (
            SimpleNamespace(
                trajectory=SimpleNamespace(get_robot_trajectory_msg=lambda joint_filter=(): msg),
                error_code=SimpleNamespace(val=1 if ok else -1),
            )
            if ok
            else _Failed()
        )


class _Failed:
    error_code = type('E', (), {'val': -1})()

    def __bool__(self) -> bool:
        return False


def _backend(component: _Component) -> MoveItPyBackend:
    """The backend's planning half, without MoveItPy (not importable here)."""
    b = object.__new__(MoveItPyBackend)
    b.options = MoveItPyOptions(config_file='unused', planning='moveit')
    b.moveit = object()
    b.robot_model = object()
    b.group_name = 'ur_manipulator'
    b.joint_names = tuple(UR5_JOINT_NAMES)
    b.max_jump_rad = 0.3
    b.planning_component = component
    b._RobotState = _State
    b._PlanRequestParameters = _Request
    b._pieces, b._speed_scale = {}, 1.0
    return b


def test_moveit_plans_each_straight_piece_with_pilz_lin_from_where_the_last_ended() -> None:
    _, plan = _pick_plan()
    component = _Component()
    b = _backend(component)
    seg = plan.motions[0]
    msgs, why = b.plan_pieces(seg)
    assert why == 'no plan was handed to the moveit_py backend for this motion (use_plan)'
    b.use_plan(plan)
    msgs, why = b.plan_pieces(seg)
    assert why == '' and msgs is not None
    targets = straight_pieces(plan)[tuple(seg.path_range)]
    assert len(msgs) == len(targets)
    kinds = [c[0] for c in component.calls]
    assert kinds == ['start', 'goal', 'plan'] * len(targets)
    assert component.calls[0] == ('start', 'current')
    for i, q in enumerate(targets):
        np.testing.assert_allclose(component.calls[3 * i + 1][1], q)
        if i:  # the next piece starts where the last one was planned to end
            np.testing.assert_allclose(component.calls[3 * i][1], targets[i - 1])
        req = component.calls[3 * i + 2][1]
        assert (req.planning_pipeline, req.planner_id, req.ns) == (PILZ, 'LIN', '')
        assert req.max_velocity_scaling_factor == pytest.approx(0.4)  # the goal's speed
        assert req.max_acceleration_scaling_factor == pytest.approx(0.4)


def test_a_piece_moveit_cannot_plan_or_that_flips_a_joint_is_refused_before_moving() -> None:
    _, plan = _pick_plan()
    seg = max(plan.motions, key=lambda m: len(straight_pieces(plan)[tuple(m.path_range)]))
    n = len(straight_pieces(plan)[tuple(seg.path_range)])
    assert n >= 2
    b = _backend(_Component(fail_at=1))
    b.use_plan(plan)
    msgs, why = b.plan_pieces(seg)
    assert msgs is None
    assert why == (
        f'MoveIt ({PILZ} LIN) found no path for straight piece 2 of {n} (MoveItErrorCodes -1): '
        'nothing executed'
    )
    b = _backend(_Component(jump_at=0))
    b.use_plan(plan)
    msgs, why = b.plan_pieces(seg)
    assert msgs is None and why.startswith(f'piece 1 of {n}: ')
    assert re.search(r'jumps 1\.0\d rad on elbow_joint between points 4 and 5', why), why
