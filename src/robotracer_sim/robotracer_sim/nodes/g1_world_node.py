"""ROS 2 node ``g1_world``: the G1 room simulator behind the real robot's interfaces.

It wraps :class:`robotracer_sim.g1.world.G1World` (what is and is not simulated is written
there), serves it on the Unitree DDS interface (:mod:`robotracer_sim.g1.dds_peer`: ``rt/lowstate``,
``rt/arm_sdk``, ``rt/dex3/*``, ``rt/odommodestate`` and the ``LocoClient`` RPC, on DDS domain
``domain_id`` over ``network_interface``), runs the ground-truth oracle model server for the
head camera, and publishes for ROS (all names are parameters):

Publishes
    ``/joint_states`` (all 43 joints: 29 body + 2 × 7 Dex3 fingers), ``/odom``
    (nav_msgs/Odometry, ``odom`` → ``pelvis``, twist in the pelvis frame), the head camera
    RGB-D in the RealSense layout under ``camera_namespace`` (``<ns>/color/image_raw`` rgb8,
    ``<ns>/aligned_depth_to_color/image_raw`` 16UC1 mm, both ``camera_info``), the camera's
    optical-frame pose in ``odom`` at each frame's stamp on ``camera_pose_topic``
    (geometry_msgs/PoseStamped; on a real robot this comes from TF), a JSON status on
    ``status_topic`` (std_msgs/String: FSM, base command, arm_sdk weight and counters, grasp
    state, lowstate rate), and ``/clock`` when ``use_sim_time`` is true.
Services
    ``/sim/get_object_poses`` (robotracer_msgs/GetObjectPoses; ``held`` = grasped by a hand),
    ``/sim/set_object_pose`` (robotracer_msgs/SetObjectPose; refused for a held object),
    ``/sim/g1/pause_lowstate`` (std_srvs/SetBool: true stops ``rt/lowstate`` while the world
    goes on, to test a client's stale-state handling).

When everything is up it prints one line:
``g1_world ready: oracle at http://127.0.0.1:25547, DDS domain 0 on lo, camera 640x480 @ 10 Hz``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import sys
import threading
import time
from typing import Any

from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import Pose, PoseStamped
from nav_msgs.msg import Odometry
import numpy as np
from PIL import Image as PILImage
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool

from robotracer_msgs.srv import GetObjectPoses, SetObjectPose
from robotracer_sim.g1.base import BaseLimits
from robotracer_sim.g1.dds_peer import G1DdsPeer, PeerConfig
from robotracer_sim.g1.runner import RealtimeRunner
from robotracer_sim.g1.scene import load_g1_scene
from robotracer_sim.g1.world import G1World, HeadCamera, camera_quat_xyzw
from robotracer_sim.nodes.ur5_world_node import camera_info_msg, depth_to_mm, image_msg
from robotracer_sim.oracle import Oracle, OracleConfig, OracleServer
from robotracer_sim.ur5.scene import SceneError, default_scene_path

NODE_NAME = 'g1_world'


def _describe(
    text: str, lo: float | None = None, hi: float | None = None, integer: bool = False
) -> ParameterDescriptor:
    d = ParameterDescriptor(description=text)
    if lo is not None and hi is not None:
        if integer:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
        else:
            d.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
    return d


PARAMETERS: list[tuple[str, Any, ParameterDescriptor]] = [
    ('scene', '', _describe('scene YAML file; empty: config/scenes/g1_room.yaml')),
    # Unitree DDS side
    (
        'domain_id',
        -1,
        _describe('DDS domain of the Unitree interface; -1: $ROS_DOMAIN_ID or 0', -1, 232, True),
    ),
    ('network_interface', 'lo', _describe("DDS network interface ('' = CycloneDDS picks)")),
    (
        'loco_service',
        'sport',
        _describe(
            "LocoClient RPC service name ('sport' as the pinned SDK; 'loco' on old firmware)"
        ),
    ),
    ('lowstate_rate', 250.0, _describe('rt/lowstate rate (= physics tick), Hz', 50.0, 500.0)),
    ('hand_state_rate', 50.0, _describe('rt/dex3/*/state rate, Hz', 1.0, 500.0)),
    ('odom_dds_rate', 50.0, _describe('rt/odommodestate rate, Hz', 1.0, 500.0)),
    ('check_crc', True, _describe('drop rt/arm_sdk samples with a wrong CRC (as the robot)')),
    ('mode_machine', 5, _describe('LowState_.mode_machine (robot type code)', 0, 255, True)),
    # base limits
    ('max_linear_speed', 0.5, _describe('base speed limit, m/s', 0.05, 0.5)),
    ('max_yaw_rate', 1.0, _describe('base yaw rate limit, rad/s', 0.05, 1.0)),
    ('max_linear_accel', 1.0, _describe('base acceleration limit, m/s^2', 0.05, 5.0)),
    ('max_yaw_accel', 2.0, _describe('base yaw acceleration limit, rad/s^2', 0.05, 10.0)),
    # ROS side
    ('rate', 10.0, _describe('camera render + publish rate, Hz', 0.5, 60.0)),
    ('joint_state_rate', 50.0, _describe('/joint_states rate, Hz', 1.0, 500.0)),
    ('odom_rate', 50.0, _describe('/odom rate, Hz', 1.0, 500.0)),
    ('status_rate', 2.0, _describe('status topic rate, Hz', 0.1, 50.0)),
    ('clock_rate', 100.0, _describe('/clock rate when use_sim_time, Hz', 10.0, 1000.0)),
    (
        'image_reliability',
        'reliable',
        _describe("image QoS reliability: 'reliable' (default, see DESIGN.md) or 'best_effort'"),
    ),
    ('image_depth', 5, _describe('image QoS history depth', 1, 100, integer=True)),
    ('camera_namespace', '/camera/camera', _describe('namespace of the RGB-D topics')),
    ('camera_frame', 'd435_color_optical_frame', _describe('optical frame id of the images')),
    ('joint_states_topic', '/joint_states', _describe('joint state topic')),
    ('odom_topic', '/odom', _describe('odometry topic (nav_msgs/Odometry)')),
    ('odom_frame', '', _describe("odometry/world frame id; empty: the scene's world_frame")),
    ('base_frame', 'pelvis', _describe('base frame id (child of the odometry)')),
    ('camera_pose_topic', '/sim/g1/camera_pose', _describe('camera optical pose in odom')),
    ('status_topic', '/sim/g1/status', _describe('JSON status topic (std_msgs/String)')),
    ('get_object_poses_service', '/sim/get_object_poses', _describe('GetObjectPoses service')),
    ('set_object_pose_service', '/sim/set_object_pose', _describe('SetObjectPose service')),
    ('pause_lowstate_service', '/sim/g1/pause_lowstate', _describe('SetBool: pause rt/lowstate')),
    # oracle
    ('oracle_enabled', True, _describe('serve the ground-truth oracle (RoboTracer HTTP API)')),
    ('oracle_host', '127.0.0.1', _describe('oracle bind address (loopback by default)')),
    ('oracle_port', 25547, _describe('oracle TCP port (0: any free port)', 0, 65535, True)),
    ('oracle_latency', 0.5, _describe('oracle answer delay, s (emulates a model)', 0.0, 60.0)),
    ('oracle_noise', 0.0, _describe('std of Gaussian noise on trace points, m', 0.0, 1.0)),
    ('oracle_malformed_rate', 0.0, _describe('probability of a malformed answer', 0.0, 1.0)),
    ('oracle_seed', -1, _describe('oracle random seed (-1: random)', -1, 2**31 - 1, True)),
    # watching
    ('viewer', False, _describe('open a MuJoCo viewer window (needs a display)')),
    ('save_frames_dir', '', _describe('write color.png/depth.png here periodically (empty: no)')),
    ('save_frames_period', 1.0, _describe('seconds between saved frames', 0.1, 3600.0)),
]


def _stamp(seconds: float) -> TimeMsg:
    sec = int(seconds)
    return TimeMsg(sec=sec, nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)


def _pose(position, quat_xyzw) -> Pose:
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(v) for v in position)
    q = p.orientation
    q.x, q.y, q.z, q.w = (float(v) for v in quat_xyzw)
    return p


class G1WorldNode(Node):
    """The G1 simulator node (see the module docstring for its interfaces).

    Args:
        world: a world to serve (tests); built from the ``scene`` parameter when None.
        **kwargs: passed to ``rclpy.node.Node``.

    Raises:
        ValueError: a parameter is invalid (the message names it).
        RuntimeError: the DDS domain could not be joined.

    """

    def __init__(self, world: G1World | None = None, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for name, default, desc in PARAMETERS:
            self.declare_parameter(name, default, desc)
        p = self._param
        reliability = str(p('image_reliability'))
        if reliability not in ('reliable', 'best_effort'):
            raise ValueError(
                f"image_reliability must be 'reliable' or 'best_effort', got {reliability!r}"
            )
        limits = BaseLimits(
            float(p('max_linear_speed')),
            float(p('max_yaw_rate')),
            float(p('max_linear_accel')),
            float(p('max_yaw_accel')),
        )
        if world is None:
            scene = load_g1_scene(p('scene') or default_scene_path('g1_room.yaml'))
            world = G1World(scene, limits)
        self.world = world
        self.odom_frame = p('odom_frame') or world.scene.world_frame
        self.base_frame = str(p('base_frame'))
        self.camera_frame = str(p('camera_frame'))
        self.rate = float(p('rate'))
        self.sim_time = bool(self.get_parameter('use_sim_time').value)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._frame_pose: np.ndarray | None = None
        self._frames = 0

        domain = int(p('domain_id'))
        if domain < 0:
            domain = int(os.environ.get('ROS_DOMAIN_ID', '0') or 0)
        self.domain_id = domain
        self.interface = str(p('network_interface'))
        self.peer = G1DdsPeer(
            world,
            PeerConfig(
                domain_id=domain,
                interface=self.interface,
                loco_service=str(p('loco_service')),
                check_crc=bool(p('check_crc')),
                mode_machine=int(p('mode_machine')),
            ),
            log=self._dds_log,
        )
        self.peer.start()

        ns = str(p('camera_namespace')).rstrip('/')
        image_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=int(p('image_depth')),
            reliability=(
                ReliabilityPolicy.RELIABLE
                if reliability == 'reliable'
                else ReliabilityPolicy.BEST_EFFORT
            ),
        )
        self.color_pub = self.create_publisher(Image, f'{ns}/color/image_raw', image_qos)
        self.depth_pub = self.create_publisher(
            Image, f'{ns}/aligned_depth_to_color/image_raw', image_qos
        )
        self.info_pub = self.create_publisher(CameraInfo, f'{ns}/color/camera_info', image_qos)
        self.depth_info_pub = self.create_publisher(
            CameraInfo, f'{ns}/aligned_depth_to_color/camera_info', image_qos
        )
        self.cam_pose_pub = self.create_publisher(PoseStamped, p('camera_pose_topic'), 10)
        self.joint_pub = self.create_publisher(JointState, p('joint_states_topic'), 10)
        self.odom_pub = self.create_publisher(Odometry, p('odom_topic'), 10)
        self.status_pub = self.create_publisher(String, p('status_topic'), 10)
        self.clock_pub = self.create_publisher(Clock, '/clock', 10) if self.sim_time else None
        self.create_service(GetObjectPoses, p('get_object_poses_service'), self._on_get_poses)
        self.create_service(SetObjectPose, p('set_object_pose_service'), self._on_set_pose)
        self.create_service(SetBool, p('pause_lowstate_service'), self._on_pause_lowstate)
        self.create_timer(1.0 / float(p('joint_state_rate')), self._publish_joint_states)
        self.create_timer(1.0 / float(p('odom_rate')), self._publish_odom)
        self.create_timer(1.0 / float(p('status_rate')), self._publish_status)
        if self.clock_pub is not None:
            self.create_timer(1.0 / float(p('clock_rate')), self._publish_clock)
        c = world.scene.camera
        self._camera_info = camera_info_msg(
            world.camera_intrinsics(), c.width, c.height, self.camera_frame
        )

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
                Oracle(self._snapshot, config), p('oracle_host'), int(p('oracle_port'))
            ).start()

        self._viewer = self._open_viewer() if p('viewer') else None
        self._save_dir = Path(p('save_frames_dir')) if p('save_frames_dir') else None
        self._save_period = float(p('save_frames_period'))
        self.runner = RealtimeRunner(
            world,
            float(p('lowstate_rate')),
            [
                (float(p('lowstate_rate')), self.peer.publish_lowstate),
                (float(p('hand_state_rate')), self.peer.publish_hand_states),
                (float(p('odom_dds_rate')), self.peer.publish_odometry),
                (30.0, self._sync_viewer),
            ],
            on_error=lambda e: self._dds_log(
                'error', f'publisher failed: {type(e).__name__}: {e}'
            ),
        )
        self.runner.start()
        self._render = threading.Thread(target=self._render_loop, name='render', daemon=True)
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
        c = self.world.scene.camera
        return (
            f'g1_world ready: oracle at {oracle}, DDS domain {self.domain_id} on '
            f'{self.interface or "auto"}, camera {c.width}x{c.height} @ {self.rate:g} Hz'
        )

    def wait_ready(self, timeout: float) -> bool:
        """Block until the first camera frame was published."""
        return self._ready.wait(timeout)

    def _dds_log(self, level: str, msg: str) -> None:
        # One call site per severity: rclpy refuses a severity change at the same call site.
        if level == 'info':
            self.get_logger().info(msg)
        elif level == 'warn':
            self.get_logger().warning(msg)
        else:
            self.get_logger().error(msg)

    def _snapshot(self):
        # The camera moves with the robot: answer for the pose of the last published frame.
        return self.world.snapshot(self._frame_pose)

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

    def _sync_viewer(self) -> None:
        if self._viewer is not None and self._viewer.is_running():
            with self.world.lock:
                self._viewer.sync()

    # ------------------------------------------------------------------ camera thread

    def _render_loop(self) -> None:
        try:
            camera = HeadCamera(self.world)
        except Exception as exc:  # no OpenGL: the robot side still works, say why
            self.get_logger().error(
                f'head camera unavailable ({type(exc).__name__}: {exc}); set MUJOCO_GL=egl'
            )
            return
        period = 1.0 / self.rate
        next_frame = time.monotonic()
        next_save = 0.0
        try:
            while not self._stop.is_set():
                try:
                    rgb, depth, pose, sim_stamp = camera.capture()
                    stamp = _stamp(sim_stamp) if self.sim_time else self.now_stamp()
                    mm = depth_to_mm(depth)
                    self._camera_info.header.stamp = stamp
                    self.color_pub.publish(image_msg(rgb, 'rgb8', self.camera_frame, stamp))
                    self.depth_pub.publish(image_msg(mm, '16UC1', self.camera_frame, stamp))
                    self.info_pub.publish(self._camera_info)
                    self.depth_info_pub.publish(self._camera_info)
                    ps = PoseStamped()
                    ps.header.stamp, ps.header.frame_id = stamp, self.odom_frame
                    ps.pose = _pose(pose[:3, 3], camera_quat_xyzw(pose))
                    self.cam_pose_pub.publish(ps)
                    self._frame_pose = pose
                    self._frames += 1
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
        finally:
            camera.close()

    def _save_frames(self, rgb: np.ndarray, mm: np.ndarray) -> None:
        assert self._save_dir is not None
        self._save_dir.mkdir(parents=True, exist_ok=True)
        for name, img in (('color.png', rgb), ('depth.png', mm)):
            tmp = self._save_dir / f'.{name}.tmp.png'
            PILImage.fromarray(img).save(tmp)
            tmp.replace(self._save_dir / name)

    # ------------------------------------------------------------------ timers

    def _publish_joint_states(self) -> None:
        names, q, dq, eff = self.world.joint_state()
        msg = JointState()
        msg.header.stamp = self.now_stamp()
        msg.name = list(names)
        msg.position = [float(v) for v in q]
        msg.velocity = [float(v) for v in dq]
        msg.effort = [float(v) for v in eff]
        self.joint_pub.publish(msg)

    def _publish_odom(self) -> None:
        b = self.world.base_state()
        msg = Odometry()
        msg.header.stamp = _stamp(b.stamp) if self.sim_time else self.now_stamp()
        msg.header.frame_id = self.odom_frame
        msg.child_frame_id = self.base_frame
        msg.pose.pose = _pose(b.position, b.quat_xyzw)
        t = msg.twist.twist
        t.linear.x, t.linear.y, t.linear.z = (float(v) for v in b.linear_body)
        t.angular.x, t.angular.y, t.angular.z = (float(v) for v in b.angular_body)
        self.odom_pub.publish(msg)

    def _publish_status(self) -> None:
        w, ps, rs = self.world, self.peer.stats, self.runner.stats
        status = {
            'time': round(w.time, 3),
            'fsm_id': w.fsm_id,
            'balance_mode': w.balance_mode,
            'base_command': [round(float(v), 4) for v in w.base.target],
            'base_velocity': [round(float(v), 4) for v in w.base.velocity],
            'arm_sdk_weight': round(w.arm_weight, 4),
            'arm_sdk': {
                'received': ps.arm_sdk_received,
                'crc_errors': ps.arm_sdk_crc_errors,
                'rejected': ps.arm_sdk_rejected,
                'clamped': ps.arm_sdk_clamped,
            },
            'grasp': w.grasp_state(),
            'lowstate': {'published': ps.lowstate_published, 'paused': self.peer.lowstate_paused},
            'real_time_factor': round(rs.real_time_factor, 3),
            'camera_frames': self._frames,
            'rpc_calls': dict(ps.rpc_calls),
        }
        self.status_pub.publish(String(data=json.dumps(status)))

    def _publish_clock(self) -> None:
        assert self.clock_pub is not None
        self.clock_pub.publish(Clock(clock=_stamp(self.world.time)))

    # ------------------------------------------------------------------ services

    def _on_get_poses(
        self, req: GetObjectPoses.Request, res: GetObjectPoses.Response
    ) -> GetObjectPoses.Response:
        res.frame_id = self.odom_frame
        try:
            poses = self.world.object_poses(list(req.names))
        except KeyError as exc:
            res.success, res.message = False, str(exc.args[0])
            return res
        for o in poses:
            res.names.append(o.name)
            res.poses.append(_pose(o.position, o.quat_xyzw))
            res.held.append(o.held_by is not None)
        res.success = True
        res.message = ', '.join(
            f'{o.name} held by the {o.held_by} hand' for o in poses if o.held_by
        )
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
        # One call site per severity: rclpy refuses a severity change at the same call site.
        if res.success:
            self.get_logger().info(f'set_object_pose {req.name}: {res.message}')
        else:
            self.get_logger().warning(f'set_object_pose {req.name}: {res.message}')
        return res

    def _on_pause_lowstate(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        self.peer.lowstate_paused = bool(req.data)
        res.success = True
        res.message = 'rt/lowstate paused' if req.data else 'rt/lowstate publishing'
        self.get_logger().warning(res.message)
        return res

    # ------------------------------------------------------------------ shutdown

    def shutdown(self) -> None:
        """Stop the loops and the oracle server."""
        self._stop.set()
        self.runner.stop()
        if self._render.is_alive():
            self._render.join(timeout=5)
        if self.oracle_server is not None:
            self.oracle_server.stop()
            self.oracle_server = None
        if self._viewer is not None:
            self._viewer.close()


def main(args: list[str] | None = None) -> int:
    """Run the node until Ctrl-C (``ros2 run robotracer_sim g1_world``).

    Args:
        args: command-line arguments (``--ros-args ...``); ``sys.argv`` when None.

    Returns:
        Process exit code (0 on a clean shutdown, 1 when the world could not start).

    """
    rclpy.init(args=args)
    node: G1WorldNode | None = None
    code = 0
    try:
        node = G1WorldNode()
        executor = MultiThreadedExecutor(num_threads=2)
        executor.add_node(node)
        waiter = threading.Thread(
            target=lambda: node.wait_ready(120.0) and print(node.ready_line, flush=True),
            daemon=True,
        )
        waiter.start()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (SceneError, OSError, ValueError, RuntimeError) as exc:
        print(f'g1_world: cannot start: {exc}', file=sys.stderr, flush=True)
        code = 1
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
