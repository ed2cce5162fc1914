"""What every simulator node does, whatever the robot: :class:`SimWorldNode` and its ``main``.

Design notes: docs/design-notes.md (robotracer_sim.nodes.world_node).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import os
from pathlib import Path
import sys
import threading
import time
from typing import Any, Protocol

from builtin_interfaces.msg import Time as TimeMsg
import numpy as np
from PIL import Image as PILImage
import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from robotracer_msgs.srv import SetObjectPose
from robotracer_ros.parameters import declare_all
from robotracer_sim.nodes.messages import depth_to_mm, image_msg, stamp_msg
from robotracer_sim.nodes.parameters import ParameterTable, image_qos, oracle_config
from robotracer_sim.oracle import Oracle, OracleServer
from robotracer_sim.oracle.scene import SceneSnapshot


class SimWorld(Protocol):
    """What :class:`SimWorldNode` needs of a world (``Ur5World``, ``G1World``)."""

    model: Any  # mujoco.MjModel
    data: Any  # mujoco.MjData

    @property
    def time(self) -> float:
        """Simulated time, s."""

    @property
    def lock(self) -> Any:
        """The re-entrant lock guarding ``data``."""

    def set_object_pose(
        self, name: str, position: Sequence[float], quat_xyzw: Sequence[float]
    ) -> None:
        """Teleport an object (``KeyError``: unknown; ``ValueError``: refused)."""


class RgbdPublishers:
    """The four topics of an RGB-D camera (colour, aligned depth, two ``camera_info``).

    Args:
        node: the node that publishes.
        color_topic: colour image topic (``rgb8``).
        depth_topic: aligned depth topic (``16UC1``, millimetres).
        info_topic: colour ``camera_info`` topic.
        depth_info_topic: depth ``camera_info`` topic.
        camera_info: the camera's ``camera_info`` (its frame id is the images' frame id);
            stamped per frame.
        qos: the image QoS (``image_reliability``, ``image_depth``).

    """

    def __init__(
        self,
        node: Node,
        color_topic: str,
        depth_topic: str,
        info_topic: str,
        depth_info_topic: str,
        camera_info: CameraInfo,
        qos: QoSProfile,
    ) -> None:
        self.color_pub = node.create_publisher(Image, color_topic, qos)
        self.depth_pub = node.create_publisher(Image, depth_topic, qos)
        self.info_pub = node.create_publisher(CameraInfo, info_topic, qos)
        self.depth_info_pub = node.create_publisher(CameraInfo, depth_info_topic, qos)
        self.camera_info = camera_info

    def publish(self, rgb: np.ndarray, depth: np.ndarray, stamp: TimeMsg) -> np.ndarray:
        """Publish one frame (colour, 16UC1 depth, both camera_info) with one stamp.

        Args:
            rgb: (H, W, 3) uint8.
            depth: (H, W) metric z-depth, 0 = no return.
            stamp: the frame's stamp.

        Returns:
            The depth image in millimetres, as published.

        """
        mm = depth_to_mm(depth)
        self.camera_info.header.stamp = stamp
        frame_id = self.camera_info.header.frame_id
        self.color_pub.publish(image_msg(rgb, 'rgb8', frame_id, stamp))
        self.depth_pub.publish(image_msg(mm, '16UC1', frame_id, stamp))
        self.info_pub.publish(self.camera_info)
        self.depth_info_pub.publish(self.camera_info)
        return mm


def save_frames(save_dir: Path, rgb: np.ndarray, mm: np.ndarray) -> None:
    """Write ``color.png`` and ``depth.png`` (16-bit mm) into ``save_dir``, atomically."""
    save_dir.mkdir(parents=True, exist_ok=True)
    for name, img in (('color.png', rgb), ('depth.png', mm)):
        tmp = save_dir / f'.{name}.tmp.png'
        PILImage.fromarray(img).save(tmp)
        tmp.replace(save_dir / name)


def run_camera_loop(
    rate: float,
    frame: Callable[[], tuple[np.ndarray, np.ndarray]],
    stop: threading.Event,
    log_error: Callable[[str], None],
    on_frame: Callable[[], None] | None = None,
    save_dir: Path | None = None,
    save_period: float = 1.0,
) -> None:
    """Call ``frame()`` at ``rate`` Hz until ``stop`` is set.

    Args:
        rate: frames per second.
        frame: grabs and publishes one frame, returns ``(rgb, depth_mm)`` as published.
        stop: ends the loop.
        log_error: logs a failed frame.
        on_frame: called after each published frame.
        save_dir: where to save PNG frames every ``save_period`` s (None: never).
        save_period: seconds between saved frames.

    An error is logged and retried a second later; a late frame does not make the next ones
    hurry to catch up.
    """
    period = 1.0 / rate
    next_frame = time.monotonic()
    next_save = 0.0
    while not stop.is_set():
        try:
            rgb, mm = frame()
            if save_dir is not None and time.monotonic() >= next_save:
                save_frames(save_dir, rgb, mm)
                next_save = time.monotonic() + save_period
        except Exception as exc:  # keep the camera alive, but say what went wrong
            if stop.is_set():
                return
            log_error(f'render/publish failed: {type(exc).__name__}: {exc}')
            stop.wait(1.0)
            continue
        if on_frame is not None:
            on_frame()
        next_frame += period
        delay = next_frame - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_frame = time.monotonic()  # running late: do not try to catch up


class SimWorldNode(Node):
    """Base of the world nodes: declares ``parameters`` and holds the robot-independent parts.

    A subclass sets ``self.world``, then calls :meth:`_create_camera_publishers`,
    :meth:`_start_oracle` and :meth:`_start_watching`, starts its camera thread running
    :meth:`_camera_loop`, and implements :attr:`ready_line` and :meth:`_join_threads`.

    Args:
        node_name: the node's name.
        parameters: the node's parameter table; it must contain the image QoS, oracle and
            watch entries of :mod:`robotracer_sim.nodes.parameters`.
        **kwargs: passed to ``rclpy.node.Node``.

    Raises:
        ValueError: ``image_reliability`` is invalid (nothing has started).

    """

    world: SimWorld

    def __init__(self, node_name: str, parameters: ParameterTable, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_all(self, parameters)
        self._image_qos = image_qos(
            str(self._param('image_reliability')), int(self._param('image_depth'))
        )
        self.sim_time = bool(self.get_parameter('use_sim_time').value)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.oracle_server: OracleServer | None = None
        self._viewer: Any = None
        self._save_dir: Path | None = None
        self._save_period = 1.0
        self.clock_pub = self.create_publisher(Clock, '/clock', 10) if self.sim_time else None

    # ------------------------------------------------------------------ helpers

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def now_stamp(self) -> TimeMsg:
        """Stamp for outgoing messages: simulated time under use_sim_time, else wall clock."""
        if self.sim_time:
            return stamp_msg(self.world.time)
        return self.get_clock().now().to_msg()

    @property
    def ready_line(self) -> str:
        """The line printed once the world is up."""
        raise NotImplementedError

    def wait_ready(self, timeout: float) -> bool:
        """Block until the first camera frame was published."""
        return self._ready.wait(timeout)

    def _publish_clock(self) -> None:
        assert self.clock_pub is not None
        self.clock_pub.publish(Clock(clock=stamp_msg(self.world.time)))

    # ------------------------------------------------------------------ oracle and watching

    def _start_oracle(self, snapshot: Callable[[], SceneSnapshot]) -> None:
        """Serve the oracle for ``snapshot`` when ``oracle_enabled``."""
        if self._param('oracle_enabled'):
            self.oracle_server = OracleServer(
                Oracle(snapshot, oracle_config(self._param)),
                self._param('oracle_host'),
                int(self._param('oracle_port')),
            ).start()

    def _start_watching(self) -> None:
        """Open the viewer (``viewer``) and set up frame saving (``save_frames_*``)."""
        self._viewer = self._open_viewer() if self._param('viewer') else None
        save_dir = self._param('save_frames_dir')
        self._save_dir = Path(save_dir) if save_dir else None
        self._save_period = float(self._param('save_frames_period'))

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

    # ------------------------------------------------------------------ camera

    def _create_camera_publishers(
        self,
        color_topic: str,
        depth_topic: str,
        info_topic: str,
        depth_info_topic: str,
        camera_info: CameraInfo,
    ) -> None:
        """Create the RGB-D publishers (image QoS) and keep ``camera_info`` to stamp per frame."""
        self._rgbd = RgbdPublishers(
            self,
            color_topic,
            depth_topic,
            info_topic,
            depth_info_topic,
            camera_info,
            self._image_qos,
        )

    def _publish_rgbd(self, rgb: np.ndarray, depth: np.ndarray, stamp: TimeMsg) -> np.ndarray:
        """Publish one frame (colour, 16UC1 depth, both camera_info) with one stamp.

        Returns:
            The depth image in millimetres, as published.

        """
        return self._rgbd.publish(rgb, depth, stamp)

    def _camera_loop(
        self, rate: float, frame: Callable[[], tuple[np.ndarray, np.ndarray]]
    ) -> None:
        """Call ``frame()`` at ``rate`` Hz until shutdown (in the camera thread).

        Args:
            rate: frames per second.
            frame: grabs and publishes one frame, returns ``(rgb, depth_mm)`` as published.

        An error is logged and retried a second later; a late frame does not make the next
        ones hurry to catch up. The first frame sets the node ready.
        """
        run_camera_loop(
            rate,
            frame,
            self._stop,
            self.get_logger().error,
            self._ready.set,
            self._save_dir,
            self._save_period,
        )

    # ------------------------------------------------------------------ services

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
            self.get_logger().warning(f'set_object_pose {req.name} refused: {res.message}')
        return res

    # ------------------------------------------------------------------ shutdown

    def _join_threads(self) -> None:
        """Wait for the node's own threads to end (``_stop`` is set)."""

    def shutdown(self) -> None:
        """Stop the threads and the oracle server, close the viewer."""
        self._stop.set()
        self._join_threads()
        if self.oracle_server is not None:
            self.oracle_server.stop()
            self.oracle_server = None
        if self._viewer is not None:
            self._viewer.close()


