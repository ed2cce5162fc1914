"""Closed-loop walking toward a base goal: pose error → ``LocoClient`` body-frame velocity.

Design notes: docs/design-notes.md (trace_executor.g1.walk).
"""

from __future__ import annotations

from dataclasses import dataclass
import math

from .stance import wrap_angle


@dataclass(frozen=True)
class WalkLimits:
    """Limits and gains of the walk controller.

    Attributes:
        max_speed_m_s: linear speed limit (G1: ≤ 0.5).
        max_yaw_rate_rad_s: turning rate limit (G1: ≤ 1.0).
        max_lateral_m_s: sideways speed limit.
        decel_m_s2: deceleration the controller plans to stop with.
        gain: proportional gain on the position error (1/s).
        yaw_gain: proportional gain on the heading error (1/s).
        position_tolerance_m: goal reached within this distance.
        yaw_tolerance_rad: ... and this heading error.
        turn_first_m: beyond this distance the robot faces the goal position while walking.
        min_speed_m_s: smallest speed commanded while not yet within tolerance.
    """

    max_speed_m_s: float = 0.5
    max_yaw_rate_rad_s: float = 1.0
    max_lateral_m_s: float = 0.3
    decel_m_s2: float = 0.6
    gain: float = 1.5
    yaw_gain: float = 1.5
    position_tolerance_m: float = 0.03
    yaw_tolerance_rad: float = 0.05
    turn_first_m: float = 0.4
    min_speed_m_s: float = 0.05

    def __post_init__(self) -> None:
        """Enforce the G1's limits.

        Raises:
            ValueError: a limit above the G1's (0.5 m/s, 1 rad/s) or not positive.
        """
        if not 0 < self.max_speed_m_s <= 0.5:
            raise ValueError(f'max_speed_m_s must be in (0, 0.5], got {self.max_speed_m_s}')
        if not 0 < self.max_yaw_rate_rad_s <= 1.0:
            raise ValueError(
                f'max_yaw_rate_rad_s must be in (0, 1.0], got {self.max_yaw_rate_rad_s}'
            )
        for name in (
            'max_lateral_m_s',
            'decel_m_s2',
            'gain',
            'yaw_gain',
            'position_tolerance_m',
            'yaw_tolerance_rad',
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f'WalkLimits.{name} must be > 0')


def walk_command(
    pose: tuple[float, float, float], goal: tuple[float, float, float], limits: WalkLimits
) -> tuple[tuple[float, float, float], bool, float]:
    """The body-frame velocity that brings ``pose`` to ``goal``.

    Args:
        pose: measured ``(x, y, yaw)`` of the pelvis in odom.
        goal: ``(x, y, yaw)`` goal in odom.
        limits: limits and gains.

    Returns:
        ``((vx, vy, wz), reached, distance_m)``: the command (zero when reached), whether the
        goal is reached, and the remaining distance.
    """
    dx, dy = goal[0] - pose[0], goal[1] - pose[1]
    dist = math.hypot(dx, dy)
    yaw_err = wrap_angle(goal[2] - pose[2])
    if dist <= limits.position_tolerance_m and abs(yaw_err) <= limits.yaw_tolerance_rad:
        return (0.0, 0.0, 0.0), True, dist
    c, s = math.cos(pose[2]), math.sin(pose[2])
    ex, ey = c * dx + s * dy, -s * dx + c * dy  # error in the body frame
    speed = min(
        limits.max_speed_m_s,
        limits.gain * dist,
        math.sqrt(2.0 * limits.decel_m_s2 * dist),
    )
    if dist > limits.position_tolerance_m:
        speed = max(speed, limits.min_speed_m_s)
    else:
        speed = 0.0
    if dist > limits.turn_first_m:
        heading_err = math.atan2(ey, ex)  # face the goal position while walking
        # slow down while the heading is far off so the path stays near the straight line
        speed *= max(0.0, math.cos(heading_err))
        wz = limits.yaw_gain * heading_err
    else:
        wz = limits.yaw_gain * yaw_err
    wz = max(-limits.max_yaw_rate_rad_s, min(limits.max_yaw_rate_rad_s, wz))
    if abs(wz) < 0.05 and abs(yaw_err) > limits.yaw_tolerance_rad and dist <= limits.turn_first_m:
        wz = math.copysign(0.05, yaw_err)
    vx, vy = (speed * ex / dist, speed * ey / dist) if dist > 1e-9 else (0.0, 0.0)
    if abs(vy) > limits.max_lateral_m_s:
        k = limits.max_lateral_m_s / abs(vy)
        vx, vy = vx * k, vy * k
    return (vx, vy, wz), False, dist
