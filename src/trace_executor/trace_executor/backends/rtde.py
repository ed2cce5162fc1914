"""``rtde`` backend: a UR controller (or URSim) driven directly with ur_rtde, no ROS driver.

The two RTDE interfaces are injected (``control``: ``rtde_control.RTDEControlInterface``,
``receive``: ``rtde_receive.RTDEReceiveInterface``); :meth:`RtdeBackend.connect` opens the real
ones. Two modes:

- ``servoj`` (default): the segment's timed joint trajectory is resampled at the controller
  rate (500 Hz e-Series, 125 Hz CB3: ``frequency_hz``) by cubic Hermite interpolation of its
  positions and velocities, checked against the joint position and velocity limits *before
  anything is sent*, and streamed with ``servoJ(q, v, a, dt, lookahead_time, gain)``, one
  command per period, paced by ``initPeriod()``/``waitPeriod()``. The first command is the
  measured joint state: a small offset between it and the planned start (≤
  ``start_tolerance_rad``, e.g. sensor noise since planning) is blended out over
  ``start_blend_s``. The last target is held until the arm has settled on it, then
  ``servoStop`` leaves servo mode.
- ``movel``: the segment's tool path (forward kinematics of its samples, thinned to the fewest
  poses whose straight legs stay within ``waypoint_tolerance_m`` of it) is sent as one
  asynchronous ``moveL`` path with blend radii and per-leg speeds taken from the planned timing.

Every control period the backend checks the connection (both interfaces), the controller's
timestamp (stale state), emergency and protective stops, the safety mode and that the ur_rtde
control script still runs; any problem ends the motion as FAILED naming it. ``interrupt()`` is
polled every period too: a reason stops the arm with ``servoStop(a)`` (servoj; ``a`` is a tool
deceleration in m/s²) or ``stopJ(a)`` (movel; rad/s²) and the motion ends as STOPPED.

Frames (movel). ur_rtde poses are ``[x, y, z, rx, ry, rz]`` (m, axis-angle) of the controller's
*active TCP* in the controller's *base* frame. The planner works in ``base_link`` with the TCP at
``tcp_offset_m`` along tool0's z. So: (1) at construction the controller's TCP is set to the
planner's (``setTcp([0, 0, tcp_offset_m, 0, 0, 0])``, read back with ``getTCPOffset()``; tool0
of ur_description is the controller's flange with a zero TCP), and (2) poses are mapped from
``base_link`` to the controller's base (``base_T_controller``: by default read from the URDF's
``base`` frame, which ur_description defines as ``base_link`` turned by π about z).
"""

from __future__ import annotations

from collections.abc import Callable
import math
import threading
import time
from typing import Any

import numpy as np

from trace_executor.backends.cartesian import (
    blend_radii,
    select_waypoints,
    tool_poses,
    ur_pose_vector,
)
from trace_executor.execution import BackendError, MotionResult, MotionStatus

#: UR safety modes (RTDE ``safety_mode``).
SAFETY_MODES: dict[int, str] = {
    1: 'NORMAL',
    2: 'REDUCED',
    3: 'PROTECTIVE_STOP',
    4: 'RECOVERY',
    5: 'SAFEGUARD_STOP',
    6: 'SYSTEM_EMERGENCY_STOP',
    7: 'ROBOT_EMERGENCY_STOP',
    8: 'VIOLATION',
    9: 'FAULT',
    10: 'VALIDATE_JOINT_ID',
    11: 'UNDEFINED_SAFETY_MODE',
    12: 'AUTOMATIC_MODE_SAFEGUARD_STOP',
    13: 'SYSTEM_THREE_POSITION_ENABLING_STOP',
}
_MOVING_SAFETY_MODES = (1, 2)

#: UR5 joint limits: ±2π position, 180 °/s speed (used when no planner gives its own).
UR5_LOWER_RAD = (-2 * math.pi,) * 6
UR5_UPPER_RAD = (2 * math.pi,) * 6
UR5_VELOCITY_RAD_S = (math.pi,) * 6

#: servoJ's speed and acceleration arguments are unused by the controller (ur_rtde docs).
_SERVO_SPEED = 0.5
_SERVO_ACCELERATION = 0.5

