"""The rtde backend against a stand-in UR controller that records every command.

URSim is not available on these machines, so ``FakeUr`` plays the controller behind ur_rtde's
two interfaces (``FakeControl`` / ``FakeReceive`` offer only methods the real
``RTDEControlInterface`` / ``RTDEReceiveInterface`` have, with the same arguments): it records
each call with a timestamp, moves its "actual" joints towards every servoJ target with a
first-order lag, follows moveL paths through the planner's IK, and can raise a protective stop,
an emergency stop, stop its script, freeze its clock or drop the connection.

The outcomes checked are those a user cares about: the command rate is the controller's (as
ur_rtde picks it unless configured), a tuning value out of range is refused naming it, no
command leaves the joint limits or outruns the speed limits, the first command is where the arm
is, the arm ends where the plan ends, an interrupt stops it within a few control periods, a
safety stop fails the motion naming it, and nothing is sent when something is wrong.

The ``hardware`` tests run against a real controller or URSim at ``ROBOTRACER_UR_IP``.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, replace
import datetime
import math
import os
import sys
import threading
import time
import types
from typing import Any

import numpy as np
import pytest

from trace_executor.backends.cartesian import (
    blend_radii,
    select_waypoints,
    tool_poses,
    ur_pose_matrix,
    ur_pose_vector,
)
from trace_executor.backends.rtde import (
    UR_CONTROLLER_BASE_IN_BASE_LINK,
    ArmModel,
    RtdeBackend,
    RtdeConfig,
    hermite_resample,
)
from trace_executor.execution import (
    BackendError,
    GoalRunner,
    GoalSpec,
    MotionResult,
    MotionStatus,
    TraceInput,
    validate_goal,
)
from trace_executor.ur5 import UR5_HOME, MotionSegment, Plan, Ur5Planner, tool_path_distance
from trace_executor.ur5.ik import PinkIk

Q_HOME = np.array(UR5_HOME)
PICK_TRACE = np.array(
    [
        [0.45 + 0.05 * t, -0.15 + 0.35 * t, 0.03 + 0.10 * math.sin(math.pi * t)]
        for t in np.linspace(0, 1, 10)
    ]
)
FOLLOW_TRACE = np.array(
    [[0.40 + 0.15 * math.cos(a), 0.15 * math.sin(a), 0.12] for a in np.linspace(0, math.pi, 10)]
)


# ------------------------------------------------------------------------------------------
# The stand-in controller
# ------------------------------------------------------------------------------------------
@dataclass
class AsyncStatus:
    """What ``getAsyncOperationProgressEx()`` returns (``rtde_control.AsyncOperationStatus``)."""

    running: bool
    step: int

    def isAsyncOperationRunning(self) -> bool:  # noqa: N802 (ur_rtde's name)
        return self.running

    def progress(self) -> int:
        return self.step


class FakeUr:
    """A UR controller as seen through ur_rtde (state shared by the two interface views)."""

    def __init__(
        self,
        q0: np.ndarray,
        frequency_hz: float = 500.0,
        lag_s: float = 0.03,
        fk: Any = None,
        ik: Any = None,
    ) -> None:
        self.q = np.array(q0, dtype=float)
        self.qd = np.zeros(6)
        self.dt = 1.0 / frequency_hz
        self.step_time_s = self.dt  # what getStepTime() answers
        self.lag_s = lag_s
        self.fk, self.ik = fk, ik  # controller-frame TCP pose <-> joints (movel)
        self.calls: list[tuple[float, str, tuple]] = []
        self.connected = True
        self.protective = False
        self.estop = False
        self.safety_mode = 1
        self.program_running = True
        self.frozen_stamp: float | None = None
        self.event_at_servoj: tuple[int, Any] | None = None  # (count, what happens)
        self.tcp = [0.0] * 6
        self.servoj_count = 0
        self.move: dict | None = None
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.control = FakeControl(self)
        self.receive = FakeReceive(self)

    def record(self, name: str, *args: Any) -> None:
        self.calls.append((time.monotonic(), name, args))

    def named(self, name: str) -> list[tuple[float, tuple]]:
        return [(t, a) for t, n, a in self.calls if n == name]

    def stop_motion(self) -> None:
        self.qd = np.zeros(6)
        self.move = None

    def advance_move(self) -> None:
        """Move along a running moveL path to where it is now (constant speed per leg)."""
        m = self.move
        if m is None:
            return
        elapsed = time.monotonic() - m['t0']
        q_prev = self.q.copy()
        for n, (a, b, dur) in enumerate(m['legs']):
            if elapsed <= dur:
                f = elapsed / dur if dur > 0 else 1.0
                pose = np.eye(4)
                pose[:3, 3] = a[:3, 3] + f * (b[:3, 3] - a[:3, 3])
                import pinocchio as pin

                pose[:3, :3] = a[:3, :3] @ pin.exp3(f * pin.log3(a[:3, :3].T @ b[:3, :3]))
                m['step'] = n
                self.q = self.ik(pose, self.q)
                break
            elapsed -= dur
        else:
            self.q = self.ik(m['legs'][-1][1], self.q)
            self.move = None
        now = time.monotonic()
        self.qd = (self.q - q_prev) / max(now - m.get('t_last', now - self.dt), 1e-6)
        if self.move is not None:
            self.move['t_last'] = now
        else:
            self.qd = np.zeros(6)


class FakeReceive:
    """The receive side: only methods ``rtde_receive.RTDEReceiveInterface`` has."""

    def __init__(self, ur: FakeUr) -> None:
        self.ur = ur

    def isConnected(self) -> bool:  # noqa: N802
        return self.ur.connected

    def getTimestamp(self) -> float:  # noqa: N802
        if self.ur.frozen_stamp is not None:
            return self.ur.frozen_stamp
        return round((time.monotonic() - self.ur.t0) / self.ur.dt) * self.ur.dt

    def getActualQ(self) -> list[float]:  # noqa: N802
        with self.ur.lock:
            self.ur.advance_move()
            return [float(v) for v in self.ur.q]

    def getActualQd(self) -> list[float]:  # noqa: N802
        with self.ur.lock:
            return [float(v) for v in self.ur.qd]

    def isProtectiveStopped(self) -> bool:  # noqa: N802
        return self.ur.protective

    def isEmergencyStopped(self) -> bool:  # noqa: N802
        return self.ur.estop

    def getSafetyMode(self) -> int:  # noqa: N802
        return self.ur.safety_mode

    def disconnect(self) -> None:
        self.ur.connected = False


class FakeControl:
    """The control side: only methods ``rtde_control.RTDEControlInterface`` has."""

    def __init__(self, ur: FakeUr) -> None:
        self.ur = ur

    def isConnected(self) -> bool:  # noqa: N802
        return self.ur.connected

    def isProgramRunning(self) -> bool:  # noqa: N802
        return self.ur.program_running

    def initPeriod(self) -> datetime.timedelta:  # noqa: N802
        self.ur.record('initPeriod')
        return datetime.timedelta(seconds=time.monotonic())

    def waitPeriod(self, t_start: datetime.timedelta) -> None:  # noqa: N802
        # like ur_rtde: sleep most of the remaining period, spin the rest
        end = t_start.total_seconds() + self.ur.dt
        remaining = end - time.monotonic()
        if remaining > 0.0006:
            time.sleep(remaining - 0.0005)
        while time.monotonic() < end:
            pass

    def servoJ(  # noqa: N802
        self,
        q: list[float],
        speed: float,
        acceleration: float,
        time_s: float,
        lookahead_time: float,
        gain: float,
    ) -> bool:
        ur = self.ur
        assert isinstance(q, list) and len(q) == 6
        ur.record('servoJ', np.array(q), speed, acceleration, time_s, lookahead_time, gain)
        if not (ur.program_running and ur.connected) or ur.protective or ur.estop:
            return False
        with ur.lock:
            q_old = ur.q.copy()
            alpha = 1.0 - math.exp(-time_s / ur.lag_s)
            ur.q = ur.q + alpha * (np.asarray(q) - ur.q)
            ur.qd = (ur.q - q_old) / time_s
        ur.servoj_count += 1
        if ur.event_at_servoj is not None and ur.servoj_count == ur.event_at_servoj[0]:
            ur.event_at_servoj[1]()
            ur.record('EVENT')
        return True

    def servoStop(self, a: float = 10.0) -> bool:  # noqa: N802
        self.ur.record('servoStop', a)
        self.ur.stop_motion()
        return True

    def stopJ(self, a: float = 2.0, asynchronous: bool = False) -> None:  # noqa: N802
        self.ur.record('stopJ', a, asynchronous)
        with self.ur.lock:
            self.ur.stop_motion()

    def setTcp(self, tcp_offset: list[float]) -> bool:  # noqa: N802
        self.ur.record('setTcp', list(tcp_offset))
        self.ur.tcp = list(tcp_offset)
        return True

    def getTCPOffset(self) -> list[float]:  # noqa: N802
        return list(self.ur.tcp)

    def getStepTime(self) -> float:  # noqa: N802
        # the control script's get_steptime(): 0.008 s CB-Series, 0.002 s e-Series; 0 on error
        return self.ur.step_time_s

    def moveL(self, path: list[list[float]], asynchronous: bool = False) -> bool:  # noqa: N802
        ur = self.ur
        ur.record('moveL', [list(p) for p in path], asynchronous)
        assert asynchronous, 'the backend must be able to stop a moveL: asynchronous=True'
        with ur.lock:
            start = ur.fk(ur.q)
            legs = []
            for entry in path:
                target = ur_pose_matrix(entry[:6])
                dist = float(np.linalg.norm(target[:3, 3] - start[:3, 3]))
                legs.append((start, target, dist / entry[6]))
                start = target
            ur.move = {'t0': time.monotonic(), 'legs': legs, 'step': 0}
        return True

    def getAsyncOperationProgressEx(self) -> AsyncStatus:  # noqa: N802
        with self.ur.lock:
            self.ur.advance_move()
            m = self.ur.move
            return AsyncStatus(m is not None, m['step'] if m else -1)

    def stopScript(self) -> None:  # noqa: N802
        self.ur.program_running = False

    def disconnect(self) -> None:
        self.ur.connected = False


# ------------------------------------------------------------------------------------------
# Fixtures and helpers
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def planner() -> Ur5Planner:
    return Ur5Planner()


@pytest.fixture(scope='module')
def pick_plan(planner: Ur5Planner) -> Plan:
    return planner.plan(PICK_TRACE, Q_HOME, mode='pick_place')


def make_backend(
    planner: Ur5Planner,
    ur: FakeUr,
    frequency_hz: float = 500.0,
    *,
    arm: ArmModel | None = None,
    gripper: Any = None,
    **settings: Any,
) -> RtdeBackend:
    return RtdeBackend(
        ur.control,
        ur.receive,
        planner.joint_names,
        config=RtdeConfig(frequency_hz=frequency_hz, **settings),
        arm=ArmModel.from_planner(planner) if arm is None else arm,
        gripper=gripper,
        robot_ip='fake-ur',
    )


def run_segment(
    backend: RtdeBackend, seg: MotionSegment, interrupt: Any = None
) -> tuple[MotionResult, list[float]]:
    fractions: list[float] = []
    res = backend.execute(seg, interrupt or (lambda: None), fractions.append)
    return res, fractions


def controller_ik(planner: Ur5Planner) -> Any:
    """Controller-frame TCP pose → joints, seeded (the stand-in's moveL 'controller IK')."""
    ik = PinkIk(
        planner.kinematics,
        planner.lower_rad,
        planner.upper_rad,
        position_tolerance_m=1e-5,
        orientation_tolerance_rad=1e-4,
        max_iterations=50,
    )

    def solve(pose_ctrl: np.ndarray, seed: np.ndarray) -> np.ndarray:
        pose = UR_CONTROLLER_BASE_IN_BASE_LINK @ pose_ctrl
        res = ik.solve(pose[:3, 3], pose[:3, :3], seed)
        assert res.converged, f'stand-in IK failed for {pose[:3, 3]}'
        return res.q

    return solve


def controller_fk(planner: Ur5Planner) -> Any:
    to_ctrl = np.linalg.inv(UR_CONTROLLER_BASE_IN_BASE_LINK)
    return lambda q: to_ctrl @ planner.forward_tcp(q)


# ------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------
def test_stand_in_offers_only_the_real_ur_rtde_api() -> None:
    rtde_control = pytest.importorskip('rtde_control')
    rtde_receive = pytest.importorskip('rtde_receive')
    for fake, real in (
        (FakeControl, rtde_control.RTDEControlInterface),
        (FakeReceive, rtde_receive.RTDEReceiveInterface),
    ):
        for name in vars(fake):
            if not name.startswith('_'):
                assert hasattr(real, name), f'{real.__name__} has no {name}'
    assert hasattr(rtde_control, 'AsyncOperationStatus')
    for name in ('isAsyncOperationRunning', 'progress'):
        assert hasattr(rtde_control.AsyncOperationStatus, name)


@pytest.mark.parametrize('frequency_hz', [125.0, 500.0])
def test_servoj_streams_at_the_controller_rate_within_limits_from_the_current_state(
    planner: Ur5Planner, pick_plan: Plan, frequency_hz: float
) -> None:
    seg = pick_plan.motions[0]
    q_start = seg.positions_rad[0] + np.array([0.01, -0.008, 0.0, 0.005, 0.0, -0.01])
    ur = FakeUr(q_start, frequency_hz)
    backend = make_backend(planner, ur, frequency_hz, lookahead_time_s=0.08, gain=400.0)
    res, fractions = run_segment(backend, seg)
    assert res.status is MotionStatus.DONE, res.message

    calls = ur.named('servoJ')
    times = np.array([t for t, _ in calls])
    qs = np.array([a[0] for _, a in calls])
    dt = 1.0 / frequency_hz
    # rate: one command per control period (the median interval: this shared test machine
    # preempts the loop now and then, as a loaded PC would; ur_rtde paces it the same way)
    assert len(calls) >= seg.duration_s * frequency_hz
    assert abs(float(np.median(np.diff(times))) - dt) < 0.1 * dt
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 0.5 * frequency_hz < rate < 1.02 * frequency_hz, f'{rate:.1f} Hz'
    # arguments: the period, lookahead and gain asked for
    for _, a in calls:
        assert a[3] == pytest.approx(dt) and a[4] == 0.08 and a[5] == 400.0
    # no jump: the first command is where the arm was
    np.testing.assert_allclose(qs[0], q_start, atol=1e-12)
    # limits: every command inside the joint limits, every step within v_max * period
    assert np.all(qs >= planner.lower_rad) and np.all(qs <= planner.upper_rad)
    steps = np.abs(np.diff(qs, axis=0))
    assert np.all(steps <= planner.velocity_limit_rad_s * dt * 1.05)
    # the plan is followed: the stream reaches the planned end and the arm settles there
    np.testing.assert_allclose(qs[-1], seg.positions_rad[-1], atol=1e-9)
    np.testing.assert_allclose(ur.q, seg.positions_rad[-1], atol=backend.config.goal_tolerance_rad)
    assert ur.named('servoStop'), 'servo mode must be left at the end'
    assert fractions and fractions[-1] == 1.0 and fractions == sorted(fractions)


def test_interrupt_stops_within_a_few_periods(planner: Ur5Planner, pick_plan: Plan) -> None:
    seg = pick_plan.motions[1]
    ur = FakeUr(seg.positions_rad[0])
    backend = make_backend(planner, ur, servo_stop_deceleration_m_s2=3.0)
    t_go = time.monotonic() + 0.5
    asked: list[float] = []

    def interrupt() -> str | None:
        if time.monotonic() < t_go:
            return None
        asked.append(time.monotonic())
        return 'canceled'

    res, _ = run_segment(backend, seg, interrupt)
    assert res.status is MotionStatus.STOPPED and res.reason == 'canceled'
    stops = ur.named('servoStop')
    assert stops and stops[0][1] == (3.0,)
    # within a few control periods: counted in control cycles begun in between (robust to a
    # loaded test machine), and in wall time
    cycles = [t for t, _ in ur.named('initPeriod') if asked[0] < t < stops[0][0]]
    assert len(cycles) <= 2
    assert stops[0][0] - asked[0] < 0.05
    assert not [t for t, _ in ur.named('servoJ') if t > asked[0]], 'servoJ after the stop'
    # stopped part-way, at rest
    assert np.max(np.abs(ur.q - seg.positions_rad[-1])) > 0.1
    assert np.all(ur.qd == 0)


def _protective_stop(ur: FakeUr) -> None:
    ur.protective, ur.safety_mode, ur.program_running = True, 3, False
    ur.stop_motion()  # the controller brakes the arm


def _estop(ur: FakeUr) -> None:
    ur.estop, ur.safety_mode, ur.program_running = True, 7, False
    ur.stop_motion()


def _safeguard(ur: FakeUr) -> None:
    ur.safety_mode = 5
    ur.stop_motion()


def _script_stopped(ur: FakeUr) -> None:
    ur.program_running = False
    ur.stop_motion()


def _disconnect(ur: FakeUr) -> None:
    ur.connected = False


@pytest.mark.parametrize(
    ('event', 'expected'),
    [
        (_protective_stop, 'the controller reported protective stop'),
        (_estop, 'the controller reported emergency stop'),
        (_safeguard, 'safety mode SAFEGUARD_STOP'),
        (_script_stopped, 'control script is not running'),
        (_disconnect, 'RTDE receive interface is disconnected'),
    ],
)
def test_safety_event_mid_trajectory_fails_naming_it(
    planner: Ur5Planner, pick_plan: Plan, event: Any, expected: str
) -> None:
    seg = pick_plan.motions[0]
    ur = FakeUr(seg.positions_rad[0])
    ur.event_at_servoj = (150, lambda: event(ur))
    res, _ = run_segment(make_backend(planner, ur), seg)
    assert res.status is MotionStatus.FAILED
    assert expected in res.message and 'at t=0.3' in res.message, res.message
    assert ur.servoj_count == 150, 'servoJ after the event'
    assert np.max(np.abs(ur.q - seg.positions_rad[-1])) > 0.05  # it did not carry on


def test_joint_positions_raise_when_disconnected_or_stale(planner: Ur5Planner) -> None:
    ur = FakeUr(Q_HOME)
    backend = make_backend(planner, ur, state_timeout_s=0.1)
    np.testing.assert_allclose(backend.joint_positions(), Q_HOME)
    ur.frozen_stamp = 12.5
    backend.joint_positions()  # a new stamp: fine
    time.sleep(0.15)
    with pytest.raises(BackendError, match='stale'):
        backend.joint_positions()
    ur.frozen_stamp = None
    np.testing.assert_allclose(backend.joint_positions(), Q_HOME)
    ur.connected = False
    with pytest.raises(BackendError, match='disconnected from fake-ur'):
        backend.joint_positions()
    res, _ = run_segment(
        backend, planner.plan(FOLLOW_TRACE, Q_HOME, mode='follow').motions[0], None
    )
    assert res.status is MotionStatus.FAILED and 'disconnected' in res.message
    assert not ur.named('servoJ')


def test_arm_away_from_the_planned_start_is_not_moved(
    planner: Ur5Planner, pick_plan: Plan
) -> None:
    seg = pick_plan.motions[0]
    ur = FakeUr(seg.positions_rad[0] + np.array([0.0, 0.2, 0.0, 0.0, 0.0, 0.0]))
    res, _ = run_segment(make_backend(planner, ur), seg)
    assert res.status is MotionStatus.FAILED
    assert 'shoulder_lift_joint' in res.message and 'moved since planning' in res.message
    assert not ur.named('servoJ') and not ur.named('moveL')


def _segment(times: list[float], qs: np.ndarray) -> MotionSegment:
    qs = np.asarray(qs, dtype=float)
    v = np.gradient(qs, np.asarray(times), axis=0)
    v[0] = v[-1] = 0
    return MotionSegment(
        joint_names=tuple(f'j{i}' for i in range(6)),
        times_s=np.asarray(times, dtype=float),
        positions_rad=qs,
        velocities_rad_s=v,
        accelerations_rad_s2=np.zeros_like(qs),
        path_range=(0, 1),
        timed=None,  # type: ignore[arg-type]
    )


def test_commands_beyond_the_limits_are_not_sent(planner: Ur5Planner) -> None:
    # too fast: the elbow would turn 1 rad in 0.1 s
    fast = _segment([0.0, 0.05, 0.1], Q_HOME + np.outer([0, 0.5, 1.0], [0, 0, 1, 0, 0, 0]))
    ur = FakeUr(Q_HOME)
    res, _ = run_segment(make_backend(planner, ur), fast)
    assert res.status is MotionStatus.FAILED
    assert 'not sent' in res.message and 'elbow_joint' in res.message
    assert 'above its limit' in res.message
    # beyond a joint limit of the backend
    slow = _segment([0.0, 1.0, 2.0], Q_HOME + np.outer([0, 0.1, 0.2], [1, 0, 0, 0, 0, 0]))
    upper = planner.upper_rad.copy()
    upper[0] = Q_HOME[0] + 0.1
    arm = replace(ArmModel.from_planner(planner), upper_rad=upper)
    res, _ = run_segment(make_backend(planner, ur, arm=arm), slow)
    assert res.status is MotionStatus.FAILED
    assert 'shoulder_pan_joint' in res.message and 'outside its limits' in res.message
    assert not ur.named('servoJ')


def test_hermite_resampling_keeps_the_samples() -> None:
    t = np.array([0.0, 0.01, 0.02, 0.025])
    q = np.array([[0.0], [0.1], [0.3], [0.35]])
    v = np.array([[0.0], [15.0], [12.0], [0.0]])
    t2, q2 = hermite_resample(t, q, v, 0.002)
    assert t2[0] == 0 and t2[-1] == pytest.approx(0.025) and len(t2) == 14
    for ti, qi in zip(t, q, strict=True):
        k = int(np.argmin(np.abs(t2 - ti)))
        assert t2[k] == pytest.approx(ti) and q2[k, 0] == pytest.approx(qi[0])


def test_rtde_poses_are_the_tcp_in_the_controller_base_frame(planner: Ur5Planner) -> None:
    """UR's own DH kinematics (the controller's) must give the poses the backend sends."""

    def ur5_dh(q: np.ndarray) -> np.ndarray:
        d = [0.089159, 0, 0, 0.10915, 0.09465, 0.0823]
        a = [0, -0.425, -0.39225, 0, 0, 0]
        alpha = [math.pi / 2, 0, 0, math.pi / 2, -math.pi / 2, 0]
        t = np.eye(4)
        for i in range(6):
            ct, st = math.cos(q[i]), math.sin(q[i])
            ca, sa = math.cos(alpha[i]), math.sin(alpha[i])
            t = t @ np.array(
                [
                    [ct, -st * ca, st * sa, a[i] * ct],
                    [st, ct * ca, -ct * sa, a[i] * st],
                    [0, sa, ca, d[i]],
                    [0, 0, 0, 1],
                ]
            )
        return t

    arm = ArmModel.from_planner(planner)
    np.testing.assert_allclose(arm.base_T_controller, UR_CONTROLLER_BASE_IN_BASE_LINK, atol=1e-9)
    to_ctrl = np.linalg.inv(arm.base_T_controller)
    tcp = np.eye(4)
    tcp[2, 3] = arm.tcp_offset_m
    rng = np.random.default_rng(3)
    for q in [np.zeros(6), Q_HOME, *rng.uniform(-3, 3, size=(5, 6))]:
        sent = ur_pose_matrix(ur_pose_vector(to_ctrl @ planner.forward_tcp(q)))
        np.testing.assert_allclose(sent, ur5_dh(q) @ tcp, atol=1e-4)


def test_waypoints_keep_straight_legs_on_the_path(planner: Ur5Planner, pick_plan: Plan) -> None:
    seg = pick_plan.motions[0]
    poses = tool_poses(seg.positions_rad, planner.forward_tcp)
    keep = select_waypoints(poses, 0.002, 0.02)
    assert keep[0] == 0 and keep[-1] == len(poses) - 1 and len(keep) < len(poses) / 5
    # every sample lies within 2 mm of the chain of kept legs
    legs = poses[keep, :3, 3]
    assert np.max(tool_path_distance(poses[:, :3, 3], legs)) <= 0.002 + 1e-9
    blends = blend_radii(legs, 0.01)
    lengths = np.linalg.norm(np.diff(legs, axis=0), axis=1)
    assert blends[-1] == 0
    assert np.all(blends[:-1] <= 0.5 * np.minimum(lengths[:-1], lengths[1:]))


def test_movel_sends_the_planned_tool_path_with_blends(
    planner: Ur5Planner, pick_plan: Plan
) -> None:
    seg = pick_plan.motions[0]
    ur = FakeUr(seg.positions_rad[0], 125.0, fk=controller_fk(planner), ik=controller_ik(planner))
    backend = make_backend(planner, ur, 125.0, mode='movel', movel_blend_radius_m=0.01)
    assert ur.named('setTcp')[0][1] == ([0.0, 0.0, planner.config.tcp_offset_m, 0.0, 0.0, 0.0],)
    res, fractions = run_segment(backend, seg)
    assert res.status is MotionStatus.DONE, res.message
    ((_, (path, asynchronous)),) = ur.named('moveL')
    assert asynchronous and len(path) >= 2
    entries = np.array(path)
    poses = np.array([UR_CONTROLLER_BASE_IN_BASE_LINK @ ur_pose_matrix(p[:6]) for p in path])
    # every pose sent is on the planned TCP path, with the planned orientation
    planned = tool_poses(seg.positions_rad, planner.forward_tcp)
    assert np.max(tool_path_distance(poses[:, :3, 3], planned[:, :3, 3])) < 1e-6
    np.testing.assert_allclose(poses[-1], planned[-1], atol=1e-6)
    # blends never overlap, the last is zero; speeds within the configured range
    start = planned[0, :3, 3]
    legs = np.linalg.norm(np.diff(np.vstack([start, poses[:, :3, 3]]), axis=0), axis=1)
    assert entries[-1, 8] == 0
    assert np.all(entries[:-1, 8] <= 0.5 * np.minimum(legs[:-1], legs[1:]) + 1e-12)
    assert np.all((entries[:, 6] >= 0.01) & (entries[:, 6] <= 0.5))
    # the arm ended where the plan ends
    np.testing.assert_allclose(
        ur.q, seg.positions_rad[-1], atol=backend.config.movel_goal_tolerance_rad
    )
    assert fractions[-1] == 1.0


def test_movel_interrupt_stops_with_stopj(planner: Ur5Planner, pick_plan: Plan) -> None:
    seg = pick_plan.motions[1]
    ur = FakeUr(seg.positions_rad[0], 125.0, fk=controller_fk(planner), ik=controller_ik(planner))
    backend = make_backend(planner, ur, 125.0, mode='movel', stop_deceleration_rad_s2=2.5)
    t_go = time.monotonic() + 0.4
    res, _ = run_segment(
        backend, seg, lambda: 'scene changed' if time.monotonic() > t_go else None
    )
    assert res.status is MotionStatus.STOPPED and res.reason == 'scene changed'
    ((t_stop, args),) = ur.named('stopJ')
    assert args[0] == 2.5 and t_stop - t_go < 0.1
    assert np.max(np.abs(ur.q - seg.positions_rad[-1])) > 0.1


def test_gripper_is_optional(planner: Ur5Planner) -> None:
    ur = FakeUr(Q_HOME)
    assert make_backend(planner, ur).gripper(True) == (
        False,
        'no gripper configured for the rtde backend',
    )
    commands: list[bool] = []

    def robotiq(close: bool) -> tuple[bool, str]:
        commands.append(close)
        return close, 'object detected' if close else 'opened'

    backend = make_backend(planner, ur, gripper=robotiq)
    assert backend.gripper(True) == (True, 'object detected')
    assert backend.gripper(False) == (False, 'opened')
    assert commands == [True, False]


def test_connect_refuses_clearly() -> None:
    with pytest.raises(BackendError, match='needs robot_ip'):
        RtdeBackend.connect('', tuple(f'j{i}' for i in range(6)))
    pytest.importorskip('rtde_receive')
    # nothing listens on the RTDE port here: a clear error naming the address, at once
    with pytest.raises(BackendError, match='127.0.0.1'):
        RtdeBackend.connect('127.0.0.1', tuple(f'j{i}' for i in range(6)))


# ------------------------------------------------------------------------------------------
# Configuration and the servoJ rate
# ------------------------------------------------------------------------------------------
def test_config_defaults_let_ur_rtde_choose_the_rate_and_cannot_change() -> None:
    config = RtdeConfig()
    assert config.frequency_hz == 0.0 and config.mode == 'servoj'
    with pytest.raises(FrozenInstanceError):
        config.gain = 500.0  # type: ignore[misc]
    assert RtdeConfig(gain=500).gain == 500.0 and isinstance(RtdeConfig(gain=500).gain, float)


_NUMERIC = [s for s in RtdeConfig.settings() if not s.choices]


@pytest.mark.parametrize('setting', _NUMERIC, ids=[s.name for s in _NUMERIC])
def test_config_refuses_each_value_outside_its_range_naming_it(setting: Any) -> None:
    # the movel speed range must stay ordered: open it fully around the one tested
    others = {'movel_min_speed_m_s': 0.001, 'movel_max_speed_m_s': 3.0}
    others.pop(setting.name, None)

    def config(value: Any) -> RtdeConfig:
        return RtdeConfig(**{**others, setting.name: value})

    assert setting.lo <= setting.default <= setting.hi, 'the default is inside the range'
    assert getattr(config(setting.lo), setting.name) == setting.lo
    assert getattr(config(setting.hi), setting.name) == setting.hi
    for bad in (setting.lo - 0.5 * (setting.hi - setting.lo) - 1.0, setting.hi * 2 + 1.0):
        with pytest.raises(ValueError, match=rf'rtde {setting.name} must be in \['):
            config(bad)
    for bad in (math.nan, '1.0', True):
        with pytest.raises(ValueError, match=f'rtde {setting.name} must be'):
            config(bad)


def test_config_refuses_an_unknown_mode_and_crossed_speeds() -> None:
    with pytest.raises(ValueError, match=r"rtde mode must be one of servoj \| movel, got 'movej'"):
        RtdeConfig(mode='movej')
    with pytest.raises(ValueError, match='movel_min_speed_m_s .* must not exceed'):
        RtdeConfig(movel_min_speed_m_s=0.2, movel_max_speed_m_s=0.1)


def test_config_from_parameters() -> None:
    params = {'rtde.mode': 'movel', 'rtde.gain': 500.0, 'robot_ip': '10.0.0.2', 'gain': 1.0}
    config = RtdeConfig.from_params(params)
    assert config == RtdeConfig(mode='movel', gain=500.0)
    with pytest.raises(ValueError, match='lookahead_time_s'):
        RtdeConfig.from_params({'rtde.lookahead_time_s': 0.5})


def test_node_declares_every_setting_and_the_shipped_config_is_valid() -> None:
    pytest.importorskip('rclpy')
    yaml = pytest.importorskip('yaml')
    from trace_executor.nodes.ur5_executor import PARAMS

    declared = {p.name: p for p in PARAMS if p.name.startswith('rtde.')}
    assert set(declared) == {f'rtde.{s.name}' for s in RtdeConfig.settings()}
    for s in RtdeConfig.settings():
        p = declared[f'rtde.{s.name}']
        assert (p.default, p.lo, p.hi) == (s.default, s.lo, s.hi), s.name
        assert s.description in p.description
    assert RtdeConfig.from_params({p.name: p.default for p in PARAMS}) == RtdeConfig()
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 4))
    with open(os.path.join(root, 'config', 'ur5.yaml'), encoding='utf-8') as f:
        node = yaml.safe_load(f)['ur5_executor']['ros__parameters']
    shipped = {f'rtde.{k}': v for k, v in node['rtde'].items()}
    assert set(shipped) <= set(declared), 'config/ur5.yaml sets an undeclared rtde parameter'
    assert RtdeConfig.from_params(shipped).frequency_hz == 0.0  # ur_rtde chooses on a real UR


