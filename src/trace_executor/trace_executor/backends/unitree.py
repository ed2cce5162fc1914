"""``unitree`` backend: the G1 over unitree_sdk2py and CycloneDDS, as the real robot is driven.

Design notes: docs/design-notes.md (trace_executor.backends.unitree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import json
import math
import sys
import threading
import time
from typing import Any

import numpy as np

from trace_executor.execution import (
    BackendError,
    Interrupt,
    InterruptKind,
    MotionResult,
    MotionStatus,
    SegmentKind,
)
from trace_executor.g1.arm_stream import ArmCommand, ArmStreamer
from trace_executor.g1.kinematics import SIDES, UPPER_BODY_FIRST_SLOT, G1Kinematics
from trace_executor.g1.plan_types import HandSegment
from trace_executor.g1.walk import WalkLimits, walk_command

WEIGHT_SLOT = 29  # G1JointIndex.kNotUsedJoint: motor_cmd[29].q carries the arm_sdk weight
NUM_UPPER = 17
PASSIVE_FSM = {0: 'zero torque', 1: 'damp', 3: 'sit'}
LOCO_GET_FSM_ID = 7001
LOCO_SET_VELOCITY = 7105


#: unitree_sdk2py publishers of this process, by topic (see :func:`_publisher`)
_PUBLISHERS: dict[str, Any] = {}


def _publisher(topic: str, idl: Any) -> Any:
    """The process's ``ChannelPublisher`` for ``topic``, created on first use and kept.

    The SDK's channels are process-wide (its ChannelFactory is a singleton joined once per
    process). A publisher that is garbage-collected deletes its DDS writer while CycloneDDS
    still holds it (lingering for acknowledgements, matched readers); a few seconds later
    CycloneDDS's ``gc`` thread calls into the freed writer and the process dies with SIGSEGV
    (reproduced: drop a closed backend whose robot has gone, collect, wait ~5 s). So every
    backend of a process shares one publisher per topic, alive until the process exits.
    """
    from unitree_sdk2py.core.channel import ChannelPublisher

    pub = _PUBLISHERS.get(topic)
    if pub is None:
        pub = ChannelPublisher(topic, idl)
        pub.Init()
        _PUBLISHERS[topic] = pub
    return pub


ODOM_HINT = (
    "rt/odommodestate (unitree_go SportModeState_) is published by the G1's onboard state "
    'estimation, which runs with its locomotion (sport) service: it is absent in debug mode '
    '(L2+R2), in damping mode and before the robot is put in a locomotion mode (L1+UP, then '
    'R1+X on the remote); start the locomotion service, or set standing_pelvis_z_m for arm-only '
    'goals'
)


@dataclass(frozen=True)
class UnitreeConfig:
    """Settings of the unitree backend (SI units).

    Attributes:
        domain_id: DDS domain (the robot: 0).
        network_interface: interface of the robot's network (``lo`` for the simulator;
            ``''`` lets CycloneDDS pick).
        loco_service: LocoClient RPC service name.
        rate_hz: rt/arm_sdk rate.
        state_timeout_s: robot state older than this is stale.
        ramp_in_s: arm_sdk weight ramp-in (≥ 1 s).
        ramp_out_s: arm_sdk weight ramp-out (≥ 1 s).
        fault_ramp_out_s: ramp-out when the state goes stale.
        stop_s: a stopped arm motion comes to rest within this time.
        max_joint_velocity_rad_s: the stream never moves a target faster than this.
        kp_arm, kd_arm: arm joint gains sent with arm_sdk.
        kp_waist, kd_waist: waist joint gains.
        walk: walk controller limits and tolerances.
        walk_rate_hz: base control rate while walking.
        velocity_hold_s: duration of each velocity command (the robot stops after it).
        walk_timeout_s: a walk taking longer than its nominal duration plus this fails.
        hand_kp, hand_kd: Dex3 finger gains.
        rpc_timeout_s: LocoClient call timeout.
        startup_timeout_s: longest wait for the first robot state at start.
        odom_topic: the odometry topic (``rt/odommodestate``).
        standing_pelvis_z_m: pelvis height of the standing robot, m; > 0 lets arm motions run
            before any odometry arrived, planning with the pelvis at ``(0, 0, z, 0)`` in odom
            (0: refuse them; walking is always refused without odometry).
    """

    domain_id: int = 0
    network_interface: str = 'lo'
    loco_service: str = 'sport'
    rate_hz: float = 50.0
    state_timeout_s: float = 0.1
    ramp_in_s: float = 1.0
    ramp_out_s: float = 1.0
    fault_ramp_out_s: float = 0.04
    stop_s: float = 0.3
    max_joint_velocity_rad_s: float = 2.0
    kp_arm: float = 60.0
    kd_arm: float = 1.5
    kp_waist: float = 200.0
    kd_waist: float = 5.0
    walk: WalkLimits = field(default_factory=WalkLimits)
    walk_rate_hz: float = 20.0
    velocity_hold_s: float = 0.5
    walk_timeout_s: float = 15.0
    hand_kp: float = 1.5
    hand_kd: float = 0.1
    rpc_timeout_s: float = 1.0
    startup_timeout_s: float = 10.0
    odom_topic: str = 'rt/odommodestate'
    standing_pelvis_z_m: float = 0.0


@dataclass
class LoopStats:
    """Timing of the arm_sdk loop (for benchmarks and diagnostics)."""

    periods_s: list[float] = field(default_factory=list)
    lowcmd_sent: int = 0
    hand_cmd_sent: int = 0
    stale_events: int = 0
    keep: int = 20000

    def add_period(self, dt: float) -> None:
        """Record one loop period (bounded history)."""
        if len(self.periods_s) < self.keep:
            self.periods_s.append(dt)


@dataclass
class _StaleReaction:
    """How fast the backend reacted to the last stale-state fault (monotonic seconds)."""

    last_sample: float  # when the last rt/lowstate sample arrived
    stop_sent: float | None = None  # when StopMove went out
    weight_zero: float | None = None  # when arm_sdk weight 0 went out
    reported: bool = False


class _LatestReader:
    """A keep-last-1 reader polled by the control loop: decodes only the newest sample.

    Freshness is measured on the reader's side: a sample is *new* when :meth:`take` returns
    one, and :attr:`rx_time` is the (monotonic) time of the poll that got it. A stall of this
    process therefore never looks like a silent robot: the first poll after it finds the
    sample the robot sent meanwhile.
    """

    def __init__(self, participant: Any, name: str, idl: Any) -> None:
        from cyclonedds.qos import Policy, Qos
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic

        self.name = name
        self.rx_time = -math.inf
        self.count = 0
        self.source_gap_max_s = 0.0  # largest gap between the writer's timestamps seen
        self._last_source = None
        self._reader = DataReader(
            participant,
            Topic(participant, name, idl),
            qos=Qos(Policy.History.KeepLast(1), Policy.Reliability.BestEffort),
        )

    def take(self, now: float) -> Any | None:
        """The newest sample not taken yet (decoded), or None."""
        try:
            samples = self._reader.take(N=1)
        except Exception:  # noqa: BLE001 - a DDS read error is "no new sample"
            return None
        for s in samples:
            info = getattr(s, 'sample_info', None)
            if info is not None and not info.valid_data:
                continue
            self.rx_time = now
            self.count += 1
            src = getattr(info, 'source_timestamp', None)
            if src is not None:
                if self._last_source is not None:
                    self.source_gap_max_s = max(
                        self.source_gap_max_s, (src - self._last_source) * 1e-9
                    )
                self._last_source = src
            return s
        return None

    def age(self, now: float) -> float:
        """Seconds since the last poll that got a new sample (inf when none)."""
        return now - self.rx_time


class UnitreeBackend:
    """The G1 behind the :class:`~trace_executor.execution.RobotBackend` protocol.

    ``joint_positions()`` returns the planner's state vector
    (:func:`~trace_executor.g1.planner.pack_state`: pelvis ``[x, y, z, yaw]`` in odom + the 17
    upper-body joints); ``execute`` runs :class:`WalkSegment`, :class:`ArmMotion` and
    :class:`ArmRelease` segments; ``gripper(close, segment)`` drives a Dex3 hand.

    Args:
        kinematics: the G1 model (joint limits, finger closing directions).
        config: DDS, rates, gains, limits.
        log: ``log(level, message)`` with level ``info``/``warn``/``error``.
    """

    name = 'unitree'

    def __init__(
        self,
        kinematics: G1Kinematics,
        config: UnitreeConfig | None = None,
        log: Callable[[str, str], None] | None = None,
    ) -> None:
        self.kin = kinematics
        self.config = config or UnitreeConfig()
        cfg = self.config
        self._log = log or (lambda level, msg: print(f'[unitree] [{level}] {msg}', flush=True))
        self.period_s = 1.0 / cfg.rate_hz
        #: robot state older than this is stale (s); may be changed while running
        self.state_timeout_s = float(cfg.state_timeout_s)
        margin = 0.01
        self.streamer = ArmStreamer(
            kinematics.lower_rad + margin,
            kinematics.upper_rad - margin,
            np.minimum(kinematics.velocity_limit_rad_s, cfg.max_joint_velocity_rad_s),
            period_s=self.period_s,
            ramp_in_s=cfg.ramp_in_s,
            ramp_out_s=cfg.ramp_out_s,
            fault_ramp_out_s=cfg.fault_ramp_out_s,
            stop_s=cfg.stop_s,
        )
        self.stats = LoopStats()
        self._lock = threading.Lock()
        self._rpc_lock = threading.Lock()
        self._q29: np.ndarray | None = None
        self._odom: tuple[float, float, float, float] | None = None
        #: how the last base pose was obtained: 'odometry', 'last odometry', 'standing pose'
        self.base_pose_source = ''
        self._hands: dict[str, np.ndarray] = {}
        self._hand_ramp: dict[str, tuple[float, np.ndarray, np.ndarray, float]] = {}
        self._was_fresh = False
        self._walking = threading.Event()
        self._fault = ''
        self._reaction: _StaleReaction | None = None
        #: (StopMove, weight 0) seconds after the last sample, at the last stale fault
        self.last_reaction_s: tuple[float, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._halted = ''

    # --- start/stop ----------------------------------------------------------------------
    def start(self) -> UnitreeBackend:
        """Join the DDS domain, create the channels and the LocoClient, start the loop.

        Returns:
            self.

        Raises:
            BackendError: the SDK is missing or the DDS domain could not be joined.
        """
        cfg = self.config
        try:
            from cyclonedds.domain import DomainParticipant
            from unitree_sdk2py.core.channel import ChannelFactoryInitialize
            from unitree_sdk2py.g1.loco.g1_loco_api import LOCO_API_VERSION
            from unitree_sdk2py.idl.default import (
                unitree_hg_msg_dds__HandCmd_,
                unitree_hg_msg_dds__LowCmd_,
            )
            from unitree_sdk2py.idl.unitree_go.msg.dds_ import SportModeState_
            from unitree_sdk2py.idl.unitree_hg.msg.dds_ import HandCmd_, LowCmd_, LowState_
            from unitree_sdk2py.rpc.client import Client
            from unitree_sdk2py.utils.crc import CRC
        except ImportError as exc:
            raise BackendError(
                f'unitree_sdk2py / cyclonedds not importable ({exc}); run '
                'scripts/setup_cyclonedds.sh'
            ) from exc
        try:
            ChannelFactoryInitialize(cfg.domain_id, cfg.network_interface or None)
        except Exception as exc:  # noqa: BLE001 - the SDK raises a bare Exception
            raise BackendError(
                f'cannot join DDS domain {cfg.domain_id} on interface '
                f'{cfg.network_interface or "(auto)"}: {exc}'
            ) from exc
        dp = DomainParticipant(cfg.domain_id)
        self._lowstate = _LatestReader(dp, 'rt/lowstate', LowState_)
        self._odom_reader = _LatestReader(dp, cfg.odom_topic, SportModeState_)
        self._crc = CRC()
        self._arm_pub = _publisher('rt/arm_sdk', LowCmd_)
        self._hand_pubs = {side: _publisher(f'rt/dex3/{side}/cmd', HandCmd_) for side in SIDES}
        self._lowcmd = unitree_hg_msg_dds__LowCmd_()
        self._hand_msgs = {s: unitree_hg_msg_dds__HandCmd_() for s in SIDES}
        kp = np.array([cfg.kp_waist] * 3 + [cfg.kp_arm] * 14)
        kd = np.array([cfg.kd_waist] * 3 + [cfg.kd_arm] * 14)
        for i in range(NUM_UPPER):
            mc = self._lowcmd.motor_cmd[UPPER_BODY_FIRST_SLOT + i]
            mc.mode, mc.kp, mc.kd, mc.tau = 1, float(kp[i]), float(kd[i]), 0.0

        class _Loco(Client):
            """LocoClient with a configurable service name (``sport`` / ``loco``)."""

            def Init(self) -> None:  # noqa: N802 - the SDK's API names
                self._SetApiVerson(LOCO_API_VERSION)
                self._RegistApi(LOCO_GET_FSM_ID, 0)
                self._RegistApi(LOCO_SET_VELOCITY, 0)

        self._loco = _Loco(cfg.loco_service, False)
        self._loco.SetTimeout(cfg.rpc_timeout_s)
        self._loco.Init()
        # The loop, the DDS listeners and planning share the GIL: a short switch interval
        # keeps the 50 Hz loop on time while another thread computes.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        self._started = True
        self._thread = threading.Thread(target=self._loop, name='g1_arm_sdk', daemon=True)
        self._thread.start()
        self._log(
            'info',
            f'unitree backend up: DDS domain {cfg.domain_id} on '
            f'{cfg.network_interface or "auto"}, loco service {cfg.loco_service!r}, '
            f'arm_sdk at {cfg.rate_hz:g} Hz',
        )
        return self

    def wait_for_state(self, timeout_s: float | None = None) -> bool:
        """Block until a fresh robot state (lowstate and odometry) arrived.

        Returns False when it did not; :meth:`missing_state` then says what is missing and
        why (and a missing odometry is logged with :data:`ODOM_HINT`).
        """
        deadline = time.monotonic() + (timeout_s or self.config.startup_timeout_s)
        while time.monotonic() < deadline:
            with self._lock:
                ok = self._q29 is not None and self._odom is not None
            now = time.monotonic()
            # both fresh: after a robot restart, odometry from before it is not a state
            if ok and self._fresh(now) and self._odom_reader.age(now) <= self._odom_max_age():
                return True
            time.sleep(0.02)
        why = self.missing_state()
        if why:
            self._log('warn', why)
        return False

    def missing_state(self) -> str:
        """'' when lowstate and odometry are fresh; else what is missing, and why."""
        now = time.monotonic()
        with self._lock:
            q, odom = self._q29, self._odom
        if q is None or not self._fresh(now):
            return (
                'no fresh rt/lowstate from the robot (is it powered and on this network '
                f'interface, {self.config.network_interface or "auto"}?)'
            )
        if odom is None or self._odom_reader.age(now) > self._odom_max_age():
            fallback = (
                'arm motions use the last odometry, walking is refused'
                if odom is not None
                else (
                    'arm motions plan with the standing pose at the odom origin (pelvis z '
                    f'{self.config.standing_pelvis_z_m:g} m), walking is refused'
                    if self.config.standing_pelvis_z_m > 0
                    else 'goals are refused'
                )
            )
            return (
                f'rt/lowstate arrives but no {self.config.odom_topic}: {ODOM_HINT}. Until it '
                f'does, {fallback}'
            )
        return ''

    def _odom_max_age(self) -> float:
        return max(0.2, 3 * self.state_timeout_s)

    def stop(self) -> None:
        """Stop walking and ramp the arm_sdk weight out now (later motions stay allowed)."""
        self._stop_move()
        self.streamer.release()

    def halt(self, reason: str) -> None:
        """Stop the robot for good (executor shutdown); returns at once.

        The arm_sdk weight starts ramping out (the loop keeps sending it; :meth:`close` waits
        until it reached 0), the base gets StopMove, the running walk or arm motion returns
        STOPPED with ``reason`` at its next check and later motions are refused.

        Args:
            reason: why, for the goal's result and the log.
        """
        self._halted = reason or 'halted'
        if not self._started:
            return
        self.streamer.release()
        self._stop_move()
        self._log('info', f'{self._halted}: arm_sdk weight ramping out, StopMove sent')

    def close(self) -> None:
        """Ramp the arms out, stop the base, stop the loop."""
        if not self._started:
            return
        self.streamer.release()
        deadline = time.monotonic() + self.config.ramp_out_s + 0.5
        while (
            self.streamer.weight > 0
            and time.monotonic() < deadline
            and self._fresh(time.monotonic())
        ):
            time.sleep(self.period_s)
        self._stop_move()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._started = False

    # --- state ---------------------------------------------------------------------------
    def _fresh(self, now: float) -> bool:
        return self._lowstate.age(now) <= self.state_timeout_s

    def _poll(self, now: float) -> None:
        s = self._lowstate.take(now)
        if s is not None:
            q = np.array([s.motor_state[i].q for i in range(29)], dtype=float)
            with self._lock:
                self._q29 = q
        o = self._odom_reader.take(now)
        if o is not None:
            yaw = float(o.imu_state.rpy[2])
            p = o.position
            with self._lock:
                self._odom = (float(p[0]), float(p[1]), float(p[2]), yaw)

    def state_age_s(self) -> float:
        """Seconds since the last ``rt/lowstate`` sample arrived."""
        return self._lowstate.age(time.monotonic())

    def upper_body(self) -> np.ndarray:
        """(17,) measured upper-body joints.

        Raises:
            BackendError: no state or stale state.
        """
        now = time.monotonic()
        with self._lock:
            q = None if self._q29 is None else self._q29[UPPER_BODY_FIRST_SLOT:29].copy()
        if q is None:
            raise BackendError('no rt/lowstate received yet (is the robot/simulator up?)')
        if not self._fresh(now):
            raise BackendError(
                f'rt/lowstate is stale ({self._lowstate.age(now) * 1e3:.0f} ms old > '
                f'{self.state_timeout_s * 1e3:.0f} ms)'
            )
        return q

    def base_pose(self, walking: bool = False) -> tuple[float, float, float, float]:
        """Pelvis ``(x, y, z, yaw)`` in odom from ``rt/odommodestate``.

        Without fresh odometry (module docstring: the onboard state estimation is off), and
        unless ``walking``: the last odometry received, else the standing pose when
        ``standing_pelvis_z_m`` is set. :attr:`base_pose_source` says which.

        Args:
            walking: for a walk: fresh odometry only.

        Raises:
            BackendError: no usable odometry, naming the onboard state estimation.
        """
        now = time.monotonic()
        with self._lock:
            odom = self._odom
        topic = self.config.odom_topic
        age = self._odom_reader.age(now)
        if odom is not None and age <= self._odom_max_age():
            self._set_pose_source('odometry')
            return odom
        why = (
            f'no {topic} received yet'
            if odom is None
            else f'{topic} is stale ({age * 1e3:.0f} ms old)'
        )
        if walking:
            raise BackendError(f'{why}; walking needs it: {ODOM_HINT}')
        if odom is not None:
            self._set_pose_source('last odometry', f'{why}: arm motions use the last odometry')
            return odom
        z = self.config.standing_pelvis_z_m
        if z > 0:
            self._set_pose_source(
                'standing pose',
                f'{why}: arm motions plan with the standing pose (pelvis z {z:g} m)',
            )
            return (0.0, 0.0, float(z), 0.0)
        raise BackendError(f'{why}: {ODOM_HINT}')

    def _set_pose_source(self, source: str, message: str = '') -> None:
        if source != self.base_pose_source:
            self.base_pose_source = source
            if message:
                self._log('warn', message)

    def joint_positions(self) -> np.ndarray:
        """The planner's state: ``[x, y, z, yaw]`` of the pelvis + 17 upper-body joints.

        Raises:
            BackendError: no or stale state.
        """
        return np.concatenate([np.array(self.base_pose()), self.upper_body()])

    # --- the 50 Hz loop ------------------------------------------------------------------
    def _loop(self) -> None:
        period = self.period_s
        next_t = time.monotonic()
        last = None
        tick = 0
        while not self._stop.is_set():
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            elif delay < -period:
                next_t = time.monotonic()  # fell behind: do not burst to catch up
            now = time.monotonic()
            if last is not None:
                self.stats.add_period(now - last)
            last = now
            tick += 1
            try:
                self._tick(now, tick)
            except Exception as exc:  # noqa: BLE001 - keep the safety loop alive, say why
                self._log('error', f'arm_sdk loop error: {type(exc).__name__}: {exc}')

    def _tick(self, now: float, tick: int) -> None:
        self._poll(now)
        fresh = self._fresh(now)
        if self._was_fresh and not fresh:
            self._on_stale(now)
        self._was_fresh = fresh
        with self._lock:
            q = None if self._q29 is None else self._q29[UPPER_BODY_FIRST_SLOT:29].copy()
        cmd = self.streamer.tick(now, q, fresh)
        if cmd is not None:
            self._send_arm(cmd)
            r = self._reaction
            if cmd.weight == 0.0 and r is not None and r.weight_zero is None:
                r.weight_zero = time.monotonic()
                self._report_reaction()
        elif self._reaction is not None and self._reaction.weight_zero is None:
            self._reaction.weight_zero = now  # the weight was out already
            self._report_reaction()
        if fresh:
            self._send_hands(now, every=tick % 5 == 0)

    def _on_stale(self, now: float) -> None:
        age = self._lowstate.age(now)
        self._fault = f'rt/lowstate stale ({age * 1e3:.0f} ms without a new sample)'
        self.stats.stale_events += 1
        self.streamer.release(fault=self._fault)
        self._reaction = _StaleReaction(self._lowstate.rx_time)
        # StopMove from its own thread: the loop keeps ramping the weight out meanwhile.
        threading.Thread(target=self._stop_move_on_fault, name='g1_stop_move', daemon=True).start()
        self._log('error', f'{self._fault}: arm_sdk weight ramps out, base stops')

    def _stop_move_on_fault(self) -> None:
        self._stop_move()
        if self._reaction is not None:
            self._reaction.stop_sent = time.monotonic()
        self._report_reaction()

    def _report_reaction(self) -> None:
        r = self._reaction
        if r is None or r.stop_sent is None or r.weight_zero is None or r.reported:
            return
        r.reported = True
        t0 = r.last_sample
        self.last_reaction_s = (r.stop_sent - t0, r.weight_zero - t0)
        self._log(
            'warn',
            f'stale-state reaction: StopMove sent {(r.stop_sent - t0) * 1e3:.0f} ms and '
            f'arm_sdk weight 0 sent {(r.weight_zero - t0) * 1e3:.0f} ms after the last '
            'rt/lowstate sample',
        )

    def _send_arm(self, cmd: ArmCommand) -> None:
        m = self._lowcmd
        for i in range(NUM_UPPER):
            mc = m.motor_cmd[UPPER_BODY_FIRST_SLOT + i]
            mc.q = float(cmd.q[i])
            mc.dq = float(cmd.dq[i])
        m.motor_cmd[WEIGHT_SLOT].q = float(cmd.weight)
        m.crc = self._crc.Crc(m)
        self._arm_pub.Write(m)
        self.stats.lowcmd_sent += 1

    def _send_hands(self, now: float, every: bool) -> None:
        for side in SIDES:
            ramp = self._hand_ramp.get(side)
            if ramp is not None:
                t0, q0, q1, dur = ramp
                f = min(1.0, (now - t0) / max(dur, 1e-6))
                q = q0 + f * (q1 - q0)
                self._hands[side] = q
                if f >= 1.0:
                    del self._hand_ramp[side]
            elif not every or side not in self._hands:
                continue
            msg = self._hand_msgs[side]
            q = self._hands[side]
            for i in range(7):
                mc = msg.motor_cmd[i]
                mc.mode = (i & 0x0F) | (0x01 << 4)
                mc.q, mc.dq, mc.tau = float(q[i]), 0.0, 0.0
                mc.kp, mc.kd = self.config.hand_kp, self.config.hand_kd
            self._hand_pubs[side].Write(msg)
            self.stats.hand_cmd_sent += 1

    # --- base ----------------------------------------------------------------------------
    def _rpc(self, api: int, parameter: dict) -> tuple[int, Any]:
        with self._rpc_lock:
            return self._loco._Call(api, json.dumps(parameter))

    def _stop_move(self) -> None:
        try:
            code, _ = self._rpc(LOCO_SET_VELOCITY, {'velocity': [0.0, 0.0, 0.0], 'duration': 1.0})
            if code != 0:
                self._log('warn', f'StopMove answered error {code}')
        except Exception as exc:  # noqa: BLE001 - report, the velocity command expires anyway
            self._log('error', f'StopMove failed: {exc}')

    def _fsm_id(self) -> int | None:
        code, data = self._rpc(LOCO_GET_FSM_ID, {})
        if code != 0 or not data:
            return None
        try:
            return int(json.loads(data)['data'])
        except (ValueError, KeyError, TypeError):
            return None

    def walk(
        self,
        segment: Any,
        interrupt: Callable[[], Interrupt | None],
        progress: Callable[[float], None],
    ) -> MotionResult:
        """Walk to ``segment.goal`` in closed loop on the odometry, then StopMove.

        Returns:
            DONE at the goal, STOPPED when ``interrupt()`` gave a reason (base stopped;
            a cancel also ramps the arms out), FAILED on stale state, an RPC error, a
            passive locomotion FSM or a timeout.
        """
        cfg = self.config
        try:
            self.upper_body()  # fresh lowstate first: without it the robot itself is gone
            start = self.base_pose(walking=True)
        except BackendError as exc:
            return MotionResult(MotionStatus.FAILED, f'cannot walk: {exc}')
        self._fault = ''
        fsm = self._fsm_id()
        if fsm is None:
            return MotionResult(
                MotionStatus.FAILED,
                f'the locomotion service {cfg.loco_service!r} does not answer (LocoClient)',
            )
        if fsm in PASSIVE_FSM:
            return MotionResult(
                MotionStatus.FAILED,
                f'the locomotion controller is in FSM {fsm} ({PASSIVE_FSM[fsm]}): '
                'put the robot in walking mode first',
            )
        goal = tuple(float(v) for v in segment.goal)
        total = max(math.hypot(goal[0] - start[0], goal[1] - start[1]), 1e-6)
        deadline = time.monotonic() + float(segment.duration_s) * 2.0 + cfg.walk_timeout_s
        period = 1.0 / cfg.walk_rate_hz
        self._walking.set()
        try:
            while True:
                if self._halted:  # halt() sent StopMove and ramps the arms out
                    self._stop_move()
                    return MotionResult(MotionStatus.STOPPED, self._halted, self._halted)
                if self._fault:
                    self._stop_move()
                    return MotionResult(MotionStatus.FAILED, self._fault)
                why = interrupt()
                if why:
                    self._stop_move()
                    if why.kind is InterruptKind.CANCELED:
                        self.streamer.release()
                    return MotionResult(MotionStatus.STOPPED, 'base stopped', str(why))
                try:
                    x, y, _, yaw = self.base_pose(walking=True)
                except BackendError as exc:
                    self._stop_move()
                    return MotionResult(MotionStatus.FAILED, str(exc))
                (vx, vy, wz), reached, dist = walk_command((x, y, yaw), goal, cfg.walk)
                if reached:
                    self._stop_move()
                    progress(1.0)
                    self._wait_base_still(1.5)
                    return MotionResult(MotionStatus.DONE, f'at ({x:.2f}, {y:.2f})')
                if time.monotonic() > deadline:
                    self._stop_move()
                    return MotionResult(
                        MotionStatus.FAILED,
                        f'walk to ({goal[0]:.2f}, {goal[1]:.2f}) timed out {dist:.2f} m away',
                    )
                code, _ = self._rpc(
                    LOCO_SET_VELOCITY,
                    {'velocity': [vx, vy, wz], 'duration': cfg.velocity_hold_s},
                )
                if code != 0:
                    self._stop_move()
                    return MotionResult(MotionStatus.FAILED, f'SetVelocity answered {code}')
                progress(max(0.0, min(1.0, 1.0 - dist / total)))
                time.sleep(period)
        finally:
            self._walking.clear()

    def _wait_base_still(self, timeout_s: float) -> None:
        prev = None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                pose = self.base_pose(walking=True)
            except BackendError:
                return
            if (
                prev is not None
                and max(abs(a - b) for a, b in zip(pose, prev, strict=True)) < 1e-4
            ):
                return
            prev = pose
            time.sleep(0.05)

    # --- arms ----------------------------------------------------------------------------
    def execute(
        self,
        segment: Any,
        interrupt: Callable[[], Interrupt | None],
        progress: Callable[[float], None],
    ) -> MotionResult:
        """Run one plan segment: ``walk``, ``motion`` (arm trajectory) or ``arm_release``.

        Returns:
            The :class:`MotionResult`; FAILED for an unknown segment kind.
        """
        if self._halted:
            return MotionResult(MotionStatus.STOPPED, self._halted, self._halted)
        if segment.kind is SegmentKind.WALK:
            return self.walk(segment, interrupt, progress)
        if segment.kind is SegmentKind.ARM_RELEASE:
            return self.release_arms(progress)
        if segment.kind is SegmentKind.MOTION:
            return self._arm_motion(segment, interrupt, progress)
        return MotionResult(MotionStatus.FAILED, f'unknown segment kind {segment.kind!r}')

    def _arm_motion(
        self,
        seg: Any,
        interrupt: Callable[[], Interrupt | None],
        progress: Callable[[float], None],
    ) -> MotionResult:
        cfg = self.config
        try:
            q_now = self.upper_body()
        except BackendError as exc:
            return MotionResult(MotionStatus.FAILED, f'cannot move the arms: {exc}')
        if self._walking.is_set():
            return MotionResult(MotionStatus.FAILED, 'the arms do not move while walking')
        start = np.asarray(seg.positions_rad[0], dtype=float)
        measured = float(np.max(np.abs(start - q_now)))
        # With the weight in, a trajectory starts where the previous one ended (the stream's
        # target: a contact may push the measured arm off it) or where the arm is (a plan made
        # from the measured pose: under a load, e.g. a held object, the arm lags its target by
        # up to ~0.2 rad; the stream rate-limits the step from its target). Without the weight,
        # where the arm is.
        if self.streamer.engaged:
            commanded = float(np.max(np.abs(start - self.streamer.target)))
            if min(commanded, measured) > 0.1:
                return MotionResult(
                    MotionStatus.FAILED,
                    f'the arm motion starts {commanded:.2f} rad away from the commanded pose '
                    f'and {measured:.2f} rad from the measured one (limit 0.10 rad)',
                )
        elif measured > 0.25:
            return MotionResult(
                MotionStatus.FAILED,
                f'the arm motion starts {measured:.2f} rad away from the measured pose '
                '(limit 0.25 rad)',
            )
        self._fault = ''
        self.streamer.engage()
        # Ramp the weight in (holding the measured pose) before anything moves.
        deadline = time.monotonic() + cfg.ramp_in_s + 2.0
        while not self.streamer.engaged:
            if self._halted:
                return MotionResult(MotionStatus.STOPPED, self._halted, self._halted)
            if self._fault or self.streamer.fault:
                return MotionResult(MotionStatus.FAILED, self._fault or self.streamer.fault)
            why = interrupt()
            if why:
                return self._interrupted(why)
            if time.monotonic() > deadline:
                return MotionResult(MotionStatus.FAILED, 'arm_sdk weight did not ramp in')
            time.sleep(self.period_s)
        self.streamer.follow(seg.times_s, seg.positions_rad, seg.velocities_rad_s)
        stopping: Interrupt | None = None
        while True:
            time.sleep(self.period_s)
            if self._halted:  # halt() dropped the trajectory and ramps the weight out
                return MotionResult(MotionStatus.STOPPED, self._halted, self._halted)
            if self._fault or self.streamer.fault:
                return MotionResult(MotionStatus.FAILED, self._fault or self.streamer.fault)
            if self.streamer.trajectory_finished():
                break
            if not stopping:
                why = interrupt()
                if why:
                    stopping = why
                    self.streamer.stop()
                    continue
                progress(self.streamer.trajectory_progress())
        if stopping:
            return self._interrupted(stopping)
        progress(1.0)
        return MotionResult(MotionStatus.DONE)

    def _interrupted(self, why: Interrupt) -> MotionResult:
        if why.kind is InterruptKind.CANCELED:
            self.streamer.release()
            self._stop_move()
            return MotionResult(MotionStatus.STOPPED, 'arms stopped, weight ramping out', str(why))
        return MotionResult(MotionStatus.STOPPED, 'arms stopped', str(why))

    def release_arms(self, progress: Callable[[float], None] | None = None) -> MotionResult:
        """Ramp the arm_sdk weight out (≥ 1 s); returns when it reached 0."""
        self.streamer.release()
        deadline = time.monotonic() + self.config.ramp_out_s + 2.0
        while self.streamer.weight > 0.0 and self.streamer.state.value != 'idle':
            if time.monotonic() > deadline:
                return MotionResult(MotionStatus.FAILED, 'arm_sdk weight did not ramp out')
            if progress is not None:
                progress(1.0 - self.streamer.weight)
            time.sleep(self.period_s)
        return MotionResult(MotionStatus.DONE, 'arms released')

    @property
    def arms_engaged(self) -> bool:
        """Whether the arm_sdk weight is in (or ramping)."""
        return self.streamer.state.value != 'idle'

    # --- hands ---------------------------------------------------------------------------
    def gripper(self, close: bool, segment: HandSegment | None = None) -> tuple[bool, str]:
        """Close or open a Dex3 hand (``segment``: side and closures; default: the right hand).

        Returns:
            ``(done, message)``; False when the robot state is not fresh.
        """
        if segment is None:
            segment = HandSegment(close, 'right', 1.0 if close else 0.0)
        side, closure, duration = segment.side, float(segment.closure), segment.duration_s
        if not self._fresh(time.monotonic()):
            return False, f'{side} hand not commanded: rt/lowstate is stale'
        closed = self.kin.finger_closed_rad[side]
        current = self._hands.get(side, np.zeros(7))
        if close:
            self._ramp_hand(side, current, closed * closure, duration * 0.6)
            time.sleep(duration)
            return True, f'{side} hand closed to {closure:.2f}'
        gentle = float(segment.release_closure)
        mid = closed * gentle
        self._ramp_hand(side, current, mid, duration * 0.5)
        time.sleep(duration)  # the fingers open most of the way while still holding
        self._ramp_hand(side, mid, np.zeros(7), 0.1)
        time.sleep(duration * 0.5)
        return True, f'{side} hand opened'

    def holding(self) -> str | None:
        """The hand last commanded closed (grasping), if any."""
        for side, q in self._hands.items():
            closed = self.kin.finger_closed_rad[side]
            if float(np.mean(q[2:] / closed[2:])) > 0.3:
                return side
        return None

    def _ramp_hand(self, side: str, q0: np.ndarray, q1: np.ndarray, duration: float) -> None:
        lo, hi = self.kin.finger_lower_rad[side], self.kin.finger_upper_rad[side]
        q1 = np.clip(q1, lo, hi)
        self._hands[side] = np.asarray(q0, dtype=float).copy()
        self._hand_ramp[side] = (time.monotonic(), self._hands[side].copy(), q1, duration)
