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
import sys
import threading
from typing import Any

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
import numpy as np
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool

from robotracer_msgs.srv import GetObjectPoses, SetObjectPose
from robotracer_sim.common.scene_schema import SceneError, scene_file_path
from robotracer_sim.g1.base import BaseLimits
from robotracer_sim.g1.dds_peer import G1DdsPeer, PeerConfig
from robotracer_sim.g1.runner import RealtimeRunner
from robotracer_sim.g1.scene import load_g1_scene
from robotracer_sim.g1.world import G1World, HeadCamera, camera_quat_xyzw
from robotracer_sim.nodes.messages import (
    add_object_pose,
    camera_info_msg,
    joint_state_msg,
    pose_msg,
    stamp_msg,
)
from robotracer_sim.nodes.parameters import (
    OBJECT_POSE_SERVICE_PARAMETERS,
    ORACLE_PARAMETERS,
    WATCH_PARAMETERS,
    ParameterTable,
    describe,
    image_qos_parameters,
)
from robotracer_sim.nodes.world_node import SimWorldNode, run_world_node
from robotracer_sim.oracle.scene import SceneSnapshot

NODE_NAME = 'g1_world'

PARAMETERS: ParameterTable = [
    ('scene', '', describe('scene YAML file; empty: config/scenes/g1_room.yaml')),
    # Unitree DDS side
    (
        'domain_id',
        -1,
        describe('DDS domain of the Unitree interface; -1: $ROS_DOMAIN_ID or 0', -1, 232, True),
    ),
    ('network_interface', 'lo', describe("DDS network interface ('' = CycloneDDS picks)")),
    (
        'loco_service',
        'sport',
        describe(
            "LocoClient RPC service name ('sport' as the pinned SDK; 'loco' on old firmware)"
        ),
    ),
    ('lowstate_rate', 250.0, describe('rt/lowstate rate (= physics tick), Hz', 50.0, 500.0)),
    ('hand_state_rate', 50.0, describe('rt/dex3/*/state rate, Hz', 1.0, 500.0)),
    ('odom_dds_rate', 50.0, describe('rt/odommodestate rate, Hz', 1.0, 500.0)),
    ('check_crc', True, describe('drop rt/arm_sdk samples with a wrong CRC (as the robot)')),
    ('mode_machine', 5, describe('LowState_.mode_machine (robot type code)', 0, 255, True)),
    # base limits
    ('max_linear_speed', 0.5, describe('base speed limit, m/s', 0.05, 0.5)),
    ('max_yaw_rate', 1.0, describe('base yaw rate limit, rad/s', 0.05, 1.0)),
    ('max_linear_accel', 1.0, describe('base acceleration limit, m/s^2', 0.05, 5.0)),
    ('max_yaw_accel', 2.0, describe('base yaw acceleration limit, rad/s^2', 0.05, 10.0)),
    # ROS side
    ('rate', 10.0, describe('camera render + publish rate, Hz', 0.5, 60.0)),
    ('joint_state_rate', 50.0, describe('/joint_states rate, Hz', 1.0, 500.0)),
    ('odom_rate', 50.0, describe('/odom rate, Hz', 1.0, 500.0)),
    ('status_rate', 2.0, describe('status topic rate, Hz', 0.1, 50.0)),
    ('clock_rate', 100.0, describe('/clock rate when use_sim_time, Hz', 10.0, 1000.0)),
    *image_qos_parameters(
        "image QoS reliability: 'reliable' (default, see DESIGN.md) or 'best_effort'"
    ),
    ('camera_namespace', '/camera/camera', describe('namespace of the RGB-D topics')),
    ('camera_frame', 'd435_color_optical_frame', describe('optical frame id of the images')),
    ('joint_states_topic', '/joint_states', describe('joint state topic')),
    ('odom_topic', '/odom', describe('odometry topic (nav_msgs/Odometry)')),
    ('odom_frame', '', describe("odometry/world frame id; empty: the scene's world_frame")),
    ('base_frame', 'pelvis', describe('base frame id (child of the odometry)')),
    ('camera_pose_topic', '/sim/g1/camera_pose', describe('camera optical pose in odom')),
    ('status_topic', '/sim/g1/status', describe('JSON status topic (std_msgs/String)')),
    *OBJECT_POSE_SERVICE_PARAMETERS,
    ('pause_lowstate_service', '/sim/g1/pause_lowstate', describe('SetBool: pause rt/lowstate')),
    # oracle
    *ORACLE_PARAMETERS,
    # watching
    *WATCH_PARAMETERS,
]