def _short_segment() -> MotionSegment:
    return _segment([0.0, 0.15, 0.3], Q_HOME + np.outer([0.0, 0.01, 0.02], np.ones(6)))


@pytest.mark.parametrize(('rate_hz', 'series'), [(125.0, 'CB-Series'), (500.0, 'e-Series')])
def test_frequency_zero_streams_at_the_controllers_rate(
    planner: Ur5Planner, rate_hz: float, series: str
) -> None:
    ur = FakeUr(Q_HOME, rate_hz)
    ur.step_time_s = float(np.float32(1 / rate_hz))  # as a float32 register holds it
    backend = make_backend(planner, ur, 0.0)
    assert backend.frequency_hz == rate_hz and backend.period_s == pytest.approx(1 / rate_hz)
    assert f'servoJ at {rate_hz:g} Hz' in backend.rate_description
    assert 'ur_rtde' in backend.rate_description and series in backend.rate_description
    res, _ = run_segment(backend, _short_segment())
    assert res.status is MotionStatus.DONE, res.message
    calls = ur.named('servoJ')
    assert len(calls) >= 0.3 * rate_hz
    assert all(a[3] == pytest.approx(1 / rate_hz) for _, a in calls), 'servoJ time = the step'


def test_configured_rate_faster_than_the_controller_is_refused_before_anything_is_sent(
    planner: Ur5Planner,
) -> None:
    ur = FakeUr(Q_HOME, 125.0)  # a CB3 UR5
    with pytest.raises(BackendError, match=r'500 Hz is faster than fake-ur steps \(125 Hz'):
        make_backend(planner, ur, 500.0)
    assert not ur.calls, 'nothing was sent to the controller'
    # slower than the controller is allowed, and said so
    backend = make_backend(planner, ur, 100.0)
    assert backend.frequency_hz == 100.0 and 'configured' in backend.rate_description


