"""The moveit_py backend: a clear refusal here, MoveIt's own checks where moveit_py exists.

moveit_py is not on PyPI: here the backend must refuse to start naming what is missing. The
test that drives it needs the docker image (MoveIt, ur_moveit_config's parameters for
MoveItPy) and is skipped here with that reason; its stop behaviour (stop, then confirm from
/joint_states) is the one the ``moveit`` backend's stand-in tests cover.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from trace_executor.backends.moveit_py import MOVEIT_PY_MISSING, MoveItPyBackend, segment_points
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
    pytest.skip('run through launch_testing in the docker image (MoveItPy needs launch params)')
