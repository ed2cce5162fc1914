"""The node's request logic (ROS-free): each bad input gives the right error code and reason."""

from __future__ import annotations

import numpy as np
import pytest

from robotracer_ros.backends import BackendAnswer, BackendError
from robotracer_ros.filtering import STATUS_DEGRADED, FilterOptions
from robotracer_ros.lifting import LiftOptions
from robotracer_ros.pipeline import PipelineOptions
from robotracer_ros.trace_service import (
    ERROR_BAD_ANSWER,
    ERROR_BAD_REQUEST,
    ERROR_INVALID_TRACE,
    ERROR_MODEL,
    ERROR_NAMES,
    ERROR_NO_FRAME,
    ERROR_NONE,
    ERROR_NOT_VISIBLE,
    ERROR_STALE_FRAME,
    ERROR_TRANSFORM,
    Frame,
    StaticTransforms,
    TraceRequest,
    TraceService,
)
from robotracer_ros.transforms import transform_from_translation_quaternion

K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
RGB = np.zeros((480, 640, 3), np.uint8)
DEPTH = np.full((480, 640), 1000, np.uint16)  # a wall 1 m in front of the camera
CAM = 'camera_color_optical_frame'
# camera 0.5 m above base_link, looking straight down: optical z -> base -z, x -> base -y ...
T_BASE_CAM = transform_from_translation_quaternion([0.4, 0.0, 0.5], [1.0, 0.0, 0.0, 0.0])


class FakeModel:
    name = 'fake'

    def __init__(
        self,
        answer: str = '[(500, 500, 1.0), (600, 500, 1.0), (700, 500, 1.0)]',
        error: BackendError | None = None,
    ) -> None:
        self.answer, self.error, self.calls = answer, error, 0

    def __call__(self, rgb, depth, K, instruction, *, mode_3d=True):
        self.calls += 1
        if self.error:
            raise self.error
        return BackendAnswer(self.answer, 'fake:model', 0.25)


def service(model: FakeModel, now: float = 100.0, **kw) -> TraceService:
    tf = StaticTransforms()
    tf.add('base_link', CAM, T_BASE_CAM)
    kw.setdefault('options', PipelineOptions(lift=LiftOptions('fused'), filter=FilterOptions()))
    return TraceService(model, lookup_transform=tf, clock=lambda: now, max_frame_age_s=1.0, **kw)


def frame(stamp: float = 99.9, depth: np.ndarray | None = DEPTH) -> Frame:
    return Frame(RGB, depth, None, K, stamp, CAM)


def test_success_in_the_target_frame():
    model = FakeModel()
    out = service(model, default_target_frame='base_link').handle(TraceRequest('go'), frame())
    assert out.success and out.error_code == ERROR_NONE and out.error_msg == ''
    assert out.target_frame == 'base_link'
    # first point on the optical axis at 1 m: camera at z=0.5 looking down -> (0.4, 0, -0.5)
    np.testing.assert_allclose(out.result.points[0], [0.4, 0.0, -0.5], atol=1e-9)
    np.testing.assert_allclose(out.result.points_cam[0], [0, 0, 1.0])
    assert out.timings['inference'] == 0.25 and out.timings['total'] > 0


def test_request_frame_overrides_and_camera_frame_default():
    out = service(FakeModel()).handle(TraceRequest('go'), frame())
    assert out.target_frame == CAM
    np.testing.assert_allclose(out.result.points[0], [0, 0, 1.0])
    out = service(FakeModel()).handle(TraceRequest('go', target_frame='base_link'), frame())
    np.testing.assert_allclose(out.result.points[0], [0.4, 0.0, -0.5], atol=1e-9)


