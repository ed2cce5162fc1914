"""ROS 2 node ``g1_world``: the G1 room simulator behind the real robot's interfaces.

Design notes: docs/design-notes.md (robotracer_sim.nodes.g1_world_node).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import signal
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
from robotracer_ros.parameters import Param
from robotracer_sim.common.scene_schema import SceneError, scene_file_path
from robotracer_sim.g1.base import BaseLimits
from robotracer_sim.g1.camera_process import EXIT_NO_RENDERER, CameraFeed, CameraLink, RenderSpec
from robotracer_sim.g1.dds_peer import G1DdsPeer, PeerConfig
from robotracer_sim.g1.runner import PeriodicCalls, RealtimeRunner, request_nice
from robotracer_sim.g1.scene import load_g1_scene
from robotracer_sim.g1.world import G1World, camera_quat_xyzw
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
    image_qos,
    image_qos_parameters,
)
from robotracer_sim.nodes.world_node import (
    RgbdPublishers,
    SimWorldNode,
    run_camera_loop,
    run_world_node,
)
from robotracer_sim.oracle.scene import SceneSnapshot

NODE_NAME = 'g1_world'
#: The child's command line (the JSON spec is appended): this module with ``--camera-process``.
CAMERA_COMMAND = [sys.executable, '-m', 'robotracer_sim.nodes.g1_world_node', '--camera-process']
#: How long the node waits for the camera's first frame before serving without images, s.
CAMERA_START_TIMEOUT_S = 60.0

PARAMETERS: ParameterTable = [
    Param('scene', '', 'scene YAML file; empty: config/scenes/g1_room.yaml'),
    # Unitree DDS side
    Param(
        'domain_id', -1, 'DDS domain of the Unitree interface; -1: $ROS_DOMAIN_ID or 0', -1, 232
    ),
    Param('network_interface', 'lo', "DDS network interface ('' = CycloneDDS picks)"),
    Param(
        'loco_service',
        'sport',
        "LocoClient RPC service name ('sport' as the pinned SDK; 'loco' on old firmware)",
    ),
    Param('lowstate_rate', 250.0, 'rt/lowstate rate (= physics tick), Hz', 50.0, 500.0),
    Param(
        'physics_priority',
        10,
        'SCHED_FIFO priority of the physics + rt/lowstate thread, as a robot controller '
        'asks for (0: normal scheduling; refused without CAP_SYS_NICE/rtprio: runs normally)',
        0,
        99,
    ),
    Param('hand_state_rate', 50.0, 'rt/dex3/*/state rate, Hz', 1.0, 500.0),
    Param('odom_dds_rate', 50.0, 'rt/odommodestate rate, Hz', 1.0, 500.0),
    Param('check_crc', True, 'drop rt/arm_sdk samples with a wrong CRC (as the robot)'),
    Param('mode_machine', 5, 'LowState_.mode_machine (robot type code)', 0, 255),
    # base limits
    Param('max_linear_speed', 0.5, 'base speed limit, m/s', 0.05, 0.5),
    Param('max_yaw_rate', 1.0, 'base yaw rate limit, rad/s', 0.05, 1.0),
    Param('max_linear_accel', 1.0, 'base acceleration limit, m/s^2', 0.05, 5.0),
    Param('max_yaw_accel', 2.0, 'base yaw acceleration limit, rad/s^2', 0.05, 10.0),
    # ROS side
    Param('rate', 10.0, 'camera render + publish rate, Hz', 0.5, 60.0),
    Param(
        'camera_nice',
        0,
        'niceness of the camera process (0..19; it renders below the physics/DDS '
        'process, whose niceness is process_nice; a high value starves it on a busy machine)',
        0,
        19,
    ),
    Param(
        'process_nice',
        -10,
        'niceness of this process (physics, DDS peer, ROS state topics): below 0 gives the '
        'simulated robot more CPU than ordinary processes, as a robot controller has '
        '(refused without CAP_SYS_NICE: stays as it is)',
        -20,
        19,
    ),
    Param('joint_state_rate', 50.0, '/joint_states rate, Hz', 1.0, 500.0),
    Param('odom_rate', 50.0, '/odom rate, Hz', 1.0, 500.0),
    Param('status_rate', 2.0, 'status topic rate, Hz', 0.1, 50.0),
    Param('clock_rate', 100.0, '/clock rate when use_sim_time, Hz', 10.0, 1000.0),
    *image_qos_parameters(
        "image QoS reliability: 'reliable' (default: best effort drops most large frames "
        "between processes on small machines) or 'best_effort'"
    ),
    Param('camera_namespace', '/camera/camera', 'namespace of the RGB-D topics'),
    Param('camera_frame', 'd435_color_optical_frame', 'optical frame id of the images'),
    Param('joint_states_topic', '/joint_states', 'joint state topic'),
    Param('odom_topic', '/odom', 'odometry topic (nav_msgs/Odometry)'),
    Param('odom_frame', '', "odometry/world frame id; empty: the scene's world_frame"),
    Param('base_frame', 'pelvis', 'base frame id (child of the odometry)'),
    Param('camera_pose_topic', '/sim/g1/camera_pose', 'camera optical pose in odom'),
    Param('status_topic', '/sim/g1/status', 'JSON status topic (std_msgs/String)'),
    *OBJECT_POSE_SERVICE_PARAMETERS,
    Param('pause_lowstate_service', '/sim/g1/pause_lowstate', 'SetBool: pause rt/lowstate'),
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
        # First, so that every thread started from here on inherits it: a thread of this
        # process preempted while it holds the GIL or the world lock stalls the physics too.
        self.process_priority = request_nice(int(p('process_nice')))
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

        self.camera = self._make_camera_feed()
        self.joint_pub = self.create_publisher(JointState, p('joint_states_topic'), 10)
        self.odom_pub = self.create_publisher(Odometry, p('odom_topic'), 10)
        self.status_pub = self.create_publisher(String, p('status_topic'), 10)
        # Published from a plain thread, not rclpy timers (see PeriodicCalls): the executor
        # only wakes for service calls and leaves the GIL to the physics thread.
        calls = [
            (float(p('joint_state_rate')), self._publish_joint_states),
            (float(p('odom_rate')), self._publish_odom),
            (float(p('status_rate')), self._publish_status),
        ]
        if self.clock_pub is not None:
            calls.append((float(p('clock_rate')), self._publish_clock))
        self._state_topics = PeriodicCalls(
            calls,
            on_error=self._on_state_topic_error,
            name='ros_state_topics',
            priority=max(0, int(p('physics_priority')) - 1),
        )

        self._start_oracle(self._snapshot)
        self._start_watching()
        self.runner = RealtimeRunner(
            world,
            float(p('lowstate_rate')),
            [
                (float(p('lowstate_rate')), self.peer.publish_lowstate),
                (float(p('hand_state_rate')), self.peer.publish_hand_states),
                (float(p('odom_dds_rate')), self.peer.publish_odometry),
                (float(p('lowstate_rate')), self.camera.write_state),
                (30.0, self._sync_viewer),
            ],
            on_error=lambda e: self._dds_log(
                'error', f'publisher failed: {type(e).__name__}: {e}'
            ),
            priority=int(p('physics_priority')),
        )
        self.runner.start()
        self.get_logger().info(
            f'physics + rt/lowstate thread: {self.runner.scheduling}; process: '
            f'{self.process_priority}'
        )
        self._state_topics.start()
        self.camera.start(on_first_frame=self._ready.set)
        # The services come up with the images: a client that sees them finds the camera too.
        if not self.camera.wait_first_frame(CAMERA_START_TIMEOUT_S):
            self.get_logger().error(
                f'no head camera frame after {CAMERA_START_TIMEOUT_S:.0f} s '
                f'({self.camera.failed or "still starting"}); serving without images'
            )
        self.create_service(GetObjectPoses, p('get_object_poses_service'), self._on_get_poses)
        self.create_service(SetObjectPose, p('set_object_pose_service'), self._on_set_pose)
        self.create_service(SetBool, p('pause_lowstate_service'), self._on_pause_lowstate)

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

    def _on_state_topic_error(self, exc: Exception) -> None:
        if self.context.ok():  # (after Ctrl-C the context goes first: nothing to report)
            self.get_logger().error(f'state topic publish failed: {type(exc).__name__}: {exc}')

    def _snapshot(self) -> SceneSnapshot:
        # The camera moves with the robot: answer for the pose of the last published frame.
        last = self.camera.last_frame()
        return self.world.snapshot(None if last is None else last[3])

    # ------------------------------------------------------------------ camera process

    def _make_camera_feed(self) -> CameraFeed:
        """The camera process's settings: render spec, resolved topics, QoS, frames."""
        p, w = self._param, self.world
        ns = str(p('camera_namespace')).rstrip('/')
        c = w.scene.camera
        topics = {
            'color': f'{ns}/color/image_raw',
            'depth': f'{ns}/aligned_depth_to_color/image_raw',
            'info': f'{ns}/color/camera_info',
            'depth_info': f'{ns}/aligned_depth_to_color/camera_info',
            'pose': str(p('camera_pose_topic')),
        }
        node = {
            'name': f'{self.get_name()}_camera',
            'namespace': self.get_namespace(),
            # resolved here, so this node's namespace and remappings apply to the camera's too
            'topics': {k: self.resolve_topic_name(v) for k, v in topics.items()},
            'k': [float(v) for v in w.camera_intrinsics().reshape(-1)],
            'camera_frame': self.camera_frame,
            'odom_frame': self.odom_frame,
            'image_reliability': str(p('image_reliability')),
            'image_depth': int(p('image_depth')),
            'sim_time': self.sim_time,
            'save_frames_dir': str(p('save_frames_dir')),
            'save_frames_period': float(p('save_frames_period')),
        }
        render = RenderSpec(w.info.camera, c.width, c.height, c.depth_max)
        return CameraFeed(
            w, render, self.rate, CAMERA_COMMAND, node, int(p('camera_nice')), self._dds_log
        )

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
            'max_tick_gap_ms': round(rs.max_tick_gap * 1000.0, 1),
            'physics_scheduling': self.runner.scheduling,
            'camera_frames': self.camera.frames,
            'camera_restarts': self.camera.restarts,
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
        self._state_topics.stop()
        self.runner.stop()
        rs = self.runner.stats
        late, lock, step, pubs = (round(v * 1000.0, 1) for v in rs.worst_gap)
        print(
            f'g1_world physics loop: {rs.ticks} ticks, real-time factor '
            f'{rs.real_time_factor:.3f}, {rs.overruns} overruns, longest gap between '
            f'rt/lowstate ticks {rs.max_tick_gap * 1000.0:.1f} ms (woke {late} ms late, world '
            f'lock {lock} ms, steps {step} ms, publishers {pubs} ms); {self.runner.scheduling}',
            flush=True,
        )
        self.camera.close()


