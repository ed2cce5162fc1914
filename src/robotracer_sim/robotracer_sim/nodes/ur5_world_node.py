"""ROS 2 node ``ur5_world``: the UR5 tabletop simulator behind a real robot's interfaces.

Design notes: docs/design-notes.md (robotracer_sim.nodes.ur5_world_node).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory

from robotracer_msgs.srv import GetObjectPoses, SetObjectPose
from robotracer_ros.parameters import Param, descriptor
from robotracer_sim.nodes.messages import (
    add_object_pose,
    camera_info_msg,
    depth_to_mm,
    image_msg,
    joint_state_msg,
)
from robotracer_sim.nodes.parameters import (
    OBJECT_POSE_SERVICE_PARAMETERS,
    ORACLE_PARAMETERS,
    WATCH_PARAMETERS,
    ParameterTable,
    image_qos_parameters,
)
from robotracer_sim.nodes.world_node import SimWorldNode, run_world_node
from robotracer_sim.oracle.geometry import matrix_to_quat_xyzw
from robotracer_sim.ur5.scene import SceneError
from robotracer_sim.ur5.world import TrajectoryError, Ur5World

# The message helpers live in robotracer_sim.nodes.messages (shared with g1_world) and stay
# importable from here.
__all__ = ['PARAMETERS', 'Ur5WorldNode', 'camera_info_msg', 'depth_to_mm', 'image_msg', 'main']

NODE_NAME = 'ur5_world'

PARAMETERS: ParameterTable = [
    Param('scene', '', 'scene YAML file; empty: config/scenes/ur5_tabletop.yaml'),
    Param('rate', 15.0, 'camera render + publish rate, Hz', 0.5, 60.0),
    Param('joint_state_rate', 50.0, '/joint_states publish rate, Hz', 1.0, 500.0),
    Param('real_time_factor', 1.0, 'simulated seconds per wall-clock second', 0.1, 10.0),
    Param('clock_rate', 100.0, '/clock publish rate when use_sim_time, Hz', 10.0, 1000.0),
    *image_qos_parameters(
        "image QoS reliability: 'reliable' (default: best effort drops most large frames "
        "between processes on small machines) or 'best_effort'"
    ),
    Param('color_topic', '/camera/camera/color/image_raw', 'colour image topic (rgb8)'),
    Param(
        'depth_topic',
        '/camera/camera/aligned_depth_to_color/image_raw',
        'depth image topic (16UC1, mm, aligned to colour)',
    ),
    Param('camera_info_topic', '/camera/camera/color/camera_info', 'colour camera_info'),
    Param(
        'depth_camera_info_topic',
        '/camera/camera/aligned_depth_to_color/camera_info',
        'aligned depth camera_info (same intrinsics as colour)',
    ),
    Param('joint_states_topic', '/joint_states', 'joint state topic'),
    Param(
        'trajectory_topic',
        '/scaled_joint_trajectory_controller/joint_trajectory',
        'JointTrajectory command topic (ros2_control JTC topic interface)',
    ),
    Param('gripper_service', '/robotracer/gripper', 'SetBool gripper service'),
    *OBJECT_POSE_SERVICE_PARAMETERS,
    Param('world_frame', '', "world/base frame id; empty: the scene's (world)"),
    Param('camera_frame', '', "camera optical frame id; empty: the scene's"),
    *ORACLE_PARAMETERS,
    *WATCH_PARAMETERS,
]


class Ur5WorldNode(SimWorldNode):
    """The simulator node (see the module docstring for its interfaces).

    Args:
        world: a world to serve (tests); built from the ``scene`` parameter when None.
        **kwargs: passed to ``rclpy.node.Node``.

    """

    def __init__(self, world: Ur5World | None = None, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, PARAMETERS, **kwargs)
        p = self._param
        self.world: Ur5World = world or Ur5World(p('scene') or None)
        scene = self.world.scene
        self.world_frame = p('world_frame') or scene.world_frame
        self.camera_frame = p('camera_frame') or scene.camera.frame_id
        self.rate = float(p('rate'))
        self.rtf = float(p('real_time_factor'))
        self.context.on_shutdown(self._stop.set)  # Ctrl-C: stop publishing before teardown

        self._create_camera_publishers(
            p('color_topic'),
            p('depth_topic'),
            p('camera_info_topic'),
            p('depth_camera_info_topic'),
            camera_info_msg(self.world.k, self.world.width, self.world.height, self.camera_frame),
        )
        self.joint_pub = self.create_publisher(JointState, p('joint_states_topic'), 10)
        self.create_subscription(JointTrajectory, p('trajectory_topic'), self._on_trajectory, 10)
        self.create_service(SetBool, p('gripper_service'), self._on_gripper)
        self.create_service(GetObjectPoses, p('get_object_poses_service'), self._on_get_poses)
        self.create_service(SetObjectPose, p('set_object_pose_service'), self._on_set_pose)
        self.create_timer(1.0 / float(p('joint_state_rate')), self._publish_joint_states)
        self._publish_extrinsics()

        self._start_oracle(self.world.snapshot)
        self._start_watching()
        self._physics = threading.Thread(target=self._physics_loop, name='physics', daemon=True)
        self._render = threading.Thread(
            target=self._camera_loop,
            args=(self.rate, self._camera_frame),
            name='render',
            daemon=True,
        )
        self._physics.start()
        self._render.start()

    # ------------------------------------------------------------------ helpers

    @property
    def ready_line(self) -> str:
        """The line printed once the world is up."""
        oracle = self.oracle_server.url if self.oracle_server else 'disabled'
        return (
            f'ur5_world ready: oracle at {oracle}, camera {self.world.width}x'
            f'{self.world.height} @ {self.rate:g} Hz'
        )

    def _publish_extrinsics(self) -> None:
        t = self.world.t_world_camera
        xyz = [float(v) for v in t[:3, 3]]
        q = [float(v) for v in matrix_to_quat_xyzw(t[:3, :3])]
        self.declare_parameter(
            'camera_extrinsics.translation',
            xyz,
            descriptor(Param('', xyz, f'{self.camera_frame} origin in {self.world_frame}, m')),
        )
        self.declare_parameter(
            'camera_extrinsics.rotation_xyzw',
            q,
            descriptor(Param('', q, f'{self.camera_frame} orientation in {self.world_frame}')),
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
            self._sync_viewer()
            if self.clock_pub is not None and now >= next_clock:
                self._publish_clock()
                next_clock = now + clock_period
            time.sleep(0.002)

    def _camera_frame(self) -> tuple[np.ndarray, np.ndarray]:
        rgb, depth = self.world.render_rgbd()
        return rgb, self._publish_rgbd(rgb, depth, self.now_stamp())

    # ------------------------------------------------------------------ callbacks

    def _publish_joint_states(self) -> None:
        if self._stop.is_set():
            return
        w = self.world
        self.joint_pub.publish(
            joint_state_msg(
                self.now_stamp(),
                w.joint_names,
                w.joint_positions(),
                w.joint_velocities(),
                w.joint_efforts(),
            )
        )

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        if not msg.points:
            # As Jazzy's joint_trajectory_controller: rejected, the running motion goes on.
            self.get_logger().error('Empty trajectory received.')
            return
        times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
        positions = [list(p.positions) for p in msg.points]
        velocities = [list(p.velocities) for p in msg.points]
        accelerations = [list(p.accelerations) for p in msg.points]
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
                list(msg.joint_names), times, positions, velocities, start, accelerations
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
            add_object_pose(res, name, p.position, p.quat_xyzw, p.held)
        res.success = True
        return res

    # ------------------------------------------------------------------ shutdown

    def _join_threads(self) -> None:
        for t in (self._physics, self._render):
            if t.is_alive():
                t.join(timeout=5)

    def shutdown(self) -> None:
        """Stop the threads and the oracle server, release the renderer."""
        super().shutdown()
        self.world.close()


def main(args: list[str] | None = None) -> int:
    """Run the node until Ctrl-C (``ros2 run robotracer_sim ur5_world``).

    Args:
        args: command-line arguments (``--ros-args ...``); ``sys.argv`` when None.

    Returns:
        Process exit code (0 on a clean shutdown, 1 when the world could not start).

    """
    return run_world_node(
        Ur5WorldNode, NODE_NAME, 60.0, (SceneError, OSError, ValueError, FileNotFoundError), args
    )


if __name__ == '__main__':
    sys.exit(main())
