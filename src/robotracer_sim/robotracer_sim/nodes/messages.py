"""Message conversions the simulator nodes share (numpy and world state -> ROS messages).

Images follow the RealSense ROS driver's layout: colour ``rgb8``, aligned depth ``16UC1`` in
millimetres (0 = no return), and a distortion-free pinhole ``camera_info`` for both.
"""

from __future__ import annotations

import array
from collections.abc import Iterable, Sequence

from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import Pose
import numpy as np
from sensor_msgs.msg import CameraInfo, Image, JointState

from robotracer_msgs.srv import GetObjectPoses


def stamp_msg(seconds: float) -> TimeMsg:
    """A ``builtin_interfaces/Time`` for ``seconds`` (simulated time)."""
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


def pose_msg(position: Iterable[float], quat_xyzw: Iterable[float]) -> Pose:
    """A geometry_msgs/Pose from a position (m) and an ``(x, y, z, w)`` quaternion."""
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(v) for v in position)
    q = p.orientation
    q.x, q.y, q.z, q.w = (float(v) for v in quat_xyzw)
    return p


def joint_state_msg(
    stamp: TimeMsg,
    names: Sequence[str],
    position: Iterable[float],
    velocity: Iterable[float],
    effort: Iterable[float],
) -> JointState:
    """A sensor_msgs/JointState (rad, rad/s, N m) stamped ``stamp``."""
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = [float(v) for v in position]
    msg.velocity = [float(v) for v in velocity]
    msg.effort = [float(v) for v in effort]
    return msg


def add_object_pose(
    res: GetObjectPoses.Response,
    name: str,
    position: Iterable[float],
    quat_xyzw: Iterable[float],
    held: bool,
) -> None:
    """Append one object's ground-truth pose to a GetObjectPoses response."""
    res.names.append(name)
    res.poses.append(pose_msg(position, quat_xyzw))
    res.held.append(bool(held))