#: A gripper adapter: close (True) / open (False) → (object held / released, message).
Gripper = Callable[[bool], tuple[bool, str]]


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    out = np.eye(4)
    out[:2, :2] = [[c, -s], [s, c]]
    return out


#: ur_description's ``base`` (the controller's base frame) in ``base_link``: π about z.
UR_CONTROLLER_BASE_IN_BASE_LINK = _rot_z(math.pi)


def planner_options(planner: Any) -> dict[str, Any]:
    """RtdeBackend options that must agree with the planner: kinematics, TCP, limits, frames.

    Args:
        planner: a :class:`~trace_executor.ur5.Ur5Planner`.

    Returns:
        ``forward_tcp``, ``tcp_offset_m``, ``lower_rad``, ``upper_rad``,
        ``velocity_limit_rad_s`` and ``base_T_controller`` (the controller's base frame in the
        planner's base frame, from the URDF's ``base`` frame when it has one).
    """
    base_t_ctrl = UR_CONTROLLER_BASE_IN_BASE_LINK
    kin = getattr(planner, 'kinematics', None)
    model = getattr(kin, 'model', None)
    if model is not None and model.existFrame('base'):
        import pinocchio as pin

        data = model.createData()
        pin.framesForwardKinematics(model, data, pin.neutral(model))
        base_t_ctrl = np.array(data.oMf[model.getFrameId('base')].homogeneous)
    return {
        'forward_tcp': planner.forward_tcp,
        'tcp_offset_m': float(planner.config.tcp_offset_m),
        'lower_rad': np.asarray(planner.lower_rad, dtype=float),
        'upper_rad': np.asarray(planner.upper_rad, dtype=float),
        'velocity_limit_rad_s': np.asarray(planner.velocity_limit_rad_s, dtype=float),
        'base_T_controller': base_t_ctrl,
    }


