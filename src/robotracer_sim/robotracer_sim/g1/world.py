"""The simulated G1 room: MuJoCo physics, kinematic base, upper-body PD, hands and grasping.

Design notes: docs/design-notes.md (robotracer_sim.g1.world).
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import math
import threading

import mujoco
import numpy as np

from robotracer_sim.common.render import RgbdRenderer
from robotracer_sim.common.snapshot import object_snapshot
from robotracer_sim.g1.base import BaseLimits, KinematicBase
from robotracer_sim.g1.joints import (
    ALL_JOINTS,
    BODY_JOINTS,
    DEFAULT_HAND_KD,
    DEFAULT_HAND_KP,
    DEFAULT_KD,
    DEFAULT_KP,
    HAND_JOINTS,
    HAND_SIDES,
    NUM_BODY_JOINTS,
    NUM_HAND_MOTORS,
    UPPER_BODY_SLOTS,
    standing_pose_vector,
)
from robotracer_sim.g1.model import build_g1_model
from robotracer_sim.g1.scene import G1Scene
from robotracer_sim.oracle.geometry import (
    MJ_CAMERA_TO_OPTICAL,
    intrinsics_from_fovy,
    matrix_to_quat_xyzw,
    quat_xyzw_to_wxyz,
)
from robotracer_sim.oracle.scene import SceneObject, SceneSnapshot

log = logging.getLogger(__name__)

GRAVITY = 9.81
#: FSM ids of LocoClient.SetFsmId in which the robot neither walks nor follows arm_sdk.
PASSIVE_FSM = {0: 'zero torque', 1: 'damp'}
#: FSM ids in which the base does not walk (passive ones plus sit).
NO_WALK_FSM = {**PASSIVE_FSM, 3: 'sit'}
START_FSM = 200
#: Finger joints (Dex3 motor index) whose closing range defines the hand closure.
CLOSURE_MOTORS = np.array([2, 3, 4, 5, 6])
GRASP_CHECK_EVERY = 5  # physics steps between grasp-model checks (10 ms)
MAX_KP = 500.0
MAX_KD = 50.0
HELD_CONTYPE = 4  # collides with the room and other objects, not with the robot


@dataclass(frozen=True)
class BodyState:
    """What ``rt/lowstate`` reports, in the SDK's joint order (29 body joints)."""

    tick_ms: int  # milliseconds since the simulation started
    q: np.ndarray  # (29,) rad
    dq: np.ndarray  # (29,) rad/s
    ddq: np.ndarray  # (29,) rad/s^2
    tau: np.ndarray  # (29,) N m (actuator torque; 0 for the kinematic legs)
    quat_wxyz: np.ndarray  # pelvis orientation in the world
    gyro: np.ndarray  # pelvis angular velocity in the pelvis frame, rad/s
    accel: np.ndarray  # specific force in the pelvis frame, m/s^2 (≈ +9.81 z at rest)
    rpy: np.ndarray  # roll, pitch, yaw, rad


@dataclass(frozen=True)
class HandState:
    """What ``rt/dex3/<side>/state`` reports (Dex3 motor order)."""

    q: np.ndarray  # (7,) rad
    dq: np.ndarray  # (7,) rad/s
    tau: np.ndarray  # (7,) N m


@dataclass(frozen=True)
class BaseState:
    """The pelvis pose and twist (odometry)."""

    stamp: float  # simulation time, s
    position: np.ndarray  # (3,) pelvis origin in the world, m
    quat_xyzw: np.ndarray  # pelvis orientation in the world
    yaw: float  # rad
    linear_body: np.ndarray  # (3,) velocity in the pelvis frame, m/s
    linear_world: np.ndarray  # (3,) velocity in the world, m/s
    angular_body: np.ndarray  # (3,) rad/s


@dataclass(frozen=True)
class ObjectPose:
    """Ground-truth pose of a named object."""

    name: str
    position: np.ndarray  # (3,) world, m
    quat_xyzw: np.ndarray
    held_by: str | None  # 'left' / 'right' hand or None