class G1WorldNode(SimWorldNode):
    """The G1 simulator node (see the module docstring for its interfaces).

    Args:
        world: a world to serve (tests); built from the ``scene`` parameter when None.
        **kwargs: passed to ``rclpy.node.Node``.

    Raises:
        ValueError: a parameter is invalid (the message names it).
        RuntimeError: the DDS domain could not be joined.

    """

    def __init__(self, world: G1World | None = None, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, PARAMETERS, **kwargs)
        p = self._param
        limits = BaseLimits(
            float(p('max_linear_speed')),
            float(p('max_yaw_rate')),
            float(p('max_linear_accel')),
            float(p('max_yaw_accel')),
        )
        if world is None:
            scene = load_g1_scene(p('scene') or scene_file_path('g1_room.yaml'))
            world = G1World(scene, limits)
        self.world: G1World = world
        self.odom_frame = p('odom_frame') or world.scene.world_frame
        self.base_frame = str(p('base_frame'))
        self.camera_frame = str(p('camera_frame'))
        self.rate = float(p('rate'))
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
        c = world.scene.camera
        self._create_camera_publishers(
            f'{ns}/color/image_raw',
            f'{ns}/aligned_depth_to_color/image_raw',
            f'{ns}/color/camera_info',
            f'{ns}/aligned_depth_to_color/camera_info',
            camera_info_msg(world.camera_intrinsics(), c.width, c.height, self.camera_frame),
        )
        self.cam_pose_pub = self.create_publisher(PoseStamped, p('camera_pose_topic'), 10)
        self.joint_pub = self.create_publisher(JointState, p('joint_states_topic'), 10)
        self.odom_pub = self.create_publisher(Odometry, p('odom_topic'), 10)
        self.status_pub = self.create_publisher(String, p('status_topic'), 10)
        self.create_service(GetObjectPoses, p('get_object_poses_service'), self._on_get_poses)
        self.create_service(SetObjectPose, p('set_object_pose_service'), self._on_set_pose)
        self.create_service(SetBool, p('pause_lowstate_service'), self._on_pause_lowstate)
        self.create_timer(1.0 / float(p('joint_state_rate')), self._publish_joint_states)
        self.create_timer(1.0 / float(p('odom_rate')), self._publish_odom)
        self.create_timer(1.0 / float(p('status_rate')), self._publish_status)
        if self.clock_pub is not None:
            self.create_timer(1.0 / float(p('clock_rate')), self._publish_clock)

        self._start_oracle(self._snapshot)
        self._start_watching()
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

    @property
    def ready_line(self) -> str:
        """The line printed once the world is up."""
        oracle = self.oracle_server.url if self.oracle_server else 'disabled'
        c = self.world.scene.camera
        return (
            f'g1_world ready: oracle at {oracle}, DDS domain {self.domain_id} on '
            f'{self.interface or "auto"}, camera {c.width}x{c.height} @ {self.rate:g} Hz'
        )

    def _dds_log(self, level: str, msg: str) -> None:
        # One call site per severity: rclpy refuses a severity change at the same call site.
        if level == 'info':
            self.get_logger().info(msg)
        elif level == 'warn':
            self.get_logger().warning(msg)
        else:
            self.get_logger().error(msg)

    def _snapshot(self) -> SceneSnapshot:
        # The camera moves with the robot: answer for the pose of the last published frame.
        return self.world.snapshot(self._frame_pose)

    # ------------------------------------------------------------------ camera thread

    def _render_loop(self) -> None:
        try:
            camera = HeadCamera(self.world)
        except Exception as exc:  # no OpenGL: the robot side still works, say why
            self.get_logger().error(
                f'head camera unavailable ({type(exc).__name__}: {exc}); set MUJOCO_GL=egl'
            )
            return
        try:
            self._camera_loop(self.rate, lambda: self._camera_frame(camera))
        finally:
            camera.close()

    def _camera_frame(self, camera: HeadCamera) -> tuple[np.ndarray, np.ndarray]:
        rgb, depth, pose, sim_stamp = camera.capture()
        stamp = stamp_msg(sim_stamp) if self.sim_time else self.now_stamp()
        mm = self._publish_rgbd(rgb, depth, stamp)
        ps = PoseStamped()
        ps.header.stamp, ps.header.frame_id = stamp, self.odom_frame
        ps.pose = pose_msg(pose[:3, 3], camera_quat_xyzw(pose))
        self.cam_pose_pub.publish(ps)
        self._frame_pose = pose
        self._frames += 1
        return rgb, mm

    # ------------------------------------------------------------------ timers

    def _publish_joint_states(self) -> None:
        names, q, dq, eff = self.world.joint_state()
        self.joint_pub.publish(joint_state_msg(self.now_stamp(), names, q, dq, eff))

    def _publish_odom(self) -> None:
        b = self.world.base_state()
        msg = Odometry()
        msg.header.stamp = stamp_msg(b.stamp) if self.sim_time else self.now_stamp()
        msg.header.frame_id = self.odom_frame
        msg.child_frame_id = self.base_frame
        msg.pose.pose = pose_msg(b.position, b.quat_xyzw)
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
            add_object_pose(res, o.name, o.position, o.quat_xyzw, o.held_by is not None)
        res.success = True
        res.message = ', '.join(
            f'{o.name} held by the {o.held_by} hand' for o in poses if o.held_by
        )
        return res

    def _on_pause_lowstate(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        self.peer.lowstate_paused = bool(req.data)
        res.success = True
        res.message = 'rt/lowstate paused' if req.data else 'rt/lowstate publishing'
        self.get_logger().warning(res.message)
        return res

    # ------------------------------------------------------------------ shutdown

    def _join_threads(self) -> None:
        self.runner.stop()
        if self._render.is_alive():
            self._render.join(timeout=5)


def main(args: list[str] | None = None) -> int:
    """Run the node until Ctrl-C (``ros2 run robotracer_sim g1_world``).

    Args:
        args: command-line arguments (``--ros-args ...``); ``sys.argv`` when None.

    Returns:
        Process exit code (0 on a clean shutdown, 1 when the world could not start).

    """
    return run_world_node(
        G1WorldNode, NODE_NAME, 120.0, (SceneError, OSError, ValueError, RuntimeError), args
    )


if __name__ == '__main__':
    sys.exit(main())
