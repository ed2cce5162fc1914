"""The ``g1_world`` ROS node across processes: joint states, odometry, head RGB-D, services."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip('unitree_sdk2py', reason='needs unitree-sdk2py (scripts/setup_cyclonedds.sh)')
rclpy = pytest.importorskip('rclpy')

from geometry_msgs.msg import PoseStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from robotracer_msgs.srv import GetObjectPoses, SetObjectPose  # noqa: E402
from robotracer_sim.oracle.geometry import (  # noqa: E402
    pose_matrix,
    project,
    transform_points,
    unproject,
)

pytestmark = pytest.mark.slow
NS = '/camera/camera'


@pytest.fixture(scope='module')
def node_proc(tmp_path_factory):
    log = tmp_path_factory.mktemp('g1node') / 'node.log'
    with open(log, 'w') as f:
        proc = subprocess.Popen(
            [
                sys.executable,
                '-m',
                'robotracer_sim.nodes.g1_world_node',
                '--ros-args',
                '-p',
                'oracle_port:=0',
                '-p',
                'oracle_latency:=0.0',
                '-p',
                'rate:=5.0',
            ],
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.time() + 120
        while 'g1_world ready' not in log.read_text():
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f'g1_world did not start:\n{log.read_text()}')
            time.sleep(0.2)
        yield log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class Probe:
    """A test-side ROS node that keeps the latest messages of the node's topics."""

    def __init__(self) -> None:
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node('g1_probe', context=self.ctx)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.msgs: dict[str, list] = {}
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        for key, typ, topic in (
            ('color', Image, f'{NS}/color/image_raw'),
            ('depth', Image, f'{NS}/aligned_depth_to_color/image_raw'),
            ('info', CameraInfo, f'{NS}/color/camera_info'),
            ('cam_pose', PoseStamped, '/sim/g1/camera_pose'),
            ('joints', JointState, '/joint_states'),
            ('odom', Odometry, '/odom'),
            ('status', String, '/sim/g1/status'),
        ):
            self.node.create_subscription(
                typ, topic, lambda m, k=key: self.msgs.setdefault(k, []).append(m), qos
            )

    def spin(self, seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def wait_for(self, *keys: str, timeout: float = 30.0) -> None:
        end = time.time() + timeout
        while time.time() < end and not all(self.msgs.get(k) for k in keys):
            self.executor.spin_once(timeout_sec=0.05)
        missing = [k for k in keys if not self.msgs.get(k)]
        assert not missing, f'no message on {missing}'

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout), f'no service {name}'
        future = client.call_async(request)
        self.executor.spin_until_future_complete(future, timeout_sec=timeout)
        assert future.done(), f'{name} did not answer'
        return future.result()

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.shutdown(context=self.ctx)


@pytest.fixture(scope='module')
def probe(node_proc):
    p = Probe()
    try:
        yield p
    finally:
        p.close()


def test_joint_states_and_odometry(probe):
    probe.wait_for('joints', 'odom', 'status')
    js = probe.msgs['joints'][-1]
    assert len(js.name) == 43
    assert 'left_hand_index_1_joint' in js.name and 'waist_yaw_joint' in js.name
    assert js.position[js.name.index('left_elbow_joint')] == pytest.approx(1.1, abs=0.05)
    od = probe.msgs['odom'][-1]
    assert (od.header.frame_id, od.child_frame_id) == ('odom', 'pelvis')
    assert od.pose.pose.position.z == pytest.approx(0.8, abs=0.05)
    status = json.loads(probe.msgs['status'][-1].data)
    assert status['fsm_id'] == 200 and status['lowstate']['published'] > 0