class G1World:
    """The G1 room with its robot; thread-safe (one lock around model and data).

    Args:
        scene: the validated scene.
        base_limits: the kinematic base's limits.
        gravity_compensation: feed the links' gravity forward (see module docstring).

    Raises:
        FileNotFoundError: example-robot-data is missing.
        ValueError: the model could not be built.

    """

    def __init__(
        self,
        scene: G1Scene,
        base_limits: BaseLimits | None = None,
        gravity_compensation: bool = True,
    ) -> None:
        self.scene = scene
        self.lock = threading.RLock()
        self.model, self.info = build_g1_model(scene)
        if not gravity_compensation:
            self.model.body_gravcomp[:] = 0.0
        self.data = mujoco.MjData(self.model)
        self.base = KinematicBase(base_limits or BaseLimits())
        self.fsm_id = START_FSM
        self.balance_mode = 0
        self.stand_height = 0.0
        n_up = len(UPPER_BODY_SLOTS)
        self._stand = standing_pose_vector(BODY_JOINTS)
        # Upper-body command (waist + arms, slots 12..28), as last received.
        self._arm_weight = 0.0
        self._arm_q = self._stand[UPPER_BODY_SLOTS].copy()
        self._arm_dq = np.zeros(n_up)
        self._arm_tau = np.zeros(n_up)
        self._arm_kp = DEFAULT_KP[UPPER_BODY_SLOTS].copy()
        self._arm_kd = DEFAULT_KD[UPPER_BODY_SLOTS].copy()
        # Hand commands (Dex3 order), open by default.
        self._hand_q = {s: np.zeros(NUM_HAND_MOTORS) for s in HAND_SIDES}
        self._hand_dq = {s: np.zeros(NUM_HAND_MOTORS) for s in HAND_SIDES}
        self._hand_tau = {s: np.zeros(NUM_HAND_MOTORS) for s in HAND_SIDES}
        self._hand_kp = {s: np.full(NUM_HAND_MOTORS, DEFAULT_HAND_KP) for s in HAND_SIDES}
        self._hand_kd = {s: np.full(NUM_HAND_MOTORS, DEFAULT_HAND_KD) for s in HAND_SIDES}
        self._held: dict[str, str | None] = {s: None for s in HAND_SIDES}
        self._object_contype = {
            n: (self.model.geom_contype[g].copy(), self.model.geom_conaffinity[g].copy())
            for n, g in self.info.object_geoms.items()
        }
        self._hand_closed_end = {
            s: np.array(
                [
                    self._closing_end(self.info.joint_range[ALL_JOINTS.index(j)])
                    for j in HAND_JOINTS[s]
                ]
            )
            for s in HAND_SIDES
        }
        self._prev_dq = np.zeros(NUM_BODY_JOINTS)
        self._ddq = np.zeros(NUM_BODY_JOINTS)
        self.clamp_count = 0
        self.pelvis_height = 0.0
        self._leg_qpos = self.info.qpos[:12].copy()
        self._leg_dof = self.info.dof[:12].copy()
        self._body_dof = self.info.dof[:NUM_BODY_JOINTS].copy()
        self._stand_legs = self._stand[:12].copy()
        self._steps = 0
        self._servo_dirty = True
        self._closure = {s: 0.0 for s in HAND_SIDES}
        self.reset()

    # ------------------------------------------------------------------ setup

    @staticmethod
    def _closing_end(rng: np.ndarray) -> float:
        lo, hi = float(rng[0]), float(rng[1])
        return lo if abs(lo) > abs(hi) else hi

    def reset(self) -> None:
        """Put the robot at its start stance in the standing pose and the objects home."""
        with self.lock:
            m, d, info = self.model, self.data, self.info
            mujoco.mj_resetData(m, d)
            for side in HAND_SIDES:
                self._release(side)
            d.qpos[info.qpos[:NUM_BODY_JOINTS]] = self._stand
            x, y, yaw_deg = self.scene.robot.start
            self.base = KinematicBase(self.base.limits, x, y, math.radians(yaw_deg))
            # Pelvis height: feet (lowest points of the ankle links) on the floor.
            d.mocap_pos[info.pelvis_mocap] = [x, y, 0.0]
            d.mocap_quat[info.pelvis_mocap] = [1, 0, 0, 0]
            mujoco.mj_forward(m, d)
            self.pelvis_height = -self._lowest_foot_z()
            self._apply_base()
            mujoco.mj_forward(m, d)
            self._prev_dq[:] = 0.0

    def _lowest_foot_z(self) -> float:
        m, d = self.model, self.data
        zmin = math.inf
        for g in range(m.ngeom):
            if 'ankle_roll' not in m.body(int(m.geom_bodyid[g])).name:
                continue
            c, h = m.geom_aabb[g, :3], m.geom_aabb[g, 3:]
            corners = np.array(
                [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
            )
            local = c + corners * h
            world = local @ d.geom_xmat[g].reshape(3, 3).T + d.geom_xpos[g]
            zmin = min(zmin, float(world[:, 2].min()))
        return zmin

    # ------------------------------------------------------------------ commands

    def apply_arm_sdk(
        self,
        weight: float,
        q: np.ndarray,
        dq: np.ndarray,
        tau: np.ndarray,
        kp: np.ndarray,
        kd: np.ndarray,
    ) -> list[str]:
        """Take an ``rt/arm_sdk`` command (arrays over the 29 body slots; 12..28 are used).

        Args:
            weight: ``motor_cmd[29].q``; clamped to 0..1.
            q: target positions, rad.
            dq: target velocities, rad/s.
            tau: feed-forward torques, N m.
            kp: stiffnesses, N m/rad (clamped to 0..500).
            kd: dampings, N m s/rad (clamped to 0..50).

        Returns:
            One message per clamped value (weight, target beyond a joint limit, gain), naming
            the joint, the value and the limit; empty when nothing was clamped.

        Raises:
            ValueError: an array has the wrong length or a used value is not finite (the
                command is then ignored entirely).

        """
        arrays = {'q': q, 'dq': dq, 'tau': tau, 'kp': kp, 'kd': kd}
        up = {}
        for k, v in arrays.items():
            a = np.asarray(v, dtype=float)
            if a.shape[0] < NUM_BODY_JOINTS:
                raise ValueError(f'arm_sdk {k} has {a.shape[0]} entries, expected >= 29')
            sel = a[UPPER_BODY_SLOTS]
            bad = np.flatnonzero(~np.isfinite(sel))
            if bad.size:
                i = int(UPPER_BODY_SLOTS[bad[0]])
                raise ValueError(f'arm_sdk motor_cmd[{i}].{k} ({BODY_JOINTS[i]}) is {sel[bad[0]]}')
            up[k] = sel.copy()
        if not math.isfinite(weight):
            raise ValueError(f'arm_sdk weight motor_cmd[29].q is {weight}')
        notes = []
        w = min(1.0, max(0.0, float(weight)))
        if w != weight:
            notes.append(f'weight {weight:.3f} clamped to {w:.0f} (valid range 0..1)')
        rng = self.info.joint_range[UPPER_BODY_SLOTS]
        clamped = np.clip(up['q'], rng[:, 0], rng[:, 1])
        for i in np.flatnonzero(clamped != up['q']):
            slot = int(UPPER_BODY_SLOTS[i])
            notes.append(
                f'{BODY_JOINTS[slot]} (motor {slot}) target {up["q"][i]:.4f} rad clamped to '
                f'{clamped[i]:.4f} (limits {rng[i, 0]:.4f}..{rng[i, 1]:.4f})'
            )
        for k, hi in (('kp', MAX_KP), ('kd', MAX_KD)):
            c = np.clip(up[k], 0.0, hi)
            for i in np.flatnonzero(c != up[k]):
                slot = int(UPPER_BODY_SLOTS[i])
                notes.append(f'{BODY_JOINTS[slot]} {k} {up[k][i]:.3f} clamped to 0..{hi:.0f}')
            up[k] = c
        with self.lock:
            if notes:
                self.clamp_count += 1
            self._arm_weight = w
            self._arm_q = clamped
            self._arm_dq = up['dq']
            self._arm_tau = up['tau']
            self._arm_kp = up['kp']
            self._arm_kd = up['kd']
            self._servo_dirty = True
        return notes

    def apply_hand(
        self,
        side: str,
        q: np.ndarray,
        dq: np.ndarray,
        tau: np.ndarray,
        kp: np.ndarray,
        kd: np.ndarray,
    ) -> list[str]:
        """Take a Dex3 hand command (7 motors, Dex3 order).

        Args:
            side: ``'left'`` or ``'right'``.
            q: finger targets, rad.
            dq: target velocities, rad/s.
            tau: feed-forward torques, N m.
            kp: stiffnesses (clamped to 0..500).
            kd: dampings (clamped to 0..50).

        Returns:
            One message per target clamped to a finger joint limit.

        Raises:
            ValueError: unknown side, wrong length or a non-finite value.

        """
        if side not in HAND_SIDES:
            raise ValueError(f'unknown hand {side!r} (known: left, right)')
        vals = {}
        for k, v in {'q': q, 'dq': dq, 'tau': tau, 'kp': kp, 'kd': kd}.items():
            a = np.asarray(v, dtype=float).reshape(-1)
            if a.shape[0] != NUM_HAND_MOTORS:
                raise ValueError(f'{side} hand {k} has {a.shape[0]} entries, expected 7')
            if not np.all(np.isfinite(a)):
                raise ValueError(f'{side} hand {k} has a non-finite value: {a.tolist()}')
            vals[k] = a
        idx = [ALL_JOINTS.index(j) for j in HAND_JOINTS[side]]
        rng = self.info.joint_range[idx]
        qc = np.clip(vals['q'], rng[:, 0], rng[:, 1])
        notes = [
            f'{HAND_JOINTS[side][i]} target {vals["q"][i]:.4f} rad clamped to {qc[i]:.4f}'
            for i in np.flatnonzero(qc != vals['q'])
        ]
        with self.lock:
            if notes:
                self.clamp_count += 1
            self._hand_q[side] = qc
            self._hand_dq[side] = vals['dq']
            self._hand_tau[side] = vals['tau']
            self._hand_kp[side] = np.clip(vals['kp'], 0.0, MAX_KP)
            self._hand_kd[side] = np.clip(vals['kd'], 0.0, MAX_KD)
            self._servo_dirty = True
        return notes

    def set_base_velocity(
        self, vx: float, vy: float, wz: float, duration: float
    ) -> tuple[np.ndarray | None, list[str]]:
        """Command the base (``LocoClient.SetVelocity``).

        Args:
            vx: forward, m/s.
            vy: left, m/s.
            wz: yaw rate, rad/s.
            duration: seconds the command holds.

        Returns:
            The applied command (``None`` when ignored because the FSM state does not walk)
            and messages about clamping or ignoring.

        Raises:
            ValueError: non-finite values or a non-positive duration.

        """
        with self.lock:
            if self.fsm_id in NO_WALK_FSM:
                return None, [
                    f'velocity command ignored: FSM {self.fsm_id} '
                    f'({NO_WALK_FSM[self.fsm_id]}) does not walk; call Start() (FSM {START_FSM})'
                ]
            applied, notes = self.base.command(vx, vy, wz, duration, self.data.time)
            return applied, notes

    def set_fsm(self, fsm_id: int) -> None:
        """Switch the locomotion FSM (``LocoClient.SetFsmId``: 1 Damp, 200 Start, ...).

        Passive states (0 zero torque, 1 damp) stop the base at once and make the upper body
        passive; sit (3) stops the base; any other id walks and follows arm_sdk.
        """
        with self.lock:
            self.fsm_id = int(fsm_id)
            self._servo_dirty = True
            if self.fsm_id in NO_WALK_FSM:
                self.base.halt() if self.fsm_id in PASSIVE_FSM else self.base.stop()

    # ------------------------------------------------------------------ simulation

    def step(self, n: int = 1) -> None:
        """Advance the simulation by ``n`` physics steps (2 ms each)."""
        with self.lock:
            for _ in range(n):
                self._step_once()

    def _apply_base(self) -> None:
        d, info = self.data, self.info
        x, y, yaw = self.base.pose
        d.mocap_pos[info.pelvis_mocap] = [x, y, self.pelvis_height]
        d.mocap_quat[info.pelvis_mocap] = [math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]

    def _step_once(self) -> None:
        m, d = self.model, self.data
        dt = m.opt.timestep
        if self.base.active:
            self.base.update(dt, d.time + dt)
            self._apply_base()
        # Legs: held kinematically in the standing pose.
        d.qpos[self._leg_qpos] = self._stand_legs
        d.qvel[self._leg_dof] = 0.0
        if self._servo_dirty:
            self._update_servos()
        self._steps += 1
        if self._steps % GRASP_CHECK_EVERY == 0:
            self._update_grasps()
        mujoco.mj_step(m, d)
        dq = d.qvel[self._body_dof]
        self._ddq = (dq - self._prev_dq) / dt
        self._prev_dq = dq

    def _update_servos(self) -> None:
        """Write the PD targets and gains of every servo (when a command or the FSM changed)."""
        m, d = self.model, self.data
        passive = self.fsm_id in PASSIVE_FSM
        # Waist + arms: blend standing controller and arm_sdk.
        w = 0.0 if passive else self._arm_weight
        stand = self._stand[UPPER_BODY_SLOTS]
        q_t = (1 - w) * stand + w * self._arm_q
        kp = (1 - w) * DEFAULT_KP[UPPER_BODY_SLOTS] + w * self._arm_kp
        kd = (1 - w) * DEFAULT_KD[UPPER_BODY_SLOTS] + w * self._arm_kd
        dq_t = w * self._arm_dq
        ff = w * self._arm_tau
        if passive:
            kp = np.zeros_like(kp)
            kd = kd if self.fsm_id == 1 else np.zeros_like(kd)
        sides = HAND_SIDES
        kp_all = np.concatenate([kp, *(self._hand_kp[s] for s in sides)])
        kd_all = np.concatenate([kd, *(self._hand_kd[s] for s in sides)])
        dq_all = np.concatenate([dq_t, *(self._hand_dq[s] for s in sides)])
        ff_all = np.concatenate([ff, *(self._hand_tau[s] for s in sides)])
        act = self.info.actuators
        m.actuator_gainprm[act, 0] = kp_all
        m.actuator_biasprm[act, 0] = kd_all * dq_all + ff_all
        m.actuator_biasprm[act, 1] = -kp_all
        m.actuator_biasprm[act, 2] = -kd_all
        d.ctrl[act] = np.concatenate([q_t, *(self._hand_q[s] for s in sides)])
        self._closure = {s: self._closure_of(s) for s in sides}
        self._servo_dirty = False

    # ------------------------------------------------------------------ grasping

    def hand_closure(self, side: str) -> float:
        """Commanded finger closure of a hand, 0 (open) .. 1 (fist)."""
        with self.lock:
            return self._closure_of(side)

    def _closure_of(self, side: str) -> float:
        frac = self._hand_q[side][CLOSURE_MOTORS] / self._hand_closed_end[side][CLOSURE_MOTORS]
        return float(np.clip(frac, 0.0, 1.0).mean())

    def _grasp_point(self, side: str) -> np.ndarray:
        return self.data.site_xpos[self.info.grasp_sites[side]].copy()

    def _surface_distance(self, name: str, p: np.ndarray) -> float:
        d = self.data
        b = self.info.object_bodies[name]
        local = d.xmat[b].reshape(3, 3).T @ (p - d.xpos[b])
        half = self.scene.object(name).half_extents
        return float(np.linalg.norm(np.maximum(np.abs(local) - half, 0.0)))

    def _update_grasps(self) -> None:
        r = self.scene.robot
        for side in HAND_SIDES:
            c = self._closure[side]
            held = self._held[side]
            if held is None and c >= r.close_threshold:
                p = self._grasp_point(side)
                taken = {h for h in self._held.values() if h}
                best, best_d = None, math.inf
                for name in self.scene.names:
                    if name in taken:
                        continue
                    dist = self._surface_distance(name, p)
                    if dist < best_d:
                        best, best_d = name, dist
                if best is not None and best_d <= r.grasp_distance:
                    self._attach(side, best)
            elif held is not None and c <= r.open_threshold:
                self._release(side)

    def _attach(self, side: str, name: str) -> None:
        m, d, info = self.model, self.data, self.info
        b_obj, b_palm = info.object_bodies[name], info.palm_bodies[side]
        eq = info.welds[(side, name)]
        # relpose: body2 (palm) in body1 (object) frame, so the weld holds the current pose.
        r1 = d.xmat[b_obj].reshape(3, 3)
        rel_pos = r1.T @ (d.xpos[b_palm] - d.xpos[b_obj])
        q1_inv = np.zeros(4)
        mujoco.mju_negQuat(q1_inv, d.xquat[b_obj])
        rel_q = np.zeros(4)
        mujoco.mju_mulQuat(rel_q, q1_inv, d.xquat[b_palm])
        m.eq_data[eq, 0:3] = 0.0
        m.eq_data[eq, 3:6] = rel_pos
        m.eq_data[eq, 6:10] = rel_q
        m.eq_data[eq, 10] = 1.0
        d.eq_active[eq] = 1
        geoms = info.object_geoms[name]
        m.geom_contype[geoms] = HELD_CONTYPE
        m.geom_conaffinity[geoms] = 1
        self._held[side] = name
        log.info('%s hand grasped %s', side, name)

    def _release(self, side: str) -> None:
        name = self._held.get(side)
        if name is None:
            return
        info = self.info
        self.data.eq_active[info.welds[(side, name)]] = 0
        ct, ca = self._object_contype[name]
        self.model.geom_contype[info.object_geoms[name]] = ct
        self.model.geom_conaffinity[info.object_geoms[name]] = ca
        self._held[side] = None
        log.info('%s hand released %s', side, name)

    def grasp_state(self) -> dict[str, str | None]:
        """Which object each hand holds (``None`` = nothing)."""
        with self.lock:
            return dict(self._held)

    # ------------------------------------------------------------------ state

    @property
    def time(self) -> float:
        """Simulation time, s."""
        return float(self.data.time)

    @property
    def arm_weight(self) -> float:
        """The arm_sdk weight in force (0 while the FSM is passive)."""
        return 0.0 if self.fsm_id in PASSIVE_FSM else self._arm_weight

    def body_state(self) -> BodyState:
        """Joint and IMU state of the 29 body joints (what ``rt/lowstate`` carries)."""
        with self.lock:
            d, info = self.data, self.info
            idx = slice(0, NUM_BODY_JOINTS)
            q = d.qpos[info.qpos[idx]].copy()
            dq = d.qvel[info.dof[idx]].copy()
            tau = np.zeros(NUM_BODY_JOINTS)
            tau[12:] = d.actuator_force[info.actuators[: NUM_BODY_JOINTS - 12]]
            yaw = float(self.base.pose[2])
            c, s = math.cos(yaw), math.sin(yaw)
            a_world = np.array([*self.base.world_accel, GRAVITY])
            r_t = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])  # world -> pelvis
            return BodyState(
                tick_ms=int(round(d.time * 1000.0)) & 0xFFFFFFFF,
                q=q,
                dq=dq,
                ddq=self._ddq.copy(),
                tau=tau,
                quat_wxyz=np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]),
                gyro=np.array([0.0, 0.0, self.base.velocity[2]]),
                accel=r_t @ a_world,
                rpy=np.array([0.0, 0.0, yaw]),
            )

    def hand_state(self, side: str) -> HandState:
        """Finger state of one hand (Dex3 order)."""
        with self.lock:
            d, info = self.data, self.info
            off = NUM_BODY_JOINTS + (0 if side == 'left' else NUM_HAND_MOTORS)
            sl = slice(off, off + NUM_HAND_MOTORS)
            act = info.actuators[off - 12 : off - 12 + NUM_HAND_MOTORS]
            return HandState(
                q=d.qpos[info.qpos[sl]].copy(),
                dq=d.qvel[info.dof[sl]].copy(),
                tau=d.actuator_force[act].copy(),
            )

    def joint_state(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
        """All 43 joints: names, positions (rad), velocities (rad/s), efforts (N m)."""
        with self.lock:
            d, info = self.data, self.info
            eff = np.zeros(len(ALL_JOINTS))
            eff[12:] = d.actuator_force[info.actuators]
            return ALL_JOINTS, d.qpos[info.qpos].copy(), d.qvel[info.dof].copy(), eff

    def base_state(self) -> BaseState:
        """Pelvis pose and twist in the world (= odometry) frame."""
        with self.lock:
            x, y, yaw = self.base.pose
            vb = self.base.velocity
            vw = self.base.world_velocity()
            return BaseState(
                stamp=self.time,
                position=np.array([x, y, self.pelvis_height]),
                quat_xyzw=np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]),
                yaw=float(yaw),
                linear_body=np.array([vb[0], vb[1], 0.0]),
                linear_world=np.array([vw[0], vw[1], 0.0]),
                angular_body=np.array([0.0, 0.0, vb[2]]),
            )

    def object_poses(self, names: list[str] | tuple[str, ...] = ()) -> list[ObjectPose]:
        """Ground-truth poses of objects (all when ``names`` is empty).

        Raises:
            KeyError: an unknown name (the message lists the known ones).

        """
        for n in names:
            if n not in self.info.object_bodies:
                raise KeyError(f'unknown object {n!r} (known: {", ".join(self.scene.names)})')
        with self.lock:
            held = {v: k for k, v in self._held.items() if v}
            out = []
            for n in names or self.scene.names:
                b = self.info.object_bodies[n]
                q = self.data.xquat[b]
                out.append(
                    ObjectPose(
                        n,
                        self.data.xpos[b].copy(),
                        np.array([q[1], q[2], q[3], q[0]]),
                        held.get(n),
                    )
                )
            return out

    def set_object_pose(self, name: str, position, quat_xyzw) -> None:
        """Teleport an object (at rest) to a pose.

        Raises:
            KeyError: unknown object.
            ValueError: the object is held by a hand, or the pose is invalid.

        """
        if name not in self.info.object_bodies:
            raise KeyError(f'unknown object {name!r} (known: {", ".join(self.scene.names)})')
        p = np.asarray(position, dtype=float).reshape(-1)
        q = np.asarray(quat_xyzw, dtype=float).reshape(-1)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise ValueError(f'position must be 3 finite numbers, got {p.tolist()}')
        n = float(np.linalg.norm(q)) if q.shape == (4,) else 0.0
        if not math.isfinite(n) or n < 1e-6:
            raise ValueError(f'orientation must be a non-zero quaternion (x, y, z, w), got {q}')
        with self.lock:
            holder = [s for s, h in self._held.items() if h == name]
            if holder:
                raise ValueError(
                    f'{name} is held by the {holder[0]} hand; open the hand before moving it'
                )
            a = self.info.object_qpos[name]
            self.data.qpos[a : a + 3] = p
            self.data.qpos[a + 3 : a + 7] = quat_xyzw_to_wxyz(q / n)
            v = self.info.object_dof[name]
            self.data.qvel[v : v + 6] = 0.0
            mujoco.mj_forward(self.model, self.data)

    def snapshot(self, t_world_camera: np.ndarray | None = None) -> SceneSnapshot:
        """Ground truth for the oracle: objects now (and the tables), seen from the head camera.

        Args:
            t_world_camera: the camera pose to answer for (e.g. that of the last published
                frame, since the camera moves with the robot); the current pose when None.

        Returns:
            The snapshot (objects, camera pose, intrinsics, image size, time, frame).

        """
        with self.lock:
            held = {v for v in self._held.values() if v}
            objs = []
            for o in self.scene.objects:
                b = self.info.object_bodies[o.name]
                r = self.data.xmat[b].reshape(3, 3).copy()
                objs.append(object_snapshot(o, self.data.xpos[b].copy(), r, o.name in held))
            for t in self.scene.tables:  # static destinations ("on the far table")
                objs.append(
                    SceneObject(
                        name=t.name,
                        color=t.color,
                        shape='table',
                        position=np.array([*t.center, t.height - t.thickness / 2]),
                        rotation=np.eye(3),
                        half_extents=np.array([t.size[0] / 2, t.size[1] / 2, t.thickness / 2]),
                        support_offset=t.thickness / 2,
                    )
                )
            pose = self.camera_pose() if t_world_camera is None else np.asarray(t_world_camera)
            c = self.scene.camera
            return SceneSnapshot(
                objects=tuple(objs),
                t_world_camera=pose.copy(),
                k=self.camera_intrinsics(),
                width=c.width,
                height=c.height,
                stamp=self.time,
                frame_id=self.scene.world_frame,
            )

    # ------------------------------------------------------------------ camera

    def camera_intrinsics(self) -> np.ndarray:
        """3×3 pinhole intrinsics of the head camera."""
        c = self.scene.camera
        return intrinsics_from_fovy(c.width, c.height, c.fovy_deg)

    def camera_pose(self) -> np.ndarray:
        """4×4 optical frame (x right, y down, z forward) → world transform, now."""
        with self.lock:
            cam = self.info.camera
            t = np.eye(4)
            t[:3, :3] = self.data.cam_xmat[cam].reshape(3, 3) @ MJ_CAMERA_TO_OPTICAL
            t[:3, 3] = self.data.cam_xpos[cam]
            return t


