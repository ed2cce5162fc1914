"""``rtde`` backend: a UR controller (or URSim) driven directly with ur_rtde, no ROS driver.

Design notes: docs/design-notes.md (trace_executor.backends.rtde).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
import math
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from trace_executor.backends.cartesian import (
    blend_radii,
    select_waypoints,
    tool_poses,
    ur_pose_vector,
)
from trace_executor.execution import BackendError, Halting, Interrupt, MotionResult, MotionStatus

if TYPE_CHECKING:
    from trace_executor.ur5.planner import Ur5Planner

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


def _series(rate_hz: float) -> str:
    """The controller generation that steps at ``rate_hz`` (CB-Series 125 Hz, e-Series 500)."""
    return 'CB-Series' if rate_hz < 250.0 else 'e-Series'


@dataclass(frozen=True)
class Setting:
    """One tuning value of :class:`RtdeConfig`: its name, default, meaning and allowed values."""

    name: str
    default: Any
    description: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()


def _setting(
    default: Any, description: str, lo: float | None = None, hi: float | None = None
) -> Any:
    return field(default=default, metadata={'description': description, 'lo': lo, 'hi': hi})


def _choice(default: str, description: str, choices: tuple[str, ...]) -> Any:
    return field(default=default, metadata={'description': description, 'choices': choices})


@dataclass(frozen=True)
class RtdeConfig:
    """The rtde backend's tuning values, each with its unit and allowed range.

    Ranges are checked once, at construction; :meth:`settings` gives the same table to the
    node, which declares one ``rtde.<name>`` parameter per field. The servoJ and moveL limits
    are ur_rtde's (``UR_SERVO_*``, ``UR_TOOL_*``, ``UR_JOINT_ACCELERATION_MAX``, ``UR_BLEND_MAX``).

    Raises:
        ValueError: a value outside its range or choices, naming the field.
    """

    mode: str = _choice(
        'servoj',
        'servoj (stream the timed trajectory) | movel (tool poses with blend radii)',
        ('servoj', 'movel'),
    )
    frequency_hz: float = _setting(
        0.0,
        'servoJ and RTDE rate, Hz; 0 = let ur_rtde choose from the controller version '
        '(125 CB-Series, 500 e-Series)',
        0.0,
        500.0,
    )
    lookahead_time_s: float = _setting(0.1, 'servoJ lookahead time, s', 0.03, 0.2)
    gain: float = _setting(300.0, 'servoJ proportional gain', 100.0, 2000.0)
    velocity_tolerance: float = _setting(
        0.05,
        'fraction above the joint speed limits the resampled stream may reach (interpolation '
        "between the planner's samples)",
        0.0,
        0.5,
    )
    state_timeout_s: float = _setting(
        0.5, "the controller's timestamp must advance within this time, s", 0.01, 10.0
    )
    start_tolerance_rad: float = _setting(
        0.05, "the arm may be this far from a segment's planned start, rad", 0.001, 0.5
    )
    start_blend_s: float = _setting(
        0.2, 'servoj: time over which the offset from the planned start fades, s', 0.0, 2.0
    )
    goal_tolerance_rad: float = _setting(
        0.01, 'servoj: joint error accepted at the end of a segment, rad', 0.001, 0.5
    )
    settle_velocity_rad_s: float = _setting(
        0.02, 'servoj: the arm has settled below this joint speed, rad/s', 0.001, 1.0
    )
    settle_timeout_s: float = _setting(
        2.0, 'servoj: time allowed after the stream to settle on the goal, s', 0.0, 30.0
    )
    path_tolerance_rad: float = _setting(
        0.3, 'servoj: deviation from the recent targets that aborts, rad', 0.01, 3.14
    )
    servo_stop_deceleration_m_s2: float = _setting(
        4.0, "servoStop's tool deceleration on an interrupt, m/s^2", 0.5, 150.0
    )
    stop_deceleration_rad_s2: float = _setting(
        4.0, "stopJ's joint deceleration (movel interrupt, errors), rad/s^2", 0.5, 40.0
    )
    stop_timeout_s: float = _setting(
        2.0, 'time allowed to come to rest after a stop, s', 0.1, 30.0
    )
    movel_acceleration_m_s2: float = _setting(0.8, 'movel: tool acceleration, m/s^2', 0.01, 150.0)
    movel_min_speed_m_s: float = _setting(0.01, 'movel: slowest leg speed, m/s', 0.001, 3.0)
    movel_max_speed_m_s: float = _setting(0.5, 'movel: fastest leg speed, m/s', 0.001, 3.0)
    movel_blend_radius_m: float = _setting(
        0.01, 'movel: blend radius where legs are long enough, m', 0.0, 2.0
    )
    movel_goal_tolerance_rad: float = _setting(
        0.02, 'movel: joint error accepted at the end of a segment, rad', 0.001, 0.5
    )
    waypoint_tolerance_m: float = _setting(
        0.002, 'movel: how far the straight legs may stray from the path, m', 0.0001, 0.05
    )
    waypoint_tolerance_rad: float = _setting(
        0.02, 'movel: orientation deviation allowed along a leg, rad', 0.001, 0.5
    )
    progress_period_s: float = _setting(0.05, 'how often progress is reported, s', 0.002, 1.0)

    def __post_init__(self) -> None:
        for s in self.settings():
            value = getattr(self, s.name)
            if s.choices:
                if value not in s.choices:
                    raise ValueError(
                        f'rtde {s.name} must be one of {" | ".join(s.choices)}, got {value!r}'
                    )
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f'rtde {s.name} must be a number, got {value!r}')
            if not s.lo <= value <= s.hi:  # also false for NaN
                raise ValueError(f'rtde {s.name} must be in [{s.lo:g}, {s.hi:g}], got {value}')
            object.__setattr__(self, s.name, float(value))
        if self.movel_min_speed_m_s > self.movel_max_speed_m_s:
            raise ValueError(
                f'rtde movel_min_speed_m_s ({self.movel_min_speed_m_s}) must not exceed '
                f'movel_max_speed_m_s ({self.movel_max_speed_m_s})'
            )

    @classmethod
    def settings(cls) -> tuple[Setting, ...]:
        """Every field with its default, description and range (or choices), in order."""
        return tuple(
            Setting(
                f.name,
                f.default,
                f.metadata['description'],
                f.metadata.get('lo'),
                f.metadata.get('hi'),
                f.metadata.get('choices', ()),
            )
            for f in fields(cls)
        )

    @classmethod
    def from_params(cls, params: Mapping[str, Any], prefix: str = 'rtde.') -> RtdeConfig:
        """Build the config from parameters named ``<prefix><field>`` (others are ignored).

        Args:
            params: parameter values by name, e.g. the node's declared parameters.
            prefix: the common prefix of the rtde parameters.

        Returns:
            The validated config; fields without a parameter keep their defaults.

        Raises:
            ValueError: a value outside its range, naming the parameter's field.
        """
        return cls(
            **{f.name: params[prefix + f.name] for f in fields(cls) if prefix + f.name in params}
        )


@dataclass(frozen=True, eq=False)
class ArmModel:
    """The arm as the planner sees it; the backend's commands must agree with it.

    Attributes:
        forward_tcp: q → (4, 4) base_T_tcp of the planner; required for ``movel``.
        tcp_offset_m: the planner's TCP offset along tool0's z, set on the controller with
            ``setTcp``; ``None`` leaves the controller's TCP alone.
        base_T_controller: (4, 4) the controller's base frame in the planner's base frame.
        lower_rad: (6,) lower joint limits every command must respect.
        upper_rad: (6,) upper joint limits.
        velocity_limit_rad_s: (6,) joint speed limits of the command stream.
    """

    forward_tcp: Callable[[np.ndarray], np.ndarray] | None = None
    tcp_offset_m: float | None = None
    base_T_controller: np.ndarray = field(  # noqa: N815 (a transform's name)
        default_factory=lambda: UR_CONTROLLER_BASE_IN_BASE_LINK.copy()
    )
    lower_rad: np.ndarray = field(default_factory=lambda: np.array(UR5_LOWER_RAD))
    upper_rad: np.ndarray = field(default_factory=lambda: np.array(UR5_UPPER_RAD))
    velocity_limit_rad_s: np.ndarray = field(default_factory=lambda: np.array(UR5_VELOCITY_RAD_S))

    @classmethod
    def from_planner(cls, planner: Ur5Planner) -> ArmModel:
        """The kinematics, TCP, limits and frames of a :class:`~trace_executor.ur5.Ur5Planner`.

        ``base_T_controller`` comes from the URDF's ``base`` frame when the model has one
        (ur_description: ``base_link`` turned by π about z), else that same default.
        """
        base_t_ctrl = UR_CONTROLLER_BASE_IN_BASE_LINK
        model = planner.kinematics.model
        if model.existFrame('base'):
            import pinocchio as pin

            data = model.createData()
            pin.framesForwardKinematics(model, data, pin.neutral(model))
            base_t_ctrl = np.array(data.oMf[model.getFrameId('base')].homogeneous)
        return cls(
            forward_tcp=planner.forward_tcp,
            tcp_offset_m=float(planner.config.tcp_offset_m),
            base_T_controller=np.array(base_t_ctrl, dtype=float),
            lower_rad=np.asarray(planner.lower_rad, dtype=float),
            upper_rad=np.asarray(planner.upper_rad, dtype=float),
            velocity_limit_rad_s=np.asarray(planner.velocity_limit_rad_s, dtype=float),
        )


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


class RtdeBackend(Halting):
    """Drive a UR through ur_rtde's control and receive interfaces (see the module docstring)."""

    name = 'rtde'

    def __init__(
        self,
        control: Any,
        receive: Any,
        joint_names: tuple[str, ...],
        *,
        config: RtdeConfig | None = None,
        arm: ArmModel | None = None,
        gripper: Gripper | None = None,
        robot_ip: str = '',
    ) -> None:
        """Wire the interfaces, settle the servoJ rate, set the controller's TCP to the planner's.

        Args:
            control: an ``RTDEControlInterface`` (or a stand-in with the same methods).
            receive: an ``RTDEReceiveInterface`` (or a stand-in).
            joint_names: the six joint names, controller order (base ... wrist 3).
            config: the tuning values; ``None`` = the defaults.
            arm: the planner's kinematics, TCP, limits and frames
                (:meth:`ArmModel.from_planner`); ``None`` = UR5 limits, no kinematics.
            gripper: optional gripper adapter (close → (held, message)).
            robot_ip: the controller's address (for messages).

        Raises:
            ValueError: not six joints, or ``movel`` without ``arm.forward_tcp``.
            BackendError: the controller's rate cannot be read (``frequency_hz`` 0), is slower
                than the configured one, or the controller did not accept the TCP offset.
        """
        self.config = config = RtdeConfig() if config is None else config
        self.arm = arm = ArmModel() if arm is None else arm
        if len(joint_names) != 6:
            raise ValueError(f'the rtde backend drives 6 joints, got {list(joint_names)}')
        if config.mode == 'movel' and arm.forward_tcp is None:
            raise ValueError('movel mode needs forward_tcp (the planner kinematics)')
        self.control = control
        self.receive = receive
        self.joint_names = tuple(joint_names)
        self.robot_ip = robot_ip or 'the controller'
        self.controller_T_base = np.linalg.inv(np.asarray(arm.base_T_controller, dtype=float))
        self.lower_rad = np.asarray(arm.lower_rad, dtype=float)
        self.upper_rad = np.asarray(arm.upper_rad, dtype=float)
        self.velocity_limit_rad_s = np.asarray(arm.velocity_limit_rad_s, dtype=float)
        self.frequency_hz, self.rate_description = self._servo_rate()
        self.period_s = 1.0 / self.frequency_hz
        self._gripper = gripper
        self._lock = threading.Lock()
        self._stamp: float | None = None
        self._stamp_seen = time.monotonic()
        if arm.tcp_offset_m is not None:
            self._set_tcp(float(arm.tcp_offset_m))

    def _servo_rate(self) -> tuple[float, str]:
        """The servoJ rate (Hz) and a sentence saying where it came from, for the log.

        ur_rtde, given frequency -1, picks 125 Hz when the controller's major version is 3
        (CB-Series) and 500 Hz above (e-Series): the rate at which the controller itself steps,
        which ``getStepTime()`` (URScript ``get_steptime()``) reports. With frequency_hz 0 the
        backend streams at that step; a configured rate must not be faster than it.
        """
        try:
            step_s = float(self.control.getStepTime())
        except (RuntimeError, TypeError, ValueError):
            step_s = 0.0
        # whole hertz: the step may come back as a float32 (0.008 → 124.99999 Hz)
        controller_hz = float(round(1.0 / step_s)) if 0.0 < step_s < 1.0 else None
        configured = self.config.frequency_hz
        if configured > 0.0:
            if controller_hz is not None and configured > controller_hz * 1.001:
                raise BackendError(
                    f'rtde frequency_hz {configured:g} Hz is faster than {self.robot_ip} steps '
                    f'({controller_hz:g} Hz, {_series(controller_hz)}): set it to 0 to let '
                    'ur_rtde choose'
                )
            seen = f'{controller_hz:g} Hz' if controller_hz is not None else 'unknown'
            return configured, (
                f'servoJ at {configured:g} Hz (configured; the controller steps at {seen})'
            )
        if controller_hz is None:
            raise BackendError(
                f'cannot tell the rate of {self.robot_ip}: getStepTime() answered {step_s}; set '
                'rtde frequency_hz (125 for a CB-Series controller, 500 for an e-Series)'
            )
        return controller_hz, (
            f'servoJ at {controller_hz:g} Hz (chosen by ur_rtde from the controller: '
            f'{_series(controller_hz)}, step {1000.0 * step_s:g} ms)'
        )

    @classmethod
    def connect(
        cls,
        robot_ip: str,
        joint_names: tuple[str, ...],
        *,
        config: RtdeConfig | None = None,
        planner: Ur5Planner | None = None,
        gripper: Gripper | None = None,
    ) -> RtdeBackend:
        """Open the RTDE interfaces to a UR controller (or URSim) and build the backend.

        Args:
            robot_ip: the controller's address.
            joint_names: the six joint names, controller order.
            config: the tuning values; ``frequency_hz`` 0 (the default) passes -1 to both
                interfaces, so ur_rtde picks the controller's rate.
            planner: the planner whose kinematics, TCP and limits the backend must share
                (:meth:`ArmModel.from_planner`); strongly recommended (``movel`` needs it).
            gripper: optional gripper adapter (close → (held, message)).

        Returns:
            A connected backend.

        Raises:
            BackendError: no address, ur_rtde missing, the controller unreachable or not in
                remote control, its rate unreadable or slower than configured, or it refused
                the TCP offset.
        """
        config = RtdeConfig() if config is None else config
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
        frequency = config.frequency_hz if config.frequency_hz > 0.0 else -1.0
        receive = control = None
        try:
            receive = rtde_receive.RTDEReceiveInterface(robot_ip, frequency)
            control = rtde_control.RTDEControlInterface(robot_ip, frequency)
            return cls(
                control,
                receive,
                joint_names,
                config=config,
                arm=None if planner is None else ArmModel.from_planner(planner),
                gripper=gripper,
                robot_ip=robot_ip,
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
            elif now - self._stamp_seen > self.config.state_timeout_s:
                raise BackendError(
                    f'joint state from {self.robot_ip} is stale: the controller timestamp '
                    f'{stamp:.3f} s has not advanced for {now - self._stamp_seen:.2f} s '
                    f'(> {self.config.state_timeout_s} s)'
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
        self,
        segment: Any,
        interrupt: Callable[[], Interrupt | None],
        progress: Callable[[float], None],
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
        if (halted := self.halted()) is not None:
            return halted
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
        if float(err.max()) > self.config.start_tolerance_rad:
            j = int(err.argmax())
            return MotionResult(
                MotionStatus.FAILED,
                f'the arm is {err[j]:.3f} rad ({self.joint_names[j]}) away from the planned '
                f'start (tolerance {self.config.start_tolerance_rad} rad): it moved since '
                'planning',
            )
        if self.config.mode == 'servoj':
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
        fade = np.clip(1.0 - t / max(self.config.start_blend_s, self.period_s), 0.0, 1.0)
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
            if ratio[k, j] > 1.0 + self.config.velocity_tolerance:
                return (
                    f'command at t={t[k + 1]:.3f} s moves {self.joint_names[j]} at '
                    f'{speed[k, j]:.2f} rad/s, above its limit '
                    f'{self.velocity_limit_rad_s[j]:.2f} rad/s'
                )
        return None

    def stop(self) -> None:
        """Decelerate the arm to rest now (``stopJ``)."""
        self._stop_j()

    def _servo_stop(self) -> None:
        try:
            self.control.servoStop(self.config.servo_stop_deceleration_m_s2)
        except RuntimeError:
            pass

    def _stop_j(self) -> None:
        try:
            self.control.stopJ(self.config.stop_deceleration_rad_s2)
        except RuntimeError:
            pass

    def _wait_rest(self) -> None:
        deadline = time.monotonic() + self.config.stop_timeout_s
        while time.monotonic() < deadline:
            try:
                if float(np.abs(self._velocities()).max()) < self.config.settle_velocity_rad_s:
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
        interrupt: Callable[[], Interrupt | None],
        progress: Callable[[float], None],
    ) -> MotionResult:
        t_cmd, stream = self.servo_stream(segment, q_now)
        why_not = self.check_stream(t_cmd, stream)
        if why_not:
            return MotionResult(MotionStatus.FAILED, f'not sent: {why_not}')
        n = len(stream)
        dt = self.period_s
        window = int(round(2.0 * self.config.lookahead_time_s / dt)) + 1
        every = max(1, int(round(self.config.progress_period_s / dt)))
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
                return MotionResult(MotionStatus.STOPPED, str(why), str(why))
            recent = stream[max(0, min(k, n - 1) - window) : min(k, n - 1) + 1]
            dev = np.abs(recent - q_act[None, :]).max(axis=1)
            if float(dev.min()) > self.config.path_tolerance_rad:
                j = int(np.abs(recent[int(dev.argmin())] - q_act).argmax())
                return self._failed_during(
                    f'{self.joint_names[j]} deviated {float(dev.min()):.3f} rad from the '
                    f'commanded trajectory (tolerance {self.config.path_tolerance_rad} rad)',
                    t,
                    self._servo_stop,
                )
            if k >= n:
                err = np.abs(q_act - stream[-1])
                still = float(np.abs(self._velocities()).max()) < self.config.settle_velocity_rad_s
                if float(err.max()) <= self.config.goal_tolerance_rad and still:
                    self._servo_stop()
                    progress(1.0)
                    return MotionResult(MotionStatus.DONE)
                if (k - n) * dt > self.config.settle_timeout_s:
                    j = int(err.argmax())
                    return self._failed_during(
                        f'{self.joint_names[j]} did not settle on the goal ({err[j]:.3f} rad '
                        f'away after {self.config.settle_timeout_s} s, tolerance '
                        f'{self.config.goal_tolerance_rad} rad)',
                        t,
                        self._servo_stop,
                    )
            target = stream[min(k, n - 1)]
            if not c.servoJ(
                target.tolist(),
                _SERVO_SPEED,
                _SERVO_ACCELERATION,
                dt,
                self.config.lookahead_time_s,
                self.config.gain,
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
        if self.arm.forward_tcp is None:
            raise BackendError('movel needs the planner kinematics (forward_tcp)')
        times = np.asarray(segment.times_s, dtype=float)
        poses = tool_poses(segment.positions_rad, self.arm.forward_tcp)
        keep = select_waypoints(
            poses, self.config.waypoint_tolerance_m, self.config.waypoint_tolerance_rad
        )
        positions = poses[keep, :3, 3]
        blends = blend_radii(positions, self.config.movel_blend_radius_m)
        path = []
        for n in range(1, len(keep)):
            leg = float(np.linalg.norm(positions[n] - positions[n - 1]))
            dt = max(float(times[keep[n]] - times[keep[n - 1]]), 1e-6)
            speed = min(
                max(leg / dt, self.config.movel_min_speed_m_s), self.config.movel_max_speed_m_s
            )
            pose = ur_pose_vector(self.controller_T_base @ poses[keep[n]])
            path.append([*pose, speed, self.config.movel_acceleration_m_s2, float(blends[n - 1])])
        return path

    def _execute_movel(
        self,
        segment: Any,
        interrupt: Callable[[], Interrupt | None],
        progress: Callable[[float], None],
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
                return MotionResult(MotionStatus.STOPPED, str(why), str(why))
            status = self.control.getAsyncOperationProgressEx()
            if status.isAsyncOperationRunning():
                seen_running = True
                if time.monotonic() >= next_progress:
                    progress(min(max(status.progress(), 0) / len(path), 1.0))
                    next_progress += self.config.progress_period_s
            elif seen_running or t > 0.5:
                err = np.abs(self.joint_positions() - q_end)
                if float(err.max()) <= self.config.movel_goal_tolerance_rad:
                    progress(1.0)
                    return MotionResult(MotionStatus.DONE)
                j = int(err.argmax())
                return MotionResult(
                    MotionStatus.FAILED,
                    f'moveL ended with {self.joint_names[j]} {err[j]:.3f} rad from the planned '
                    f'end (tolerance {self.config.movel_goal_tolerance_rad} rad)',
                )
            if t > timeout:
                return self._failed_during(
                    f'moveL did not finish within {timeout:.1f} s', t, self._stop_j
                )
            time.sleep(self.period_s)

    # --- gripper --------------------------------------------------------------------------
    def gripper(self, close: bool, segment: Any = None) -> tuple[bool, str]:
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
