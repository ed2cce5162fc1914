"""``ros2 run trace_executor ur5_executor``: UR5 trace execution with replanning.

Actions ``robotracer/execute_trace`` (ExecuteTrace) and ``robotracer/execute_instruction``
(ExecuteInstruction); markers of the planned tool path on ``robotracer/planned_path``. Every name
is relative, so ``namespace:=/left`` puts them (and the driver topics) under ``/left``. The
robot backend is a parameter: ``ros2_control`` (simulator, UR ROS 2 driver), ``moveit`` (needs
moveit_msgs and move_group), ``rtde`` (needs ur_rtde and a controller or URSim). So is the
gripper (``gripper``: ``service``, ``ur_tool_output``, ``robotiq_socket``, ``none``; see
:mod:`trace_executor.backends.grippers`); with ``none``, ``pick_place`` goals are refused before
anything moves.
"""

from __future__ import annotations

import sys
from typing import Any

from geometry_msgs.msg import Point
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, QoSProfile
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from robotracer_ros.parameters import Param
from trace_executor.backends.grippers import GRIPPER_KINDS, NoGripper, make_gripper
from trace_executor.backends.moveit_py import (
    PILZ,
    PLANNING_MODES,
    MoveItPyBackend,
    MoveItPyOptions,
)
from trace_executor.backends.ros2_control import Ros2ControlBackend
from trace_executor.backends.rtde import RtdeBackend, RtdeConfig
from trace_executor.errors import ErrorCode, PlanningError
from trace_executor.execution import BackendError, GoalRunner, GoalSpec
from trace_executor.nodes.common import ExecutorNode
from trace_executor.nodes.scene_watcher import DepthSceneWatcher
from trace_executor.nodes.shutdown import ShutdownRequest, spin_until_shutdown
from trace_executor.scene_monitor import MonitorConfig, RobotMask
from trace_executor.ur5.collision import Ur5BodyMask
from trace_executor.ur5.planner import Ur5Planner, Ur5PlannerConfig

UR5_JOINTS = [
    'shoulder_pan_joint',
    'shoulder_lift_joint',
    'elbow_joint',
    'wrist_1_joint',
    'wrist_2_joint',
    'wrist_3_joint',
]

