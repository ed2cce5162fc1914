"""Inverse kinematics for the UR5 TCP with pin-pink (differential IK as a QP, solved by ProxQP).

Each call moves the configuration from a seed towards one TCP pose by repeated pink steps: the
QP of a ``FrameTask`` on the TCP (pink's objective ``‖J Δq + e‖²`` plus its Tikhonov damping, as
``pink.build_ik`` assembles it) with time step 1, i.e. damped Gauss-Newton steps, and with the
joint limits and a per-step trust region as box constraints. Seeding every sample of a finely
interpolated tool path from the previous one keeps the solution on one IK branch.

The QP is solved by ProxQP (proxsuite, the backend qpsolvers would call) through one persistent
``proxqp.dense.QP``: the problem ``pink.solve_ik`` solves with a ``ConfigurationLimit``, at a
quarter of the cost per step (no per-call solver construction, no conversion of the box into
general inequalities), which matters at ~50-100 tool path samples per plan.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
import pink
from pink.tasks import FrameTask
import pinocchio as pin
from proxsuite import proxqp

from .kinematics import Ur5Kinematics


@dataclass(frozen=True)
class IkResult:
    """Outcome of one IK solve.

    Attributes:
        q: (6,) best configuration found (rad), within the joint limits.
        converged: the TCP is within the position and orientation tolerances of the target.
        position_error_m: remaining TCP position error (m).
        orientation_error_rad: remaining TCP orientation error (rad, angle of the rotation).
        iterations: pink steps taken.
        joints_at_limit: indices of joints that ended within 1 mrad of a limit.
    """

    q: np.ndarray
    converged: bool
    position_error_m: float
    orientation_error_rad: float
    iterations: int
    joints_at_limit: tuple[int, ...]


class PinkIk:
    """TCP pose → joint positions with pink, seeded by the caller. Not thread-safe."""

    def __init__(
        self,
        kinematics: Ur5Kinematics,
        lower_rad: np.ndarray,
        upper_rad: np.ndarray,
        position_tolerance_m: float = 0.001,
        orientation_tolerance_rad: float = 0.01,
        max_iterations: int = 20,
        max_step_rad: float = 0.5,
        damping: float = 1e-6,
    ) -> None:
        """Set up the pink configuration, the TCP task and the QP solver.

        Args:
            kinematics: the UR5 model with its ``tcp`` frame.
            lower_rad: (6,) lower joint limits the solution must respect (rad).
            upper_rad: (6,) upper joint limits (rad).
            position_tolerance_m: convergence tolerance on the TCP position (m).
            orientation_tolerance_rad: convergence tolerance on the TCP orientation (rad).
            max_iterations: pink steps per solve before giving up.
            max_step_rad: trust region: no joint moves more than this in one step (rad).
            damping: pink's Tikhonov damping of the QP (regularises near singularities).
        """
        self._kin = kinematics
        self._lower = np.asarray(lower_rad, dtype=float)
        self._upper = np.asarray(upper_rad, dtype=float)
        self._pos_tol = float(position_tolerance_m)
        self._rot_tol = float(orientation_tolerance_rad)
        self._cos_tol = math.cos(self._rot_tol)
        self._max_iter = int(max_iterations)
        self._max_step = float(max_step_rad)
        self._damping_eye = float(damping) * np.eye(kinematics.model.nv)
        self._task = FrameTask(Ur5Kinematics.TCP_FRAME, position_cost=1.0, orientation_cost=1.0)
        nv = kinematics.model.nv
        self._conf = pink.Configuration(
            kinematics.model, kinematics.model.createData(), np.zeros(kinematics.model.nq)
        )
        self._tcp = kinematics.tcp_frame_id
        self._qp = proxqp.dense.QP(nv, 0, 0, True)
        self._qp.settings.eps_abs = 1e-9
        self._qp_ready = False

    def _errors(self, position: np.ndarray, rotation: np.ndarray) -> tuple[float, float]:
        """TCP position error (m) and rotation angle error (rad) at the current configuration."""
        pose = self._conf.data.oMf[self._tcp]
        d = pose.translation - position
        cos = (float(np.vdot(rotation, pose.rotation)) - 1.0) * 0.5
        return math.sqrt(float(d @ d)), math.acos(max(-1.0, min(1.0, cos)))

    def _step(self) -> bool:
        conf = self._conf
        # The QP pink.build_ik would build for this single task (no pink limits: the joint
        # limits and the trust region are the box constraints below).
        hessian, linear = self._task.compute_qp_objective(conf)
        hessian = hessian + self._damping_eye
        q = conf.q
        lb = np.maximum(self._lower - q, -self._max_step)
        ub = np.minimum(self._upper - q, self._max_step)
        # The QP's unconstrained minimiser (the objective is strictly convex: damping > 0 or a
        # full-rank Jacobian) is its exact solution when it lies inside the box, i.e. no limit
        # and no trust-region bound is active: one 6×6 solve instead of a ProxQP call.
        try:
            step = np.linalg.solve(hessian, -linear)
        except np.linalg.LinAlgError:
            step = None
        if step is not None and np.all(step >= lb) and np.all(step <= ub):
            conf.integrate_inplace(step, 1.0)
            return True
        qp = self._qp
        if self._qp_ready:
            qp.update(hessian, linear, None, None, None, None, None, lb, ub)
        else:
            qp.init(hessian, linear, None, None, None, None, None, lb, ub)
            self._qp_ready = True
        qp.solve()
        if qp.results.info.status != proxqp.QPSolverOutput.PROXQP_SOLVED:
            return False
        conf.integrate_inplace(qp.results.x, 1.0)
        return True

    def solve(self, position: np.ndarray, rotation: np.ndarray, q_seed: np.ndarray) -> IkResult:
        """Move from ``q_seed`` to a configuration whose TCP is at the target pose.

        Args:
            position: (3,) target TCP position in the base frame (m).
            rotation: (3, 3) target TCP orientation base_R_tcp.
            q_seed: (6,) start configuration (rad), within the joint limits.

        Returns:
            The :class:`IkResult` (``converged`` False when the tolerances were not met within
            ``max_iterations`` steps, e.g. the pose is out of reach or blocked by a limit).
        """
        conf = self._conf
        conf.update(np.clip(np.asarray(q_seed, dtype=float), self._lower, self._upper))
        position = np.asarray(position, dtype=float)
        rotation = np.asarray(rotation, dtype=float)
        self._task.set_target(pin.SE3(rotation, position))
        dp, dr = math.inf, math.inf
        it = 0
        converged = False
        # Always step at least once: the planner's targets differ from the seed's pose.
        while it < self._max_iter:
            it += 1
            solved = self._step()
            dp, dr = self._errors(position, rotation)
            converged = dp <= self._pos_tol and dr <= self._rot_tol
            if converged or not solved:
                break
        q = np.clip(conf.q, self._lower, self._upper)
        at_limit: tuple[int, ...] = ()
        if not converged:
            near = (q - self._lower < 1e-3) | (self._upper - q < 1e-3)
            at_limit = tuple(int(j) for j in np.flatnonzero(near))
        return IkResult(
            q=q,
            converged=converged,
            position_error_m=dp,
            orientation_error_rad=dr,
            iterations=it,
            joints_at_limit=at_limit,
        )
