"""G1 upper-body kinematics from example-robot-data's 29-DoF URDF, loaded with pinocchio.

Design notes: docs/design-notes.md (trace_executor.g1.kinematics).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pinocchio as pin

from ..robot_data import example_robot_data_dir

SIDES: tuple[str, str] = ('left', 'right')

#: Upper-body joints in ``rt/arm_sdk`` order (SDK motor slots 12..28).
G1_UPPER_BODY_JOINTS: tuple[str, ...] = (
    'waist_yaw_joint',
    'waist_roll_joint',
    'waist_pitch_joint',
    'left_shoulder_pitch_joint',
    'left_shoulder_roll_joint',
    'left_shoulder_yaw_joint',
    'left_elbow_joint',
    'left_wrist_roll_joint',
    'left_wrist_pitch_joint',
    'left_wrist_yaw_joint',
    'right_shoulder_pitch_joint',
    'right_shoulder_roll_joint',
    'right_shoulder_yaw_joint',
    'right_elbow_joint',
    'right_wrist_roll_joint',
    'right_wrist_pitch_joint',
    'right_wrist_yaw_joint',
)
#: First SDK motor slot of the upper body (``G1JointIndex.WaistYaw``).
UPPER_BODY_FIRST_SLOT = 12
WAIST = slice(0, 3)
ARM = {'left': slice(3, 10), 'right': slice(10, 17)}

#: Dex3 finger joints of one hand in the ``HandCmd_.motor_cmd`` order.
DEX3_FINGERS: tuple[str, ...] = (
    'thumb_0',
    'thumb_1',
    'thumb_2',
    'middle_0',
    'middle_1',
    'index_0',
    'index_1',
)

#: The locomotion controller's standing pose (rad) of the upper body, i.e. where the arms are
#: when ``rt/arm_sdk``'s weight is 0: arms at the sides, elbows bent.
STANDING_UPPER_BODY: dict[str, float] = {
    'left_shoulder_pitch_joint': 0.2,
    'left_shoulder_roll_joint': 0.15,
    'left_elbow_joint': 1.1,
    'right_shoulder_pitch_joint': 0.2,
    'right_shoulder_roll_joint': -0.15,
    'right_elbow_joint': 1.1,
}
STANDING_LEGS: dict[str, float] = {
    'left_hip_pitch_joint': -0.1,
    'left_knee_joint': 0.3,
    'left_ankle_pitch_joint': -0.2,
    'right_hip_pitch_joint': -0.1,
    'right_knee_joint': 0.3,
    'right_ankle_pitch_joint': -0.2,
}

#: d435_link (x forward, y left, z up) → optical frame (x right, y down, z forward).
LINK_R_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def default_g1_urdf() -> Path:
    """Return example-robot-data's ``g1_description/urdf/g1_29dof_with_hand_rev_1_0.urdf``.

    Raises:
        FileNotFoundError: if example-robot-data is not installed.
    """
    return example_robot_data_dir() / 'g1_description' / 'urdf' / 'g1_29dof_with_hand_rev_1_0.urdf'


def standing_upper_body() -> np.ndarray:
    """(17,) standing pose of the upper body in :data:`G1_UPPER_BODY_JOINTS` order (rad)."""
    return np.array([STANDING_UPPER_BODY.get(n, 0.0) for n in G1_UPPER_BODY_JOINTS])


class G1Kinematics:
    """Pinocchio model of the G1 upper body with grasp and camera frames.

    Attributes:
        model: reduced pinocchio model (17 revolute joints, pelvis fixed at the origin).
        data: pinocchio data used by the helpers of this class (not thread-safe).
        urdf_path: the URDF that was loaded.
        joint_names: joint order of every ``q`` (== :data:`G1_UPPER_BODY_JOINTS`).
        lower_rad, upper_rad: (17,) URDF joint position limits.
        velocity_limit_rad_s: (17,) URDF joint velocity limits.
        grasp_frame: ``{side: frame id}`` of the grasp frames.
        camera_frame: frame id of the camera optical frame.
        finger_closed_rad: ``{side: (7,)}`` finger positions of a closed Dex3 hand (each finger
            joint at its limit of larger magnitude, the direction it closes in), Dex3 order.
        finger_lower_rad, finger_upper_rad: ``{side: (7,)}`` finger joint limits.
    """

    def __init__(
        self,
        urdf_path: str | Path | None = None,
        grasp_points: dict[str, tuple[float, float, float]] | None = None,
        camera_link: str = 'd435_link',
        camera_offset_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> None:
        """Load the URDF, lock legs and fingers, add the grasp and camera frames.

        Args:
            urdf_path: G1 29-DoF URDF (with hands); ``None`` = example-robot-data's.
            grasp_points: grasp point of each hand in ``<side>_hand_palm_link`` (m);
                ``None`` = left (0.10, -0.035, 0), right (0.10, 0.035, 0).
            camera_link: the URDF link of the head camera.
            camera_offset_xyz: optical frame origin in ``camera_link`` (m).

        Raises:
            FileNotFoundError: if the URDF does not exist.
            ValueError: if the URDF lacks a G1 joint or frame this class needs.
        """
        self.urdf_path = Path(urdf_path) if urdf_path else default_g1_urdf()
        if not self.urdf_path.is_file():
            raise FileNotFoundError(f'G1 URDF not found: {self.urdf_path}')
        full = pin.buildModelFromUrdf(str(self.urdf_path))
        names = list(full.names)
        missing = [n for n in G1_UPPER_BODY_JOINTS if n not in names]
        if missing:
            raise ValueError(f'{self.urdf_path} is not a G1 29-DoF description: no {missing}')
        q_ref = pin.neutral(full)
        for n, v in STANDING_LEGS.items():
            if n in names:
                q_ref[full.joints[full.getJointId(n)].idx_q] = v
        self.finger_lower_rad: dict[str, np.ndarray] = {}
        self.finger_upper_rad: dict[str, np.ndarray] = {}
        self.finger_closed_rad: dict[str, np.ndarray] = {}
        for side in SIDES:
            lo, hi = [], []
            for f in DEX3_FINGERS:
                j = f'{side}_hand_{f}_joint'
                if j not in names:
                    lo.append(-1.0)
                    hi.append(1.0)
                    continue
                iq = full.joints[full.getJointId(j)].idx_q
                lo.append(float(full.lowerPositionLimit[iq]))
                hi.append(float(full.upperPositionLimit[iq]))
            lo_a, hi_a = np.array(lo), np.array(hi)
            self.finger_lower_rad[side] = lo_a
            self.finger_upper_rad[side] = hi_a
            self.finger_closed_rad[side] = np.where(np.abs(lo_a) > np.abs(hi_a), lo_a, hi_a)
        lock = [full.getJointId(n) for n in names[1:] if n not in G1_UPPER_BODY_JOINTS]
        self.model: pin.Model = pin.buildReducedModel(full, lock, q_ref)
        if tuple(self.model.names[1:]) != G1_UPPER_BODY_JOINTS:
            raise ValueError(f'unexpected joint order {tuple(self.model.names[1:])}')
        points = grasp_points or {'left': (0.10, -0.035, 0.0), 'right': (0.10, 0.035, 0.0)}
        self.grasp_frame: dict[str, int] = {}
        for side in SIDES:
            palm = f'{side}_hand_palm_link'
            if not self.model.existFrame(palm):
                raise ValueError(f'{self.urdf_path} has no {palm}')
            self.grasp_frame[side] = self._add_frame(
                f'{side}_grasp', palm, pin.SE3(np.eye(3), np.asarray(points[side], float))
            )
        if not self.model.existFrame(camera_link):
            raise ValueError(f'{self.urdf_path} has no camera link {camera_link!r}')
        self.camera_frame = self._add_frame(
            'camera_optical',
            camera_link,
            pin.SE3(LINK_R_OPTICAL, np.asarray(camera_offset_xyz, dtype=float)),
        )
        self.data: pin.Data = self.model.createData()
        self.joint_names: tuple[str, ...] = G1_UPPER_BODY_JOINTS
        self.lower_rad = np.array(self.model.lowerPositionLimit, dtype=float)
        self.upper_rad = np.array(self.model.upperPositionLimit, dtype=float)
        self.velocity_limit_rad_s = np.array(self.model.velocityLimit, dtype=float)
        self.shoulder_frame = {s: self.model.getFrameId(f'{s}_shoulder_pitch_link') for s in SIDES}

    def _add_frame(self, name: str, parent: str, offset: pin.SE3) -> int:
        pf = self.model.frames[self.model.getFrameId(parent)]
        return self.model.addFrame(
            pin.Frame(
                name,
                pf.parentJoint,
                self.model.getFrameId(parent),
                pf.placement * offset,
                pin.FrameType.OP_FRAME,
            )
        )

    def frame_id(self, name: str) -> int:
        """Pinocchio id of a frame.

        Raises:
            ValueError: the model has no frame of that name.
        """
        if not self.model.existFrame(name):
            raise ValueError(f'the G1 model has no frame {name!r}')
        return int(self.model.getFrameId(name))

    def forward(self, q: np.ndarray) -> None:
        """Update every frame placement of :attr:`data` for ``q`` (17,)."""
        pin.framesForwardKinematics(self.model, self.data, np.asarray(q, dtype=float))

    def frame_pose(self, q: np.ndarray, frame: int) -> np.ndarray:
        """pelvis_T_frame as a 4×4 matrix.

        Args:
            q: (17,) joint positions (rad).
            frame: frame id.

        Returns:
            (4, 4) homogeneous transform (m).
        """
        self.forward(q)
        return self.data.oMf[frame].homogeneous.copy()

    def grasp_pose(self, q: np.ndarray, side: str) -> np.ndarray:
        """pelvis_T_grasp of one hand (4×4)."""
        return self.frame_pose(q, self.grasp_frame[side])

    def camera_pose(self, q: np.ndarray) -> np.ndarray:
        """pelvis_T_camera_optical (4×4): the head camera for the current waist joints."""
        return self.frame_pose(q, self.camera_frame)

    def shoulder_position(self, q: np.ndarray, side: str) -> np.ndarray:
        """(3,) origin of ``<side>_shoulder_pitch_link`` in the pelvis frame."""
        self.forward(q)
        return self.data.oMf[self.shoulder_frame[side]].translation.copy()

    def clip(self, q: np.ndarray) -> np.ndarray:
        """``q`` clipped to the joint limits."""
        return np.clip(np.asarray(q, dtype=float), self.lower_rad, self.upper_rad)