def test_head_camera_depth_lands_on_ground_truth(probe):
    probe.wait_for('color', 'depth', 'info', 'cam_pose')
    probe.spin(0.5)
    poses = probe.call(GetObjectPoses, '/sim/get_object_poses', GetObjectPoses.Request())
    assert poses.success and poses.frame_id == 'odom'
    # Pick a depth frame and the camera pose published with the same stamp.
    by_stamp = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in probe.msgs['cam_pose']}
    depth = next(
        m
        for m in reversed(probe.msgs['depth'])
        if (m.header.stamp.sec, m.header.stamp.nanosec) in by_stamp
    )
    cam = by_stamp[(depth.header.stamp.sec, depth.header.stamp.nanosec)].pose
    info = probe.msgs['info'][-1]
    assert depth.encoding == '16UC1' and (depth.width, depth.height) == (640, 480)
    assert probe.msgs['color'][-1].encoding == 'rgb8'
    k = np.array(info.k).reshape(3, 3)
    t_wc = pose_matrix(
        [cam.position.x, cam.position.y, cam.position.z],
        [cam.orientation.x, cam.orientation.y, cam.orientation.z, cam.orientation.w],
    )
    mm = np.frombuffer(bytes(depth.data), dtype=np.uint16).reshape(480, 640)
    i = list(poses.names).index('blue_block')
    p = poses.poses[i].position
    top = np.array([p.x, p.y, p.z + 0.0225])  # the block's top face centre (4.5 cm cube)
    u, v, _ = project(top[None], k, t_wc)[0]
    ui, vi = int(round(u)), int(round(v))
    lifted = transform_points(t_wc, unproject(ui, vi, mm[vi, ui] / 1000.0, k))[0]
    assert np.linalg.norm(lifted - top) < 0.02


def test_object_pose_services(probe):
    req = GetObjectPoses.Request(names=['unicorn'])
    res = probe.call(GetObjectPoses, '/sim/get_object_poses', req)
    assert not res.success and 'unicorn' in res.message and 'red_cup' in res.message
    move = SetObjectPose.Request(name='plate')
    move.pose.position.x, move.pose.position.y, move.pose.position.z = 1.6, 0.55, 0.74
    move.pose.orientation.w = 1.0
    assert probe.call(SetObjectPose, '/sim/set_object_pose', move).success
    probe.spin(1.0)
    res = probe.call(
        GetObjectPoses, '/sim/get_object_poses', GetObjectPoses.Request(names=['plate'])
    )
    p = res.poses[0].position
    assert (p.x, p.y) == (pytest.approx(1.6, abs=0.01), pytest.approx(0.55, abs=0.01))
    assert p.z == pytest.approx(0.73, abs=0.01), 'rests on the far table'
    bad = SetObjectPose.Request(name='nothing')
    bad.pose.orientation.w = 1.0
    res = probe.call(SetObjectPose, '/sim/set_object_pose', bad)
    assert not res.success and 'nothing' in res.message


def test_pause_lowstate_service(probe):
    res = probe.call(SetBool, '/sim/g1/pause_lowstate', SetBool.Request(data=True))
    assert res.success
    probe.msgs['status'] = []
    probe.wait_for('status')
    probe.spin(0.6)
    a = json.loads(probe.msgs['status'][-1].data)['lowstate']
    probe.spin(1.0)
    b = json.loads(probe.msgs['status'][-1].data)['lowstate']
    assert a['paused'] and b['published'] == a['published'], 'no rt/lowstate while paused'
    probe.call(SetBool, '/sim/g1/pause_lowstate', SetBool.Request(data=False))
    probe.spin(1.0)
    c = json.loads(probe.msgs['status'][-1].data)['lowstate']
    assert not c['paused'] and c['published'] > b['published']


def test_lowstate_keeps_its_rate_while_the_camera_renders(probe):
    """The head camera renders in its own process: rt/lowstate's gaps stay short meanwhile.

    The bound is generous (this 2-core machine is shared); ``bench/sim_g1.py`` carries the
    real figures (p99 gap goal 20 ms with the whole bringup running).
    """
    probe.msgs['color'] = []
    probe.msgs['status'] = []
    gaps_proc = subprocess.Popen(
        [
            sys.executable,
            '-m',
            'robotracer_sim.g1.lowstate_probe',
            '--duration',
            '8',
            '--warmup',
            '1',
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        probe.spin(9.5)  # take the images meanwhile, as perception does
        out = gaps_proc.communicate(timeout=30)[0]
    finally:
        if gaps_proc.poll() is None:
            gaps_proc.kill()
    assert 'LOWSTATE_GAPS ' in out, out
    gaps = json.loads(out.split('LOWSTATE_GAPS ', 1)[1].splitlines()[0])['source']
    frames = len(probe.msgs['color'])
    assert frames >= 10, f'the camera rendered and published meanwhile ({frames} frames)'
    status = json.loads(probe.msgs['status'][-1].data)
    assert status['camera_frames'] > 0 and status['camera_restarts'] == 0
    assert gaps['rate_hz'] >= 200, gaps
    assert gaps['p99_ms'] <= 50, gaps
