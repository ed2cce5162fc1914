"""ROS 2 node ``ur5_world``: the UR5 tabletop simulator behind a real robot's interfaces.

It wraps :class:`robotracer_sim.ur5.world.Ur5World` and, in the same process, the ground-truth
oracle model server (RoboTracer's HTTP API). Interfaces (all names are parameters):

Publishes
    ``/camera/camera/color/image_raw`` (sensor_msgs/Image ``rgb8``),
    ``/camera/camera/aligned_depth_to_color/image_raw`` (``16UC1``, millimetres, 0 = no return),
    ``/camera/camera/color/camera_info`` and ``.../aligned_depth_to_color/camera_info``
    (pinhole K from the rendered camera's FOV, ``cx = (W-1)/2``), all with one stamp per frame,
    at ``rate`` Hz; ``/joint_states`` at ``joint_state_rate`` Hz; ``/clock`` when
    ``use_sim_time`` is true (stamps are then simulated time); ``/tf_static`` with the
    camera → world transform when ``tf2_msgs`` is importable (a ROS install). Without it, the
    transform is logged once and exposed as the read-only parameters
    ``camera_extrinsics.translation`` / ``camera_extrinsics.rotation_xyzw`` (the same numbers
    as the scene file's ``camera`` block, the "static path").
Subscribes
    ``/scaled_joint_trajectory_controller/joint_trajectory`` (trajectory_msgs/JointTrajectory),
    as ros2_control's joint trajectory controller's topic interface: a new trajectory replaces
    the running one, an empty one stops the arm, an invalid one is refused (logged; the arm
    keeps doing what it did).
Services
    ``/robotracer/gripper`` (std_srvs/SetBool: true = close/grasp, false = open/release; the
    message says what was grasped), ``/sim/get_object_poses`` (robotracer_msgs/GetObjectPoses),
    ``/sim/set_object_pose`` (robotracer_msgs/SetObjectPose; refused for a held object).

Physics runs in its own thread at ``real_time_factor`` × real time; rendering and image
publishing in another, at ``rate``. When everything is up it prints one line:
``ur5_world ready: oracle at http://127.0.0.1:25547, camera 640x480 @ 15 Hz``.
"""

from __future__ import annotations

import array
import os
from pathlib import Path
import sys
import threading
import time
from typing import Any

from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import Pose
import numpy as np
from PIL import Image as PILImage
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory

from robotracer_msgs.srv import GetObjectPoses, SetObjectPose
from robotracer_sim.oracle import Oracle, OracleConfig, OracleServer
from robotracer_sim.oracle.geometry import matrix_to_quat_xyzw
from robotracer_sim.ur5.scene import SceneError
from robotracer_sim.ur5.world import TrajectoryError, Ur5World

NODE_NAME = 'ur5_world'


def _describe(
    text: str,
    lo: float | None = None,
    hi: float | None = None,
    integer: bool = False,
    read_only: bool = False,
) -> ParameterDescriptor:
    d = ParameterDescriptor(description=text, read_only=read_only)
    if lo is not None and hi is not None:
        if integer:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
        else:
            d.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
    return d