@pytest.mark.parametrize(
    ('request_', 'frame_', 'model', 'code', 'reason', 'model_called'),
    [
        (
            TraceRequest('  '),
            frame(),
            FakeModel(),
            ERROR_BAD_REQUEST,
            'instruction is empty',
            False,
        ),
        (
            TraceRequest('go', depth_source='lidar'),
            frame(),
            FakeModel(),
            ERROR_BAD_REQUEST,
            "depth_source 'lidar'",
            False,
        ),
        (TraceRequest('go'), None, FakeModel(), ERROR_NO_FRAME, 'no synchronised', False),
        (
            TraceRequest('go'),
            frame(stamp=95.0),
            FakeModel(),
            ERROR_STALE_FRAME,
            'the latest frame is 5.00 s old',
            False,
        ),
        (
            TraceRequest('go'),
            frame(stamp=110.0),
            FakeModel(),
            ERROR_STALE_FRAME,
            'in the future',
            False,
        ),
        (
            TraceRequest('go', target_frame='map'),
            frame(),
            FakeModel(),
            ERROR_TRANSFORM,
            "cannot transform 'camera_color_optical_frame' to 'map': no static transform",
            False,
        ),
        (
            TraceRequest('go', mode_3d=False),
            frame(depth=None),
            FakeModel(),
            ERROR_BAD_REQUEST,
            'a 2D trace needs a depth image',
            False,
        ),
        (
            TraceRequest('go'),
            frame(),
            FakeModel(error=BackendError('timeout', 'no answer from http://x within 5 s')),
            ERROR_MODEL,
            'failed (timeout): no answer from http://x within 5 s',
            True,
        ),
        (
            TraceRequest('go'),
            frame(),
            FakeModel("I can't see a cup."),
            ERROR_NOT_VISIBLE,
            'object not visible: no trace found',
            True,
        ),
        (
            TraceRequest('go'),
            frame(),
            FakeModel('The cup should be lifted and moved to the plate.'),
            ERROR_BAD_ANSWER,
            'could not be used: no trace found',
            True,
        ),
        (
            TraceRequest('go'),
            frame(depth=np.zeros_like(DEPTH)),
            FakeModel('[(10, 10, 50.0), (20, 20, 60.0)]'),
            ERROR_INVALID_TRACE,
            'no usable trace: only 0 usable point',
            True,
        ),
    ],
)
def test_each_bad_input_gives_its_error_code_and_reason(
    request_, frame_, model, code, reason, model_called
):
    out = service(model).handle(request_, frame_)
    assert not out.success
    assert out.error_code == code
    assert reason in out.error_msg
    assert (model.calls > 0) == model_called  # the model is not asked when it cannot help


def test_no_frame_reason_is_passed_through():
    out = service(FakeModel()).handle(
        TraceRequest('go'), None, no_frame_reason='no camera_info on /cam/info yet'
    )
    assert out.error_code == ERROR_NO_FRAME and out.error_msg == 'no camera_info on /cam/info yet'


def test_2d_request_is_lifted_with_sensor_depth():
    model = FakeModel('[(500, 500), (600, 500)]')
    out = service(model).handle(TraceRequest('go', mode_3d=False), frame())
    assert out.success, out.error_msg
    np.testing.assert_allclose(out.result.points[:, 2], [1.0, 1.0])
    assert out.result.depth_source_names() == ['sensor', 'sensor']


def test_model_depth_behind_the_visible_wall_degrades_the_trace():
    model = FakeModel('[(500, 500, 1.0), (600, 500, 1.6), (700, 500, 1.0)]')
    out = service(model).handle(TraceRequest('go'), frame())
    assert out.success and out.result.status == STATUS_DEGRADED
    assert 'behind the visible surface' in out.result.note
    assert out.result.disagreement.tolist() == [False, True, False]


def test_an_answer_cut_off_at_the_token_limit_says_to_raise_it():
    class Truncated(FakeModel):
        def __call__(self, rgb, depth, K, instruction, *, mode_3d=True):
            return BackendAnswer('[(500, 500, 1.0), (600, 5', 'fake:model', 0.1, truncated=True)

    out = service(Truncated()).handle(TraceRequest('go'), frame())
    assert out.error_code == ERROR_BAD_ANSWER
    assert 'truncated' in out.error_msg and 'raise max_tokens' in out.error_msg


@pytest.mark.parametrize(
    ('answer', 'point', 'depth'),
    [
        ('[(500, 500, 1.0), (600, 500, -0.02), (700, 500, 1.0)]', 2, -0.02),  # behind
        ('[(500, 500, 1.0), (600, 500, 1.0), (700, 500, 250)]', 3, 250.0),  # too far
        ('[(500, 500, 1.0), (1600, 500, 1.0)]', 2, None),  # x outside 0-1000
    ],
)
def test_a_rejected_point_is_named_in_typed_fields(answer, point, depth):
    """A robot that looks around reads which point was rejected and its depth from fields,
    never from the message text."""
    out = service(FakeModel(answer)).handle(TraceRequest('go'), frame())
    assert out.error_code == ERROR_BAD_ANSWER and out.bad_point == point
    if depth is None:
        assert np.isnan(out.bad_point_depth_m)
    else:
        assert out.bad_point_depth_m == pytest.approx(depth)
    good = service(FakeModel()).handle(TraceRequest('go'), frame())
    assert good.bad_point == 0 and np.isnan(good.bad_point_depth_m)


def test_not_visible_keeps_the_answer_for_the_caller():
    out = service(FakeModel('The plate is out of view.')).handle(TraceRequest('go'), frame())
    assert out.error_code == ERROR_NOT_VISIBLE and out.answer.text == 'The plate is out of view.'
    assert ERROR_NAMES[out.error_code] == 'not_visible'


def test_the_error_codes_are_the_services():
    srv = pytest.importorskip('robotracer_msgs.srv')
    import robotracer_ros.trace_service as ts

    for name in ERROR_NAMES.values():
        const = f'ERROR_{name.upper()}'
        assert getattr(srv.GetTrace.Response, const) == getattr(ts, const), const
