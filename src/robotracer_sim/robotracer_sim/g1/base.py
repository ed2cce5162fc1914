"""Kinematic base of the simulated G1: the pelvis follows the commanded planar velocity.

Walking needs a learned policy, so the simulator does not walk: like the locomotion
controller seen from ``LocoClient``, it takes a body-frame velocity command ``(vx, vy, wz)``
held for ``duration`` seconds (``LocoClient.SetVelocity``; ``Move`` sends 1 s, or 864000 s for
continuous motion) and moves the pelvis smoothly: the command is clamped to the speed limits,
the velocity approaches it under acceleration limits, and the pose integrates it in the plane.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np


@dataclass(frozen=True)
class BaseLimits:
    """Speed and acceleration limits of the kinematic base (body frame)."""

    max_linear_speed: float = 0.5  # m/s, norm of (vx, vy)
    max_yaw_rate: float = 1.0  # rad/s
    max_linear_accel: float = 1.0  # m/s^2
    max_yaw_accel: float = 2.0  # rad/s^2

    def __post_init__(self) -> None:
        """Reject non-positive limits.

        Raises:
            ValueError: a limit is not a positive finite number.

        """
        for name in ('max_linear_speed', 'max_yaw_rate', 'max_linear_accel', 'max_yaw_accel'):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f'BaseLimits.{name} must be a positive number, got {v}')


class KinematicBase:
    """Planar pose ``(x, y, yaw)`` following a body-frame velocity command.

    Args:
        limits: speed and acceleration limits.
        x: start x in the world, m.
        y: start y in the world, m.
        yaw: start heading, rad.

    """

    def __init__(self, limits: BaseLimits, x: float = 0.0, y: float = 0.0, yaw: float = 0.0):
        self.limits = limits
        self.pose = np.array([x, y, yaw], dtype=float)
        self.velocity = np.zeros(3)  # body frame vx, vy, wz
        self.world_accel = np.zeros(2)  # last linear acceleration in the world, m/s^2
        self._target = np.zeros(3)
        self._until = -math.inf

    @property
    def active(self) -> bool:
        """Whether the base moves or has a command (``update`` is a no-op otherwise)."""
        return bool(self._target.any() or self.velocity.any() or self.world_accel.any())

    @property
    def target(self) -> np.ndarray:
        """The commanded body-frame velocity in force now (zero once expired)."""
        return self._target.copy()

    def command(
        self, vx: float, vy: float, wz: float, duration: float, now: float
    ) -> tuple[np.ndarray, list[str]]:
        """Set the velocity command for ``duration`` seconds from ``now``.

        Args:
            vx: forward speed, m/s.
            vy: leftward speed, m/s.
            wz: yaw rate, rad/s (counter-clockwise).
            duration: how long the command holds, s (> 0).
            now: the current simulation time, s.

        Returns:
            The command actually applied (after clamping to the limits) and one message per
            clamped quantity.

        Raises:
            ValueError: a value is not finite or ``duration`` is not positive.

        """
        vals = {'vx': vx, 'vy': vy, 'wz': wz, 'duration': duration}
        for k, v in vals.items():
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f'velocity command {k}={v!r} is not a finite number')
        if duration <= 0:
            raise ValueError(f'velocity command duration must be > 0 s, got {duration}')
        notes = []
        lin = math.hypot(vx, vy)
        if lin > self.limits.max_linear_speed:
            s = self.limits.max_linear_speed / lin
            notes.append(
                f'linear speed {lin:.3f} m/s clamped to {self.limits.max_linear_speed} m/s'
            )
            vx, vy = vx * s, vy * s
        if abs(wz) > self.limits.max_yaw_rate:
            notes.append(f'yaw rate {wz:.3f} rad/s clamped to {self.limits.max_yaw_rate} rad/s')
            wz = math.copysign(self.limits.max_yaw_rate, wz)
        self._target = np.array([vx, vy, wz], dtype=float)
        self._until = now + duration
        return self._target.copy(), notes

    def stop(self) -> None:
        """Drop the command: the base decelerates to rest under the acceleration limits."""
        self._target = np.zeros(3)
        self._until = -math.inf

    def halt(self) -> None:
        """Stop at once (no deceleration), e.g. when the controller is switched off."""
        self.stop()
        self.velocity = np.zeros(3)
        self.world_accel = np.zeros(2)

    def update(self, dt: float, now: float) -> None:
        """Advance by ``dt`` seconds: approach the command, then integrate the pose.

        Args:
            dt: time step, s.
            now: simulation time at the end of the step, s.

        """
        if now >= self._until:
            self._target = np.zeros(3)
        old_world = self._world_linear()
        dv = self._target[:2] - self.velocity[:2]
        n = float(np.linalg.norm(dv))
        step = self.limits.max_linear_accel * dt
        if n > step:
            dv *= step / n
        self.velocity[:2] += dv
        dw = self._target[2] - self.velocity[2]
        wstep = self.limits.max_yaw_accel * dt
        self.velocity[2] += max(-wstep, min(wstep, dw))
        # Integrate at mid-heading for accuracy on arcs.
        yaw_mid = self.pose[2] + 0.5 * self.velocity[2] * dt
        c, s = math.cos(yaw_mid), math.sin(yaw_mid)
        self.pose[0] += (c * self.velocity[0] - s * self.velocity[1]) * dt
        self.pose[1] += (s * self.velocity[0] + c * self.velocity[1]) * dt
        self.pose[2] = math.atan2(
            math.sin(self.pose[2] + self.velocity[2] * dt),
            math.cos(self.pose[2] + self.velocity[2] * dt),
        )
        self.world_accel = (self._world_linear() - old_world) / dt if dt > 0 else np.zeros(2)

    def _world_linear(self) -> np.ndarray:
        c, s = math.cos(self.pose[2]), math.sin(self.pose[2])
        return np.array(
            [
                c * self.velocity[0] - s * self.velocity[1],
                s * self.velocity[0] + c * self.velocity[1],
            ]
        )

    def world_velocity(self) -> np.ndarray:
        """Linear velocity in the world frame ``(vx, vy)``, m/s."""
        return self._world_linear()
