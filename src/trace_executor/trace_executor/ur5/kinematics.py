"""UR5 kinematics from example-robot-data's URDF, loaded with pinocchio.

The robot base frame (``base_link``) is the world frame: the UR5 stands at the origin on the
table top, z up. The TCP is ``tool0`` translated ``tcp_offset_m`` along tool0's z axis (the
centre between the fingertips of the parallel gripper mounted on tool0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pinocchio as pin

from ..robot_data import example_robot_data_dir

#: Joint order of the UR5 (the order of every ``q`` vector in this package).
UR5_JOINT_NAMES: tuple[str, ...] = (
    'shoulder_pan_joint',
    'shoulder_lift_joint',
    'elbow_joint',
    'wrist_1_joint',
    'wrist_2_joint',
    'wrist_3_joint',
)

#: Home pose (rad): tool0 above the table at about (0.49, 0.11, 0.43) m, its z axis pointing down.
UR5_HOME: tuple[float, ...] = (0.0, -1.57, 1.57, -1.57, -1.57, 0.0)


def default_ur5_urdf() -> Path:
    """Return the path of example-robot-data's ``ur_description/urdf/ur5_robot.urdf``."""
    return example_robot_data_dir() / 'ur_description' / 'urdf' / 'ur5_robot.urdf'


def default_ur5_srdf() -> Path:
    """Return the path of example-robot-data's ``ur_description/srdf/ur5.srdf``."""
    return example_robot_data_dir() / 'ur_description' / 'srdf' / 'ur5.srdf'


def mesh_package_dirs(urdf_path: Path) -> list[str]:
    """Folders that resolve ``package://`` mesh URIs of an example-robot-data URDF.

    Args:
        urdf_path: the URDF file.

    Returns:
        Candidate package roots (the ``share`` folder above ``example-robot-data``, and the
        URDF's own ancestors) for pinocchio's ``package_dirs``.
    """
    dirs = [str(p) for p in urdf_path.resolve().parents[:5]]
    try:
        dirs.insert(0, str(example_robot_data_dir().parent.parent))
    except FileNotFoundError:
        pass
    return dirs


class Ur5Kinematics:
    """Pinocchio model of the UR5 with a ``tcp`` frame; forward kinematics helpers.

    Attributes:
        model: pinocchio model (6 revolute joints, plus an operational frame ``tcp``).
        data: pinocchio data used by the helpers of this class (not thread-safe).
        urdf_path: the URDF that was loaded.
        joint_names: joint order of ``q`` (== :data:`UR5_JOINT_NAMES`).
        lower_rad, upper_rad: URDF joint position limits.
        velocity_limit_rad_s: URDF joint velocity limits.
        tcp_frame_id: pinocchio frame id of the TCP.
    """

    TCP_FRAME = 'tcp'

    def __init__(self, urdf_path: Optional[str | Path] = None, tcp_offset_m: float = 0.15) -> None:
        """Load the URDF and add the TCP frame.

        Args:
            urdf_path: UR5 URDF; ``None`` = example-robot-data's ``ur5_robot.urdf``.
            tcp_offset_m: TCP distance from ``tool0`` along tool0's z axis (m).

        Raises:
            FileNotFoundError: if the URDF does not exist.
            ValueError: if the URDF does not have the six UR5 joints and ``tool0``.
        """
        self.urdf_path = Path(urdf_path) if urdf_path else default_ur5_urdf()
        if not self.urdf_path.is_file():
            raise FileNotFoundError(f'UR5 URDF not found: {self.urdf_path}')
        self.model: pin.Model = pin.buildModelFromUrdf(str(self.urdf_path))
        names = tuple(self.model.names[1:])
        if names != UR5_JOINT_NAMES or not self.model.existFrame('tool0'):
            raise ValueError(
                f'{self.urdf_path} is not a UR5 description: joints {names}, '
                f'expected {UR5_JOINT_NAMES} and a tool0 frame'
            )
        tool0 = self.model.frames[self.model.getFrameId('tool0')]
        offset = pin.SE3(np.eye(3), np.array([0.0, 0.0, float(tcp_offset_m)]))
        self.tcp_frame_id: int = self.model.addFrame(
            pin.Frame(
                self.TCP_FRAME,
                tool0.parentJoint,
                self.model.getFrameId('tool0'),
                tool0.placement * offset,
                pin.FrameType.OP_FRAME,
            )
        )
        self.tcp_offset_m = float(tcp_offset_m)
        self.data: pin.Data = self.model.createData()
        self.joint_names: tuple[str, ...] = names
        self.lower_rad = np.array(self.model.lowerPositionLimit, dtype=float)
        self.upper_rad = np.array(self.model.upperPositionLimit, dtype=float)
        self.velocity_limit_rad_s = np.array(self.model.velocityLimit, dtype=float)

    def tcp_pose(self, q: np.ndarray) -> pin.SE3:
        """TCP pose in the base frame for joint positions ``q`` (a copy).

        Args:
            q: (6,) joint positions (rad).

        Returns:
            The TCP pose as a pinocchio ``SE3``.
        """
        pin.framesForwardKinematics(self.model, self.data, np.asarray(q, dtype=float))
        return pin.SE3(self.data.oMf[self.tcp_frame_id])

    def forward_tcp(self, q: np.ndarray) -> np.ndarray:
        """TCP pose in the base frame as a 4×4 homogeneous matrix.

        Args:
            q: (6,) joint positions (rad).

        Returns:
            (4, 4) transform base_T_tcp (metres).
        """
        return self.tcp_pose(q).homogeneous

    def forward_tcp_many(self, qs: np.ndarray) -> np.ndarray:
        """TCP positions for many configurations.

        Args:
            qs: (K, 6) joint positions (rad).

        Returns:
            (K, 3) TCP positions in the base frame (m).
        """
        out = np.empty((len(qs), 3))
        for i, q in enumerate(np.asarray(qs, dtype=float)):
            pin.framesForwardKinematics(self.model, self.data, q)
            out[i] = self.data.oMf[self.tcp_frame_id].translation
        return out

    def joint_origins(self, q: np.ndarray) -> np.ndarray:
        """Origins of the six joints and the TCP in the base frame.

        Useful to draw the arm as a chain of capsules (e.g. to mask it out of a depth image).

        Args:
            q: (6,) joint positions (rad).

        Returns:
            (7, 3) positions (m): shoulder_pan ... wrist_3, then the TCP.
        """
        pin.framesForwardKinematics(self.model, self.data, np.asarray(q, dtype=float))
        pts = [self.data.oMi[j].translation for j in range(1, self.model.njoints)]
        pts.append(self.data.oMf[self.tcp_frame_id].translation)
        return np.array(pts)