# ---------------------------------------------------------------------- the camera process


class G1CameraNode:
    """The head camera's ROS side in the camera process: images, camera_info, camera pose.

    Args:
        link: the camera process's end of the shared memory (settings in ``link.node``).
        renderer: renders the states the physics process writes.
        context: the rclpy context.

    """

    def __init__(self, link: CameraLink, renderer: Any, context: Any = None) -> None:
        import rclpy.node

        cfg = link.node
        self.link, self.renderer, self.cfg = link, renderer, cfg
        self.node = rclpy.node.Node(
            cfg['name'],
            namespace=cfg['namespace'] or '/',
            context=context,
            start_parameter_services=False,
        )
        spec, t = link.render_spec, cfg['topics']
        k = np.asarray(cfg['k'], dtype=float).reshape(3, 3)
        info = camera_info_msg(k, spec.width, spec.height, cfg['camera_frame'])
        qos = image_qos(cfg['image_reliability'], int(cfg['image_depth']))
        self.rgbd = RgbdPublishers(
            self.node, t['color'], t['depth'], t['info'], t['depth_info'], info, qos
        )
        self.pose_pub = self.node.create_publisher(PoseStamped, t['pose'], 10)
        self.stop = threading.Event()

    def frame(self) -> tuple[np.ndarray, np.ndarray]:
        """Render the latest world state and publish it; returns ``(rgb, depth_mm)``."""
        state = self.link.wait_state(self.stop)
        if state is None:  # (stopping: the loop ends quietly)
            raise TimeoutError('no world state from the physics process')
        rgb, depth, pose, sim_time, wall_time = self.renderer.render(state)
        stamp = stamp_msg(sim_time if self.cfg['sim_time'] else wall_time)
        mm = self.rgbd.publish(rgb, depth, stamp)
        ps = PoseStamped()
        ps.header.stamp, ps.header.frame_id = stamp, self.cfg['odom_frame']
        ps.pose = pose_msg(pose[:3, 3], camera_quat_xyzw(pose))
        self.pose_pub.publish(ps)
        self.link.report_frame(sim_time, wall_time, pose)
        return rgb, mm

    def run(self) -> None:
        """Render and publish at the link's rate until :attr:`stop` is set."""
        save = self.cfg.get('save_frames_dir') or ''
        run_camera_loop(
            self.link.rate,
            self.frame,
            self.stop,
            self.node.get_logger().error,
            None,
            Path(save) if save else None,
            float(self.cfg.get('save_frames_period', 1.0)),
        )


