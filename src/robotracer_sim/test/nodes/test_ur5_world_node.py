"""The ur5_world node over real DDS, driven from another process like a real UR + camera."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
from PIL import Image as PILImage
import pytest

rclpy = pytest.importorskip('rclpy')

from builtin_interfaces.msg import Duration  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from robotracer_msgs.srv import GetObjectPoses, SetObjectPose  # noqa: E402
from robotracer_sim.oracle.geometry import pose_matrix, transform_points  # noqa: E402
from robotracer_sim.ur5.world import Ur5World  # noqa: E402

pytestmark = pytest.mark.slow

JOINTS = [
    'shoulder_pan_joint',
    'shoulder_lift_joint',
    'elbow_joint',
    'wrist_1_joint',
    'wrist_2_joint',
    'wrist_3_joint',
]
HOME = [0.0, -1.57, 1.57, -1.57, -1.57, 0.0]
READY_RE = re.compile(r'ur5_world ready: oracle at (\S+), camera 640x480 @ 10 Hz')


def start_world(*params: str) -> tuple[subprocess.Popen, str]:
    """Start the node in its own process; return it and its oracle URL once it is ready."""
    args = [
        sys.executable,
        '-m',
        'robotracer_sim.nodes.ur5_world_node',
        '--ros-args',
        '-p',
        'rate:=10.0',
        '-p',
        'oracle_port:=0',
        '-p',
        'oracle_latency:=0.0',
    ]
    for p in params:
        args += ['-p', p]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    lines: list[str] = []
    found: list[str] = []

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            m = READY_RE.search(line)
            if m:
                found.append(m.group(1))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 45
    while not found and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    if not found:
        stop(proc)
        raise AssertionError(f'ur5_world did not get ready: {lines} {proc.stderr.read()}')
    return proc, found[0]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


class Peer:
    """A client node in this process, spun in a background thread."""

    def __init__(self, name: str = 'sim_test_peer') -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.frames: dict[tuple[int, int], dict] = {}
        self.joints: JointState | None = None
        self.clock: list[float] = []
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        n = self.node
        n.create_subscription(
            Image, '/camera/camera/color/image_raw', lambda m: self._frame('color', m), qos
        )
        n.create_subscription(
            Image,
            '/camera/camera/aligned_depth_to_color/image_raw',
            lambda m: self._frame('depth', m),
            qos,
        )
        n.create_subscription(
            CameraInfo, '/camera/camera/color/camera_info', lambda m: self._frame('info', m), qos
        )
        n.create_subscription(JointState, '/joint_states', self._joint_state, 10)
        n.create_subscription(Clock, '/clock', self._clock, 10)
        self.traj_pub = n.create_publisher(
            JointTrajectory, '/scaled_joint_trajectory_controller/joint_trajectory', 10
        )
        self.gripper = n.create_client(SetBool, '/robotracer/gripper')
        self.get_poses = n.create_client(GetObjectPoses, '/sim/get_object_poses')
        self.set_pose = n.create_client(SetObjectPose, '/sim/set_object_pose')
        self.params = n.create_client(GetParameters, '/ur5_world/get_parameters')
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _frame(self, kind: str, msg) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        with self.lock:
            self.frames.setdefault(key, {})[kind] = msg
            if len(self.frames) > 20:
                del self.frames[min(self.frames)]

    def _joint_state(self, msg: JointState) -> None:
        with self.lock:
            self.joints = msg

    def _clock(self, msg: Clock) -> None:
        with self.lock:
            self.clock.append(msg.clock.sec + msg.clock.nanosec * 1e-9)

    def call(self, client, request, timeout: float = 10.0):
        assert client.wait_for_service(timeout_sec=timeout), f'{client.srv_name} not available'
        future = client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        assert done.wait(timeout), f'{client.srv_name} did not answer'
        return future.result()

    def frame(self, timeout: float = 10.0) -> dict:
        """The newest complete (colour, depth, info) triple with one stamp."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                full = [k for k, v in self.frames.items() if len(v) == 3]
                if full:
                    return self.frames[max(full)]
            time.sleep(0.05)
        raise AssertionError('no synchronised colour/depth/camera_info frame received')

    def joint_positions(self, timeout: float = 10.0) -> np.ndarray:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.joints is not None:
                    idx = [list(self.joints.name).index(j) for j in JOINTS]
                    return np.array(self.joints.position)[idx]
            time.sleep(0.05)
        raise AssertionError('no /joint_states received')

    def poses(self) -> dict:
        res = self.call(self.get_poses, GetObjectPoses.Request())
        assert res.success, res.message
        return {
            n: (np.array([p.position.x, p.position.y, p.position.z]), h)
            for n, p, h in zip(res.names, res.poses, res.held, strict=True)
        }

    def move_object(self, name: str, xyz) -> SetObjectPose.Response:
        req = SetObjectPose.Request()
        req.name = name
        req.pose.position.x, req.pose.position.y, req.pose.position.z = (float(v) for v in xyz)
        req.pose.orientation.w = 1.0
        return self.call(self.set_pose, req)

    def send_trajectory(self, names, times, positions) -> None:
        deadline = time.monotonic() + 10
        while self.traj_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        msg = JointTrajectory()
        msg.joint_names = list(names)
        for t, q in zip(times, positions, strict=True):
            pt = JointTrajectoryPoint()
            pt.positions = [float(v) for v in q]
            pt.time_from_start = Duration(sec=int(t), nanosec=int((t % 1) * 1e9))
            msg.points.append(pt)
        self.traj_pub.publish(msg)

    def wait_joints(self, goal, tol: float = 0.01, timeout: float = 10.0) -> np.ndarray:
        deadline = time.monotonic() + timeout
        q = self.joint_positions()
        while time.monotonic() < deadline:
            q = self.joint_positions()
            if np.max(np.abs(q - goal)) < tol:
                return q
            time.sleep(0.05)
        raise AssertionError(f'arm did not reach {list(goal)}: at {q.tolist()}')

    def extrinsics(self) -> np.ndarray:
        req = GetParameters.Request()
        req.names = ['camera_extrinsics.translation', 'camera_extrinsics.rotation_xyzw']
        res = self.call(self.params, req)
        xyz, q = (list(v.double_array_value) for v in res.values)
        return pose_matrix(xyz, q)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture(scope='module')