class HeadCamera:
    """Offscreen renderer of the head camera: RGB and metric depth from one render pass.

    A :class:`~robotracer_sim.common.render.RgbdRenderer` on the head camera; only the scene
    update holds the world lock, rendering runs while physics goes on.

    Args:
        world: the world to look at.

    Raises:
        RuntimeError: no OpenGL context (set ``MUJOCO_GL=egl``).

    """

    def __init__(self, world: G1World) -> None:
        self.world = world
        c = world.scene.camera
        self.width, self.height, self.depth_max = c.width, c.height, c.depth_max
        self._renderer = RgbdRenderer(
            world.model, world.info.camera, c.width, c.height, c.depth_max, max_geoms=10000
        )

    def capture(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Render the current view.

        Returns:
            ``(rgb, depth, t_world_camera, stamp)``: (H, W, 3) uint8, (H, W) float32 z-depth
            in metres (0 where nothing is within ``depth_max``), the optical frame pose at
            the time of the render and the simulation time.

        """
        w = self.world
        with w.lock:
            self._renderer.update(w.data)
            stamp = w.time
            pose = w.camera_pose()
        rgb, depth = self._renderer.render()
        return rgb, depth, pose, stamp

    def close(self) -> None:
        """Free the OpenGL resources."""
        self._renderer.close()


def camera_quat_xyzw(t_world_camera: np.ndarray) -> np.ndarray:
    """Quaternion ``(x, y, z, w)`` of a 4×4 pose's rotation."""
    return matrix_to_quat_xyzw(t_world_camera[:3, :3])
