"""One test per trace rule (trace_executor.trace_check), which both robots and the nodes use."""

from __future__ import annotations

import numpy as np
import pytest

from robotracer_msgs.msg import SpatialTrace
from trace_executor import trace_check as tc
from trace_executor.errors import ErrorCode, PlanningError

GOOD = np.array([[0.4, 0.0, 0.05], [0.5, 0.1, 0.10], [0.6, 0.2, 0.05]])


def _fails(code: ErrorCode, words: str, fn, *args, index=None):
    with pytest.raises(PlanningError) as err:
        fn(*args)
    assert err.value.code == code
    assert words in err.value.message, err.value.message
    if index is not None:
        assert err.value.waypoint_index == index


def test_status_invalid_matches_the_message_constant():
    assert tc.STATUS_INVALID == SpatialTrace.STATUS_INVALID


def test_message_needs_points_and_a_valid_status():
    _fails(ErrorCode.INVALID_TRACE, 'no points', tc.check_message, 0, 0, '')
    invalid = SpatialTrace.STATUS_INVALID
    _fails(ErrorCode.INVALID_TRACE, 'over 0.35 m', tc.check_message, 3, invalid, 'over 0.35 m')
    tc.check_message(3, 0, '')


@pytest.mark.parametrize(
    'points,words,index',
    [
        ('abc', 'not an array', None),
        ([], 'empty trace', None),
        (np.zeros((3, 2)), 'N×3', None),
        ([[0.4, 0.0, 0.1], [np.nan, 0.0, 0.1]], 'waypoint 1 of 2 is not finite', 1),
        ([[0.4, 0.0, 0.1], [0.5, np.inf, 0.1]], 'not finite', 1),
    ],
)
def test_points_must_be_finite_n_by_3(points, words, index):
    _fails(ErrorCode.INVALID_TRACE, words, tc.check_points, points, index=index)


def test_points_minimum_and_mode_minimum():
    one = GOOD[:1]
    assert tc.check_points(one).shape == (1, 3)
    _fails(ErrorCode.INVALID_TRACE, 'at least 2 points', tc.check_points, one, 2)
    words = 'pick_place needs at least 2'
    _fails(ErrorCode.INVALID_TRACE, words, tc.check_mode_points, one, 'pick_place')
    _fails(ErrorCode.INVALID_TRACE, 'push needs at least 2', tc.check_mode_points, one, 'push')
    tc.check_mode_points(one, 'follow')


def test_transform_must_be_rigid_and_proper():
    tf = np.eye(4)
    tf[:3, 3] = [1.0, 2.0, 3.0]
    out = tc.to_frame(GOOD, 'camera', 'base_link', tf)
    assert np.allclose(out, GOOD + [1.0, 2.0, 3.0])
    assert tc.to_frame(GOOD, '', 'base_link', None) is GOOD
    _fails(ErrorCode.INVALID_TRACE, 'no transform', tc.to_frame, GOOD, 'camera', 'base_link', None)
    scaled = np.eye(4)
    scaled[0, 0] = 2.0
    _fails(ErrorCode.INVALID_TRACE, 'rigid', tc.check_rigid, scaled, 'base_link', 'camera')
    mirror = np.diag([1.0, 1.0, -1.0, 1.0])
    _fails(ErrorCode.INVALID_TRACE, 'rigid', tc.check_rigid, mirror, 'base_link', 'camera')
    _fails(ErrorCode.INVALID_TRACE, 'rigid', tc.check_rigid, np.eye(3), 'base_link', 'camera')
    nearly = np.eye(4)
    nearly[0, 1] = 1e-6  # rounding of a transform read from YAML: still rigid
    tc.check_rigid(nearly, 'base_link', 'camera')


def test_continuity_names_the_jump():
    tc.check_continuity(GOOD, 0.2)
    tc.check_continuity(GOOD, None)
    jump = np.vstack([GOOD, [[2.0, 0.2, 0.05]]])
    _fails(ErrorCode.INVALID_TRACE, 'waypoint 3 of 4', tc.check_continuity, jump, 0.5, index=3)


def test_box_and_table():
    tc.check_box(GOOD, [0, -1, 0], [1, 1, 1], 'base_link', 0.0)
    low, far = GOOD - [0, 0, 0.1], GOOD + [0.5, 0, 0]
    box = ([0, -1, -1], [1, 1, 1], 'base_link', 0.0)
    _fails(ErrorCode.WORKSPACE, 'below the table top', tc.check_box, low, *box, index=0)
    _fails(ErrorCode.WORKSPACE, 'outside the workspace box', tc.check_box, far, *box, index=2)