PARAMS = [
    Param(
        'backend',
        'ros2_control',
        'robot backend: ros2_control | moveit (move_group services) | moveit_py (MoveIt '
        'in-process) | rtde',
        choices=('ros2_control', 'moveit', 'moveit_py', 'rtde'),
    ),
    Param('joint_names', UR5_JOINTS, 'UR5 joint names, planner order'),
    Param(
        'trajectory_topic',
        'scaled_joint_trajectory_controller/joint_trajectory',
        'JointTrajectory topic of the joint trajectory controller (ros2_control backend)',
    ),
    Param('joint_states_topic', 'joint_states', 'sensor_msgs/JointState topic'),
    Param(
        'speed_scaling_topic',
        'speed_scaling_state_broadcaster/speed_scaling',
        "ros2_control: the UR driver's speed scaling (std_msgs/Float64, percent; the trajectory "
        'clock runs at it); empty = none',
    ),
    Param(
        'gripper',
        'service',
        'gripper adapter: service (std_srvs/SetBool at gripper_service: the simulator, your own '
        "node) | ur_tool_output (UR digital output through the driver's SetIO) | "
        'robotiq_socket (Robotiq URCap socket on the controller) | none (pick_place refused)',
        choices=GRIPPER_KINDS,
    ),
    Param(
        'gripper_service', 'robotracer/gripper', 'std_srvs/SetBool gripper service (true = close)'
    ),
    Param(
        'gripper_io_service',
        'io_and_status_controller/set_io',
        "ur_tool_output: the UR driver's ur_msgs/SetIO service",
    ),
    Param('gripper_io_pin', 16, 'ur_tool_output: digital output (16, 17 = tool outputs)', 0, 17),
    Param('gripper_io_close_high', True, 'ur_tool_output: output high closes the gripper'),
    Param(
        'gripper_robotiq_host',
        '',
        'robotiq_socket: the UR controller running the Robotiq URCap (empty: robot_ip)',
    ),
    Param('gripper_robotiq_port', 63352, "robotiq_socket: the URCap's gripper socket", 1, 65535),
    Param('gripper_robotiq_speed', 255, 'robotiq_socket: finger speed, 0-255', 0, 255),
    Param('gripper_robotiq_force', 128, 'robotiq_socket: grip force, 0-255', 0, 255),
    Param('state_timeout_s', 1.0, 'joint states older than this are stale, s', 0.05, 10.0),
    Param(
        'goal_tolerance_rad', 0.02, 'joint error accepted at the end of a motion, rad', 0.001, 0.5
    ),
    Param(
        'goal_time_tolerance_s',
        3.0,
        'ros2_control: longest wait after a trajectory ends for the arm to settle within '
        'goal_tolerance_rad (the JTC constraints.goal_time), s',
        0.0,
        30.0,
    ),
    Param(
        'stopped_velocity_tolerance_rad_s',
        0.02,
        'ros2_control: a joint slower than this counts as stopped at the goal, rad/s',
        0.001,
        1.0,
    ),
    Param(
        'path_tolerance_rad',
        0.5,
        'joint deviation from the trajectory that aborts (includes controller lag), rad',
        0.01,
        3.14,
    ),
    Param('tcp_offset_m', 0.15, 'TCP = tool0 moved this far along its z axis, m', 0.0, 0.5),
    Param(
        'approach_height_m', 0.10, 'approach/retreat height above grasp and place, m', 0.02, 0.4
    ),
    Param(
        'min_tcp_height_m', 0.01, 'the TCP never goes closer to the table than this, m', 0.0, 0.3
    ),
    Param('workspace_min_m', [-0.2, -0.75, -0.02], 'lower corner of the workspace box, m'),
    Param('workspace_max_m', [0.95, 0.75, 0.8], 'upper corner of the workspace box, m'),
    Param(
        'max_joint_acceleration_rad_s2',
        3.0,
        'joint acceleration limit at speed 1, rad/s^2',
        0.1,
        40.0,
    ),
    Param('robot_ip', '', 'UR controller IP (rtde backend)'),
    *(
        Param(f'rtde.{s.name}', s.default, f'rtde backend: {s.description}', s.lo, s.hi)
        for s in RtdeConfig.settings()
    ),
    Param(
        'moveit_group', 'ur_manipulator', 'moveit backend: planning group of the UR MoveIt config'
    ),
    Param('moveit_tip_link', 'tool0', 'moveit backend: link the Cartesian path moves'),
    Param(
        'moveit_py.config_file',
        '',
        "moveit_py backend: YAML of MoveIt's parameters for MoveItPy (a /** block); the bringup "
        'writes it from ur_moveit_config with robot_backend:=moveit_py',
    ),
    Param(
        'moveit_py.planning',
        'own_path',
        "moveit_py backend: own_path (the planner's timed path, checked in MoveIt's planning "
        'scene) | moveit (MoveIt plans every straight tool piece with moveit_py.pipeline and '
        'moveit_py.planner_id; the arm rests at each key pose)',
        choices=PLANNING_MODES,
    ),
    Param(
        'moveit_py.pipeline',
        PILZ,
        'moveit_py planning moveit: planning pipeline (pilz_industrial_motion_planner: straight '
        "tool lines; it must be in MoveIt's planning_pipelines.pipeline_names)",
    ),
    Param('moveit_py.planner_id', 'LIN', 'moveit_py planning moveit: planner (Pilz: LIN)'),
    Param(
        'moveit_py.planning_time_s', 5.0, 'moveit_py planning moveit: time per plan, s', 0.1, 60.0
    ),
    Param('moveit_py.planning_attempts', 1, 'moveit_py planning moveit: attempts per plan', 1, 20),
    Param(
        'depth_topic',
        'camera/camera/aligned_depth_to_color/image_raw',
        'depth image for the scene monitor (16UC1 mm or 32FC1 m, aligned to colour)',
    ),
    Param(
        'camera_info_topic', 'camera/camera/color/camera_info', 'camera_info of the depth image'
    ),
    Param(
        'image_reliability',
        'reliable',
        'depth subscription reliability: reliable | best_effort (best effort drops large '
        'frames between processes on small machines); match the publisher',
        choices=('reliable', 'best_effort'),
    ),
    Param(
        'change_threshold_m',
        0.03,
        'scene monitor: a pixel changed beyond this depth difference, m',
        0.005,
        0.5,
    ),
    Param(
        'change_fraction',
        0.25,
        'scene monitor: a region changed when this fraction of its pixels changed',
        0.01,
        1.0,
    ),
]


