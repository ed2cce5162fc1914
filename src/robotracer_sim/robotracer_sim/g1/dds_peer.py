"""The simulated G1's Unitree DDS interface (as unitree_mujoco does), over unitree_sdk2py.

Design notes: docs/design-notes.md (robotracer_sim.g1.dds_peer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import json
import math
import threading
import time

import numpy as np

from robotracer_sim.g1.joints import HAND_SIDES, NUM_BODY_JOINTS, NUM_HAND_MOTORS, WEIGHT_SLOT
from robotracer_sim.g1.lowstate_codec import LowStateEncoder
from robotracer_sim.g1.world import G1World

LOCO_API = {
    'get_fsm_id': 7001,
    'get_fsm_mode': 7002,
    'get_balance_mode': 7003,
    'get_swing_height': 7004,
    'get_stand_height': 7005,
    'set_fsm_id': 7101,
    'set_balance_mode': 7102,
    'set_swing_height': 7103,
    'set_stand_height': 7104,
    'set_velocity': 7105,
}
RPC_OK = 0
RPC_ERR_SERVER_API_PARAMETER = 3204

Logger = Callable[[str, str], None]  # (level: 'info' | 'warn' | 'error', message)


def _print_log(level: str, msg: str) -> None:
    print(f'[g1_dds_peer] [{level}] {msg}', flush=True)


@dataclass(frozen=True)
class PeerConfig:
    """Settings of the DDS peer.

    Attributes:
        domain_id: DDS domain (the robot uses 0).
        interface: network interface (``lo`` for the simulator; ``''`` = let CycloneDDS pick).
        loco_service: RPC service name of the locomotion client (``sport``; ``loco`` on
            firmware before 8.2... check ``LOCO_SERVICE_NAME`` of the SDK in use).
        check_crc: drop ``rt/arm_sdk`` samples whose CRC is wrong (the robot does).
        mode_machine: robot type code in ``LowState_.mode_machine``.
        fast_lowstate: encode ``rt/lowstate`` with the numpy codec (else the SDK's objects).

    """

    domain_id: int = 0
    interface: str = 'lo'
    loco_service: str = 'sport'
    check_crc: bool = True
    mode_machine: int = 5
    fast_lowstate: bool = True


@dataclass
class PeerStats:
    """Counters of the peer (read them for diagnostics and tests)."""

    lowstate_published: int = 0
    arm_sdk_received: int = 0
    arm_sdk_crc_errors: int = 0
    arm_sdk_rejected: int = 0
    arm_sdk_clamped: int = 0
    hand_cmd_received: int = 0
    hand_cmd_rejected: int = 0
    rpc_calls: dict[str, int] = field(default_factory=dict)
    last_arm_sdk_wall: float = 0.0


class _RateLimitedLog:
    def __init__(self, log: Logger, period: float = 1.0) -> None:
        self._log = log
        self._period = period
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, level: str, msg: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -math.inf) < self._period:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            n = self._suppressed.pop(key, 0)
            self._last[key] = now
        self._log(level, msg + (f' (+{n} similar in the last second)' if n else ''))


class G1DdsPeer:
    """Serve a :class:`G1World` on the Unitree G1 DDS interface.

    Args:
        world: the simulated robot.
        config: domain, interface, service name, checks.
        log: ``log(level, message)``; prints when omitted.

    """

    def __init__(self, world: G1World, config: PeerConfig, log: Logger | None = None) -> None:
        self.world = world
        self.config = config
        self.stats = PeerStats()
        self._log = log or _print_log
        self._rl = _RateLimitedLog(self._log)
        self._started = False
        self.lowstate_paused = False
        self._lowstate_writer = None
        self._encoder = LowStateEncoder(mode_machine=config.mode_machine)

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        """Join the DDS domain, create every channel and start the RPC server.

        Raises:
            RuntimeError: the DDS domain could not be created (bad interface name, ...).

        """
        from unitree_sdk2py.core.channel import (
            ChannelFactoryInitialize,
            ChannelPublisher,
            ChannelSubscriber,
        )
        from unitree_sdk2py.idl.unitree_go.msg.dds_ import SportModeState_
        from unitree_sdk2py.idl.unitree_hg.msg.dds_ import HandCmd_, HandState_, LowCmd_
        from unitree_sdk2py.utils.crc import CRC

        cfg = self.config
        try:
            ChannelFactoryInitialize(cfg.domain_id, cfg.interface or None)
        except Exception as exc:
            raise RuntimeError(
                f'cannot join DDS domain {cfg.domain_id} on interface {cfg.interface!r}: {exc}'
            ) from exc
        self._crc = CRC()
        self._setup_lowstate_writer()
        self._arm_sub = ChannelSubscriber('rt/arm_sdk', LowCmd_)
        self._arm_sub.Init(self._on_arm_sdk, 0)
        self._hand_subs = []
        self._hand_pubs = {}
        for side in HAND_SIDES:
            sub = ChannelSubscriber(f'rt/dex3/{side}/cmd', HandCmd_)
            sub.Init(lambda msg, s=side: self._on_hand_cmd(s, msg), 0)
            self._hand_subs.append(sub)
            pub = ChannelPublisher(f'rt/dex3/{side}/state', HandState_)
            pub.Init()
            self._hand_pubs[side] = pub
        self._odom_pub = ChannelPublisher('rt/odommodestate', SportModeState_)
        self._odom_pub.Init()
        self._server = self._make_loco_server(cfg.loco_service)
        self._server.Init()
        self._server.Start(False)
        self._started = True
        self._log(
            'info',
            f'DDS peer up: domain {cfg.domain_id}, interface {cfg.interface or "auto"}, '
            f'loco service {cfg.loco_service!r}, lowstate '
            f'{"fast codec" if self._lowstate_writer else "SDK serializer"}',
        )

    def _setup_lowstate_writer(self) -> None:
        from cyclonedds.domain import DomainParticipant
        from cyclonedds.pub import DataWriter
        from cyclonedds.topic import Topic
        from unitree_sdk2py.core.channel import ChannelPublisher
        from unitree_sdk2py.idl.default import unitree_hg_msg_dds__LowState_
        from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowState_

        self._lowstate_sdk_pub = None
        if self.config.fast_lowstate:
            try:
                from cyclonedds._clayer import ddspy_write

                dp = DomainParticipant(self.config.domain_id)
                writer = DataWriter(dp, Topic(dp, 'rt/lowstate', LowState_))
                # Self-check: our bytes must equal what this writer would serialize.
                zero = np.zeros(NUM_BODY_JOINTS)
                cdr, crc = self._encoder.encode(
                    0, zero, zero, zero, zero, [1, 0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]
                )
                msg = unitree_hg_msg_dds__LowState_()
                msg.mode_machine = self.config.mode_machine
                for i in range(NUM_BODY_JOINTS):
                    msg.motor_state[i].mode = 1
                msg.imu_state.quaternion = [1.0, 0.0, 0.0, 0.0]
                msg.crc = crc
                ser = msg.serialize(use_version_2=writer._use_version_2)
                ser = ser.ljust((len(ser) + 3) & ~3, b'\0')
                if ser != cdr:
                    raise ValueError('fast LowState_ encoding differs from the SDK serializer')
                self._dp, self._ddspy_write = dp, ddspy_write
                self._lowstate_writer = writer
                return
            except Exception as exc:  # noqa: BLE001 - fall back to the SDK path, say why
                self._log('warn', f'fast rt/lowstate path unavailable ({exc}); using the SDK')
        self._lowstate_sdk_pub = ChannelPublisher('rt/lowstate', LowState_)
        self._lowstate_sdk_pub.Init()

    def _make_loco_server(self, name: str):
        from unitree_sdk2py.rpc.server import Server

        handlers = {
            LOCO_API['get_fsm_id']: lambda p: self._getter('get_fsm_id', self.world.fsm_id),
            LOCO_API['get_fsm_mode']: lambda p: self._getter('get_fsm_mode', self._fsm_mode()),
            LOCO_API['get_balance_mode']: lambda p: self._getter(
                'get_balance_mode', self.world.balance_mode
            ),
            LOCO_API['get_swing_height']: lambda p: self._getter(
                'get_swing_height', self._swing_height
            ),
            LOCO_API['get_stand_height']: lambda p: self._getter(
                'get_stand_height', self.world.stand_height
            ),
            LOCO_API['set_fsm_id']: self._rpc_set_fsm_id,
            LOCO_API['set_balance_mode']: self._rpc_set_balance_mode,
            LOCO_API['set_swing_height']: self._rpc_set_swing_height,
            LOCO_API['set_stand_height']: self._rpc_set_stand_height,
            LOCO_API['set_velocity']: self._rpc_set_velocity,
        }
        self._swing_height = 0.0

        class LocoServer(Server):
            def Init(server_self) -> None:  # noqa: N802,N805 - the SDK's API names
                server_self._SetApiVersion('1.0.0.0')
                for api_id, h in handlers.items():
                    server_self._RegistHandler(api_id, h, False)

        return LocoServer(name)

    # ------------------------------------------------------------------ RPC

    def _count(self, name: str) -> None:
        self.stats.rpc_calls[name] = self.stats.rpc_calls.get(name, 0) + 1

    def _getter(self, name: str, value) -> tuple[int, str]:
        self._count(name)
        return RPC_OK, json.dumps({'data': value})

    def _fsm_mode(self) -> int:
        moving = bool(np.any(np.abs(self.world.base.velocity) > 1e-3))
        return 1 if moving else 0

    def _param(self, name: str, parameter: str) -> dict | None:
        self._count(name)
        try:
            p = json.loads(parameter)
            if not isinstance(p, dict):
                raise ValueError('not a JSON object')
            return p
        except ValueError as exc:
            self._log('warn', f'loco {name}: bad parameter {parameter!r} ({exc})')
            return None

    def _number(self, name: str, p: dict, key: str) -> float | None:
        v = p.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self._log('warn', f'loco {name}: "{key}" must be a finite number, got {v!r}')
            return None
        return float(v)

    def _rpc_set_velocity(self, parameter: str) -> tuple[int, str]:
        p = self._param('set_velocity', parameter)
        if p is None:
            return RPC_ERR_SERVER_API_PARAMETER, ''
        v = p.get('velocity')
        ok = (
            isinstance(v, list)
            and len(v) == 3
            and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                for x in v
            )
        )
        if not ok:
            self._log('warn', f'loco set_velocity: "velocity" must be 3 finite numbers, got {v!r}')
            return RPC_ERR_SERVER_API_PARAMETER, ''
        duration = self._number('set_velocity', {'d': p.get('duration', 1.0)}, 'd')
        if duration is None or duration <= 0:
            self._log(
                'warn', f'loco set_velocity: duration must be > 0 s, got {p.get("duration")}'
            )
            return RPC_ERR_SERVER_API_PARAMETER, ''
        applied, notes = self.world.set_base_velocity(v[0], v[1], v[2], duration)
        for n in notes:
            self._rl('velocity', 'warn', f'loco set_velocity: {n}')
        return RPC_OK, ''

    def _rpc_set_fsm_id(self, parameter: str) -> tuple[int, str]:
        p = self._param('set_fsm_id', parameter)
        v = None if p is None else self._number('set_fsm_id', p, 'data')
        if v is None or v != int(v):
            return RPC_ERR_SERVER_API_PARAMETER, ''
        self.world.set_fsm(int(v))
        self._log('info', f'loco FSM -> {int(v)}')
        return RPC_OK, ''

    def _rpc_set_balance_mode(self, parameter: str) -> tuple[int, str]:
        p = self._param('set_balance_mode', parameter)
        v = None if p is None else self._number('set_balance_mode', p, 'data')
        if v is None or v not in (0, 1):
            return RPC_ERR_SERVER_API_PARAMETER, ''
        self.world.balance_mode = int(v)
        return RPC_OK, ''

    def _rpc_set_swing_height(self, parameter: str) -> tuple[int, str]:
        p = self._param('set_swing_height', parameter)
        v = None if p is None else self._number('set_swing_height', p, 'data')
        if v is None:
            return RPC_ERR_SERVER_API_PARAMETER, ''
        self._swing_height = v
        return RPC_OK, ''

    def _rpc_set_stand_height(self, parameter: str) -> tuple[int, str]:
        p = self._param('set_stand_height', parameter)
        v = None if p is None else self._number('set_stand_height', p, 'data')
        if v is None:
            return RPC_ERR_SERVER_API_PARAMETER, ''
        self.world.stand_height = v  # stored and reported; the kinematic pelvis keeps its height
        return RPC_OK, ''

    # ------------------------------------------------------------------ subscriptions

    def _on_arm_sdk(self, msg) -> None:
        st = self.stats
        st.arm_sdk_received += 1
        st.last_arm_sdk_wall = time.monotonic()
        try:
            if self.config.check_crc:
                expected = self._crc.Crc(msg)
                if expected != msg.crc:
                    st.arm_sdk_crc_errors += 1
                    self._rl(
                        'crc',
                        'warn',
                        f'rt/arm_sdk sample dropped: CRC {msg.crc} != {expected} '
                        '(set LowCmd_.crc = CRC().Crc(cmd) before writing)',
                    )
                    return
            mc = msg.motor_cmd
            n = NUM_BODY_JOINTS
            q = np.array([mc[i].q for i in range(n)])
            dq = np.array([mc[i].dq for i in range(n)])
            tau = np.array([mc[i].tau for i in range(n)])
            kp = np.array([mc[i].kp for i in range(n)])
            kd = np.array([mc[i].kd for i in range(n)])
            notes = self.world.apply_arm_sdk(float(mc[WEIGHT_SLOT].q), q, dq, tau, kp, kd)
        except ValueError as exc:
            st.arm_sdk_rejected += 1
            self._rl('arm_reject', 'warn', f'rt/arm_sdk sample rejected: {exc}')
            return
        if notes:
            st.arm_sdk_clamped += 1
            self._rl('arm_clamp', 'warn', 'rt/arm_sdk clamped: ' + '; '.join(notes))

    def _on_hand_cmd(self, side: str, msg) -> None:
        st = self.stats
        st.hand_cmd_received += 1
        try:
            mc = list(msg.motor_cmd)
            if len(mc) != NUM_HAND_MOTORS:
                raise ValueError(f'{len(mc)} motor commands, expected {NUM_HAND_MOTORS}')
            notes = self.world.apply_hand(
                side,
                np.array([m.q for m in mc]),
                np.array([m.dq for m in mc]),
                np.array([m.tau for m in mc]),
                np.array([m.kp for m in mc]),
                np.array([m.kd for m in mc]),
            )
        except ValueError as exc:
            st.hand_cmd_rejected += 1
            self._rl(f'hand_{side}', 'warn', f'rt/dex3/{side}/cmd sample rejected: {exc}')
            return
        if notes:
            self._rl(
                f'hand_clamp_{side}', 'warn', f'rt/dex3/{side}/cmd clamped: ' + '; '.join(notes)
            )

    # ------------------------------------------------------------------ publications

    def publish_lowstate(self) -> None:
        """Publish one ``rt/lowstate`` sample of the world's current state."""
        if not self._started or self.lowstate_paused:
            return
        s = self.world.body_state()
        if self._lowstate_writer is not None:
            cdr, _ = self._encoder.encode(
                s.tick_ms, s.q, s.dq, s.ddq, s.tau, s.quat_wxyz, s.gyro, s.accel, s.rpy
            )
            ret = self._ddspy_write(self._lowstate_writer._ref, cdr)
            if ret < 0:
                self._rl('lowstate', 'error', f'rt/lowstate write failed (DDS error {ret})')
                return
        else:
            self._lowstate_sdk_pub.Write(self._lowstate_sdk_msg(s))
        self.stats.lowstate_published += 1

    def _lowstate_sdk_msg(self, s):
        from unitree_sdk2py.idl.default import unitree_hg_msg_dds__LowState_

        msg = unitree_hg_msg_dds__LowState_()
        msg.mode_machine = self.config.mode_machine
        msg.tick = s.tick_ms
        for i in range(NUM_BODY_JOINTS):
            ms = msg.motor_state[i]
            ms.mode = 1
            ms.q, ms.dq, ms.ddq, ms.tau_est = (
                float(s.q[i]),
                float(s.dq[i]),
                float(s.ddq[i]),
                float(s.tau[i]),
            )
        imu = msg.imu_state
        imu.quaternion = [float(v) for v in s.quat_wxyz]
        imu.gyroscope = [float(v) for v in s.gyro]
        imu.accelerometer = [float(v) for v in s.accel]
        imu.rpy = [float(v) for v in s.rpy]
        msg.crc = self._crc.Crc(msg)
        return msg

    def publish_hand_states(self) -> None:
        """Publish ``rt/dex3/<side>/state`` for both hands."""
        if not self._started:
            return
        from unitree_sdk2py.idl.default import unitree_hg_msg_dds__HandState_

        for side in HAND_SIDES:
            h = self.world.hand_state(side)
            msg = unitree_hg_msg_dds__HandState_()
            for i in range(NUM_HAND_MOTORS):
                ms = msg.motor_state[i]
                ms.mode = i
                ms.q, ms.dq, ms.tau_est = float(h.q[i]), float(h.dq[i]), float(h.tau[i])
            self._hand_pubs[side].Write(msg)

    def publish_odometry(self) -> None:
        """Publish ``rt/odommodestate`` (unitree_go ``SportModeState_``) of the base."""
        if not self._started:
            return
        from unitree_sdk2py.idl.default import unitree_go_msg_dds__SportModeState_

        b = self.world.base_state()
        msg = unitree_go_msg_dds__SportModeState_()
        sec = int(b.stamp)
        msg.stamp.sec = sec
        msg.stamp.nanosec = int((b.stamp - sec) * 1e9)
        msg.mode = self._fsm_mode()
        msg.position = [float(v) for v in b.position]
        msg.body_height = float(b.position[2])
        msg.velocity = [float(v) for v in b.linear_world]
        msg.yaw_speed = float(b.angular_body[2])
        x, y, z, w = (float(v) for v in b.quat_xyzw)
        msg.imu_state.quaternion = [w, x, y, z]
        msg.imu_state.rpy = [0.0, 0.0, float(b.yaw)]
        msg.imu_state.gyroscope = [float(v) for v in b.angular_body]
        self._odom_pub.Write(msg)