def world_process():
    proc, url = start_world()
    yield proc, url
    stop(proc)


@pytest.fixture(scope='module')
def peer(world_process):
    p = Peer()
    yield p
    p.close()


def lift_pixel(u: int, v: int, depth_mm: np.ndarray, info: CameraInfo, t_wc: np.ndarray):
    k = np.array(info.k).reshape(3, 3)
    z = depth_mm[v, u] / 1000.0
    cam = np.array([[(u - k[0, 2]) * z / k[0, 0], (v - k[1, 2]) * z / k[1, 1], z]])
    return transform_points(t_wc, cam)[0], z


def test_rgbd_pixel_lifted_with_camera_info_and_extrinsics_lands_on_the_object(peer):
    f = peer.frame()
    color, depth, info = f['color'], f['depth'], f['info']
    assert (color.encoding, depth.encoding) == ('rgb8', '16UC1')
    assert (
        color.header.frame_id
        == depth.header.frame_id
        == info.header.frame_id
        == ('camera_color_optical_frame')
    )
    assert (color.width, color.height, info.width, info.height) == (640, 480, 640, 480)
    depth_mm = np.frombuffer(bytes(depth.data), dtype=np.uint16).reshape(480, 640)
    t_wc = peer.extrinsics()
    k = np.array(info.k).reshape(3, 3)
    for name, half in (('red_cube', 0.0225), ('blue_cube', 0.0225), ('plate', 0.006)):
        top = peer.poses()[name][0] + [0, 0, half]
        pc = transform_points(np.linalg.inv(t_wc), top[None])[0]
        u = int(round(k[0, 0] * pc[0] / pc[2] + k[0, 2]))
        v = int(round(k[1, 1] * pc[1] / pc[2] + k[1, 2]))
        p, z = lift_pixel(u, v, depth_mm, info, t_wc)
        assert z > 0 and np.linalg.norm(p - top) < 0.01, f'{name}: {p} vs {top}'


def test_joint_trajectory_from_another_process_moves_the_arm(peer):
    start = peer.joint_positions()
    goal = np.array(HOME) + [0.3, -0.2, 0.25, 0.1, 0.2, 0.4]
    mid = (start + goal) / 2
    peer.send_trajectory(JOINTS, [1.0, 2.0], [mid, goal])
    peer.wait_joints(goal, tol=0.01, timeout=10)
    peer.send_trajectory(JOINTS, [1.5], [HOME])
    peer.wait_joints(np.array(HOME), tol=0.01, timeout=10)