class Ur5ExecutorNode(ExecutorNode):
    """UR5 executor: planner + backend + scene watcher behind the shared action servers."""

    def __init__(self) -> None:
        super().__init__('ur5_executor', PARAMS)
        p = self.p
        self.planner = Ur5Planner(
            Ur5PlannerConfig(
                base_frame=self.base_frame,
                tcp_offset_m=p['tcp_offset_m'],
                approach_height_m=p['approach_height_m'],
                min_tcp_height_m=p['min_tcp_height_m'],
                workspace_min_m=tuple(p['workspace_min_m']),
                workspace_max_m=tuple(p['workspace_max_m']),
                max_joint_acceleration_rad_s2=p['max_joint_acceleration_rad_s2'],
            )
        )
        self.body_mask = Ur5BodyMask(self.planner.kinematics)  # FK in the goal thread
        self.path_pub = self.create_publisher(
            MarkerArray,
            'robotracer/planned_path',
            QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL),
        )
        self.gripper = self._make_gripper()
        self.backend = self._make_backend(p['backend'])
        watcher = None
        if self.backend is not None:
            watcher = DepthSceneWatcher(
                self,
                depth_topic=p['depth_topic'],
                info_topic=p['camera_info_topic'],
                T_base_cam=self.camera_pose,  # tf when it has it, else camera_to_base_*
                config=MonitorConfig(
                    depth_threshold_m=p['change_threshold_m'],
                    min_changed_fraction=p['change_fraction'],
                ),
                robot_points=self._robot_points,
                reliable=p['image_reliability'] == 'reliable',
            )
            self.runner = GoalRunner(
                self.planner,
                self.backend,
                perceive=self.perceive,
                watcher=watcher,
                max_replans=p['max_replans'],
                publish_plan=self.publish_plan,
                log=lambda m: self.get_logger().info(m),
            )
        self.get_logger().info(
            f'ur5_executor ready: backend {p["backend"]}, base frame {self.base_frame}, '
            f'actions {self.resolve_topic_name("robotracer/execute_trace")} and '
            f'{self.resolve_topic_name("robotracer/execute_instruction")}'
        )

    def _make_gripper(self) -> Any:
        p = self.p
        try:
            gripper = make_gripper(
                p['gripper'],
                self,
                service=p['gripper_service'],
                io_service=p['gripper_io_service'],
                io_pin=p['gripper_io_pin'],
                io_close_high=p['gripper_io_close_high'],
                robotiq_host=p['gripper_robotiq_host'] or p['robot_ip'],
                robotiq_port=p['gripper_robotiq_port'],
                robotiq_speed=p['gripper_robotiq_speed'],
                robotiq_force=p['gripper_robotiq_force'],
            )
        except (ValueError, BackendError) as exc:
            raise BackendError(f'gripper {p["gripper"]} cannot start: {exc}') from exc
        self.get_logger().info(f'gripper: {p["gripper"]}')
        return gripper

    def check_goal(self, spec: GoalSpec) -> None:
        """Refuse ``pick_place`` without a gripper, before anything moves."""
        if isinstance(self.gripper, NoGripper) and spec.mode == 'pick_place':
            raise PlanningError(
                ErrorCode.BAD_GOAL,
                None,
                'pick_place needs a gripper, and ur5_executor runs with gripper none: set the '
                'gripper parameter (service, ur_tool_output, robotiq_socket) or use mode follow '
                'or push',
            )

    def _make_backend(self, name: str) -> Any:
        p = self.p
        joints = tuple(p['joint_names'])
        if name == 'ros2_control':
            return Ros2ControlBackend(
                self,
                joints,
                trajectory_topic=p['trajectory_topic'],
                joint_states_topic=p['joint_states_topic'],
                gripper_service=p['gripper_service'],
                state_timeout_s=p['state_timeout_s'],
                goal_tolerance_rad=p['goal_tolerance_rad'],
                path_tolerance_rad=p['path_tolerance_rad'],
                goal_time_tolerance_s=p['goal_time_tolerance_s'],
                stopped_velocity_tolerance_rad_s=p['stopped_velocity_tolerance_rad_s'],
                speed_scaling_topic=p['speed_scaling_topic'],
                gripper=self.gripper,
            )
        try:
            if name == 'moveit':
                from trace_executor.backends.moveit import MoveItBackend

                return MoveItBackend(
                    self,
                    joints,
                    self.planner,
                    group_name=p['moveit_group'],
                    tip_link=p['moveit_tip_link'],
                    joint_states_topic=p['joint_states_topic'],
                    controller_topic=p['trajectory_topic'],
                    gripper=self.gripper,
                )
            if name == 'moveit_py':
                try:
                    options = MoveItPyOptions.from_params(p)
                except ValueError as exc:
                    raise BackendError(str(exc)) from exc
                backend = MoveItPyBackend(
                    self,
                    joints,
                    group_name=p['moveit_group'],
                    joint_states_topic=p['joint_states_topic'],
                    gripper=self.gripper,
                    options=options,
                )
                how = (
                    f'MoveIt plans ({options.pipeline} {options.planner_id})'
                    if options.planning == 'moveit'
                    else "the planner's path, checked in MoveIt's planning scene"
                )
                self.get_logger().info(f'moveit_py backend: {how}')
                return backend
            if name == 'rtde':
                backend = RtdeBackend.connect(
                    p['robot_ip'],
                    joints,
                    config=RtdeConfig.from_params(p),
                    planner=self.planner,
                    gripper=self.gripper,
                )
                self.get_logger().info(
                    f'rtde backend at {p["robot_ip"]}: {backend.rate_description}'
                )
                return backend
        except (ImportError, BackendError, RuntimeError, OSError) as exc:
            raise BackendError(f'backend {name} cannot start here: {exc}') from exc
        raise ValueError(
            f'unknown backend {name!r}: expected ros2_control, moveit, moveit_py or rtde'
        )

    # --- shutdown --------------------------------------------------------------------------
    def halt(self, reason: str) -> None:
        """Stop the arm for good and end the running goal (executor shutdown).

        The backend stops the arm (ros2_control: a stop trajectory the controller acknowledged)
        and ends the running motion with ``reason``; the goal runner sees a cancel at its next
        check, so a goal still perceiving or planning ends too.
        """
        if self.backend is not None:
            self.backend.halt(reason)
            self.get_logger().info(f'{reason}: the arm was sent a stop')
        self.end_running_goal(ErrorCode.SHUTDOWN)

    def goal_running(self) -> bool:
        """True while a goal is being executed."""
        return self._busy.locked()

    def _robot_points(self) -> RobotMask | None:
        """The arm and the gripper (and the TCP pose, carrying a held object), for masking."""
        try:
            q = self.backend.joint_positions()
        except BackendError:
            return None
        return self.body_mask.at(q)

    def publish_plan(self, plan: Any) -> None:
        """Markers of the planned tool path (line) and the trace (spheres).

        The moveit_py backend is handed the plan too (it plans its straight pieces with MoveIt).
        """
        if isinstance(self.backend, MoveItPyBackend):
            self.backend.use_plan(plan)
        stamp = self.get_clock().now().to_msg()
        path = Marker(type=Marker.LINE_STRIP, action=Marker.ADD, ns='planned_tool_path', id=0)
        path.header.frame_id = self.base_frame
        path.header.stamp = stamp
        path.scale.x = 0.006
        path.color = ColorRGBA(r=0.1, g=0.6, b=1.0, a=1.0)
        path.pose.orientation.w = 1.0
        path.points = [
            Point(x=float(x), y=float(y), z=float(z)) for x, y, z in plan.tool_path.positions
        ]
        pts = Marker(type=Marker.SPHERE_LIST, action=Marker.ADD, ns='trace', id=1)
        pts.header = path.header
        pts.scale.x = pts.scale.y = pts.scale.z = 0.02
        pts.color = ColorRGBA(r=1.0, g=0.8, b=0.1, a=1.0)
        pts.pose.orientation.w = 1.0
        pts.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in plan.trace_base]
        self.path_pub.publish(MarkerArray(markers=[path, pts]))


def main(args: list[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; stop the arm before anything is destroyed."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    request = ShutdownRequest.install()
    node = None
    try:
        try:
            node = Ur5ExecutorNode()
        except BackendError as exc:
            print(f'ur5_executor: {exc}', file=sys.stderr, flush=True)
            return 2
        spin_until_shutdown(node, request, node.halt, node.goal_running)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
