"""A G1 plan as ROS messages: its whole-body targets and its RViz markers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geometry_msgs.msg import Point, Pose, Pose2D
import numpy as np
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from robotracer_msgs.msg import SpatialTrace, WholeBodyTarget
from robotracer_ros.transforms import matrix_to_quaternion
from trace_executor.g1.plan_types import G1Plan
from trace_executor.g1.stance import stance_matrix


def pose_msg(t: np.ndarray) -> Pose:
    """A 4×4 pose as a ``geometry_msgs/Pose``."""
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(v) for v in t[:3, 3])
    x, y, z, w = matrix_to_quaternion(t[:3, :3])
    p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = (
        float(x),
        float(y),
        float(z),
        float(w),
    )
    return p


def _points(rows: Any) -> list[Point]:
    return [Point(x=float(a), y=float(b), z=float(c)) for a, b, c in rows]


def whole_body_targets(
    plan: G1Plan, joint_names: Sequence[str], frame: str, stamp: Any
) -> list[WholeBodyTarget]:
    """One ``WholeBodyTarget`` per step of the plan, each carrying the trace.

    Args:
        plan: the plan.
        joint_names: the upper-body joint order of ``joint_positions``.
        frame: the frame of the plan (odom).
        stamp: the header stamp.
    """
    trace = SpatialTrace()
    trace.header.frame_id = frame
    trace.header.stamp = stamp
    trace.points = _points(plan.trace_base)
    n = len(plan.targets)
    out = []
    for i, tg in enumerate(plan.targets):
        m = WholeBodyTarget()
        m.header.frame_id = frame
        m.header.stamp = stamp
        m.step_index, m.step_count, m.phase = i, n, tg.phase
        if tg.base_goal is not None:
            m.has_base_goal = True
            m.base_goal = Pose2D(
                x=float(tg.base_goal[0]), y=float(tg.base_goal[1]), theta=float(tg.base_goal[2])
            )
        if tg.hand_pose is not None:
            if tg.side == 'left':
                m.has_left_hand, m.left_hand = True, pose_msg(tg.hand_pose)
            else:
                m.has_right_hand, m.right_hand = True, pose_msg(tg.hand_pose)
        if tg.side == 'left':
            m.left_grip = float(tg.grip)
        else:
            m.right_grip = float(tg.grip)
        m.joint_names = list(joint_names)
        m.joint_positions = [float(v) for v in tg.joint_positions]
        m.trace = trace
        out.append(m)
    return out


def plan_markers(plan: G1Plan, frame: str, stamp: Any) -> MarkerArray:
    """RViz markers of a plan: the hand path, the trace points and an arrow per walk goal."""
    path = Marker(type=Marker.LINE_STRIP, action=Marker.ADD, ns='g1_hand_path', id=0)
    path.header.frame_id = frame
    path.header.stamp = stamp
    path.scale.x = 0.006
    path.color = ColorRGBA(r=0.1, g=0.6, b=1.0, a=1.0)
    path.pose.orientation.w = 1.0
    path.points = _points(plan.tool_path.positions)
    pts = Marker(type=Marker.SPHERE_LIST, action=Marker.ADD, ns='g1_trace', id=1)
    pts.header = path.header
    pts.scale.x = pts.scale.y = pts.scale.z = 0.02
    pts.color = ColorRGBA(r=1.0, g=0.8, b=0.1, a=1.0)
    pts.pose.orientation.w = 1.0
    pts.points = _points(plan.trace_base)
    out = [path, pts]
    for i, w in enumerate(plan.walks):
        arrow = Marker(type=Marker.ARROW, action=Marker.ADD, ns='g1_base_goals', id=10 + i)
        arrow.header = path.header
        arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.3, 0.05, 0.05
        arrow.color = ColorRGBA(r=0.2, g=1.0, b=0.3, a=1.0)
        arrow.pose = pose_msg(stance_matrix(w.goal[0], w.goal[1], 0.02, w.goal[2]))
        out.append(arrow)
    return MarkerArray(markers=out)