def test_invalid_trajectory_is_refused_and_the_arm_stays(peer):
    before = peer.wait_joints(np.array(HOME), tol=0.001)  # at rest
    peer.send_trajectory(['shoulder_pan_joint', 'elbow'], [1.0], [[1.0, 1.0]])
    peer.send_trajectory(['elbow_joint'], [1.0], [[5.0]])  # outside the elbow's limits
    time.sleep(2.0)
    assert np.max(np.abs(peer.joint_positions() - before)) < 0.002


def test_gripper_grasps_refuses_teleport_of_held_object_and_releases(peer):
    peer.wait_joints(np.array(HOME), tol=0.01)
    tcp_home = Ur5World().tcp_pose()[:3, 3]  # where the TCP is at the home pose
    assert peer.move_object('green_cube', tcp_home).success
    res = peer.call(peer.gripper, SetBool.Request(data=True))
    assert res.success and res.message == 'grasped green_cube'
    time.sleep(0.5)
    pos, held = peer.poses()['green_cube']
    assert held and np.linalg.norm(pos - tcp_home) < 0.03  # hanging in the hand, not fallen
    refused = peer.move_object('green_cube', [0.3, -0.3, 0.0225])
    assert not refused.success and 'held by the gripper' in refused.message
    res = peer.call(peer.gripper, SetBool.Request(data=False))
    assert res.success and res.message == 'released green_cube'
    time.sleep(1.5)
    pos, held = peer.poses()['green_cube']
    assert not held and pos[2] == pytest.approx(0.0225, abs=0.005)  # fell onto the table
    nothing = peer.call(peer.gripper, SetBool.Request(data=True))
    assert nothing.message == 'closed on nothing'
    peer.call(peer.gripper, SetBool.Request(data=False))
    unknown = peer.move_object('teapot', [0.3, 0, 0.1])
    assert not unknown.success and 'unknown object' in unknown.message


def test_oracle_served_by_the_node_answers_about_the_current_scene(peer, world_process, tmp_path):
    _, url = world_process
    assert url.startswith('http://127.0.0.1:')
    assert peer.move_object('red_cube', [0.40, 0.25, 0.0225]).success
    time.sleep(0.5)
    f = peer.frame()
    rgb = np.frombuffer(bytes(f['color'].data), dtype=np.uint8).reshape(480, 640, 3)
    PILImage.fromarray(rgb).save(tmp_path / 'rgb.png')
    k = np.array(f['info'].k).reshape(3, 3)
    body = {
        'text': 'Point the 3D object-centric visual trace for the task "put the red cube on the '
        'plate". Your answer should be formatted as a list of tuples, i.e., [(x1, y1, d1), '
        '(x2, y2, d2), ...], where each tuple contains the x and y coordinates of the point, '
        'and d is the depth of the point.',
        'image_paths': [str(tmp_path / 'rgb.png')],
        'intrinsics': k.tolist(),
        'enable_spatial': 1,
    }
    req = urllib.request.Request(
        url + '/query',
        data=json.dumps(body).encode(),
        method='POST',
        headers={'Content-Type': 'application/json'},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        answer = json.loads(r.read())['answer']
    x, y, d = (float(v) for v in re.match(r'\[\((\d+), (\d+), ([\d.]+)\)', answer).groups())
    u, v = x / 1000 * 640, y / 1000 * 480
    cam = np.array([[(u - k[0, 2]) * d / k[0, 0], (v - k[1, 2]) * d / k[1, 1], d]])
    start = transform_points(peer.extrinsics(), cam)[0]
    assert np.linalg.norm(start - [0.40, 0.25, 0.0225]) < 0.02


def test_use_sim_time_publishes_clock_and_stamps_in_simulated_time(peer, world_process):
    stop(world_process[0])  # one world at a time on this domain
    proc, _ = start_world('use_sim_time:=true')
    try:
        with peer.lock:
            peer.clock.clear()
            peer.frames.clear()
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            with peer.lock:
                clock = list(peer.clock)
            if len(clock) > 20:
                break
            time.sleep(0.1)
        assert len(clock) > 20 and all(b >= a for a, b in zip(clock, clock[1:], strict=False))
        stamp = peer.frame()['color'].header.stamp
        t = stamp.sec + stamp.nanosec * 1e-9
        assert t < 120.0 and abs(t - clock[-1]) < 2.0  # simulated seconds, not the epoch
    finally:
        stop(proc)
