"""Inverse kinematics for the UR5 TCP: closed form (vectorised, :mod:`.closed_form`), or pin-pink.

Design notes: docs/design-notes.md (trace_executor.ur5.ik).
"""

from __future__ import annotations

from dataclasses import dataclass
import enum
import math

import numpy as np
import pink
from pink.tasks import FrameTask
import pinocchio as pin
from proxsuite import proxqp

from . import closed_form
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


_TWO_PI = 2.0 * math.pi


class IkFailure(enum.Enum):
    """Why a tool path sample has no usable IK solution."""

    UNREACHABLE = 'unreachable'  # no solution: out of reach or a degenerate pose
    INACCURATE = 'inaccurate'  # the closed form missed the pose (near a singularity)
    JOINT_LIMIT = 'joint_limit'  # the path's branch needs a joint beyond its limits


@dataclass(frozen=True)
class PathIkResult:
    """Outcome of solving a whole tool path (see :meth:`AnalyticIk.solve_path`).

    Attributes:
        q: (M, 6) joint positions (rad); ``q[0]`` is the seed. Rows from ``failed_at`` on are
            undefined.
        failed_at: index of the first sample that could not be solved, else None.
        reason: why ``failed_at`` failed (:class:`IkFailure`), else None.
        joint: for ``JOINT_LIMIT``, the joint index.
        position_error_m: for ``INACCURATE``, the TCP position error of the best solution (m).
        orientation_error_rad: for ``INACCURATE``, its orientation error (rad).
    """

    q: np.ndarray
    failed_at: int | None = None
    reason: IkFailure | None = None
    joint: int = -1
    position_error_m: float = 0.0
    orientation_error_rad: float = 0.0


