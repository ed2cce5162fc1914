"""Self-collision avoidance between the G1's arms and its torso and pelvis.

Design notes: docs/design-notes.md (trace_executor.g1.collision).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pinocchio as pin

from ..body_mask import RobotMask, chain_spheres
from .kinematics import SIDES, G1Kinematics
from .stance import stance_matrix


@dataclass(frozen=True)
class BodyBox:
    """An axis-aligned box in the frame of a body.

    Attributes:
        name: what it is (``torso``, ``pelvis``, ``legs``), for messages.
        parent: the body (URDF link) it is fixed to.
        lower: (3,) lower corner in the parent frame (m).
        upper: (3,) upper corner in the parent frame (m).
    """

    name: str
    parent: str
    lower: tuple[float, float, float]
    upper: tuple[float, float, float]


@dataclass(frozen=True)
class ArmSphere:
    """A sphere on an arm link: centre ``offset`` in ``<side>_<link>``, radius in m."""

    link: str
    offset: tuple[float, float, float]
    radius: float


DEFAULT_BOXES: tuple[BodyBox, ...] = (
    BodyBox('torso', 'torso_link', (-0.067, -0.108, -0.009), (0.084, 0.108, 0.312)),
    BodyBox('pelvis', 'pelvis', (-0.058, -0.068, -0.152), (0.061, 0.068, -0.027)),
    BodyBox('legs', 'pelvis', (-0.08, -0.13, -0.55), (0.09, 0.13, -0.16)),
)
DEFAULT_SPHERES: tuple[ArmSphere, ...] = (
    ArmSphere('elbow_link', (0.0, 0.0, 0.0), 0.035),
    ArmSphere('wrist_roll_link', (0.0, 0.0, 0.0), 0.035),
    ArmSphere('hand_palm_link', (0.045, 0.0, 0.0), 0.045),
    ArmSphere('hand_palm_link', (0.12, 0.0, 0.0), 0.035),
)


@dataclass(frozen=True)
class Contact:
    """The closest sphere/box pair: names, signed distance (m, negative = inside)."""

    sphere: str
    box: str
    distance_m: float


class BodyCollisionModel:
    """Arm spheres vs torso/pelvis boxes: distances, IK constraint rows, checks.

    Args:
        kinematics: the G1 model (frames are added to it for the sphere centres).
        margin_m: the distance every pair keeps (m).
        activation_m: pairs farther than this are left out of the IK constraints (m).
        boxes: the body boxes; ``None`` = :data:`DEFAULT_BOXES`.
        spheres: the spheres of one arm (``link`` without the side prefix); ``None`` =
            :data:`DEFAULT_SPHERES`.

    Raises:
        ValueError: a link of a box or sphere is not in the model.
    """

    def __init__(
        self,
        kinematics: G1Kinematics,
        margin_m: float = 0.02,
        activation_m: float = 0.1,
        boxes: tuple[BodyBox, ...] | None = None,
        spheres: tuple[ArmSphere, ...] | None = None,
    ) -> None:
        self.kin = kinematics
        self.margin_m = float(margin_m)
        self.activation_m = float(activation_m)
        model = kinematics.model
        self.boxes = boxes or DEFAULT_BOXES
        self._box_frames = [kinematics.frame_id(b.parent) for b in self.boxes]
        self._lo = np.array([b.lower for b in self.boxes], dtype=float)
        self._hi = np.array([b.upper for b in self.boxes], dtype=float)
        self.sphere_names: list[str] = []
        self._sphere_frames: list[int] = []
        self._sphere_radius: list[float] = []
        self._sphere_side: list[str] = []
        for side in SIDES:
            for i, s in enumerate(spheres or DEFAULT_SPHERES):
                link = f'{side}_{s.link}'
                parent = kinematics.frame_id(link)
                pf = model.frames[parent]
                name = f'{side}_collision_{i}'
                if model.existFrame(name):
                    fid = int(model.getFrameId(name))
                else:
                    fid = model.addFrame(
                        pin.Frame(
                            name,
                            pf.parentJoint,
                            parent,
                            pf.placement * pin.SE3(np.eye(3), np.asarray(s.offset, float)),
                            pin.FrameType.OP_FRAME,
                        )
                    )
                self.sphere_names.append(f'{link}+{s.offset[0]:.2f}' if any(s.offset) else link)
                self._sphere_frames.append(fid)
                self._sphere_radius.append(float(s.radius))
                self._sphere_side.append(side)
        self._radius = np.array(self._sphere_radius)
        sphere_side = np.array(self._sphere_side)
        on_torso = np.array([b.parent == 'torso_link' for b in self.boxes])
        self._pair_mask = {s: (sphere_side == s)[:, None] | ~on_torso[None, :] for s in SIDES}
        # Frames were added: the kinematics' data must be rebuilt.
        kinematics.data = model.createData()

    # --- geometry ----------------------------------------------------------------------------
    def _pairs(
        self, data: pin.Data, spheres: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs of the given spheres with every box, vectorised.

        Returns:
            ``(d (S, B), normal (S, B, 3), closest (S, B, 3))``: signed distances, world normals
            (box → sphere) and world closest box points.
        """
        p = np.array([data.oMf[self._sphere_frames[i]].translation for i in spheres])
        boxes = [data.oMf[f] for f in self._box_frames]
        rot = np.array([b.rotation for b in boxes])  # (B, 3, 3)
        trans = np.array([b.translation for b in boxes])  # (B, 3)
        local = np.einsum('bsi,bij->sbj', p[None, :, :] - trans[:, None, :], rot)  # (S, B, 3)
        closest = np.minimum(np.maximum(local, self._lo), self._hi)
        diff = local - closest
        dist = np.sqrt(np.einsum('sbi,sbi->sb', diff, diff))
        nl = diff / np.maximum(dist, 1e-12)[..., None]
        for s, b in np.argwhere(dist <= 1e-9):  # centre inside a box: leave via the nearest face
            lo, hi = self._lo[b], self._hi[b]
            depth = np.concatenate([local[s, b] - lo, hi - local[s, b]])
            k = int(np.argmin(depth))
            nl[s, b] = 0.0
            nl[s, b, k % 3] = -1.0 if k < 3 else 1.0
            dist[s, b] = -depth[k]
            closest[s, b, k % 3] = lo[k % 3] if k < 3 else hi[k % 3]
        d = dist - self._radius[spheres][:, None]
        normal = np.einsum('bij,sbj->sbi', rot, nl)
        closest_w = np.einsum('bij,sbj->sbi', rot, closest) + trans[None]
        return d, normal, closest_w

    def distances(self, q: np.ndarray) -> np.ndarray:
        """Signed distances (S, B) of every arm sphere to every body box at ``q`` (17,), m."""
        self.kin.forward(q)
        return self._pairs(self.kin.data, np.arange(len(self._sphere_frames)))[0]

    def _contact(self, d: np.ndarray, si: int, bi: int) -> Contact:
        return Contact(self.sphere_names[si], self.boxes[bi].name, float(d[si, bi]))

    def closest(self, q: np.ndarray) -> Contact:
        """The closest sphere/box pair at configuration ``q`` (17,)."""
        d = self.distances(q)
        return self._contact(d, *np.unravel_index(int(np.argmin(d)), d.shape))

    def first_collision(
        self, q: np.ndarray, tolerance_m: float = 0.005, start: np.ndarray | None = None
    ) -> Contact | None:
        """The pair that breaks the margin (by more than ``tolerance_m``) most, else None.

        Args:
            q: (17,) configuration.
            tolerance_m: how far inside the margin a pair may come (the IK's linearisation).
            start: the distances (:meth:`distances`) where the motion started: a pair that
                already started inside the margin (an arm left low beside the legs by a
                stopped goal) may stay there as long as it comes no closer than it was; moving
                out is what the IK constraints steer towards.
        """
        d = self.distances(q)
        limit = np.full(d.shape, self.margin_m - tolerance_m)
        if start is not None:
            limit = np.minimum(limit, start - tolerance_m)
        excess = limit - d
        si, bi = np.unravel_index(int(np.argmax(excess)), d.shape)
        return self._contact(d, si, bi) if excess[si, bi] > 0 else None

    def constraint_rows(
        self, model: pin.Model, data: pin.Data, side: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Linearised distance constraints ``G Δq ≥ h`` at the configuration of ``data``.

        ``data`` must hold frame placements and joint Jacobians of the current configuration
        (pink's ``Configuration.update`` computes both).

        Args:
            model: the kinematics' model.
            data: its data at the current configuration.
            side: the working arm: its spheres against every box; the other arm's only against
                boxes that do not carry the arms (its pose relative to the torso is fixed, the
                waist still moves it relative to the pelvis). ``None``: every pair.

        Returns:
            ``(G (k, 17), h (k,))`` for the pairs within ``activation_m``.
        """
        idx = np.arange(len(self._sphere_frames))
        d, normal, closest = self._pairs(data, idx)
        near_mask = d <= self.activation_m
        if side is not None:
            near_mask &= self._pair_mask[side]
        near = np.argwhere(near_mask)
        if not len(near):
            return np.zeros((0, model.nv)), np.zeros(0)
        world = pin.ReferenceFrame.LOCAL_WORLD_ALIGNED
        jac: dict[int, np.ndarray] = {}

        def frame_jacobian(fid: int) -> np.ndarray:
            if fid not in jac:
                jac[fid] = pin.getFrameJacobian(model, data, fid, world)
            return jac[fid]

        rows = np.empty((len(near), model.nv))
        rhs = np.empty(len(near))
        for k, (s, b) in enumerate(near):
            jp = frame_jacobian(self._sphere_frames[idx[s]])[:3]
            bf = self._box_frames[b]
            jb = frame_jacobian(bf)
            oc = closest[s, b] - data.oMf[bf].translation
            # velocity of the box point c: v_o + w x (c - o) = Jv dq - [c - o]x Jw dq
            skew = np.array([[0.0, -oc[2], oc[1]], [oc[2], 0.0, -oc[0]], [-oc[1], oc[0], 0.0]])
            rows[k] = normal[s, b] @ (jp - (jb[:3] - skew @ jb[3:]))
            # aim 1 cm beyond the margin: the linearisation errs by up to ~1 cm per step
            target = self.margin_m + 0.01
            rhs[k] = min(target, d[s, b]) - d[s, b]
        return rows, rhs


#: Spheres covering an open (or closing) Dex3 hand, in the right ``hand_palm_link`` frame:
#: ``(x, y, z, radius)`` (m); the left hand is the mirror image (y negated). The palm spans x
#: -0.04..0.08, the index and middle fingers reach x ≈ 0.17, the thumb y ≈ 0.10.
DEX3_MASK: tuple[tuple[float, float, float, float], ...] = (
    (0.00, 0.00, 0.00, 0.07),
    (0.06, 0.02, 0.00, 0.07),
    (0.12, 0.00, 0.00, 0.06),
    (0.165, 0.00, 0.00, 0.05),
    (0.03, 0.08, 0.00, 0.05),
    (0.10, 0.035, 0.00, 0.06),
)


class G1BodyMask:
    """The G1's arms and hands as spheres in odom, for masking them out of the scene monitor.

    - each arm: spheres of ``arm_radius_m`` every ``step_m`` from the shoulder over the elbow and
      the wrist to the palm;
    - each hand: :data:`DEX3_MASK` (palm, fingers, thumb, grasp point) scaled by
      ``hand_scale``;
    - :attr:`RobotMask.hand` is the grasp frame of the hand that holds, so the scene monitor
      carries the held object's sphere with it.

    The torso and head move with the camera and look the same in every frame compared; they
    are not masked. Not thread-safe (uses the kinematics' data).

    Args:
        kinematics: a G1 model (not the planner's when called from another thread).
        arm_radius_m: radius of the arm spheres (m).
        hand_scale: factor on the hand spheres' radii.
        step_m: arm sphere spacing (m).
    """

    ARM_CHAIN = ('shoulder_pitch_link', 'elbow_link', 'wrist_roll_link', 'hand_palm_link')

    def __init__(
        self,
        kinematics: G1Kinematics,
        arm_radius_m: float = 0.07,
        hand_scale: float = 1.0,
        step_m: float = 0.04,
    ) -> None:
        self.kin = kinematics
        self.arm_radius_m = arm_radius_m
        self.step_m = step_m
        hand = np.array(DEX3_MASK, dtype=float)
        hand[:, 3] *= hand_scale
        self._hand = {'right': hand, 'left': hand * [1.0, -1.0, 1.0, 1.0]}
        self._chain = {
            s: [kinematics.frame_id(f'{s}_{link}') for link in self.ARM_CHAIN] for s in SIDES
        }
        self._palm = {s: kinematics.frame_id(f'{s}_hand_palm_link') for s in SIDES}

    def at(self, state: np.ndarray, holding: str | None = None) -> RobotMask:
        """The mask for a planner state (see :func:`~trace_executor.g1.planner.pack_state`).

        Args:
            state: (21,) ``[x, y, z, yaw]`` of the pelvis in odom, then the 17 upper-body joints.
            holding: the hand that holds an object (``'left'``/``'right'``), or None.

        Returns:
            Spheres and the holding hand's grasp pose, in odom.
        """
        s = np.asarray(state, dtype=float).reshape(-1)
        t = stance_matrix(*s[:4])
        self.kin.forward(s[4:])
        oMf = self.kin.data.oMf
        parts = []
        for side in SIDES:
            chain = np.array([oMf[f].translation for f in self._chain[side]])
            parts.append(chain_spheres(chain, self.arm_radius_m, self.step_m))
            palm = oMf[self._palm[side]]
            h = self._hand[side]
            parts.append(np.column_stack([h[:, :3] @ palm.rotation.T + palm.translation, h[:, 3]]))
        local = np.vstack(parts)
        spheres = np.column_stack([local[:, :3] @ t[:3, :3].T + t[:3, 3], local[:, 3]])
        hand = None
        if holding in SIDES:
            hand = t @ oMf[self.kin.grasp_frame[holding]].homogeneous
        return RobotMask(spheres, hand)
