"""Hand-pose IK for the G1 with pin-pink: waist + one arm, joint limits, self-collision rows.

Design notes: docs/design-notes.md (trace_executor.g1.ik).
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
import pink
from pink.tasks import FrameTask
import pinocchio as pin
from proxsuite import proxqp

from .collision import BodyCollisionModel
from .kinematics import ARM, WAIST, G1Kinematics

MAX_ROWS = 32


@dataclass(frozen=True)
class IkResult:
    """Outcome of one IK solve.

    Attributes:
        q: (17,) best configuration found (rad), within the joint limits.
        converged: the grasp frame is within the position and tilt tolerances of the target.
        position_error_m: remaining position error (m).
        tilt_error_rad: remaining palm tilt error (rad; the hand's yaw is free within cost).
        yaw_error_rad: remaining hand yaw error (rad).
        iterations: pink steps taken.
        joints_at_limit: indices of joints that ended within 1 mrad of a limit.
    """

    q: np.ndarray
    converged: bool
    position_error_m: float
    tilt_error_rad: float
    yaw_error_rad: float
    iterations: int
    joints_at_limit: tuple[int, ...]


class HandIk:
    """Grasp-frame pose → upper-body joints with pink, seeded by the caller. Not thread-safe.

    Args:
        kinematics: the G1 model.
        collision: arm/torso distance constraints (``None``: no self-collision rows).
        lower_rad: (17,) lower limits the solution respects (rad).
        upper_rad: (17,) upper limits (rad).
        position_tolerance_m: convergence tolerance on the grasp point position (m).
        tilt_tolerance_rad: convergence tolerance on the palm tilt (rad).
        max_iterations: pink steps per solve.
        max_step_rad: trust region: no joint moves more than this in one step (rad).
        orientation_cost: pink orientation cost about the grasp frame's x, y, z axes.
        posture_cost_arm: weight of the posture term on arm joints.
        posture_cost_waist: weight of the posture term on waist joints.
        damping: Tikhonov damping of the QP.
    """

    def __init__(
        self,
        kinematics: G1Kinematics,
        collision: BodyCollisionModel | None,
        lower_rad: np.ndarray,
        upper_rad: np.ndarray,
        position_tolerance_m: float = 0.005,
        tilt_tolerance_rad: float = 0.25,
        max_iterations: int = 30,
        max_step_rad: float = 0.1,
        orientation_cost: tuple[float, float, float] = (0.3, 0.3, 0.05),
        posture_cost_arm: float = 0.002,
        posture_cost_waist: float = 0.01,
        damping: float = 1e-5,
    ) -> None:
        self.kin = kinematics
        self.collision = collision
        self.lower = np.asarray(lower_rad, dtype=float)
        self.upper = np.asarray(upper_rad, dtype=float)
        self.pos_tol = float(position_tolerance_m)
        self.tilt_tol = float(tilt_tolerance_rad)
        self.max_iter = int(max_iterations)
        self.max_step = float(max_step_rad)
        model = kinematics.model
        nv = model.nv
        self._conf = pink.Configuration(model, model.createData(), np.zeros(model.nq))
        self._tasks = {
            side: FrameTask(
                f'{side}_grasp', position_cost=1.0, orientation_cost=list(orientation_cost)
            )
            for side in ARM
        }
        w = np.full(nv, posture_cost_arm)
        w[WAIST] = posture_cost_waist
        self._posture_w2 = w * w
        self._damping = float(damping)
        # One persistent QP per number of active collision rows (ProxQP's sizes are fixed).
        self._qps: dict[int, proxqp.dense.QP] = {}
        self._eye = np.eye(nv)

    def _errors(self, side: str, target: pin.SE3) -> tuple[float, float, float]:
        pose = self._conf.data.oMf[self.kin.grasp_frame[side]]
        dp = float(np.linalg.norm(pose.translation - target.translation))
        # rotation error in the target frame: x, y = palm tilt, z = yaw about the vertical
        err = pin.log3(target.rotation.T @ pose.rotation)
        return dp, float(math.hypot(err[0], err[1])), float(abs(err[2]))

    def _step(self, side: str, movable: np.ndarray, q_ref: np.ndarray) -> bool:
        conf = self._conf
        h, c = self._tasks[side].compute_qp_objective(conf)
        q = conf.q
        h = h + np.diag(self._posture_w2) + self._damping * self._eye
        c = c - self._posture_w2 * (q_ref - q)
        lb = np.maximum(self.lower - q, -self.max_step)
        ub = np.minimum(self.upper - q, self.max_step)
        lb = np.where(movable, np.minimum(lb, 0.0), 0.0)
        ub = np.where(movable, np.maximum(ub, 0.0), 0.0)
        g, low = None, None
        if self.collision is not None:
            g, low = self.collision.constraint_rows(self.kin.model, conf.data, side)
            g, low = g[:MAX_ROWS], low[:MAX_ROWS]
        n_in = 0 if g is None else len(low)
        qp = self._qps.get(n_in)
        if qp is None:
            qp = self._qps[n_in] = proxqp.dense.QP(len(q), 0, n_in, True)
            qp.settings.eps_abs = 1e-8
            qp.settings.verbose = False
            qp.init(
                h,
                c,
                None,
                None,
                g if n_in else None,
                low if n_in else None,
                np.full(n_in, 1e20) if n_in else None,
                lb,
                ub,
            )
        else:
            qp.update(
                h,
                c,
                None,
                None,
                g if n_in else None,
                low if n_in else None,
                np.full(n_in, 1e20) if n_in else None,
                lb,
                ub,
            )
        qp.solve()
        if qp.results.info.status != proxqp.QPSolverOutput.PROXQP_SOLVED:
            return False
        conf.integrate_inplace(qp.results.x, 1.0)
        return True

    def solve(
        self,
        side: str,
        target: np.ndarray,
        q_seed: np.ndarray,
        q_ref: np.ndarray | None = None,
        use_waist: bool = True,
    ) -> IkResult:
        """Move from ``q_seed`` toward a grasp-frame pose of one hand.

        Args:
            side: ``'left'`` or ``'right'``: the hand to place (the other arm holds still).
            target: (4, 4) pelvis_T_grasp target.
            q_seed: (17,) start configuration (rad).
            q_ref: (17,) posture reference; ``None`` = ``q_seed``.
            use_waist: let the waist joints move.

        Returns:
            The :class:`IkResult`.
        """
        conf = self._conf
        q0 = np.clip(np.asarray(q_seed, dtype=float), self.lower, self.upper)
        conf.update(q0)
        ref = q0 if q_ref is None else np.asarray(q_ref, dtype=float)
        t = pin.SE3(np.asarray(target, dtype=float))
        self._tasks[side].set_target(t)
        movable = np.zeros(len(q0), dtype=bool)
        movable[ARM[side]] = True
        if use_waist:
            movable[WAIST] = True
        it, converged = 0, False
        dp = tilt = yaw = math.inf
        while it < self.max_iter:
            it += 1
            ok = self._step(side, movable, ref)
            prev = dp
            dp, tilt, yaw = self._errors(side, t)
            converged = dp <= self.pos_tol and tilt <= self.tilt_tol
            if not ok:
                break
            if converged and (dp <= 0.2 * self.pos_tol or dp > 0.9 * prev):
                break  # close enough, or no longer improving
            if not converged and it > 8 and dp > 0.98 * prev:
                break  # stuck: out of reach or against a limit
        q = np.clip(conf.q, self.lower, self.upper)
        at_limit: tuple[int, ...] = ()
        if not converged:
            near = movable & ((q - self.lower < 1e-3) | (self.upper - q < 1e-3))
            at_limit = tuple(int(j) for j in np.flatnonzero(near))
        return IkResult(q.copy(), converged, dp, tilt, yaw, it, at_limit)
