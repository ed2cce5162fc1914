"""The executors' camera pose: tf when it has it (``/tf_static``), the parameters otherwise.

A real cell publishes its hand-eye calibration on ``/tf_static`` or only sets
``camera_to_base_*`` (config/ur5.yaml); the executor must use the first when it is there and the
second otherwise, for the traces it is given and for its scene watcher, and say which in the
log. tf2_ros is not installable here, so the nodes run with
:mod:`robotracer_ros.testing.tf2` in its place: the same API and behaviour (a latched
``/tf_static`` publisher in a real rclpy node, a listener and a buffer that looks up through the
frame tree), over DDS.
"""

from __future__ import annotations

from collections.abc import Iterator
import threading
import time
from typing import Any
import uuid

from geometry_msgs.msg import Point
import numpy as np
import pytest

pytest.importorskip('rclpy')

import rclpy  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402

from robotracer_msgs.msg import SpatialTrace  # noqa: E402
from robotracer_ros.testing import tf2 as tf2_standin  # noqa: E402
from robotracer_ros.transforms import transform_from_translation_quaternion  # noqa: E402
from trace_executor.nodes import common  # noqa: E402

CAMERA = 'camera_color_optical_frame'
PARAM_XYZ = [1.3, 0.0, 0.8]
PARAM_Q = [-0.649108, -0.649108, 0.280462, 0.280462]
PARAM_T = transform_from_translation_quaternion(PARAM_XYZ, PARAM_Q)
# the calibrated pose differs from the configured one by a few centimetres and degrees
TF_T = transform_from_translation_quaternion([1.27, 0.03, 0.83], [-0.64, -0.66, 0.29, 0.27])


class Cell:
    """An executor node (and optionally a /tf_static publisher) spinning in one process."""

    def __init__(self, monkeypatch: Any, *, publish_tf: bool, node_class: Any = None) -> None:
        monkeypatch.setattr(common, 'tf2_ros', tf2_standin)
        self.ns = f'/camera_tf_{uuid.uuid4().hex[:8]}'
        rclpy.init(
            args=[
                '--ros-args',
                '-r',
                f'__ns:={self.ns}',
                # as the bringup does under a namespace (robotracer_ros.bringup.NAMESPACE_REMAPS)
                '-r',
                '/tf_static:=tf_static',
                '-p',
                f'camera_to_base_xyz:={PARAM_XYZ}',
                '-p',
                f'camera_to_base_quat_xyzw:={PARAM_Q}',
            ]
        )
        self.executor = MultiThreadedExecutor(num_threads=4)
        self.nodes: list[Any] = []
        if publish_tf:  # the calibration is published before the executor starts (latched)
            calib = rclpy.create_node('hand_eye_calibration', namespace=self.ns)
            self.broadcaster = tf2_standin.StaticTransformBroadcaster(calib)
            self.broadcaster.sendTransform(tf2_standin.transform_msg('base_link', CAMERA, TF_T))
            self.nodes.append(calib)
        self.extra: Any = None
        if node_class is None:
            self.node = common.ExecutorNode('executor_under_test', [])
        else:
            self.node = node_class(self)
        self.nodes.append(self.node)
        for n in self.nodes:
            self.executor.add_node(n)
        self.spin = threading.Thread(target=self.executor.spin, daemon=True)
        self.spin.start()

    def close(self) -> None:
        if self.extra is not None:
            self.extra.close()
        self.executor.shutdown(timeout_sec=2)
        self.spin.join(timeout=2)
        for n in self.nodes:
            n.destroy_node()
        rclpy.try_shutdown()