def test_unreadable_controller_rate(planner: Ur5Planner) -> None:
    ur = FakeUr(Q_HOME, 125.0)
    ur.step_time_s = 0.0  # getStepTime() failed
    with pytest.raises(BackendError, match='set rtde frequency_hz'):
        make_backend(planner, ur, 0.0)
    backend = make_backend(planner, ur, 125.0)  # a configured rate needs no answer
    assert backend.frequency_hz == 125.0 and 'unknown' in backend.rate_description


@pytest.mark.parametrize(('configured', 'asked'), [(0.0, -1.0), (125.0, 125.0)])
def test_connect_lets_ur_rtde_choose_unless_configured(
    planner: Ur5Planner, monkeypatch: pytest.MonkeyPatch, configured: float, asked: float
) -> None:
    """ur_rtde's interfaces take frequency -1 (their default) to pick the controller's rate."""
    ur = FakeUr(Q_HOME, 125.0)
    opened: list[tuple[str, str, float]] = []

    def interface(kind: str, view: Any) -> Any:
        def open_it(hostname: str, frequency: float = -1.0) -> Any:
            opened.append((kind, hostname, frequency))
            return view

        return open_it

    for name, cls, view in (
        ('rtde_control', 'RTDEControlInterface', ur.control),
        ('rtde_receive', 'RTDEReceiveInterface', ur.receive),
    ):
        module = types.ModuleType(name)
        setattr(module, cls, interface(name, view))
        monkeypatch.setitem(sys.modules, name, module)
    backend = RtdeBackend.connect(
        '10.0.0.2',
        planner.joint_names,
        config=RtdeConfig(frequency_hz=configured),
        planner=planner,
    )
    assert sorted(opened) == [
        ('rtde_control', '10.0.0.2', asked),
        ('rtde_receive', '10.0.0.2', asked),
    ]
    assert backend.frequency_hz == 125.0
    assert ur.tcp == [0.0, 0.0, planner.config.tcp_offset_m, 0.0, 0.0, 0.0]


