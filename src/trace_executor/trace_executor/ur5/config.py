"""Parameters of the UR5 planner (:class:`Ur5PlannerConfig`), checked when made."""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Optional

import numpy as np

from .tool_path import top_down_rotation


@dataclass(frozen=True)
class Ur5PlannerConfig:
    """Parameters of the UR5 planner (lengths in m, angles in rad, base frame unless stated).

    Attributes:
        urdf_path: UR5 URDF; ``None`` = example-robot-data's ``ur5_robot.urdf``.
        srdf_path: SRDF with the disabled collision pairs; ``None`` = example-robot-data's.
        base_frame: the robot base frame (== world: UR5 at the origin on the table, z up).
        tcp_offset_m: TCP = tool0 moved this far along tool0's z (centre between fingertips).
        tool_yaw_rad: top-down tool orientation: angle of the TCP x axis from base x.
            −π/2 is the orientation of the home pose, so the wrist need not turn.
        tool_rotation: full TCP orientation (9 numbers, row-major base_R_tcp); overrides
            ``tool_yaw_rad`` when set.
        table_height_m: z of the table top.
        min_tcp_height_m: the TCP never goes closer to the table top than this.
        workspace_min_m: lower corner of the box trace points and tool poses must stay in.
        workspace_max_m: upper corner of that box.
        approach_height_m: approach/retreat height above the grasp, place and push poses.
        carry_height_m: a carried object's centre stays at least this far above its resting
            height (must be ≥ ``min_tcp_height_m``: the object's bottom clears the table).
        push_backoff_m: a push starts this far behind the first contact point.
        push_contact_offset_m: while pushing the TCP is this far behind the object's centre
            (object half-width + finger half-thickness); 0 = the TCP on the trace.
        cartesian_step_m: tool path sampling step; IK is solved at every sample, seeded from
            the previous one, so consecutive solutions stay on one IK branch.
        angular_step_rad: tool path sampling step for rotations.
        ik_solver: ``analytic`` (closed-form UR IK of the whole tool path at once: the branch
            of the previous sample is kept), ``pink`` (iterative differential IK seeded from
            the previous sample; for URDFs that are not a standard UR5) or ``auto``
            (= analytic).
        ik_position_tolerance_m: a sample is reached when the TCP is this close.
        ik_orientation_tolerance_rad: ... and its orientation this close.
        ik_max_iterations: (pink) steps per sample before the sample counts as unreachable.
        ik_damping: (pink) Tikhonov damping.
        max_joint_step_rad: the largest joint change allowed between consecutive samples
            (beyond it the IK jumped branches or passed a singularity: rejected).
        joint_lower_rad: 6 lower joint limits; ``None`` = the URDF's. Clipped to the URDF's.
        joint_upper_rad: 6 upper joint limits; ``None`` = the URDF's. Clipped to the URDF's.
        max_joint_velocity_rad_s: joint speed limit at speed_scale 1 (capped by the URDF's).
        max_joint_acceleration_rad_s2: joint acceleration limit at speed_scale 1.
        collision_check: check self and table collisions at every tool path sample.
        table_clearance_m: links (not the TCP) must stay this far above the table top.
        gripper_radius_m: radius of the gripper proxy capsule on tool0 (0: no proxy).
        gripper_length_m: length of the gripper proxy along tool0's z.
        sample_period_s: time between trajectory samples.
        toppra_corner_angle_rad: where the joint path turns by more than this, TOPP-RA's grid
            is refined (its limits hold only at grid points; corners are where they bite).
        toppra_corner_subdivisions: TOPP-RA stages per joint path interval next to a corner.
        timing_method: ``own`` (closed-form TOPP-RA passes, ~10× faster) or ``toppra``.
        blend_jerk_rad_s3: jerk limit of the blend that enters a new plan from a moving state.
        blend_entry_times_s: where on the new plan's first motion a blend may join it (s from
            its start; the fastest feasible entry is taken).
    """

    urdf_path: Optional[str] = None
    srdf_path: Optional[str] = None
    base_frame: str = 'base_link'
    tcp_offset_m: float = 0.15
    tool_yaw_rad: float = -math.pi / 2
    tool_rotation: Optional[tuple[float, ...]] = None
    table_height_m: float = 0.0
    min_tcp_height_m: float = 0.01
    workspace_min_m: tuple[float, float, float] = (-1.2, -1.2, 0.0)
    workspace_max_m: tuple[float, float, float] = (1.2, 1.2, 1.2)
    approach_height_m: float = 0.10
    carry_height_m: float = 0.10
    push_backoff_m: float = 0.05
    push_contact_offset_m: float = 0.04
    cartesian_step_m: float = 0.02
    angular_step_rad: float = 0.1
    ik_solver: str = 'auto'
    ik_position_tolerance_m: float = 0.001
    ik_orientation_tolerance_rad: float = 0.01
    ik_max_iterations: int = 20
    ik_damping: float = 1e-6
    max_joint_step_rad: float = 0.3
    joint_lower_rad: Optional[tuple[float, ...]] = None
    joint_upper_rad: Optional[tuple[float, ...]] = None
    max_joint_velocity_rad_s: float = math.pi
    max_joint_acceleration_rad_s2: float = 3.0
    collision_check: bool = True
    table_clearance_m: float = 0.005
    gripper_radius_m: float = 0.04
    gripper_length_m: float = 0.11
    sample_period_s: float = 0.01
    toppra_corner_angle_rad: float = 0.25
    toppra_corner_subdivisions: int = 4
    timing_method: str = 'own'
    blend_jerk_rad_s3: float = 60.0
    blend_entry_times_s: tuple[float, ...] = (0.15, 0.3, 0.45, 0.6, 0.8, 1.0)

    def __post_init__(self) -> None:
        positive = (
            'tcp_offset_m',
            'cartesian_step_m',
            'angular_step_rad',
            'ik_position_tolerance_m',
            'ik_orientation_tolerance_rad',
            'ik_max_iterations',
            'max_joint_step_rad',
            'max_joint_velocity_rad_s',
            'max_joint_acceleration_rad_s2',
            'sample_period_s',
            'toppra_corner_angle_rad',
            'toppra_corner_subdivisions',
            'blend_jerk_rad_s3',
        )
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'Ur5PlannerConfig.{name} must be > 0, got {value}')
        non_negative = (
            'min_tcp_height_m',
            'approach_height_m',
            'carry_height_m',
            'push_backoff_m',
            'push_contact_offset_m',
            'ik_damping',
            'table_clearance_m',
            'gripper_radius_m',
            'gripper_length_m',
        )
        for name in non_negative:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f'Ur5PlannerConfig.{name} must be >= 0, got {value}')
        if self.ik_solver not in ('auto', 'analytic', 'pink'):
            raise ValueError(
                "Ur5PlannerConfig.ik_solver must be 'auto', 'analytic' or 'pink', got "
                f'{self.ik_solver!r}'
            )
        if self.timing_method not in ('own', 'toppra'):
            raise ValueError(
                f"Ur5PlannerConfig.timing_method must be 'own' or 'toppra', got "
                f'{self.timing_method!r}'
            )
        if self.carry_height_m < self.min_tcp_height_m:
            raise ValueError(
                'Ur5PlannerConfig.carry_height_m must be >= min_tcp_height_m so a carried '
                "object's bottom clears the table"
            )
        if len(self.workspace_min_m) != 3 or len(self.workspace_max_m) != 3:
            raise ValueError('Ur5PlannerConfig.workspace_min_m/max_m must have 3 values')
        if any(a >= b for a, b in zip(self.workspace_min_m, self.workspace_max_m, strict=True)):
            raise ValueError('Ur5PlannerConfig.workspace_min_m must be below workspace_max_m')
        if self.tool_rotation is not None:
            r = np.asarray(self.tool_rotation, dtype=float)
            if r.size != 9:
                raise ValueError('Ur5PlannerConfig.tool_rotation must have 9 numbers')
            r = r.reshape(3, 3)
            if not np.allclose(r @ r.T, np.eye(3), atol=1e-6) or np.linalg.det(r) < 0:
                raise ValueError('Ur5PlannerConfig.tool_rotation is not a rotation matrix')
        for name in ('joint_lower_rad', 'joint_upper_rad'):
            value = getattr(self, name)
            if value is not None and len(value) != 6:
                raise ValueError(f'Ur5PlannerConfig.{name} must have 6 values')

    def tool_rotation_matrix(self) -> np.ndarray:
        """The working TCP orientation base_R_tcp as a (3, 3) matrix."""
        if self.tool_rotation is not None:
            return np.asarray(self.tool_rotation, dtype=float).reshape(3, 3)
        return top_down_rotation(self.tool_yaw_rad)
