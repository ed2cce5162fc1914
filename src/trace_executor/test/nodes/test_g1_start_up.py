"""G1 start-up without ``rt/odommodestate``: the standing-pose fallback is a g1_executor parameter.

``rt/odommodestate`` comes from the robot's onboard state estimation, which runs with its
locomotion service (absent in debug or damping mode). The backend's error tells users to set
``standing_pelvis_z_m`` for arm-only goals; here that is checked to be a declared, documented
parameter of ``g1_executor`` (set from the command line or config/g1.yaml) that reaches the
backend, where a robot whose lowstate arrives but whose odometry never does then plans arm
motions from the standing pose and still refuses to walk. The start-up warning names the
onboard state estimation service.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

pytest.importorskip('rclpy')

import rclpy  # noqa: E402

from robotracer_ros.parameters import declare_all  # noqa: E402
from trace_executor.nodes.common import COMMON_PARAMS  # noqa: E402
from trace_executor.nodes.g1_parameters import (  # noqa: E402
    PARAMS,
    start_up_warning,
    unitree_config,
)

ROOT = Path(__file__).resolve().parents[4]


class _Reader:
    """A DDS reader stand-in: how long ago its topic last delivered (inf: never)."""

    def __init__(self, age_s: float) -> None:
        self.age_s = age_s

    def age(self, now: float) -> float:
        return self.age_s


def declared(*overrides: str, params_file: str = '') -> tuple[dict[str, Any], Any]:
    """The g1_executor's parameters as the node declares them, with command-line overrides."""
    args = ['--ros-args']
    if params_file:
        args += ['--params-file', params_file]
    for o in overrides:
        args += ['-p', o]
    context = rclpy.Context()
    rclpy.init(args=args, context=context)
    # no namespace: rcl matches the file's g1_executor block to /g1_executor only
    node = rclpy.create_node('g1_executor', context=context)
    try:
        p = declare_all(node, COMMON_PARAMS + PARAMS)
        description = node.describe_parameter('standing_pelvis_z_m')
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
    return p, description


def backend_without_odometry(config: Any) -> tuple[Any, list[tuple[str, str]]]:
    """The unitree backend with rt/lowstate arriving and rt/odommodestate never (no DDS)."""
    from trace_executor.backends.unitree import UnitreeBackend
    from trace_executor.g1.kinematics import G1Kinematics

    logs: list[tuple[str, str]] = []
    b = UnitreeBackend(G1Kinematics(), config, log=lambda level, msg: logs.append((level, msg)))
    b._lowstate, b._odom_reader = _Reader(0.0), _Reader(math.inf)
    b._q29 = np.zeros(29)
    b._odom = None
    return b, logs


def test_standing_pelvis_z_m_is_a_documented_parameter_that_reaches_the_backend() -> None:
    from trace_executor.execution import BackendError

    p, description = declared('standing_pelvis_z_m:=0.79')
    assert p['standing_pelvis_z_m'] == pytest.approx(0.79)
    assert 'onboard state estimation' in description.description
    rng = description.floating_point_range[0]
    assert (rng.from_value, rng.to_value) == (0.0, 1.2)
    config = unitree_config(p, 0)
    assert config.standing_pelvis_z_m == pytest.approx(0.79)
    b, logs = backend_without_odometry(config)
    assert b.base_pose() == (0.0, 0.0, pytest.approx(0.79), 0.0)
    assert b.base_pose_source == 'standing pose'
    assert 'standing pose (pelvis z 0.79 m)' in logs[-1][1]
    with pytest.raises(BackendError, match='walking needs it: rt/odommodestate'):
        b.base_pose(walking=True)
    warning = start_up_warning(b.missing_state(), p)
    assert "rt/odommodestate from the robot's onboard state estimation service" in warning
    assert 'standing_pelvis_z_m is 0.79 m: arm-only goals plan with the standing pose' in warning


def test_by_default_goals_without_odometry_are_refused_and_the_warning_says_why() -> None:
    from trace_executor.execution import BackendError

    p, _ = declared()
    assert p['standing_pelvis_z_m'] == 0.0
    b, _ = backend_without_odometry(unitree_config(p, 0))
    with pytest.raises(BackendError, match='onboard state estimation'):
        b.base_pose()
    warning = start_up_warning(b.missing_state(), p)
    assert warning.startswith('robot state incomplete after 10 s (rt/lowstate comes from the')
    assert 'rt/lowstate arrives but no rt/odommodestate' in warning
    assert 'set standing_pelvis_z_m' in warning


@pytest.mark.parametrize('config_file', ['config/g1.yaml', 'config/g1_executor.yaml'])
def test_the_config_files_set_it_and_every_key_is_declared(config_file: str) -> None:
    path = ROOT / config_file
    block = yaml.safe_load(path.read_text())['g1_executor']['ros__parameters']
    names = {prm.name for prm in COMMON_PARAMS + PARAMS}
    assert 'standing_pelvis_z_m' in block
    assert set(block) - names == set()
    # and the parameter file reaches the node (rcl matches the block by node name)
    p, _ = declared(params_file=str(path))
    assert p['standing_pelvis_z_m'] == block['standing_pelvis_z_m']