PARAMETERS: list[tuple[str, Any, ParameterDescriptor]] = [
    ('scene', '', _describe('scene YAML file; empty: config/scenes/ur5_tabletop.yaml')),
    ('rate', 15.0, _describe('camera render + publish rate, Hz', 0.5, 60.0)),
    ('joint_state_rate', 50.0, _describe('/joint_states publish rate, Hz', 1.0, 500.0)),
    ('real_time_factor', 1.0, _describe('simulated seconds per wall-clock second', 0.1, 10.0)),
    ('clock_rate', 100.0, _describe('/clock publish rate when use_sim_time, Hz', 10.0, 1000.0)),
    (
        'image_reliability',
        'reliable',
        _describe(
            "image QoS reliability: 'reliable' (default: best effort drops most large frames "
            "between processes on small machines) or 'best_effort'"
        ),
    ),
    ('image_depth', 5, _describe('image QoS history depth', 1, 100, integer=True)),
    ('color_topic', '/camera/camera/color/image_raw', _describe('colour image topic (rgb8)')),
    (
        'depth_topic',
        '/camera/camera/aligned_depth_to_color/image_raw',
        _describe('depth image topic (16UC1, mm, aligned to colour)'),
    ),
    ('camera_info_topic', '/camera/camera/color/camera_info', _describe('colour camera_info')),
    (
        'depth_camera_info_topic',
        '/camera/camera/aligned_depth_to_color/camera_info',
        _describe('aligned depth camera_info (same intrinsics as colour)'),
    ),
    ('joint_states_topic', '/joint_states', _describe('joint state topic')),
    (
        'trajectory_topic',
        '/scaled_joint_trajectory_controller/joint_trajectory',
        _describe('JointTrajectory command topic (ros2_control JTC topic interface)'),
    ),
    ('gripper_service', '/robotracer/gripper', _describe('SetBool gripper service')),
    ('get_object_poses_service', '/sim/get_object_poses', _describe('GetObjectPoses service')),
    ('set_object_pose_service', '/sim/set_object_pose', _describe('SetObjectPose service')),
    ('world_frame', '', _describe("world/base frame id; empty: the scene's (world)")),
    ('camera_frame', '', _describe("camera optical frame id; empty: the scene's")),
    ('oracle_enabled', True, _describe('serve the ground-truth oracle (RoboTracer HTTP API)')),
    ('oracle_host', '127.0.0.1', _describe('oracle bind address (loopback by default)')),
    ('oracle_port', 25547, _describe('oracle TCP port (0: any free port)', 0, 65535, True)),
    ('oracle_latency', 0.5, _describe('oracle answer delay, s (emulates a model)', 0.0, 60.0)),
    ('oracle_noise', 0.0, _describe('std of Gaussian noise on trace points, m', 0.0, 1.0)),
    ('oracle_malformed_rate', 0.0, _describe('probability of a malformed answer', 0.0, 1.0)),
    ('oracle_seed', -1, _describe('oracle random seed (-1: random)', -1, 2**31 - 1, True)),
    ('viewer', False, _describe('open a MuJoCo viewer window (needs a display)')),
    ('save_frames_dir', '', _describe('write color.png/depth.png here periodically (empty: no)')),
    ('save_frames_period', 1.0, _describe('seconds between saved frames', 0.1, 3600.0)),
]


def _stamp(seconds: float) -> TimeMsg:
    sec = int(seconds)
    return TimeMsg(sec=sec, nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)