def test_goal_runner_executes_a_follow_trace_over_rtde(planner: Ur5Planner) -> None:
    """The whole rtde path: GoalRunner → Ur5Planner → RtdeBackend (servoJ at 500 Hz)."""
    ur = FakeUr(Q_HOME, 500.0)
    backend = make_backend(planner, ur, 500.0)
    phases: list[tuple[int, float]] = []
    runner = GoalRunner(planner, backend, feedback=lambda ph, p, *_: phases.append((ph, p)))
    goal = validate_goal(
        GoalSpec(trace=TraceInput(FOLLOW_TRACE, 'base_link'), mode='follow', replanning=False),
        'pick_place',
        1.0,
    )
    out = runner.run(goal, lambda: False)
    assert out.success, out.message
    np.testing.assert_allclose(ur.q, out.plan.final_positions_rad, atol=0.01)
    # the TCP ended on the last trace point, and every command stayed within the limits
    assert np.linalg.norm(planner.forward_tcp(ur.q)[:3, 3] - FOLLOW_TRACE[-1]) < 0.005
    qs = np.array([a[0] for _, a in ur.named('servoJ')])
    assert len(qs) >= out.plan.duration_s * 500
    assert np.all(np.abs(np.diff(qs, axis=0)) <= planner.velocity_limit_rad_s / 500 * 1.05)
    assert max(p for _, p in phases) == 1.0


