"""Parameters of the G1 planner."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Optional

from .stance import ReachRegion

_POSITIVE = (
    'max_walk_m',
    'max_trace_step_m',
    'base_tolerance_m',
    'approach_height_m',
    'carry_lift_m',
    'max_joint_velocity_rad_s',
    'max_joint_acceleration_rad_s2',
    'cartesian_step_m',
    'max_joint_step_rad',
    'ik_position_tolerance_m',
    'ik_tilt_tolerance_rad',
    'sample_period_s',
    'walk_speed_m_s',
    'walk_yaw_rate_rad_s',
)
_NON_NEGATIVE = ('grasp_standoff_m', 'place_clearance_m', 'joint_margin_rad', 'collision_margin_m')


@dataclass(frozen=True)
class G1PlannerConfig:
    """Parameters of the G1 planner (metres, radians, seconds; odom frame unless stated).

    Attributes:
        odom_frame: the world frame plans are made in.
        urdf_path: G1 URDF with hands; ``None`` = example-robot-data's.
        grasp_point_left: left hand grasp point in ``left_hand_palm_link``.
        grasp_point_right: right hand grasp point in ``right_hand_palm_link``.
        reach: the comfortable-reach region of the hands.
        min_point_height_m: trace points below this height (odom z) are out of reach.
        max_point_height_m: trace points above this height are out of reach.
        max_walk_m: trace points farther than this from the robot are rejected (WORKSPACE).
        max_trace_step_m: consecutive trace points farther apart are an invalid trace.
        base_tolerance_m: a stance within this distance of the base goal needs no walk.
        grasp_standoff_m: grasp pose offset from the object centre along the palm normal.
        grasp_height_m: grasp pose offset above the object centre.
        approach_height_m: pre-grasp / retreat height above the grasp and place poses.
        place_clearance_m: the object is let go this far above its resting pose.
        carry_pose: hand position (pelvis frame, x and |y|) while walking with an object.
        carry_lift_m: the object is lifted at least this far before walking with it.
        tuck_arms_for_walks: before a walk of ``tuck_min_walk_m`` or more, raise the free
            hands in front of the chest (``tuck_pose``: x, |y|, z in the pelvis frame) and
            carry an object at least that high: the arms stay clear of table tops while the
            robot walks past furniture (in the simulator the legs even pass through it; there
            is no obstacle-aware base path). False: free arms hang (weight out) while walking.
        tuck_min_walk_m: shorter walks (steps) keep the arms as they are.
        hand_yaw_rad: hand heading relative to the stance heading (0: fingers forward).
        grip_closure: Dex3 closure (0 open .. 1 fist) commanded to grasp.
        release_closure: closure the hand opens to (gently) before it lets go.
        use_waist: let the IK use the waist joints.
        joint_margin_rad: planned joint positions stay this far inside the URDF limits.
        max_joint_velocity_rad_s: joint speed limit at speed_scale 1 (capped by the URDF's).
        max_joint_acceleration_rad_s2: joint acceleration limit at speed_scale 1.
        cartesian_step_m: hand path sampling step (IK at every sample).
        max_joint_step_rad: largest joint change between two hand path samples.
        collision_margin_m: arm spheres keep this distance from the torso/pelvis boxes.
        ik_position_tolerance_m: a hand target is reached within this distance.
        ik_tilt_tolerance_rad: ... and this palm tilt.
        sample_period_s: arm trajectory sample period (the arm_sdk rate).
        walk_speed_m_s: nominal walking speed (for durations and progress).
        walk_yaw_rate_rad_s: nominal turning rate.
    """

    odom_frame: str = 'odom'
    urdf_path: Optional[str] = None
    grasp_point_left: tuple[float, float, float] = (0.10, -0.035, 0.0)
    grasp_point_right: tuple[float, float, float] = (0.10, 0.035, 0.0)
    reach: ReachRegion = field(default_factory=ReachRegion)
    min_point_height_m: float = 0.45
    max_point_height_m: float = 1.2
    max_walk_m: float = 5.0
    max_trace_step_m: float = 2.0  # real RoboTracer keypoint legs reach 1.7 m in room scenes
    base_tolerance_m: float = 0.05
    grasp_standoff_m: float = 0.02
    grasp_height_m: float = 0.03
    approach_height_m: float = 0.10
    place_clearance_m: float = 0.005
    carry_pose: tuple[float, float] = (0.22, 0.20)
    carry_lift_m: float = 0.10
    tuck_arms_for_walks: bool = True
    tuck_min_walk_m: float = 0.3
    tuck_pose: tuple[float, float, float] = (0.25, 0.20, 0.12)
    hand_yaw_rad: float = 0.0
    grip_closure: float = 0.6
    release_closure: float = 0.33
    use_waist: bool = True
    joint_margin_rad: float = 0.02
    max_joint_velocity_rad_s: float = 1.5
    max_joint_acceleration_rad_s2: float = 4.0
    cartesian_step_m: float = 0.03
    max_joint_step_rad: float = 0.5
    collision_margin_m: float = 0.02
    ik_position_tolerance_m: float = 0.005
    ik_tilt_tolerance_rad: float = 0.25
    sample_period_s: float = 0.02
    walk_speed_m_s: float = 0.4
    walk_yaw_rate_rad_s: float = 0.8

    def __post_init__(self) -> None:
        """Reject values the planner cannot work with.

        Raises:
            ValueError: naming the parameter.
        """
        for name in _POSITIVE:
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f'G1PlannerConfig.{name} must be > 0, got {v}')
        for name in _NON_NEGATIVE:
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f'G1PlannerConfig.{name} must be >= 0, got {v}')
        if not 0.0 <= self.release_closure < self.grip_closure <= 1.0:
            raise ValueError('G1PlannerConfig: need 0 <= release_closure < grip_closure <= 1')
        if self.min_point_height_m >= self.max_point_height_m:
            raise ValueError('G1PlannerConfig.min_point_height_m must be < max_point_height_m')