class AnalyticIk:
    """Closed-form UR5 IK of the ``tcp`` frame, branch kept from sample to sample (see module).

    Not thread-safe only in the sense of sharing the model's data; the solver keeps no state.
    """

    def __init__(
        self,
        kinematics: Ur5Kinematics,
        lower_rad: np.ndarray,
        upper_rad: np.ndarray,
        position_tolerance_m: float = 0.001,
        orientation_tolerance_rad: float = 0.01,
        robot: str = 'ur5',
    ) -> None:
        """Read the frame transforms from the model and check them against the closed form.

        Args:
            kinematics: the UR5 model with its ``tcp`` frame.
            lower_rad: (6,) lower joint limits the solutions must respect (rad).
            upper_rad: (6,) upper joint limits (rad).
            position_tolerance_m: a solution must put the TCP this close to the target (m).
            orientation_tolerance_rad: ... and its orientation this close (rad).
            robot: the UR model whose DH table to use (``ur5``, ``ur5e``, ...).

        Raises:
            ValueError: if the URDF's kinematics differ from that model's DH parameters (the
                closed form would solve another robot), or the robot is unknown.
        """
        dh = closed_form.UR_DH.get(robot)
        if dh is None:
            raise ValueError(
                f'no DH parameters for {robot!r} (known: {", ".join(closed_form.UR_DH)})'
            )
        self._dh = dh
        self._lower = np.asarray(lower_rad, dtype=float)
        self._upper = np.asarray(upper_rad, dtype=float)
        self._pos_tol = float(position_tolerance_m)
        self._rot_tol = float(orientation_tolerance_rad)
        model = kinematics.model
        data = model.createData()
        tool0 = model.getFrameId('tool0')
        q_zero = pin.neutral(model)
        pin.framesForwardKinematics(model, data, q_zero)
        world_t_tool0 = data.oMf[tool0].homogeneous
        world_t_tcp = data.oMf[kinematics.tcp_frame_id].homogeneous
        #: tcp_T_tool0: from a TCP target to the flange target
        self._tcp_t_tool0 = np.linalg.inv(world_t_tcp) @ world_t_tool0
        # DH base in the model's world frame, from one configuration, then verified on others
        self._world_t_dh = world_t_tool0 @ np.linalg.inv(closed_form.forward(dh, q_zero))
        self._dh_t_world = np.linalg.inv(self._world_t_dh)
        rng = np.random.default_rng(0)
        for q in rng.uniform(-math.pi, math.pi, (8, 6)):
            pin.framesForwardKinematics(model, data, q)
            ours = self._world_t_dh @ closed_form.forward(dh, q)
            err = float(np.abs(ours - data.oMf[tool0].homogeneous).max())
            if err > 1e-6:
                raise ValueError(
                    f'{kinematics.urdf_path} does not match the {robot} DH parameters: tool0 '
                    f'differs by {err:.2e} at q={np.round(q, 3).tolist()}'
                )

    @property
    def world_t_dh_base(self) -> np.ndarray:
        """(4, 4) pose of UR's DH base frame in the model's world (``base_link``) frame."""
        return self._world_t_dh.copy()

    def flange_targets(self, positions: np.ndarray, rotations: np.ndarray) -> np.ndarray:
        """TCP targets in the base frame → tool0 targets in the DH base frame.

        Args:
            positions: (M, 3) TCP positions (m).
            rotations: (M, 3, 3) TCP orientations base_R_tcp.

        Returns:
            (M, 4, 4) DH-base_T_tool0, C-contiguous.
        """
        m = len(positions)
        t = np.zeros((m, 4, 4))
        t[:, :3, :3] = rotations
        t[:, :3, 3] = positions
        t[:, 3, 3] = 1.0
        return np.ascontiguousarray(self._dh_t_world @ t @ self._tcp_t_tool0)

    def solutions(self, position: np.ndarray, rotation: np.ndarray) -> np.ndarray:
        """Every closed-form solution for one TCP pose, each joint in (−π, π].

        Args:
            position: (3,) TCP position (m).
            rotation: (3, 3) TCP orientation.

        Returns:
            (K, 6) solutions, K ≤ 8 (0 when the pose is out of reach).
        """
        flange = self.flange_targets(
            np.asarray(position, dtype=float)[None], np.asarray(rotation, dtype=float)[None]
        )[0]
        sols = closed_form.inverse(self._dh, flange[None])[0]
        return sols[np.all(np.isfinite(sols), axis=1)]

    def solve_path(
        self, positions: np.ndarray, rotations: np.ndarray, q_seed: np.ndarray
    ) -> PathIkResult:
        """Solve every sample of a path, each on the branch of the one before.

        Args:
            positions: (M, 3) TCP positions (m); sample 0 is where the seed is.
            rotations: (M, 3, 3) TCP orientations.
            q_seed: (6,) joint positions at sample 0 (rad).

        Returns:
            The :class:`PathIkResult` (``failed_at`` set at the first sample out of reach,
            missed, or beyond the joint limits).
        """
        m = len(positions)
        qs = np.empty((m, 6))
        qs[0] = q_seed
        if m < 2:
            return PathIkResult(qs)
        flanges = self.flange_targets(positions, rotations)
        # every closed-form solution of every sample, (M, 8, 6), NaN rows where there are fewer
        cand = np.full((m, 8, 6), np.nan)
        cand[1:] = closed_form.inverse(self._dh, flanges[1:])
        none = np.flatnonzero(~np.isfinite(cand[1:]).all(axis=2).any(axis=1))
        reach = m if none.size == 0 else int(none[0]) + 1  # samples 1 .. reach-1 have solutions
        cand = cand[:reach]
        if reach < 2:
            return PathIkResult(qs, 1, IkFailure.UNREACHABLE)
        # wrapped joint differences between the candidates of consecutive samples, and for
        # each candidate at i-1 the nearest candidate at i (all samples at once); then the
        # branch is followed from the seed by chasing those indices
        seed = np.asarray(q_seed, dtype=float)
        d0 = cand[1] - seed
        d0 -= _TWO_PI * np.round(d0 / _TWO_PI)
        cost0 = np.where(np.isnan(d0).any(axis=1), np.inf, np.einsum('ij,ij->i', d0, d0))
        if reach > 2:
            d = cand[2:, None, :, :] - cand[1:-1, :, None, :]  # (M-2, 8 prev, 8 next, 6)
            d -= _TWO_PI * np.round(d / _TWO_PI)
            cost = np.einsum('ijkl,ijkl->ijk', d, d)
            cost[np.isnan(cost)] = np.inf
            nearest = np.argmin(cost, axis=2).tolist()  # (M-2, 8)
        k = int(np.argmin(cost0))
        chosen = [k]
        for i in range(reach - 2):
            k = nearest[i][k]
            chosen.append(k)
        picked = cand[np.arange(1, reach), chosen]  # (reach-1, 6), each in (-π, π]
        steps = np.diff(np.vstack([seed, picked]), axis=0)
        steps -= _TWO_PI * np.round(steps / _TWO_PI)
        qs[1:reach] = seed + np.cumsum(steps, axis=0)
        # joint limits: the first sample where the branch leaves them
        out = (qs[1:reach] < self._lower - 1e-9) | (qs[1:reach] > self._upper + 1e-9)
        first_bad = int(np.argmax(out.any(axis=1))) + 1 if out.any() else None
        # accuracy: the closed form near singularities, checked with its own FK
        n_check = reach if first_bad is None else first_bad
        fk = closed_form.forward(self._dh, qs[1:n_check]) if n_check > 1 else None
        if fk is not None:
            target = flanges[1:n_check]
            dp = np.linalg.norm(fk[:, :3, 3] - target[:, :3, 3], axis=1)
            cos = (np.einsum('kij,kij->k', fk[:, :3, :3], target[:, :3, :3]) - 1.0) * 0.5
            dr = np.arccos(np.clip(cos, -1.0, 1.0))
            missed = (dp > self._pos_tol) | (dr > self._rot_tol)
            if missed.any():
                j = int(np.argmax(missed))
                return PathIkResult(
                    qs, j + 1, IkFailure.INACCURATE, -1, float(dp[j]), float(dr[j])
                )
        if first_bad is not None:
            row = out[first_bad - 1]
            return PathIkResult(qs, first_bad, IkFailure.JOINT_LIMIT, int(np.argmax(row)))
        if reach < m:
            return PathIkResult(qs, reach, IkFailure.UNREACHABLE)
        return PathIkResult(qs)

    def solve(self, position: np.ndarray, rotation: np.ndarray, q_seed: np.ndarray) -> IkResult:
        """The solution closest to ``q_seed`` for one TCP pose (same result type as pink's).

        Args:
            position: (3,) target TCP position in the base frame (m).
            rotation: (3, 3) target TCP orientation base_R_tcp.
            q_seed: (6,) configuration to stay close to (rad).

        Returns:
            The :class:`IkResult`; ``converged`` False when the pose is out of reach
            (``position_error_m`` is then ``inf``), missed, or needs a joint beyond its limits
            (``joints_at_limit`` names them; ``q`` is then the seed clipped to the limits).
        """
        seed = np.asarray(q_seed, dtype=float)
        res = self.solve_path(
            np.stack([np.zeros(3), np.asarray(position, dtype=float)]),
            np.stack([np.eye(3), np.asarray(rotation, dtype=float)]),
            seed,
        )
        q = res.q[1]
        if res.failed_at is None:
            return IkResult(q.copy(), True, 0.0, 0.0, 1, ())
        clipped = np.clip(seed, self._lower, self._upper)
        if res.reason is IkFailure.JOINT_LIMIT:
            out = (q < self._lower) | (q > self._upper)
            return IkResult(
                clipped, False, 0.0, 0.0, 1, tuple(int(j) for j in np.flatnonzero(out))
            )
        if res.reason is IkFailure.INACCURATE:
            return IkResult(clipped, False, res.position_error_m, res.orientation_error_rad, 1, ())
        return IkResult(clipped, False, math.inf, math.inf, 1, ())
