"""Camera pose: tf2 when it has the transform, the static_transform parameter otherwise, logged.

A real cell without a camera transform on ``/tf_static`` must still work from the configured
pose (config/ur5.yaml sets one), and one that publishes it must use tf2's. The tf2 lookup here is
a stand-in with tf2's behaviour: it answers for the transforms it holds and raises for the others
(the node maps tf2's exceptions to LookupError).
"""

from __future__ import annotations

import numpy as np
import pytest

from robotracer_ros.trace_service import StaticTransforms
from robotracer_ros.transforms import TfThenParameter, transform_from_translation_quaternion

CAMERA = 'camera_color_optical_frame'
PARAM_T = transform_from_translation_quaternion(
    [1.3, 0.0, 0.8], [-0.649108, -0.649108, 0.280462, 0.280462]
)
TF_T = transform_from_translation_quaternion([1.25, 0.02, 0.81], [0.0, 0.0, 0.0, 1.0])


class Tf2:
    """tf2's buffer: the transforms it was given, LookupError for the rest."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, str], np.ndarray] = {}

    def __call__(self, target: str, source: str, stamp_s: float) -> np.ndarray:
        if (target, source) in self.known:
            return self.known[(target, source)]
        raise LookupError(
            f'tf2: "{source}" passed to lookupTransform argument source_frame does not exist.'
        )


def parameter() -> StaticTransforms:
    static = StaticTransforms()
    static.add('base_link', CAMERA, PARAM_T)
    return static


def test_no_tf_transform_uses_the_parameter_and_says_so() -> None:
    lines: list[str] = []
    lookup = TfThenParameter(Tf2(), parameter(), lines.append)
    np.testing.assert_allclose(lookup('base_link', CAMERA, 0.0), PARAM_T)
    np.testing.assert_allclose(lookup(CAMERA, 'base_link', 0.0), np.linalg.inv(PARAM_T), atol=1e-9)
    assert lines[0].startswith(
        f'transform {CAMERA} -> base_link: from the static_transform parameter (tf2 has none: '
    )
    lookup('base_link', CAMERA, 1.0)
    assert len(lines) == 2  # said once per pair of frames


def test_tf_transform_wins_over_the_parameter_and_the_switch_is_logged() -> None:
    lines: list[str] = []
    tf2 = Tf2()
    lookup = TfThenParameter(tf2, parameter(), lines.append)
    np.testing.assert_allclose(lookup('base_link', CAMERA, 0.0), PARAM_T)
    tf2.known[('base_link', CAMERA)] = TF_T  # the calibration appears on /tf_static
    np.testing.assert_allclose(lookup('base_link', CAMERA, 0.0), TF_T)
    assert lines[-1] == f'transform {CAMERA} -> base_link: from tf2'
    assert lookup.used[('base_link', CAMERA)] == 'tf2'


def test_without_tf2_the_parameter_is_used() -> None:
    lines: list[str] = []
    lookup = TfThenParameter(None, parameter(), lines.append)
    np.testing.assert_allclose(lookup('base_link', CAMERA, 0.0), PARAM_T)
    assert lines == [
        f'transform {CAMERA} -> base_link: from the static_transform parameter (tf2 not available)'
    ]


def test_neither_knows_the_frames_names_both_reasons() -> None:
    lookup = TfThenParameter(Tf2(), parameter())
    with pytest.raises(LookupError) as err:
        lookup('world', CAMERA, 0.0)
    assert str(err.value).startswith('tf2: "camera_color_optical_frame" passed')
    assert 'no static transform connects them' in str(err.value)
    assert lookup('world', 'world', 0.0).tolist() == np.eye(4).tolist()


def test_tf2_lookup_answers_through_the_tree_and_maps_tf2_errors() -> None:
    from robotracer_ros.testing import tf2
    from robotracer_ros.transforms import Tf2Lookup

    buffer = tf2.Buffer()
    T_world_base = transform_from_translation_quaternion([0.5, 0.0, 0.0], [0, 0, 0, 1])
    buffer.set_transform_static(tf2.transform_msg('world', 'base_link', T_world_base), 'test')
    buffer.set_transform_static(tf2.transform_msg('base_link', CAMERA, TF_T), 'test')
    lookup = Tf2Lookup(buffer)
    np.testing.assert_allclose(lookup('base_link', CAMERA, 0.0), TF_T, atol=1e-9)
    np.testing.assert_allclose(lookup(CAMERA, 'base_link', 0.0), np.linalg.inv(TF_T), atol=1e-9)
    np.testing.assert_allclose(lookup('world', CAMERA, 0.0), T_world_base @ TF_T, atol=1e-9)
    with pytest.raises(LookupError, match='^tf2: "tool0" passed to lookupTransform argument'):
        lookup('base_link', 'tool0', 0.0)
    buffer.set_transform_static(tf2.transform_msg('odom', 'pelvis', np.eye(4)), 'test')
    with pytest.raises(LookupError, match="^tf2: Could not find a connection between 'odom'"):
        lookup('odom', CAMERA, 0.0)
    # in the parameter fallback, as the nodes use it
    both = TfThenParameter(lookup, parameter())
    np.testing.assert_allclose(both('base_link', CAMERA, 0.0), TF_T, atol=1e-9)


def test_tf2_lookup_waits_up_to_its_timeout_for_a_transform_on_its_way() -> None:
    import threading

    from robotracer_ros.testing import tf2
    from robotracer_ros.transforms import Tf2Lookup

    buffer = tf2.Buffer()
    timer = threading.Timer(
        0.2,
        lambda: buffer.set_transform_static(tf2.transform_msg('base_link', CAMERA, TF_T), 't'),
    )
    timer.start()
    try:
        np.testing.assert_allclose(Tf2Lookup(buffer, 5.0)('base_link', CAMERA, 0.0), TF_T)
    finally:
        timer.cancel()
    with pytest.raises(LookupError):
        Tf2Lookup(buffer, 0.05)('base_link', 'nowhere', 0.0)
