"""The demo's ROS side: watch and record the running system, send instructions, move objects.

A thin node: it subscribes (raw CDR, so recording costs no re-serialization) to the camera, the
joint states, the perception node's trace / markers / annotated image and the executor's planned
path; writes them to an MCAP file (colour at a reduced rate, as JPEG ``CompressedImage``); keeps
the latest colour frame for the pictures; and wraps the ``ExecuteInstruction`` action and the
simulator's object-pose services. Topic and service names come from :class:`DemoTopics`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import threading
import time
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState
from visualization_msgs.msg import MarkerArray

from robotracer_commander import Commander, Feedback, GoalOutcome, RunningGoal, wait_future
from robotracer_demo.recording import McapRecorder, header_stamp_ns
from robotracer_msgs.msg import SpatialTrace
from robotracer_msgs.srv import GetObjectPoses, SetObjectPose
from robotracer_ros import images


@dataclass(frozen=True)
class DemoTopics:
    """Names of everything the demo talks to (the bringup's defaults)."""

    color: str = '/camera/camera/color/image_raw'
    camera_info: str = '/camera/camera/color/camera_info'
    joint_states: str = '/joint_states'
    trace: str = '/robotracer/trace'
    trace_markers: str = '/robotracer/trace_markers'
    annotated_image: str = '/robotracer/annotated_image'
    planned_path: str = '/robotracer/planned_path'
    execute_instruction: str = '/robotracer/execute_instruction'
    get_object_poses: str = '/sim/get_object_poses'
    set_object_pose: str = '/sim/set_object_pose'

    @property
    def color_compressed(self) -> str:
        """Where the recorded JPEG colour frames go (image_transport's naming)."""
        return self.color + '/compressed'


def type_name(cls: type) -> str:
    """``pkg/msg/Type`` of a generated ROS 2 message class."""
    return f'{cls.__module__.split(".")[0]}/msg/{cls.__name__}'


@dataclass
class Frame:
    """A colour frame: its header stamp (ns) and (H, W, 3) uint8 RGB pixels."""

    stamp_ns: int
    rgb: np.ndarray


@dataclass
class GoalRecord:
    """What happened to one goal, as seen from the client."""

    traces: list[SpatialTrace] = field(default_factory=list)  # distinct traces, in order
    frames: list[Frame | None] = field(default_factory=list)  # the frame of each trace
    accepted: bool = False


class DemoNode(Node):
    """Watches, records and drives the demo (see the module docstring).

    Args:
        recorder: where to record (None: no recording).
        topics: names of the topics, services and the action.
        image_period_s: record one colour frame (and camera_info) per this many seconds.
        jpeg_quality: quality of the recorded colour frames, 1-100.
        **kwargs: passed to ``rclpy.node.Node`` (e.g. ``context``).
    """

    def __init__(
        self,
        recorder: McapRecorder | None = None,
        topics: DemoTopics | None = None,
        image_period_s: float = 0.5,
        jpeg_quality: int = 80,
        **kwargs: Any,
    ) -> None:
        super().__init__('robotracer_demo', **kwargs)
        if not image_period_s > 0:
            raise ValueError(f'image_period_s must be > 0, got {image_period_s}')
        self.topics = t = topics or DemoTopics()
        self.recorder = recorder
        self.image_period_s = image_period_s
        self.jpeg_quality = int(jpeg_quality)
        self._lock = threading.Lock()
        self._latest: tuple[int, bytes] | None = None  # (stamp ns, raw CDR) of the last frame
        self._last_rec: dict[str, float] = {}
        self.frames_received = 0
        reliable = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE
        )
        latched = QoSProfile(  # depth 10: a trace and its replan can arrive back to back
            history=HistoryPolicy.KEEP_LAST,
            depth=10,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        subs: list[tuple[str, type, QoSProfile, Callable[[bytes], None]]] = [
            (t.color, Image, reliable, self._on_color),
            (t.camera_info, CameraInfo, reliable, self._rate_limited(t.camera_info)),
            (t.joint_states, JointState, QoSProfile(depth=50), self._recorded(t.joint_states)),
            (t.trace, SpatialTrace, latched, self._recorded(t.trace)),
            (t.trace_markers, MarkerArray, latched, self._recorded(t.trace_markers)),
            (t.annotated_image, Image, latched, self._recorded(t.annotated_image)),
            (t.planned_path, MarkerArray, latched, self._recorded(t.planned_path)),
        ]
        if recorder is not None:
            for topic, cls, _qos, _cb in subs:
                if topic != t.color:
                    recorder.add_topic(topic, type_name(cls))
            recorder.add_topic(t.color_compressed, type_name(CompressedImage))
        self._subs = [
            self.create_subscription(cls, topic, cb, qos, raw=True) for topic, cls, qos, cb in subs
        ]
        self.commander = Commander(self, spin=False, execute_instruction=t.execute_instruction)
        self.poses_client = self.create_client(GetObjectPoses, t.get_object_poses)
        self.set_pose_client = self.create_client(SetObjectPose, t.set_object_pose)

    # ------------------------------------------------------------------ recording

    def _write(self, topic: str, raw: bytes, stamp_ns: int = 0) -> None:
        if self.recorder is not None:
            self.recorder.write(topic, raw, time.time_ns(), stamp_ns)

    def _recorded(self, topic: str) -> Callable[[bytes], None]:
        def callback(raw: bytes) -> None:
            self._write(topic, raw)

        return callback

    def _due(self, topic: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._last_rec.get(topic, -1e9) < self.image_period_s:
                return False
            self._last_rec[topic] = now
            return True

    def _rate_limited(self, topic: str) -> Callable[[bytes], None]:
        def callback(raw: bytes) -> None:
            if self._due(topic):
                self._write(topic, raw, header_stamp_ns(raw))

        return callback

    def _on_color(self, raw: bytes) -> None:
        stamp = header_stamp_ns(raw)
        with self._lock:
            self.frames_received += 1
            self._latest = (stamp, raw)
        if self.recorder is not None and self._due(self.topics.color):
            msg = deserialize_message(raw, Image)
            rgb = self._to_rgb(msg)
            out = CompressedImage()
            out.header = msg.header
            out.format = 'jpeg'
            out.data = images.encode_jpeg(rgb, quality=self.jpeg_quality)
            self._write(self.topics.color_compressed, serialize_message(out), stamp)

    @staticmethod
    def _to_rgb(msg: Image) -> np.ndarray:
        arr = images.image_to_numpy(
            msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian
        )
        return np.ascontiguousarray(images.to_rgb(arr, msg.encoding))

    # ------------------------------------------------------------------ frames

    def latest_frame(self) -> Frame | None:
        """The newest colour frame, or None before the first one."""
        with self._lock:
            if self._latest is None:
                return None
            stamp, raw = self._latest
        return Frame(stamp, self._to_rgb(deserialize_message(raw, Image)))

    def wait_for_frame(self, timeout_s: float) -> Frame | None:
        """Wait for a colour frame newer than now; the latest one if none came in time."""
        start = self.frames_received
        deadline = time.monotonic() + timeout_s
        while self.frames_received == start and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.latest_frame()

    # ------------------------------------------------------------------ simulator services

    def object_poses(self, names: list[str], timeout_s: float = 5.0) -> dict[str, Any]:
        """Ground truth from the simulator: ``{name: (xyz array, quat_xyzw array, held)}``.

        Raises:
            RuntimeError: the service is missing, timed out or refused (its reason).
        """
        res = _call(self.poses_client, GetObjectPoses.Request(names=list(names)), timeout_s)
        if not res.success:
            raise RuntimeError(f'{self.topics.get_object_poses} refused: {res.message}')
        out = {}
        for name, pose, held in zip(res.names, res.poses, res.held, strict=True):
            p, q = pose.position, pose.orientation
            out[name] = (np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w]), bool(held))
        return out

    def move_object(
        self, name: str, xyz: np.ndarray, quat_xyzw: np.ndarray, timeout_s: float = 5.0
    ) -> tuple[bool, str]:
        """Teleport an object (``/sim/set_object_pose``). Returns (success, message).

        Raises:
            RuntimeError: the service is missing or timed out.
        """
        req = SetObjectPose.Request(name=name)
        req.pose.position.x, req.pose.position.y, req.pose.position.z = (float(v) for v in xyz)
        o = req.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in quat_xyzw)
        res = _call(self.set_pose_client, req, timeout_s)
        return bool(res.success), str(res.message)

    # ------------------------------------------------------------------ the action

    def send_instruction(
        self, text: str, record: GoalRecord, on_feedback: Callable
    ) -> RunningGoal:
        """Send an ExecuteInstruction goal (replanning on); feedback goes to ``record``.

        Args:
            text: the instruction.
            record: filled with the distinct traces seen in feedback and their frames.
            on_feedback: called as ``(t, phase, message)`` for every feedback message.

        Returns:
            The running goal (the outcome says whether it was accepted).

        Raises:
            RuntimeError: no server, or the goal could not be sent (its reason).
        """
        missing = self.commander.wait_for_servers(10.0)
        if self.topics.execute_instruction in missing:
            raise RuntimeError(f'no action server {self.topics.execute_instruction}')

        def feedback(f: Feedback) -> None:
            tr = f.current_trace
            if tr is not None and (
                not record.traces or trace_key(record.traces[-1]) != trace_key(tr)
            ):
                record.traces.append(tr)
                # The frame the camera shows now: the arm stands still while the model is asked
                # and the plan is made, and the simulator's model answers from the scene as it
                # is at the query, so this frame shows what the trace was predicted for.
                record.frames.append(self.latest_frame())
            on_feedback(f.stamp, f.phase, f.message)

        goal = self.commander.send_instruction(text, on_feedback=feedback)
        if isinstance(goal, GoalOutcome):
            raise RuntimeError(f'the goal {text!r} was not sent: {goal.message}')
        return goal


def trace_key(t: SpatialTrace) -> tuple[int, int, int]:
    """Identifies a trace: its source image stamp and point count."""
    return (t.header.stamp.sec, t.header.stamp.nanosec, len(t.points))


def _call(client: Any, request: Any, timeout_s: float) -> Any:
    if not client.wait_for_service(timeout_sec=timeout_s):
        raise RuntimeError(f'service {client.srv_name} is not available')
    res = wait_future(client.call_async(request), timeout_s)
    if res is None:
        raise RuntimeError(f'service {client.srv_name} did not answer in {timeout_s:.0f} s')
    return res