def camera_process_main(spec_json: str) -> int:
    """Run the head camera process (started by :class:`G1WorldNode`, never by hand).

    Args:
        spec_json: the JSON spec from :class:`~robotracer_sim.g1.camera_process.CameraFeed`.

    Returns:
        0 when told to stop, :data:`~robotracer_sim.g1.camera_process.EXIT_NO_RENDERER` when
        it cannot render.

    """
    import rclpy

    link = CameraLink(json.loads(spec_json))
    name = link.node.get('name', 'g1_world_camera')
    # Absolute, not relative to the simulator's (possibly raised) priority; before any thread.
    request_nice(max(link.nice, os.getpriority(os.PRIO_PROCESS, 0)))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    link.watch_parent(stop.set)
    try:
        renderer = link.renderer()
    except Exception as exc:  # no OpenGL: the robot side still works, say why
        print(
            f'[{name}] head camera unavailable ({type(exc).__name__}: {exc}); set MUJOCO_GL=egl',
            file=sys.stderr,
            flush=True,
        )
        return EXIT_NO_RENDERER
    context = rclpy.Context()
    rclpy.init(args=[], context=context, signal_handler_options=rclpy.SignalHandlerOptions.NO)
    cam = None
    try:
        cam = G1CameraNode(link, renderer, context)
        cam.stop = stop
        cam.run()
    finally:
        renderer.close()
        if cam is not None:
            cam.node.destroy_node()
        rclpy.try_shutdown(context=context)
    return 0


def main(args: list[str] | None = None) -> int:
    """Run the node until Ctrl-C (``ros2 run robotracer_sim g1_world``).

    Args:
        args: command-line arguments (``--ros-args ...``); ``sys.argv`` when None.

    Returns:
        Process exit code (0 on a clean shutdown, 1 when the world could not start).

    """
    # The physics thread shares this process with ROS callbacks: hand the GIL over sooner.
    sys.setswitchinterval(0.001)
    return run_world_node(
        G1WorldNode, NODE_NAME, 120.0, (SceneError, OSError, ValueError, RuntimeError), args
    )


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--camera-process':
        sys.exit(camera_process_main(sys.argv[2]))
    sys.exit(main())