def run_world_node(
    make_node: Callable[[], SimWorldNode],
    name: str,
    ready_timeout: float,
    start_errors: tuple[type[BaseException], ...],
    args: list[str] | None = None,
) -> int:
    """Run a world node until Ctrl-C; print its ready line once the first frame is out.

    Args:
        make_node: builds the node (after ``rclpy.init``).
        name: the node's name, for the error line (``ur5_world: cannot start: ...``).
        ready_timeout: how long to wait for the first frame before giving up on the ready
            line, s.
        start_errors: exceptions that mean the world could not start (reported in one line).
        args: command-line arguments (``--ros-args ...``); ``sys.argv`` when None.

    Returns:
        Process exit code (0 on a clean shutdown, 1 when the world could not start).

    """
    rclpy.init(args=args)
    node: SimWorldNode | None = None
    code = 0
    try:
        node = make_node()
        executor = MultiThreadedExecutor(num_threads=2)
        executor.add_node(node)
        started = node
        waiter = threading.Thread(
            target=lambda: (
                started.wait_ready(ready_timeout) and print(started.ready_line, flush=True)
            ),
            daemon=True,
        )
        waiter.start()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except start_errors as exc:
        print(f'{name}: cannot start: {exc}', file=sys.stderr, flush=True)
        code = 1
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return code
