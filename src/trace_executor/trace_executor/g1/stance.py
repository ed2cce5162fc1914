"""Where the G1 stands: planar poses, the comfortable-reach region of each hand, base goals.

A *stance* is the pelvis pose in the odometry frame, planar: ``(x, y, yaw)`` at the standing
pelvis height. A hand reaches a point *comfortably* from a stance when the point, expressed in
the pelvis frame, lies in a box around the hand's nominal working point ``(reach_x, ±hand_y,
0)`` (left hand +y, right hand −y): there the IK finds natural arm poses with the waist nearly
upright. A point outside the box needs a walk: the base goal puts the point exactly at the
hand's nominal working point, facing the direction from the current stance to the point.

ROS-free: numpy in, numpy out.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

SIGN = {'left': 1.0, 'right': -1.0}


def wrap_angle(a: float) -> float:
    """``a`` wrapped to (−π, π]."""
    return math.atan2(math.sin(a), math.cos(a))


def stance_matrix(x: float, y: float, z: float, yaw: float) -> np.ndarray:
    """odom_T_pelvis (4×4) of a planar stance at pelvis height ``z``."""
    c, s = math.cos(yaw), math.sin(yaw)
    t = np.eye(4)
    t[:2, :2] = [[c, -s], [s, c]]
    t[:3, 3] = [x, y, z]
    return t


def yaw_rotation(yaw: float) -> np.ndarray:
    """Rotation (3×3) about z by ``yaw``."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class ReachRegion:
    """The comfortable-reach box of a hand, in the pelvis frame (metres).

    Attributes:
        reach_x: forward distance of the hand's working point from the pelvis.
        hand_y: lateral distance of the working point (+ left hand, − right hand).
        tolerance_back: the box extends this far toward the robot from the working point.
        tolerance_front: ... this far away from the robot.
        tolerance_y: ... this far to either side.
        min_z: lowest point height relative to the pelvis (negative: below it).
        max_z: highest point height relative to the pelvis.
    """

    reach_x: float = 0.32
    hand_y: float = 0.14
    tolerance_back: float = 0.08
    tolerance_front: float = 0.08
    tolerance_y: float = 0.12
    min_z: float = -0.20
    max_z: float = 0.35

    def working_point(self, side: str) -> np.ndarray:
        """(3,) the hand's nominal working point in the pelvis frame."""
        return np.array([self.reach_x, SIGN[side] * self.hand_y, 0.0])

    def excess(self, p_pelvis: np.ndarray, side: str) -> float:
        """How far (m) a point in the pelvis frame lies outside the box (0 inside)."""
        d = np.asarray(p_pelvis, dtype=float) - self.working_point(side)
        ex = max(d[0] - self.tolerance_front, -d[0] - self.tolerance_back, 0.0)
        ey = max(abs(d[1]) - self.tolerance_y, 0.0)
        ez = max(p_pelvis[2] - self.max_z, self.min_z - p_pelvis[2], 0.0)
        return float(math.sqrt(ex * ex + ey * ey + ez * ez))


def to_pelvis(p_odom: np.ndarray, stance: np.ndarray) -> np.ndarray:
    """Points (…, 3) in odom → the pelvis frame of ``stance`` (odom_T_pelvis 4×4)."""
    r, t = stance[:3, :3], stance[:3, 3]
    return (np.asarray(p_odom, dtype=float) - t) @ r


def base_goal_for(
    point: np.ndarray,
    side: str,
    base: np.ndarray,
    region: ReachRegion,
    keep_heading_m: float = 1.2,
    keep_heading_rad: float = 0.8,
) -> tuple[float, float, float]:
    """The stance that puts ``point`` at the hand's working point.

    Heading: when the point is near (within ``keep_heading_m``) and in front (bearing within
    ``keep_heading_rad`` of the current heading), the robot keeps its heading and steps;
    otherwise it faces the point from where it stands (it walks toward it).

    Args:
        point: (3,) the point to reach, odom (m).
        side: the hand that reaches it.
        base: current pelvis ``[x, y, ...,  yaw]`` (yaw last).
        region: the reach region.
        keep_heading_m: distance within which the heading may be kept.
        keep_heading_rad: bearing within which the heading may be kept.

    Returns:
        ``(x, y, yaw)`` in odom.
    """
    b = np.asarray(base, dtype=float)
    d = np.asarray(point[:2], dtype=float) - b[:2]
    dist = float(np.hypot(*d))
    bearing = math.atan2(d[1], d[0]) if dist > 1e-6 else float(b[-1])
    if dist <= keep_heading_m and abs(wrap_angle(bearing - b[-1])) <= keep_heading_rad:
        yaw = float(b[-1])
    else:
        yaw = bearing
    off = region.working_point(side)[:2]
    c, s = math.cos(yaw), math.sin(yaw)
    x = point[0] - (c * off[0] - s * off[1])
    y = point[1] - (s * off[0] + c * off[1])
    return float(x), float(y), float(wrap_angle(yaw))


def choose_hand(
    start: np.ndarray, end: np.ndarray, shoulders: dict[str, np.ndarray], tie_m: float = 0.05
) -> str:
    """The better-placed hand: the one whose shoulder is nearer the pick point.

    When both shoulders are within ``tie_m`` of the same distance, the hand on the side the
    object travels to (the destination relative to the pick, seen from between the shoulders)
    wins, so the arm does not cross the body while carrying.

    Args:
        start: (3,) pick point (trace start), odom.
        end: (3,) destination (trace end), odom.
        shoulders: ``{side: (3,) shoulder position in odom}``.
        tie_m: distances closer than this count as a tie (m).

    Returns:
        ``'left'`` or ``'right'``.
    """
    dl = float(np.linalg.norm(start[:2] - shoulders['left'][:2]))
    dr = float(np.linalg.norm(start[:2] - shoulders['right'][:2]))
    if abs(dl - dr) > tie_m:
        return 'left' if dl < dr else 'right'
    lateral = shoulders['left'][:2] - shoulders['right'][:2]  # points to the robot's left
    return 'left' if float(np.dot(end[:2] - start[:2], lateral)) >= 0.0 else 'right'