def hermite_resample(
    times_s: np.ndarray, positions: np.ndarray, velocities: np.ndarray, period_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Resample a timed trajectory every ``period_s`` by cubic Hermite interpolation.

    Args:
        times_s: (K,) increasing sample times starting at 0 (s).
        positions: (K, J) positions at those times.
        velocities: (K, J) velocities at those times.
        period_s: the new sample period (s), > 0.

    Returns:
        ``(t, q)``: (N,) times ``0, period, 2 period, ...`` plus the end time when it is not
        on that grid, and (N, J) positions there (the first and last equal the originals).
    """
    t_in = np.asarray(times_s, dtype=float)
    p = np.asarray(positions, dtype=float)
    v = np.asarray(velocities, dtype=float)
    end = float(t_in[-1])
    n = int(math.floor(end / period_s + 1e-9))
    t = np.arange(n + 1) * period_s
    if end - t[-1] > 1e-9:
        t = np.append(t, end)
    i = np.clip(np.searchsorted(t_in, t, side='right') - 1, 0, len(t_in) - 2)
    h = (t_in[i + 1] - t_in[i])[:, None]
    s = ((t - t_in[i])[:, None] / h).clip(0.0, 1.0)
    s2, s3 = s * s, s * s * s
    q = (
        (2 * s3 - 3 * s2 + 1) * p[i]
        + (s3 - 2 * s2 + s) * h * v[i]
        + (-2 * s3 + 3 * s2) * p[i + 1]
        + (s3 - s2) * h * v[i + 1]
    )
    q[0], q[-1] = p[0], p[-1]
    return t, q


class RtdeBackend:
    """Drive a UR through ur_rtde's control and receive interfaces (see the module docstring)."""

    name = 'rtde'
    MODES = ('servoj', 'movel')

    def __init__(
        self,
        control: Any,
        receive: Any,
        joint_names: tuple[str, ...],
        *,
        mode: str = 'servoj',
        frequency_hz: float = 500.0,
        lookahead_time_s: float = 0.1,
        gain: float = 300.0,
        robot_ip: str = '',
        forward_tcp: Callable[[np.ndarray], np.ndarray] | None = None,
        tcp_offset_m: float | None = None,
        base_T_controller: np.ndarray | None = None,  # noqa: N803 (a transform's name)
        lower_rad: np.ndarray | None = None,
        upper_rad: np.ndarray | None = None,
        velocity_limit_rad_s: np.ndarray | None = None,
        velocity_tolerance: float = 0.05,
        state_timeout_s: float = 0.5,
        start_tolerance_rad: float = 0.05,
        start_blend_s: float = 0.2,
        goal_tolerance_rad: float = 0.01,
        settle_velocity_rad_s: float = 0.02,
        settle_timeout_s: float = 2.0,
        path_tolerance_rad: float = 0.3,
        servo_stop_deceleration_m_s2: float = 4.0,
        stop_deceleration_rad_s2: float = 4.0,
        stop_timeout_s: float = 2.0,
        movel_acceleration_m_s2: float = 0.8,
        movel_min_speed_m_s: float = 0.01,
        movel_max_speed_m_s: float = 0.5,
        movel_blend_radius_m: float = 0.01,
        movel_goal_tolerance_rad: float = 0.02,
        waypoint_tolerance_m: float = 0.002,
        waypoint_tolerance_rad: float = 0.02,
        progress_period_s: float = 0.05,
        gripper: Gripper | None = None,
    ) -> None:
        """Wire the interfaces and set the controller's TCP to the planner's.

        Args:
            control: an ``RTDEControlInterface`` (or a stand-in with the same methods).
            receive: an ``RTDEReceiveInterface`` (or a stand-in).
            joint_names: the six joint names, controller order (base ... wrist 3).
            mode: ``servoj`` or ``movel``.
            frequency_hz: servoJ rate: 500 (e-Series) or 125 (CB3), Hz.
            lookahead_time_s: servoJ lookahead time, s, in [0.03, 0.2].
            gain: servoJ proportional gain, in [100, 2000].
            robot_ip: the controller's address (for messages).
            forward_tcp: q → (4, 4) base_T_tcp of the planner; required for ``movel``.
            tcp_offset_m: the planner's TCP offset along tool0's z; set on the controller
                with ``setTcp`` when given.
            base_T_controller: (4, 4) the controller's base frame in the planner's base frame;
                ``None`` = ur_description's (π about z).
            lower_rad: (6,) lower joint limits every command must respect; ``None`` = UR5's.
            upper_rad: (6,) upper joint limits; ``None`` = UR5's.
            velocity_limit_rad_s: (6,) joint speed limits of the command stream; ``None`` =
                UR5's.
            velocity_tolerance: fraction above the speed limits the resampled stream may
                reach (interpolation between the planner's samples).
            state_timeout_s: the controller's timestamp must advance within this time.
            start_tolerance_rad: the arm may be this far from a segment's planned start.
            start_blend_s: servoj: time over which the offset from the planned start fades.
            goal_tolerance_rad: servoj: joint error accepted at the end of a segment.
            settle_velocity_rad_s: servoj: the arm has settled below this joint speed.
            settle_timeout_s: servoj: time allowed after the stream to settle on the goal.
            path_tolerance_rad: servoj: deviation from the recent targets that aborts.
            servo_stop_deceleration_m_s2: servoStop's tool deceleration on an interrupt.
            stop_deceleration_rad_s2: stopJ's joint deceleration (movel interrupt, errors).
            stop_timeout_s: time allowed to come to rest after a stop.
            movel_acceleration_m_s2: moveL tool acceleration.
            movel_min_speed_m_s: slowest moveL leg speed.
            movel_max_speed_m_s: fastest moveL leg speed.
            movel_blend_radius_m: moveL blend radius where legs are long enough.
            movel_goal_tolerance_rad: movel: joint error accepted at the end of a segment.
            waypoint_tolerance_m: movel: how far the straight legs may stray from the path.
            waypoint_tolerance_rad: movel: orientation deviation allowed along a leg.
            progress_period_s: how often ``progress`` is called.
            gripper: optional gripper adapter (close → (held, message)).

        Raises:
            ValueError: a parameter out of range, or ``movel`` without ``forward_tcp``.
            BackendError: the controller did not accept the TCP offset.
        """
        if mode not in self.MODES:
            raise ValueError(f'rtde mode must be one of {", ".join(self.MODES)}, got {mode!r}')
        if not 0.0 < frequency_hz <= 500.0:
            raise ValueError(f'frequency_hz must be in (0, 500] Hz, got {frequency_hz}')
        if not 0.03 <= lookahead_time_s <= 0.2:
            raise ValueError(f'lookahead_time_s must be in [0.03, 0.2] s, got {lookahead_time_s}')
        if not 100.0 <= gain <= 2000.0:
            raise ValueError(f'gain must be in [100, 2000], got {gain}')
        if len(joint_names) != 6:
            raise ValueError(f'the rtde backend drives 6 joints, got {list(joint_names)}')
        if mode == 'movel' and forward_tcp is None:
            raise ValueError('movel mode needs forward_tcp (the planner kinematics)')
        self.control = control
        self.receive = receive
        self.joint_names = tuple(joint_names)
        self.mode = mode
        self.frequency_hz = float(frequency_hz)
        self.period_s = 1.0 / self.frequency_hz
        self.lookahead_time_s = float(lookahead_time_s)
        self.gain = float(gain)
        self.robot_ip = robot_ip or 'the controller'
        self.forward_tcp = forward_tcp
        base_t_ctrl = (
            UR_CONTROLLER_BASE_IN_BASE_LINK if base_T_controller is None else base_T_controller
        )
        self.controller_T_base = np.linalg.inv(np.asarray(base_t_ctrl, dtype=float))
        self.lower_rad = np.asarray(UR5_LOWER_RAD if lower_rad is None else lower_rad, float)
        self.upper_rad = np.asarray(UR5_UPPER_RAD if upper_rad is None else upper_rad, float)
        self.velocity_limit_rad_s = np.asarray(
            UR5_VELOCITY_RAD_S if velocity_limit_rad_s is None else velocity_limit_rad_s, float
        )
        self.velocity_tolerance = float(velocity_tolerance)
        self.state_timeout_s = float(state_timeout_s)
        self.start_tolerance_rad = float(start_tolerance_rad)
        self.start_blend_s = float(start_blend_s)
        self.goal_tolerance_rad = float(goal_tolerance_rad)
        self.settle_velocity_rad_s = float(settle_velocity_rad_s)
        self.settle_timeout_s = float(settle_timeout_s)
        self.path_tolerance_rad = float(path_tolerance_rad)
        self.servo_stop_deceleration_m_s2 = float(servo_stop_deceleration_m_s2)
        self.stop_deceleration_rad_s2 = float(stop_deceleration_rad_s2)
        self.stop_timeout_s = float(stop_timeout_s)
        self.movel_acceleration_m_s2 = float(movel_acceleration_m_s2)
        self.movel_min_speed_m_s = float(movel_min_speed_m_s)
        self.movel_max_speed_m_s = float(movel_max_speed_m_s)
        self.movel_blend_radius_m = float(movel_blend_radius_m)
        self.movel_goal_tolerance_rad = float(movel_goal_tolerance_rad)
        self.waypoint_tolerance_m = float(waypoint_tolerance_m)
        self.waypoint_tolerance_rad = float(waypoint_tolerance_rad)
        self.progress_period_s = float(progress_period_s)
        self._gripper = gripper
        self._lock = threading.Lock()
        self._stamp: float | None = None
        self._stamp_seen = time.monotonic()
        self.tcp_offset_m = tcp_offset_m
        if tcp_offset_m is not None:
            self._set_tcp(float(tcp_offset_m))

    @classmethod
    def connect(
        cls,
        robot_ip: str,
        joint_names: tuple[str, ...],
        *,
        frequency_hz: float = 500.0,
        gripper: Gripper | None = None,
        planner: Any = None,
        **options: Any,
    ) -> RtdeBackend:
        """Open the RTDE interfaces to a UR controller (or URSim) and build the backend.

        Args:
            robot_ip: the controller's address.
            joint_names: the six joint names, controller order.
            frequency_hz: RTDE and servoJ rate: 500 (e-Series) or 125 (CB3), Hz.
            gripper: optional gripper adapter (close → (held, message)).
            planner: the :class:`~trace_executor.ur5.Ur5Planner` whose kinematics, TCP and
                limits the backend must share (see :func:`planner_options`); strongly
                recommended (``movel`` needs it).
            **options: any other :class:`RtdeBackend` keyword (``mode``, ``gain``, ...).

        Returns:
            A connected backend.

        Raises:
            BackendError: no address, ur_rtde missing, the controller unreachable or not in
                remote control, or it refused the TCP offset.
        """
        if not robot_ip:
            raise BackendError(
                'the rtde backend needs robot_ip: the address of the UR controller or URSim'
            )
        try:
            import rtde_control
            import rtde_receive
        except ImportError as exc:
            raise BackendError(
                f'the rtde backend needs the ur-rtde package (pip install ur-rtde): {exc}'
            ) from exc
        receive = control = None
        try:
            receive = rtde_receive.RTDEReceiveInterface(robot_ip, float(frequency_hz))
            control = rtde_control.RTDEControlInterface(robot_ip, float(frequency_hz))
            if planner is not None:
                options = {**planner_options(planner), **options}
            return cls(
                control,
                receive,
                joint_names,
                frequency_hz=frequency_hz,
                gripper=gripper,
                robot_ip=robot_ip,
                **options,
            )
        except (RuntimeError, BackendError, ValueError) as exc:
            for iface in (control, receive):
                if iface is not None:
                    try:
                        iface.disconnect()
                    except RuntimeError:
                        pass
            if isinstance(exc, BackendError):
                raise
            raise BackendError(
                f'cannot use the UR controller at {robot_ip} over RTDE: {exc} (is it powered, '
                'reachable and in remote control mode?)'
            ) from exc

    def close(self) -> None:
        """Stop the control script and disconnect both interfaces."""
        for call in (
            lambda: self.control.stopScript(),
            lambda: self.control.disconnect(),
            lambda: self.receive.disconnect(),
        ):
            try:
                call()
            except (RuntimeError, AttributeError):
                pass

    def _set_tcp(self, offset_m: float) -> None:
        tcp = [0.0, 0.0, offset_m, 0.0, 0.0, 0.0]
        if not self.control.setTcp(tcp):
            raise BackendError(f'{self.robot_ip} refused the TCP offset {tcp}')
        got = list(self.control.getTCPOffset())
        if len(got) != 6 or not np.allclose(got, tcp, atol=1e-6):
            raise BackendError(f'{self.robot_ip} reports TCP offset {got} after setting {tcp}')

    # --- state ----------------------------------------------------------------------------
    def _check_fresh(self) -> None:
        """Raise BackendError when disconnected or the controller's clock stopped."""
        if not self.receive.isConnected():
            raise BackendError(f'the RTDE receive interface is disconnected from {self.robot_ip}')
        stamp = float(self.receive.getTimestamp())
        now = time.monotonic()
        with self._lock:
            if stamp != self._stamp:
                self._stamp, self._stamp_seen = stamp, now
            elif now - self._stamp_seen > self.state_timeout_s:
                raise BackendError(
                    f'joint state from {self.robot_ip} is stale: the controller timestamp '
                    f'{stamp:.3f} s has not advanced for {now - self._stamp_seen:.2f} s '
                    f'(> {self.state_timeout_s} s)'
                )

    def _vector(self, values: Any, what: str) -> np.ndarray:
        q = np.asarray(values, dtype=float).reshape(-1)
        if q.shape != (6,) or not np.all(np.isfinite(q)):
            raise BackendError(f'{self.robot_ip} returned a malformed {what}: {list(values)}')
        return q

    def joint_positions(self) -> np.ndarray:
        """Current joint positions (rad), from ``getActualQ()``.

        Returns:
            (6,) joint positions, controller (= planner) order.

        Raises:
            BackendError: disconnected, stale (the controller timestamp stopped advancing) or
                a malformed answer.
        """
        self._check_fresh()
        return self._vector(self.receive.getActualQ(), 'joint position')

    def _velocities(self) -> np.ndarray:
        return self._vector(self.receive.getActualQd(), 'joint velocity')

    def safety_problem(self) -> str | None:
        """What stops the arm from moving now (connection, stops, safety mode, script), or None."""
        r, c = self.receive, self.control
        if not r.isConnected():
            return f'lost the RTDE receive connection to {self.robot_ip}'
        if not c.isConnected():
            return f'lost the RTDE control connection to {self.robot_ip}'
        if r.isEmergencyStopped():
            return 'emergency stop'
        if r.isProtectiveStopped():
            return 'protective stop'
        mode = int(r.getSafetyMode())
        if mode not in _MOVING_SAFETY_MODES:
            return f'safety mode {SAFETY_MODES.get(mode, str(mode))}'
        if not c.isProgramRunning():
            return (
                'the ur_rtde control script is not running on the controller (stopped from '
                'the pendant, or by a fault)'
            )
        return None

    # --- motion ---------------------------------------------------------------------------
    def execute(
        self, segment: Any, interrupt: Callable[[], str | None], progress: Callable[[float], None]
    ) -> MotionResult:
        """Run a timed motion segment (servoJ stream or moveL path, see the module docstring).

        Args:
            segment: a :class:`~trace_executor.ur5.MotionSegment` (``times_s``,
                ``positions_rad``, ``velocities_rad_s``), at rest at both ends.
            interrupt: polled every control period; a reason stops the arm smoothly.
            progress: called with the fraction done (0-1) every ``progress_period_s``.

        Returns:
            DONE at the segment's end, STOPPED (reason = the interrupt's) or FAILED (message
            naming the safety event, the limit or the deviation). A FAILED before the first
            command means the arm was not moved.
        """
        times = np.asarray(segment.times_s, dtype=float)
        qs = np.asarray(segment.positions_rad, dtype=float)
        if qs.ndim != 2 or qs.shape[1] != 6 or len(qs) < 2 or len(times) != len(qs):
            return MotionResult(
                MotionStatus.FAILED,
                f'malformed segment: positions {qs.shape}, times {times.shape}',
            )
        try:
            q_now = self.joint_positions()
        except BackendError as exc:
            return MotionResult(MotionStatus.FAILED, str(exc))
        problem = self.safety_problem()
        if problem:
            return MotionResult(MotionStatus.FAILED, f'cannot start the motion: {problem}')
        err = np.abs(q_now - qs[0])
        if float(err.max()) > self.start_tolerance_rad:
            j = int(err.argmax())
            return MotionResult(
                MotionStatus.FAILED,
                f'the arm is {err[j]:.3f} rad ({self.joint_names[j]}) away from the planned '
                f'start (tolerance {self.start_tolerance_rad} rad): it moved since planning',
            )
        if self.mode == 'servoj':
            return self._execute_servoj(segment, q_now, interrupt, progress)
        return self._execute_movel(segment, interrupt, progress)

    # servoj -------------------------------------------------------------------------------
    def servo_stream(self, segment: Any, q_now: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The servoJ targets for a segment, starting at the measured joint state.

        Args:
            segment: the motion segment.
            q_now: (6,) measured joint positions (rad), close to the planned start.

        Returns:
            ``(t, q)``: (N,) command times (s, one control period apart) and (N, 6) targets.
        """
        t, q = hermite_resample(
            segment.times_s, segment.positions_rad, segment.velocities_rad_s, self.period_s
        )
        fade = np.clip(1.0 - t / max(self.start_blend_s, self.period_s), 0.0, 1.0)
        q = q + (np.asarray(q_now, dtype=float) - q[0])[None, :] * fade[:, None]
        return t, q

    def check_stream(self, t: np.ndarray, q: np.ndarray) -> str | None:
        """Why a servoJ stream must not be sent (joint limit, speed limit), or None."""
        below = q < self.lower_rad - 1e-6
        above = q > self.upper_rad + 1e-6
        if below.any() or above.any():
            k, j = np.argwhere(below | above)[0]
            return (
                f'command at t={t[k]:.3f} s puts {self.joint_names[j]} at {q[k, j]:.3f} rad, '
                f'outside its limits [{self.lower_rad[j]:.3f}, {self.upper_rad[j]:.3f}] rad'
            )
        if len(q) > 1:
            speed = np.abs(np.diff(q, axis=0)) / np.diff(t)[:, None]
            ratio = speed / self.velocity_limit_rad_s
            k, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
            if ratio[k, j] > 1.0 + self.velocity_tolerance:
                return (
                    f'command at t={t[k + 1]:.3f} s moves {self.joint_names[j]} at '
                    f'{speed[k, j]:.2f} rad/s, above its limit '
                    f'{self.velocity_limit_rad_s[j]:.2f} rad/s'
                )
        return None

    def _servo_stop(self) -> None:
        try:
            self.control.servoStop(self.servo_stop_deceleration_m_s2)
        except RuntimeError:
            pass

    def _stop_j(self) -> None:
        try:
            self.control.stopJ(self.stop_deceleration_rad_s2)
        except RuntimeError:
            pass

    def _wait_rest(self) -> None:
        deadline = time.monotonic() + self.stop_timeout_s
        while time.monotonic() < deadline:
            try:
                if float(np.abs(self._velocities()).max()) < self.settle_velocity_rad_s:
                    return
            except BackendError:
                return
            time.sleep(self.period_s)

    def _failed_during(self, problem: str, t: float, stop: Callable[[], None]) -> MotionResult:
        if not self.receive.isProtectiveStopped() and not self.receive.isEmergencyStopped():
            stop()
        return MotionResult(
            MotionStatus.FAILED, f'{problem} at t={t:.2f} s of the motion; the arm is stopped'
        )

    def _execute_servoj(
        self,
        segment: Any,
        q_now: np.ndarray,
        interrupt: Callable[[], str | None],
        progress: Callable[[float], None],
    ) -> MotionResult:
        t_cmd, stream = self.servo_stream(segment, q_now)
        why_not = self.check_stream(t_cmd, stream)
        if why_not:
            return MotionResult(MotionStatus.FAILED, f'not sent: {why_not}')
        n = len(stream)
        dt = self.period_s
        window = int(round(2.0 * self.lookahead_time_s / dt)) + 1
        every = max(1, int(round(self.progress_period_s / dt)))
        c = self.control
        k = 0
        while True:
            t_cycle = c.initPeriod()
            t = min(k, n - 1) * dt
            try:
                q_act = self.joint_positions()
            except BackendError as exc:
                return self._failed_during(f'lost joint state ({exc})', t, self._servo_stop)
            problem = self.safety_problem()
            if problem:
                return self._failed_during(f'the controller reported {problem}', t, lambda: None)
            why = interrupt()
            if why:
                self._servo_stop()
                self._wait_rest()
                return MotionResult(MotionStatus.STOPPED, why, why)
            recent = stream[max(0, min(k, n - 1) - window) : min(k, n - 1) + 1]
            dev = np.abs(recent - q_act[None, :]).max(axis=1)
            if float(dev.min()) > self.path_tolerance_rad:
                j = int(np.abs(recent[int(dev.argmin())] - q_act).argmax())
                return self._failed_during(
                    f'{self.joint_names[j]} deviated {float(dev.min()):.3f} rad from the '
                    f'commanded trajectory (tolerance {self.path_tolerance_rad} rad)',
                    t,
                    self._servo_stop,
                )
            if k >= n:
                err = np.abs(q_act - stream[-1])
                still = float(np.abs(self._velocities()).max()) < self.settle_velocity_rad_s
                if float(err.max()) <= self.goal_tolerance_rad and still:
                    self._servo_stop()
                    progress(1.0)
                    return MotionResult(MotionStatus.DONE)
                if (k - n) * dt > self.settle_timeout_s:
                    j = int(err.argmax())
                    return self._failed_during(
                        f'{self.joint_names[j]} did not settle on the goal ({err[j]:.3f} rad '
                        f'away after {self.settle_timeout_s} s, tolerance '
                        f'{self.goal_tolerance_rad} rad)',
                        t,
                        self._servo_stop,
                    )
            target = stream[min(k, n - 1)]
            if not c.servoJ(
                target.tolist(),
                _SERVO_SPEED,
                _SERVO_ACCELERATION,
                dt,
                self.lookahead_time_s,
                self.gain,
            ):
                return self._failed_during('the controller refused servoJ', t, self._servo_stop)
            k += 1
            if k % every == 0 and k < n:
                progress(k / n)
            c.waitPeriod(t_cycle)

    # movel --------------------------------------------------------------------------------
    def movel_path(self, segment: Any) -> list[list[float]]:
        """The moveL path for a segment: ``[x, y, z, rx, ry, rz, speed, acceleration, blend]``.

        Poses are the planner's TCP poses (forward kinematics of the segment's samples,
        thinned by :func:`~trace_executor.backends.cartesian.select_waypoints`) in the
        controller's base frame; the first sample (the start) is left out. Leg speeds are
        the planned mean tool speeds, clamped to [movel_min_speed_m_s, movel_max_speed_m_s].

        Raises:
            BackendError: no forward kinematics were given.
        """
        if self.forward_tcp is None:
            raise BackendError('movel needs the planner kinematics (forward_tcp)')
        times = np.asarray(segment.times_s, dtype=float)
        poses = tool_poses(segment.positions_rad, self.forward_tcp)
        keep = select_waypoints(poses, self.waypoint_tolerance_m, self.waypoint_tolerance_rad)
        positions = poses[keep, :3, 3]
        blends = blend_radii(positions, self.movel_blend_radius_m)
        path = []
        for n in range(1, len(keep)):
            leg = float(np.linalg.norm(positions[n] - positions[n - 1]))
            dt = max(float(times[keep[n]] - times[keep[n - 1]]), 1e-6)
            speed = min(max(leg / dt, self.movel_min_speed_m_s), self.movel_max_speed_m_s)
            pose = ur_pose_vector(self.controller_T_base @ poses[keep[n]])
            path.append([*pose, speed, self.movel_acceleration_m_s2, float(blends[n - 1])])
        return path

    def _execute_movel(
        self, segment: Any, interrupt: Callable[[], str | None], progress: Callable[[float], None]
    ) -> MotionResult:
        try:
            path = self.movel_path(segment)
        except BackendError as exc:
            return MotionResult(MotionStatus.FAILED, str(exc))
        if not path:
            return MotionResult(MotionStatus.DONE)
        q_end = np.asarray(segment.positions_rad, dtype=float)[-1]
        if not self.control.moveL(path, True):
            return MotionResult(
                MotionStatus.FAILED, f'the controller refused the moveL path ({len(path)} poses)'
            )
        t0 = time.monotonic()
        timeout = 2.0 * float(segment.duration_s) + 5.0
        seen_running = False
        next_progress = t0
        while True:
            t = time.monotonic() - t0
            try:
                self._check_fresh()
            except BackendError as exc:
                return self._failed_during(f'lost joint state ({exc})', t, self._stop_j)
            problem = self.safety_problem()
            if problem:
                return self._failed_during(f'the controller reported {problem}', t, lambda: None)
            why = interrupt()
            if why:
                self._stop_j()
                self._wait_rest()
                return MotionResult(MotionStatus.STOPPED, why, why)
            status = self.control.getAsyncOperationProgressEx()
            if status.isAsyncOperationRunning():
                seen_running = True
                if time.monotonic() >= next_progress:
                    progress(min(max(status.progress(), 0) / len(path), 1.0))
                    next_progress += self.progress_period_s
            elif seen_running or t > 0.5:
                err = np.abs(self.joint_positions() - q_end)
                if float(err.max()) <= self.movel_goal_tolerance_rad:
                    progress(1.0)
                    return MotionResult(MotionStatus.DONE)
                j = int(err.argmax())
                return MotionResult(
                    MotionStatus.FAILED,
                    f'moveL ended with {self.joint_names[j]} {err[j]:.3f} rad from the planned '
                    f'end (tolerance {self.movel_goal_tolerance_rad} rad)',
                )
            if t > timeout:
                return self._failed_during(
                    f'moveL did not finish within {timeout:.1f} s', t, self._stop_j
                )
            time.sleep(self.period_s)

    # --- gripper --------------------------------------------------------------------------
    def gripper(self, close: bool) -> tuple[bool, str]:
        """Close/open the injected gripper adapter.

        Returns:
            (object held / released, message); (False, why) without a gripper or on error.
        """
        if self._gripper is None:
            return False, 'no gripper configured for the rtde backend'
        try:
            ok, message = self._gripper(bool(close))
        except (RuntimeError, OSError, TimeoutError) as exc:
            return False, f'gripper {"close" if close else "open"} failed: {exc}'
        return bool(ok), str(message)