def image_msg(array_: np.ndarray, encoding: str, frame_id: str, stamp: TimeMsg) -> Image:
    """Build a sensor_msgs/Image from an HxW (16UC1) or HxWx3 (rgb8) array."""
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(array_.shape[0]), int(array_.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(array_.strides[0])
    msg.data = array.array('B', np.ascontiguousarray(array_).tobytes())
    return msg


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """Metric z-depth (0 = none) to 16UC1 millimetres (0 = none, clipped to 65535)."""
    return np.clip(np.round(depth_m * 1000.0), 0, 65535).astype(np.uint16)


def camera_info_msg(k: np.ndarray, width: int, height: int, frame_id: str) -> CameraInfo:
    """A distortion-free pinhole CameraInfo for intrinsics ``k``."""
    info = CameraInfo()
    info.header.frame_id = frame_id
    info.width, info.height = width, height
    info.distortion_model = 'plumb_bob'
    info.d = [0.0] * 5
    info.k = [float(v) for v in k.reshape(-1)]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [k[0, 0], 0.0, k[0, 2], 0.0, 0.0, k[1, 1], k[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
    info.p = [float(v) for v in info.p]
    return info


class Ur5WorldNode(Node):
    """The simulator node (see the module docstring for its interfaces).

    Args:
        world: a world to serve (tests); built from the ``scene`` parameter when None.
        **kwargs: passed to ``rclpy.node.Node``.

    """

    def __init__(self, world: Ur5World | None = None, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for name, default, desc in PARAMETERS:
            self.declare_parameter(name, default, desc)
        p = self._param
        reliability = str(p('image_reliability'))
        if reliability not in ('reliable', 'best_effort'):
            raise ValueError(
                f"image_reliability must be 'reliable' or 'best_effort', got {reliability!r}"
            )
        self.world = world or Ur5World(p('scene') or None)
        scene = self.world.scene
        self.world_frame = p('world_frame') or scene.world_frame
        self.camera_frame = p('camera_frame') or scene.camera.frame_id
        self.rate = float(p('rate'))
        self.rtf = float(p('real_time_factor'))
        self.sim_time = bool(self.get_parameter('use_sim_time').value)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.context.on_shutdown(self._stop.set)  # Ctrl-C: stop publishing before teardown

        image_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=int(p('image_depth')),
            reliability=(
                ReliabilityPolicy.RELIABLE
                if reliability == 'reliable'
                else ReliabilityPolicy.BEST_EFFORT
            ),
        )
        self.color_pub = self.create_publisher(Image, p('color_topic'), image_qos)
        self.depth_pub = self.create_publisher(Image, p('depth_topic'), image_qos)
        self.info_pub = self.create_publisher(CameraInfo, p('camera_info_topic'), image_qos)
        self.depth_info_pub = self.create_publisher(
            CameraInfo, p('depth_camera_info_topic'), image_qos
        )
        self.joint_pub = self.create_publisher(JointState, p('joint_states_topic'), 10)
        self.clock_pub = self.create_publisher(Clock, '/clock', 10) if self.sim_time else None
        self.create_subscription(JointTrajectory, p('trajectory_topic'), self._on_trajectory, 10)
        self.create_service(SetBool, p('gripper_service'), self._on_gripper)
        self.create_service(GetObjectPoses, p('get_object_poses_service'), self._on_get_poses)
        self.create_service(SetObjectPose, p('set_object_pose_service'), self._on_set_pose)
        self.create_timer(1.0 / float(p('joint_state_rate')), self._publish_joint_states)
        self._camera_info = camera_info_msg(
            self.world.k, self.world.width, self.world.height, self.camera_frame
        )
        self._publish_extrinsics()

        self.oracle_server: OracleServer | None = None
        if p('oracle_enabled'):
            seed = int(p('oracle_seed'))
            config = OracleConfig(
                latency=float(p('oracle_latency')),
                noise_std=float(p('oracle_noise')),
                malformed_rate=float(p('oracle_malformed_rate')),
                seed=None if seed < 0 else seed,
            )
            self.oracle_server = OracleServer(
                Oracle(self.world.snapshot, config), p('oracle_host'), int(p('oracle_port'))
            ).start()
        self._viewer = self._open_viewer() if p('viewer') else None
        self._save_dir = Path(p('save_frames_dir')) if p('save_frames_dir') else None
        self._save_period = float(p('save_frames_period'))
        self._physics = threading.Thread(target=self._physics_loop, name='physics', daemon=True)
        self._render = threading.Thread(target=self._render_loop, name='render', daemon=True)
        self._physics.start()
        self._render.start()

    # ------------------------------------------------------------------ helpers

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def now_stamp(self) -> TimeMsg:
        """Stamp for outgoing messages: simulated time under use_sim_time, else wall clock."""
        if self.sim_time:
            return _stamp(self.world.time)
        return self.get_clock().now().to_msg()

    @property
    def ready_line(self) -> str:
        """The line printed once the world is up."""
        oracle = self.oracle_server.url if self.oracle_server else 'disabled'
        return (
            f'ur5_world ready: oracle at {oracle}, camera {self.world.width}x'
            f'{self.world.height} @ {self.rate:g} Hz'
        )

    def wait_ready(self, timeout: float) -> bool:
        """Block until the first camera frame was published."""
        return self._ready.wait(timeout)

    def _publish_extrinsics(self) -> None:
        t = self.world.t_world_camera
        xyz = [float(v) for v in t[:3, 3]]
        q = [float(v) for v in matrix_to_quat_xyzw(t[:3, :3])]
        self.declare_parameter(
            'camera_extrinsics.translation',
            xyz,
            _describe(f'{self.camera_frame} origin in {self.world_frame}, m', read_only=True),
        )
        self.declare_parameter(
            'camera_extrinsics.rotation_xyzw',
            q,
            _describe(f'{self.camera_frame} orientation in {self.world_frame}', read_only=True),
        )
        try:
            from geometry_msgs.msg import TransformStamped
            from tf2_msgs.msg import TFMessage
        except ImportError:
            self.get_logger().info(
                f'tf2_msgs not available (not on PyPI): static transform {self.world_frame} -> '
                f'{self.camera_frame} is translation {np.round(xyz, 6).tolist()}, rotation xyzw '
                f'{np.round(q, 6).tolist()} (parameters camera_extrinsics.*, and the scene file)'
            )
            return
        qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._tf_pub = self.create_publisher(TFMessage, '/tf_static', qos)
        ts = TransformStamped()
        ts.header.stamp = self.now_stamp()
        ts.header.frame_id = self.world_frame
        ts.child_frame_id = self.camera_frame
        ts.transform.translation.x, ts.transform.translation.y, ts.transform.translation.z = xyz
        r = ts.transform.rotation
        r.x, r.y, r.z, r.w = q
        self._tf_pub.publish(TFMessage(transforms=[ts]))

    def _open_viewer(self) -> Any:
        if not os.environ.get('DISPLAY') and not os.environ.get('WAYLAND_DISPLAY'):
            self.get_logger().warning('viewer requested but there is no display: running headless')
            return None
        try:
            import mujoco.viewer

            return mujoco.viewer.launch_passive(self.world.model, self.world.data)
        except Exception as exc:  # no GLFW / GL: keep running headless, say why
            self.get_logger().warning(f'cannot open the MuJoCo viewer ({exc}): running headless')
            return None

    # ------------------------------------------------------------------ threads

    def _physics_loop(self) -> None:
        wall0, sim0 = time.monotonic(), self.world.time
        clock_period = 1.0 / float(self._param('clock_rate'))
        next_clock = 0.0
        last_warn = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            target = sim0 + self.rtf * (now - wall0)
            lag = target - self.world.time
            if lag > 0.25:  # cannot keep up: resynchronise instead of running ever later
                if now - last_warn > 10.0:
                    self.get_logger().warning(
                        f'physics is {lag:.2f} s behind real time x{self.rtf:g}; resynchronising'
                    )
                    last_warn = now
                wall0, sim0 = now, self.world.time
                lag = 0.0
            if lag > 0:
                self.world.step(min(lag, 0.02))
            if self._viewer is not None and self._viewer.is_running():
                with self.world.lock:
                    self._viewer.sync()
            if self.clock_pub is not None and now >= next_clock:
                self.clock_pub.publish(Clock(clock=_stamp(self.world.time)))
                next_clock = now + clock_period
            time.sleep(0.002)

    def _render_loop(self) -> None:
        period = 1.0 / self.rate
        next_frame = time.monotonic()
        next_save = 0.0
        while not self._stop.is_set():
            try:
                rgb, depth = self.world.render_rgbd()
                stamp = self.now_stamp()
                mm = depth_to_mm(depth)
                self._camera_info.header.stamp = stamp
                self.color_pub.publish(image_msg(rgb, 'rgb8', self.camera_frame, stamp))
                self.depth_pub.publish(image_msg(mm, '16UC1', self.camera_frame, stamp))
                self.info_pub.publish(self._camera_info)
                self.depth_info_pub.publish(self._camera_info)
                if self._save_dir is not None and time.monotonic() >= next_save:
                    self._save_frames(rgb, mm)
                    next_save = time.monotonic() + self._save_period
            except Exception as exc:  # keep the camera alive, but say what went wrong
                if self._stop.is_set():
                    return
                self.get_logger().error(f'render/publish failed: {type(exc).__name__}: {exc}')
                time.sleep(1.0)
                continue
            self._ready.set()
            next_frame += period
            delay = next_frame - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_frame = time.monotonic()  # running late: do not try to catch up

    def _save_frames(self, rgb: np.ndarray, mm: np.ndarray) -> None:
        assert self._save_dir is not None
        self._save_dir.mkdir(parents=True, exist_ok=True)
        for name, img in (('color.png', rgb), ('depth.png', mm)):
            tmp = self._save_dir / f'.{name}.tmp.png'
            PILImage.fromarray(img).save(tmp)
            tmp.replace(self._save_dir / name)

    # ------------------------------------------------------------------ callbacks

    def _publish_joint_states(self) -> None:
        if self._stop.is_set():
            return
        msg = JointState()
        msg.header.stamp = self.now_stamp()
        msg.name = list(self.world.joint_names)
        msg.position = [float(v) for v in self.world.joint_positions()]
        msg.velocity = [float(v) for v in self.world.joint_velocities()]
        msg.effort = [float(v) for v in self.world.joint_efforts()]
        self.joint_pub.publish(msg)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        if not msg.points:
            self.world.stop()
            self.get_logger().info('empty trajectory: stopping the arm')
            return
        times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
        positions = [list(p.positions) for p in msg.points]
        velocities = [list(p.velocities) for p in msg.points]
        start = None
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if stamp > 0.0:
            if self.sim_time:
                start = stamp
            else:
                now = self.get_clock().now().nanoseconds * 1e-9
                start = self.world.time + max(0.0, stamp - now) * self.rtf
        try:
            traj = self.world.set_trajectory(
                list(msg.joint_names), times, positions, velocities, start
            )
        except TrajectoryError as exc:
            self.get_logger().error(
                f'refused trajectory on {self._param("trajectory_topic")}: {exc}'
            )
            return
        self.get_logger().info(
            f'following a {len(msg.points)}-point trajectory over {traj.times[-1]:.2f} s'
        )

    def _on_gripper(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        res.success, res.message = self.world.set_gripper(bool(req.data))
        self.get_logger().info(f'gripper {"close" if req.data else "open"}: {res.message}')
        return res

    def _on_get_poses(
        self, req: GetObjectPoses.Request, res: GetObjectPoses.Response
    ) -> GetObjectPoses.Response:
        res.frame_id = self.world_frame
        try:
            poses = self.world.object_poses(list(req.names))
        except KeyError as exc:
            res.success, res.message = False, str(exc.args[0])
            return res
        for name, p in poses.items():
            pose = Pose()
            pose.position.x, pose.position.y, pose.position.z = (float(v) for v in p.position)
            q = pose.orientation
            q.x, q.y, q.z, q.w = (float(v) for v in p.quat_xyzw)
            res.names.append(name)
            res.poses.append(pose)
            res.held.append(bool(p.held))
        res.success = True
        return res

    def _on_set_pose(
        self, req: SetObjectPose.Request, res: SetObjectPose.Response
    ) -> SetObjectPose.Response:
        p, q = req.pose.position, req.pose.orientation
        try:
            self.world.set_object_pose(req.name, [p.x, p.y, p.z], [q.x, q.y, q.z, q.w])
        except KeyError as exc:
            res.success, res.message = False, str(exc.args[0])
        except ValueError as exc:
            res.success, res.message = False, str(exc)
        else:
            res.success, res.message = True, f'moved {req.name}'
        if res.success:
            self.get_logger().info(f'set_object_pose {req.name}: {res.message}')
        else:
            self.get_logger().warning(f'set_object_pose {req.name} refused: {res.message}')
        return res

    # ------------------------------------------------------------------ shutdown

    def shutdown(self) -> None:
        """Stop the threads and the oracle server, release the renderer."""
        self._stop.set()
        for t in (self._physics, self._render):
            if t.is_alive():
                t.join(timeout=5)
        if self.oracle_server is not None:
            self.oracle_server.stop()
            self.oracle_server = None
        if self._viewer is not None:
            self._viewer.close()
        self.world.close()


def main(args: list[str] | None = None) -> int:
    """Run the node until Ctrl-C (``ros2 run robotracer_sim ur5_world``).

    Args:
        args: command-line arguments (``--ros-args ...``); ``sys.argv`` when None.

    Returns:
        Process exit code (0 on a clean shutdown, 1 when the world could not start).

    """
    rclpy.init(args=args)
    node: Ur5WorldNode | None = None
    code = 0
    try:
        node = Ur5WorldNode()
        executor = MultiThreadedExecutor(num_threads=2)
        executor.add_node(node)
        waiter = threading.Thread(
            target=lambda: node.wait_ready(60.0) and print(node.ready_line, flush=True),
            daemon=True,
        )
        waiter.start()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (SceneError, OSError, ValueError, FileNotFoundError) as exc:
        print(f'ur5_world: cannot start: {exc}', file=sys.stderr, flush=True)
        code = 1
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
