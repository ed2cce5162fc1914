"""Self and table collision check for the UR5 with pinocchio + coal (hpp-fcl), and its depth mask.

Design notes: docs/design-notes.md (trace_executor.ur5.collision).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import coal
import numpy as np
import pinocchio as pin

from ..body_mask import RobotMask, chain_spheres
from .kinematics import Ur5Kinematics, default_ur5_srdf, mesh_package_dirs

TABLE = 'table'
GRIPPER = 'gripper'

_TABLE_EXEMPT = ('base_link_0', 'shoulder_link_0')
_GRIPPER_EXEMPT = ('wrist_2_link_0', 'wrist_3_link_0')


class CollisionChecker:
    """Answer "does configuration q touch the table or the robot itself?".

    Not thread-safe (owns its pinocchio data).
    """

    def __init__(
        self,
        kinematics: Ur5Kinematics,
        table_height_m: float = 0.0,
        table_clearance_m: float = 0.005,
        table_half_extent_m: float = 2.0,
        gripper_radius_m: float = 0.04,
        gripper_length_m: float = 0.11,
        srdf_path: Optional[str | Path] = None,
    ) -> None:
        """Build the collision model.

        Args:
            kinematics: the UR5 model (its URDF provides the collision meshes).
            table_height_m: z of the table top in the base frame (m).
            table_clearance_m: links must stay at least this far above the table top (m).
            table_half_extent_m: half size of the table box in x and y around the base (m).
            gripper_radius_m: radius of the gripper proxy capsule (m); 0 disables the proxy.
            gripper_length_m: length of the gripper proxy from tool0 along its z axis (m).
            srdf_path: SRDF listing disabled pairs; ``None`` = example-robot-data's ur5.srdf.

        Raises:
            FileNotFoundError: if the SRDF or a collision mesh is missing.
        """
        model = kinematics.model
        self._model = model
        self._data = model.createData()
        urdf = kinematics.urdf_path
        geom = pin.buildGeomFromUrdf(
            model, str(urdf), pin.GeometryType.COLLISION, package_dirs=mesh_package_dirs(urdf)
        )
        if geom.existGeometryName('ee_link_0'):
            geom.removeGeometryObject('ee_link_0')
        thickness = 0.1
        table = pin.GeometryObject(
            TABLE,
            0,
            0,
            pin.SE3(
                np.eye(3),
                np.array([0.0, 0.0, table_height_m + table_clearance_m - thickness / 2]),
            ),
            coal.Box(2 * table_half_extent_m, 2 * table_half_extent_m, thickness),
        )
        geom.addGeometryObject(table)
        if gripper_radius_m > 0 and gripper_length_m > 0:
            tool0 = model.getFrameId('tool0')
            half = max(gripper_length_m / 2 - gripper_radius_m, 0.0)
            placement = model.frames[tool0].placement * pin.SE3(
                np.eye(3), np.array([0.0, 0.0, gripper_length_m / 2])
            )
            grip = pin.GeometryObject(
                GRIPPER,
                model.frames[tool0].parentJoint,
                tool0,
                placement,
                coal.Capsule(gripper_radius_m, half),
            )
            geom.addGeometryObject(grip)
        geom.addAllCollisionPairs()
        srdf = Path(srdf_path) if srdf_path else default_ur5_srdf()
        if not srdf.is_file():
            raise FileNotFoundError(f'SRDF not found: {srdf}')
        pin.removeCollisionPairs(model, geom, str(srdf))
        for name in _TABLE_EXEMPT:
            self._remove_pair(geom, TABLE, name)
        for name in _GRIPPER_EXEMPT:
            self._remove_pair(geom, GRIPPER, name)
        self.geometry_model: pin.GeometryModel = geom
        self._geom_data = pin.GeometryData(geom)
        self.pair_names: list[tuple[str, str]] = [
            (geom.geometryObjects[p.first].name, geom.geometryObjects[p.second].name)
            for p in geom.collisionPairs
        ]

    @staticmethod
    def _remove_pair(geom: pin.GeometryModel, a: str, b: str) -> None:
        if geom.existGeometryName(a) and geom.existGeometryName(b):
            pair = pin.CollisionPair(geom.getGeometryId(a), geom.getGeometryId(b))
            if geom.existCollisionPair(pair):
                geom.removeCollisionPair(pair)

    def first_collision(self, q: np.ndarray) -> Optional[tuple[str, str]]:
        """Return the first colliding pair at ``q``, or ``None`` when collision-free.

        Args:
            q: (6,) joint positions (rad).

        Returns:
            Names of the two geometries in contact (URDF link geometry names such as
            ``forearm_link_0``, or ``table`` / ``gripper``), or ``None``.
        """
        hit = pin.computeCollisions(
            self._model, self._data, self.geometry_model, self._geom_data, q, True
        )
        if not hit:
            return None
        for k, res in enumerate(self._geom_data.collisionResults):
            if res.isCollision():
                return self.pair_names[k]
        return ('unknown', 'unknown')  # pragma: no cover - pinocchio reported a hit

    def in_collision(self, q: np.ndarray) -> bool:
        """Return whether ``q`` touches the table or the robot itself."""
        return bool(
            pin.computeCollisions(
                self._model, self._data, self.geometry_model, self._geom_data, q, True
            )
        )


class Ur5BodyMask:
    """The UR5 and its gripper as spheres, for masking them out of the scene monitor.

    - the arm: spheres of ``link_radius_m`` every ``step_m`` along the chain of joint origins
      (shoulder ... wrist 3), which runs through the links' lateral offsets;
    - the gripper: spheres of ``gripper_radius_m`` from tool0 to ``gripper_reach_m`` past the TCP
      along tool0's z (palm and open fingers, ±6 cm around that axis in our gripper);
    - :attr:`RobotMask.hand` is the TCP pose: what the gripper holds is carried with it (the
      scene monitor adds the held object's sphere, see
      :class:`~trace_executor.body_mask.BodyMaskHistory`).

    Not thread-safe (uses the kinematics' data): call it from the thread that plans.

    Args:
        kinematics: the UR5 model (its TCP frame is the gripper's centre between the fingertips).
        link_radius_m: radius of the arm spheres (m).
        gripper_radius_m: radius of the gripper spheres (m).
        gripper_reach_m: the fingertips reach this far past the TCP (m).
        step_m: sphere spacing (m).
    """

    def __init__(
        self,
        kinematics: Ur5Kinematics,
        link_radius_m: float = 0.09,
        gripper_radius_m: float = 0.08,
        gripper_reach_m: float = 0.02,
        step_m: float = 0.05,
    ) -> None:
        self.kin = kinematics
        self.link_radius_m = link_radius_m
        self.gripper_radius_m = gripper_radius_m
        self.gripper_reach_m = gripper_reach_m
        self.step_m = step_m

    def at(self, q: np.ndarray) -> RobotMask:
        """The mask at joint positions ``q`` (6,), in the base frame."""
        chain = self.kin.joint_origins(q)  # joints 1..6, then the TCP (FK done)
        tcp = self.kin.data.oMf[self.kin.tcp_frame_id]
        z = tcp.rotation[:, 2]
        arm = chain_spheres(chain[:-1], self.link_radius_m, self.step_m)
        gripper = chain_spheres(
            np.array([chain[-2], tcp.translation + z * self.gripper_reach_m]),
            self.gripper_radius_m,
            self.step_m,
        )
        return RobotMask(np.vstack([arm, gripper]), tcp.homogeneous.copy())