def wait_for(pred: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def cell(monkeypatch: pytest.MonkeyPatch, request: Any) -> Iterator[Cell]:
    c = Cell(monkeypatch, publish_tf=request.param)
    try:
        yield c
    finally:
        c.close()


@pytest.mark.parametrize('cell', [True], indirect=True)
def test_a_camera_pose_on_tf_static_wins_and_the_log_says_so(cell: Cell) -> None:
    node = cell.node
    assert wait_for(
        lambda: (T := node.camera_pose()) is not None and np.allclose(T, TF_T, atol=1e-6)
    ), f'the executor never took the /tf_static pose: {node.camera_pose()}'
    assert node.transforms.used[('base_link', CAMERA)] == 'tf2'
    # traces in the camera frame are mapped with it too
    msg = SpatialTrace()
    msg.header.frame_id = CAMERA
    msg.points = [Point(x=0.0, y=0.0, z=1.0), Point(x=0.1, y=0.0, z=1.0)]
    trace = node.trace_input(msg)
    np.testing.assert_allclose(trace.transform, TF_T, atol=1e-6)
    out = node.to_msg(trace)
    assert out.header.frame_id == 'base_link'
    want = TF_T[:3, :3] @ np.array([0.0, 0.0, 1.0]) + TF_T[:3, 3]
    np.testing.assert_allclose([out.points[0].x, out.points[0].y, out.points[0].z], want)


@pytest.mark.parametrize('cell', [False], indirect=True)
def test_without_a_tf_camera_pose_the_parameters_are_used_and_the_log_says_so(
    cell: Cell, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = cell.node
    lines: list[str] = []
    monkeypatch.setattr(node.transforms, '_log', lines.append)
    np.testing.assert_allclose(node.camera_pose(), PARAM_T, atol=1e-6)
    assert node.transforms.used[('base_link', CAMERA)] == 'parameter'
    assert lines == [
        f'transform {CAMERA} -> base_link: from the camera_to_base_* parameter (tf2 has none: '
        f'tf2: "{CAMERA}" passed to lookupTransform argument source_frame does not exist. )'
    ]
    # the calibration appears later: the next lookup takes it, and says so once
    calib = rclpy.create_node('late_calibration', namespace=cell.ns)
    cell.nodes.append(calib)
    tf2_standin.StaticTransformBroadcaster(calib).sendTransform(
        tf2_standin.transform_msg('base_link', CAMERA, TF_T)
    )
    assert wait_for(lambda: np.allclose(node.camera_pose(), TF_T, atol=1e-6))
    node.camera_pose()
    assert lines[1:] == [f'transform {CAMERA} -> base_link: from tf2']


def test_an_unknown_trace_frame_is_refused_naming_what_is_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trace_executor.errors import PlanningError

    c = Cell(monkeypatch, publish_tf=False)
    try:
        msg = SpatialTrace()
        msg.header.frame_id = 'somewhere_else'
        msg.points = [Point(x=0.0, y=0.0, z=1.0)]
        with pytest.raises(PlanningError) as err:
            c.node.trace_input(msg)
        assert "trace frame 'somewhere_else' is not 'base_link'" in err.value.message
        assert f'the parameters know {CAMERA}' in err.value.message
    finally:
        c.close()


def test_the_ur5_scene_watcher_takes_the_camera_pose_from_tf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trace_executor.nodes.ur5_executor import Ur5ExecutorNode
    from trace_executor.testing.ur_driver import UrDriverStandIn
    from trace_executor.ur5 import UR5_HOME, UR5_JOINT_NAMES

    def make(cell: Cell) -> Any:
        driver_node = rclpy.create_node('ur_driver', namespace=cell.ns)
        cell.nodes.append(driver_node)
        cell.extra = UrDriverStandIn(driver_node, UR5_JOINT_NAMES, np.array(UR5_HOME))
        return Ur5ExecutorNode()

    c = Cell(monkeypatch, publish_tf=True, node_class=make)
    try:
        watcher = c.node.runner.watcher
        assert wait_for(lambda: np.allclose(watcher.camera_pose(), TF_T, atol=1e-6))
        assert c.node.transforms.used[('base_link', CAMERA)] == 'tf2'
    finally:
        c.close()
