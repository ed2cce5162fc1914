"""``robotracer eval --world g1 --execute``: a G1 plan carried out in process on ``G1World``.

Design notes: docs/design-notes.md (robotracer_eval.g1_execute).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

CONTROL_S = 0.02  # s, the arm_sdk period (50 Hz)
PHYSICS_S = 0.002  # s, one G1World physics step
WALK_PERIOD_S = 0.05  # s, the backend's walk control period (walk_rate_hz 20)
VELOCITY_HOLD_S = 0.5  # s, duration of each SetVelocity (UnitreeConfig.velocity_hold_s)
WALK_TIMEOUT_S = 15.0  # s, beyond twice the nominal duration (UnitreeConfig.walk_timeout_s)
HAND_KP, HAND_KD = 1.5, 0.1  # Dex3 finger gains (UnitreeConfig)


class G1InProcess:
    """Run :class:`~trace_executor.g1.plan_types.G1Plan` segments on a ``G1World``.

    Args:
        world: the simulated robot (stepped by this class only).
        params: the ``g1_executor`` parameters (gains, ramps, walk limits).
        kinematics: the planner's :class:`~trace_executor.g1.kinematics.G1Kinematics` (the
            closed Dex3 finger positions).
    """

    def __init__(self, world: Any, params: dict[str, Any], kinematics: Any) -> None:
        from trace_executor.g1.walk import WalkLimits

        self.world = world
        self.kin = kinematics
        p = params
        self.kp = np.array([p.get('kp_waist', 200.0)] * 3 + [p.get('kp_arm', 60.0)] * 14)
        self.kd = np.array([p.get('kd_waist', 5.0)] * 3 + [p.get('kd_arm', 1.5)] * 14)
        self.ramp_in_s = float(p.get('ramp_in_s', 1.0))
        self.ramp_out_s = float(p.get('ramp_out_s', 1.0))
        self.walk_limits = WalkLimits(
            max_speed_m_s=p.get('max_walk_speed_m_s', 0.5),
            max_yaw_rate_rad_s=p.get('max_yaw_rate_rad_s', 1.0),
            position_tolerance_m=p.get('walk_position_tolerance_m', 0.03),
            yaw_tolerance_rad=p.get('walk_yaw_tolerance_rad', 0.05),
        )
        self.weight = 0.0
        self.q_cmd: np.ndarray | None = None
        self.hands = {s: np.zeros(7) for s in ('left', 'right')}

    # --- state -----------------------------------------------------------------------------
    def tick(self, seconds: float = CONTROL_S) -> None:
        """Advance the physics by ``seconds``."""
        self.world.step(max(1, int(round(seconds / PHYSICS_S))))

    def upper_body(self) -> np.ndarray:
        """(17,) measured waist + arm joints (the planner's order = SDK slots 12..28)."""
        return self.world.body_state().q[12:29].copy()

    def state(self) -> np.ndarray:
        """The planner's state vector: pelvis ``[x, y, z, yaw]`` in odom + 17 joints."""
        from trace_executor.g1.plan_types import pack_state

        b = self.world.base_state()
        return pack_state((*b.position, b.yaw), self.upper_body())

    def holding(self) -> str | None:
        """The hand the simulator's grasp model says holds an object."""
        return next((s for s, h in self.world.grasp_state().items() if h), None)

    # --- commands --------------------------------------------------------------------------
    def _send(self, q: np.ndarray, dq: np.ndarray | None = None) -> None:
        full = np.zeros((5, 29))
        full[0, 12:] = q
        if dq is not None:
            full[1, 12:] = dq
        full[3, 12:], full[4, 12:] = self.kp, self.kd
        self.world.apply_arm_sdk(self.weight, *full)
        self.q_cmd = np.asarray(q, dtype=float).copy()

    def _hand(self, side: str, q: np.ndarray) -> None:
        self.hands[side] = q
        z = np.zeros(7)
        self.world.apply_hand(side, q, z, z, np.full(7, HAND_KP), np.full(7, HAND_KD))

    def _ramp_hand(self, side: str, target: np.ndarray, ramp_s: float, total_s: float) -> None:
        lo, hi = self.kin.finger_lower_rad[side], self.kin.finger_upper_rad[side]
        target = np.clip(target, lo, hi)
        q0 = self.hands[side].copy()
        ramp = max(1, int(round(ramp_s / CONTROL_S)))
        for i in range(max(1, int(round(total_s / CONTROL_S)))):
            self._hand(side, q0 + (target - q0) * min(1.0, (i + 1) / ramp))
            self.tick()

    def walk(self, seg: Any) -> str:
        """Walk to ``seg.goal`` (odom) in closed loop; '' when there, else why not."""
        from trace_executor.g1.walk import walk_command

        w = self.world
        t_end = w.time + 2.0 * float(seg.duration_s) + WALK_TIMEOUT_S
        goal = tuple(float(v) for v in seg.goal)
        while w.time < t_end:
            b = w.base_state()
            (vx, vy, wz), reached, dist = walk_command(
                (b.position[0], b.position[1], b.yaw), goal, self.walk_limits
            )
            if reached:
                w.set_base_velocity(0.0, 0.0, 0.0, 1.0)  # StopMove
                for _ in range(30):  # wait (≤ 1.5 s) for the base to be still
                    self.tick(WALK_PERIOD_S)
                    if not np.any(np.abs(w.base.velocity) > 1e-4):
                        break
                return ''
            w.set_base_velocity(vx, vy, wz, VELOCITY_HOLD_S)
            self.tick(WALK_PERIOD_S)
        w.set_base_velocity(0.0, 0.0, 0.0, 1.0)
        return f'walk to ({goal[0]:.2f}, {goal[1]:.2f}) timed out {dist:.2f} m away'

    def motion(self, seg: Any) -> str:
        """Follow an upper-body trajectory (weight ramped in first); ''."""
        qs = np.asarray(seg.positions_rad, dtype=float)
        dqs = np.asarray(seg.velocities_rad_s, dtype=float)
        if self.weight < 1.0:  # ramp in holding the first sample
            n = max(1, int(round(self.ramp_in_s / CONTROL_S)))
            w0 = self.weight
            for i in range(n):
                self.weight = w0 + (1.0 - w0) * (i + 1) / n
                self._send(qs[0])
                self.tick()
        times = np.asarray(seg.times_s, dtype=float)
        for t in np.arange(0.0, times[-1] + 1e-9, CONTROL_S):
            k = min(int(np.searchsorted(times, t - 1e-9)), len(times) - 1)
            self._send(qs[k], dqs[k])
            self.tick()
        self._send(qs[-1])
        self.tick(0.3)  # settle, as the backend's stop_s
        return ''

    def release_arms(self) -> str:
        """Ramp the arm_sdk weight out (the standing controller takes the arms); ''."""
        q = self.q_cmd if self.q_cmd is not None else self.upper_body()
        n = max(1, int(round(self.ramp_out_s / CONTROL_S)))
        w0 = self.weight
        for i in range(n):
            self.weight = w0 * (1.0 - (i + 1) / n)
            self._send(q)
            self.tick()
        return ''

    def gripper(self, seg: Any) -> str:
        """Close or open a Dex3 hand as the backend ramps it; '' or why the grasp missed."""
        side, d = seg.side, float(seg.duration_s)
        closed = self.kin.finger_closed_rad[side]
        if seg.close:
            self._ramp_hand(side, closed * float(seg.closure), 0.6 * d, d)
            if self.world.grasp_state()[side] is None:
                return f'the {side} hand closed on nothing'
            return ''
        mid = closed * float(seg.release_closure)
        self._ramp_hand(side, mid, 0.5 * d, d)  # open gently while still holding
        self._ramp_hand(side, np.zeros(7), 0.1, 0.1 + 0.5 * d)
        return ''

    def run(self, seg: Any) -> str:
        """One plan segment; '' when done, else why it failed."""
        from trace_executor.g1.plan_types import ArmMotion, ArmRelease, HandSegment, WalkSegment

        if isinstance(seg, WalkSegment):
            return self.walk(seg)
        if isinstance(seg, ArmMotion):
            return self.motion(seg)
        if isinstance(seg, HandSegment):
            return self.gripper(seg)
        if isinstance(seg, ArmRelease):
            return self.release_arms()
        return f'unknown segment {type(seg).__name__}'

    def rest(self) -> None:
        """Hands open and arm_sdk weight out at once (before the next episode's reset)."""
        for side in self.hands:
            self._hand(side, np.zeros(7))
        self.weight = 0.0
        self._send(self.q_cmd if self.q_cmd is not None else self.upper_body())
        self.q_cmd = None


def execute_g1(
    scenes: Any,
    trace_world: np.ndarray,
    target: str,
    goal_world: np.ndarray,
    perceive: Callable[[], np.ndarray | None] | None = None,
) -> dict[str, Any]:
    """Have the simulated G1 carry out a trace (pick and place), as the executor plans it.

    Args:
        scenes: :class:`~robotracer_eval.sim_scenes.G1Scenes` (its ``world``).
        trace_world: (N, 3) object-centre trace in the world (= odom) frame.
        target: the object's name.
        goal_world: (3,) where its centre must end.
        perceive: ask the model again from the robot's current stance (world trace, or None
            when no usable answer); used after a plan cut at a look-again walk.

    Returns:
        ``executed`` (a plan was made and run), ``success`` (the object's centre ends within
        :data:`~robotracer_eval.execute.EXECUTE_TOLERANCE_M` of the goal),
        ``final_error_m``, ``reason``, ``walks`` (walk segments run), ``replans``.
    """
    from robotracer_eval.execute import executor_parameters, run_result
    from trace_executor.errors import PlanningError
    from trace_executor.g1.plan_types import WalkSegment
    from trace_executor.g1.planner import G1Planner
    from trace_executor.nodes.g1_parameters import planner_config

    if getattr(scenes, 'planner', None) is None:
        scenes.g1_params = executor_parameters('g1.yaml', 'g1_executor')
        scenes.planner = G1Planner(planner_config(scenes.g1_params))  # the node's mapping
    p = scenes.g1_params
    planner = scenes.planner
    robot = G1InProcess(scenes.world, p, planner.kinematics)
    speed = float(p.get('default_speed_scale', 0.5))
    max_replans = int(p.get('max_replans', 3))
    trace = np.asarray(trace_world, dtype=float)
    reason, walks, replans, executed = '', 0, 0, False
    try:
        while True:
            holding = robot.holding() is not None
            try:
                plan = planner.plan(
                    trace, robot.state(), mode='pick_place', speed_scale=speed, holding=holding
                )
            except PlanningError as exc:
                reason = str(exc)
                break
            executed = True
            looked = False
            for seg in plan.segments:
                walks += isinstance(seg, WalkSegment)
                reason = robot.run(seg)
                if reason:
                    break
                if isinstance(seg, WalkSegment) and seg.look_again and replans < max_replans:
                    looked = True  # perceive again from here and plan the rest anew
                    break
            if reason or not looked:
                break
            replans += 1
            again = perceive() if perceive is not None else None
            if again is not None:
                trace = np.asarray(again, dtype=float)
            elif robot.holding() is not None:
                reason = 'no usable answer from the new stance while holding the object'
                break
            # else: nothing touched yet, the trace (odom) still holds: plan it from here
        if executed:
            robot.tick(0.5)  # let the object settle
    finally:
        robot.rest()
    if not executed:
        return {
            'executed': False,
            'success': False,
            'final_error_m': None,
            'reason': reason,
            'walks': 0,
            'replans': 0,
        }
    final = scenes.world.object_poses([target])[0].position
    return {
        **run_result(final, goal_world, reason),
        'walks': walks,
        'replans': replans,
    }
