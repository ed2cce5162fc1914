"""A stand-in for ``tf2_ros`` (Buffer, TransformListener, StaticTransformBroadcaster) over DDS.

tf2_ros is not on PyPI, so the nodes' tf paths cannot run against it here. This module has its
API and behaviour where the nodes depend on them:

- :class:`StaticTransformBroadcaster` publishes on ``/tf_static`` with tf2's static QoS
  (reliable, transient local): a node started later still receives what was sent before;
- :class:`TransformListener` subscribes to ``/tf_static`` (absolute, as tf2_ros does: a
  namespaced bringup remaps it) and fills the buffer;
- :meth:`Buffer.lookup_transform` answers ``T_target_source`` through the frame tree (inverse
  and chained transforms too), waits up to ``timeout`` for one that is not there yet, and raises
  :class:`LookupException` / :class:`ConnectivityException` with tf2's messages otherwise.

The one difference: the messages are ``geometry_msgs/TransformStamped``, one per transform,
since ``tf2_msgs/TFMessage`` is not installable here either. Use it by putting this module
where a node looks for ``tf2_ros`` (``monkeypatch.setattr(module, 'tf2_ros', tf2)``).
"""

from __future__ import annotations

from collections import deque
import threading
import time
from typing import Any

from geometry_msgs.msg import TransformStamped
import numpy as np
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time

from robotracer_ros.transforms import (
    invert_transform,
    matrix_to_quaternion,
    transform_from_translation_quaternion,
)

#: tf2_ros's QoS for /tf_static (StaticTransformBroadcaster, TransformListener's static_qos);
#: the depth is larger because each transform is its own message here
STATIC_QOS = QoSProfile(
    depth=100,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


class TransformException(Exception):
    """tf2's base exception."""


class LookupException(TransformException):
    """A frame is unknown."""


class ConnectivityException(TransformException):
    """Both frames are known but not in one tree."""


def _matrix(msg: TransformStamped) -> np.ndarray:
    t, q = msg.transform.translation, msg.transform.rotation
    return transform_from_translation_quaternion([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])


def _message(T: np.ndarray, target: str, source: str) -> TransformStamped:
    out = TransformStamped()
    out.header.frame_id = target
    out.child_frame_id = source
    out.transform.translation.x, out.transform.translation.y, out.transform.translation.z = (
        float(v) for v in T[:3, 3]
    )
    x, y, z, w = (float(v) for v in matrix_to_quaternion(T[:3, :3]))
    r = out.transform.rotation
    r.x, r.y, r.z, r.w = x, y, z, w
    return out


class Buffer:
    """tf2_ros.Buffer for static transforms: the frame tree and lookups through it."""

    def __init__(self, cache_time: Duration | None = None, node: Node | None = None) -> None:
        self._edges: dict[str, dict[str, np.ndarray]] = {}  # frame → neighbour → T_frame_nb
        self._changed = threading.Condition()

    def set_transform_static(self, transform: TransformStamped, authority: str) -> bool:
        """Add ``T_parent_child`` (``header.frame_id`` ← ``child_frame_id``)."""
        parent, child = transform.header.frame_id, transform.child_frame_id
        T = _matrix(transform)
        with self._changed:
            self._edges.setdefault(parent, {})[child] = T
            self._edges.setdefault(child, {})[parent] = invert_transform(T)
            self._changed.notify_all()
        return True

    def _chain(self, target: str, source: str) -> np.ndarray:
        for frame, arg in ((source, 'source_frame'), (target, 'target_frame')):
            if frame not in self._edges:
                raise LookupException(
                    f'"{frame}" passed to lookupTransform argument {arg} does not exist. '
                )
        # breadth-first through the tree: T_target_frame for every frame reached
        reached = {target: np.eye(4)}
        todo = deque([target])
        while todo:
            frame = todo.popleft()
            for nb, T in self._edges[frame].items():
                if nb not in reached:
                    reached[nb] = reached[frame] @ T
                    todo.append(nb)
        if source not in reached:
            raise ConnectivityException(
                f"Could not find a connection between '{target}' and '{source}' because they "
                'are not part of the same tree.Tf has two or more unconnected trees.'
            )
        return reached[source]

    def lookup_transform(
        self, target_frame: str, source_frame: str, time: Time, timeout: Duration | None = None
    ) -> TransformStamped:
        """``T_target_source`` as tf2 returns it, waiting up to ``timeout`` for it.

        Raises:
            LookupException: a frame is unknown (after the timeout).
            ConnectivityException: the frames are in different trees (after the timeout).
        """
        wait_s = (timeout.nanoseconds * 1e-9) if timeout is not None else 0.0
        deadline = _monotonic() + wait_s
        with self._changed:
            while True:
                try:
                    if target_frame == source_frame:
                        T = np.eye(4)
                    else:
                        T = self._chain(target_frame, source_frame)
                    break
                except TransformException:
                    left = deadline - _monotonic()
                    if left <= 0:
                        raise
                    self._changed.wait(left)
        out = _message(T, target_frame, source_frame)
        out.header.stamp = time.to_msg()
        return out

    def can_transform(
        self, target_frame: str, source_frame: str, time: Time, timeout: Duration | None = None
    ) -> bool:
        """Whether :meth:`lookup_transform` would answer."""
        try:
            self.lookup_transform(target_frame, source_frame, time, timeout)
        except TransformException:
            return False
        return True


def _monotonic() -> float:
    return time.monotonic()


class TransformListener:
    """tf2_ros.TransformListener: ``/tf_static`` into a :class:`Buffer`."""

    def __init__(self, buffer: Buffer, node: Node, *, spin_thread: bool = False, **_: Any) -> None:
        self.buffer = buffer
        self.node = node
        self._sub = node.create_subscription(
            TransformStamped, '/tf_static', self._on_static, STATIC_QOS
        )

    def _on_static(self, msg: TransformStamped) -> None:
        self.buffer.set_transform_static(msg, 'default_authority')

    def unregister(self) -> None:
        """Stop listening."""
        self.node.destroy_subscription(self._sub)


class StaticTransformBroadcaster:
    """tf2_ros.StaticTransformBroadcaster: latched transforms on ``/tf_static``."""

    def __init__(self, node: Node, qos: QoSProfile | None = None) -> None:
        self.pub = node.create_publisher(TransformStamped, '/tf_static', qos or STATIC_QOS)

    def sendTransform(  # noqa: N802 - tf2_ros's name
        self, transform: TransformStamped | list[TransformStamped]
    ) -> None:
        """Publish one transform or several."""
        for t in transform if isinstance(transform, list) else [transform]:
            self.pub.publish(t)


def transform_msg(parent: str, child: str, T: np.ndarray) -> TransformStamped:
    """A TransformStamped of ``T_parent_child`` (what a hand-eye calibration publishes)."""
    return _message(np.asarray(T, dtype=float), parent, child)