# ------------------------------------------------------------------------------------------
# Against a real controller or URSim (ROBOTRACER_HARDWARE=1, ROBOTRACER_UR_IP=...)
# ------------------------------------------------------------------------------------------
def _ur_ip() -> str:
    ip = os.environ.get('ROBOTRACER_UR_IP', '')
    if not ip:
        pytest.skip('set ROBOTRACER_UR_IP to the UR controller / URSim address')
    return ip


@pytest.mark.hardware
def test_hardware_controller_kinematics_match_the_planner(planner: Ur5Planner) -> None:
    backend = RtdeBackend.connect(_ur_ip(), planner.joint_names, planner=planner)
    try:
        q = backend.joint_positions()
        assert backend.safety_problem() is None
        ctrl = backend.control.getForwardKinematics(q.tolist(), [])  # active TCP = ours
        ours = ur_pose_vector(backend.controller_T_base @ planner.forward_tcp(q))
        np.testing.assert_allclose(ur_pose_matrix(ctrl), ur_pose_matrix(ours), atol=2e-3)
    finally:
        backend.close()


@pytest.mark.hardware
@pytest.mark.parametrize('mode', ['servoj', 'movel'])
def test_hardware_small_follow_motion_ends_on_the_plan(planner: Ur5Planner, mode: str) -> None:
    """Moves the arm 5 cm around its current TCP position: clear the space around it first."""
    backend = RtdeBackend.connect(
        _ur_ip(), planner.joint_names, config=RtdeConfig(mode=mode), planner=planner
    )
    try:
        q = backend.joint_positions()
        p = planner.forward_tcp(q)[:3, 3]
        trace = np.array([p, p + [0.05, 0, 0], p + [0.05, 0.05, 0], p + [0, 0.05, 0]])
        plan = planner.plan(trace, q, mode='follow', speed_scale=0.2)
        for seg in plan.motions:
            res = backend.execute(seg, lambda: None, lambda f: None)
            assert res.status is MotionStatus.DONE, res.message
        np.testing.assert_allclose(backend.joint_positions(), plan.final_positions_rad, atol=0.02)
    finally:
        backend.close()
