"""The G1 executor's parameters and what they configure (ROS-free apart from the table).

``PARAMS`` is the node's parameter table (documented in ``config/g1.yaml``); the functions
turn the declared values into the planner's, the search's and the unitree backend's settings.
``robotracer eval --world g1 --execute`` builds its planner with the same :func:`planner_config`.
"""

from __future__ import annotations

from typing import Any

from robotracer_ros.parameters import Param
from trace_executor.g1.config import G1PlannerConfig
from trace_executor.g1.look_around import SearchConfig
from trace_executor.g1.stance import ReachRegion
from trace_executor.g1.walk import WalkLimits

PARAMS = [
    Param('backend', 'unitree', 'robot backend: unitree (unitree_sdk2py over CycloneDDS)'),
    Param('domain_id', -1, 'DDS domain of the robot; -1: $ROS_DOMAIN_ID or 0', -1, 232),
    Param('network_interface', 'lo', "interface of the robot's network (lo: the simulator)"),
    Param('loco_service', 'sport', "LocoClient RPC service ('sport'; 'loco' on old firmware)"),
    Param(
        'standing_pelvis_z_m',
        0.0,
        "pelvis height of the standing robot, m, used only while rt/odommodestate (the robot's "
        'onboard state estimation, which runs with its locomotion service) has never arrived: '
        '> 0 lets arm-only goals plan with the pelvis at the odom origin at this height (G1: '
        'about 0.79); 0 refuses them. Walking always needs odometry',
        0.0,
        1.2,
    ),
    Param('odom_frame', 'odom', 'world/odometry frame: traces are planned in it'),
    Param('camera_pose_source', 'topic', 'camera pose at an image stamp: topic | odometry'),
    Param('camera_pose_topic', '/sim/g1/camera_pose', 'PoseStamped camera pose in odom'),
    Param('odom_topic', '/odom', 'nav_msgs/Odometry odom -> pelvis (camera_pose_source odometry)'),
    Param('camera_link', 'd435_link', 'URDF link of the head camera (its optical frame is added)'),
    Param('camera_pose_max_gap_s', 0.1, 'largest stamp gap to a known camera pose, s', 0.0, 5.0),
    Param(
        'depth_topic',
        '/camera/camera/aligned_depth_to_color/image_raw',
        'depth image for the scene monitor (16UC1 mm or 32FC1 m)',
    ),
    Param('camera_info_topic', '/camera/camera/color/camera_info', 'camera_info of the depth'),
    Param(
        'image_reliability',
        'reliable',
        'depth subscription reliability: reliable | best_effort; match the publisher',
        choices=('reliable', 'best_effort'),
    ),
    Param(
        'fresh_frame_timeout_s',
        5.0,
        'before looking again after a walk or turn, longest wait for a camera frame taken '
        'after the robot stopped, s (then it asks with the latest one)',
        0.0,
        30.0,
    ),
    Param('change_threshold_m', 0.03, 'scene monitor: pixel depth change, m', 0.005, 0.5),
    Param('change_fraction', 0.25, 'scene monitor: changed fraction of a region', 0.01, 1.0),
    Param('whole_body_target_topic', '/robotracer/g1/whole_body_target', 'WholeBodyTarget'),
    Param('markers_topic', '/robotracer/g1/markers', 'MarkerArray of the plan'),
    Param('arm_rate_hz', 50.0, 'rt/arm_sdk rate, Hz', 10.0, 500.0),
    Param(
        'state_timeout_s',
        0.1,
        'rt/lowstate older than this is stale, s (settable)',
        0.01,
        1.0,
        read_only=False,
    ),
    Param('ramp_in_s', 1.0, 'arm_sdk weight ramp-in time, s', 1.0, 10.0),
    Param('ramp_out_s', 1.0, 'arm_sdk weight ramp-out time, s', 1.0, 10.0),
    Param('fault_ramp_out_s', 0.04, 'weight ramp-out on stale state, s', 0.02, 1.0),
    Param('max_joint_velocity_rad_s', 1.5, 'upper-body joint speed limit at speed 1', 0.1, 5.0),
    Param('max_joint_acceleration_rad_s2', 4.0, 'joint acceleration limit, rad/s^2', 0.5, 40.0),
    Param('kp_arm', 60.0, 'arm joint stiffness sent with arm_sdk, N m/rad', 0.0, 500.0),
    Param('kd_arm', 1.5, 'arm joint damping, N m s/rad', 0.0, 50.0),
    Param('kp_waist', 200.0, 'waist joint stiffness, N m/rad', 0.0, 500.0),
    Param('kd_waist', 5.0, 'waist joint damping, N m s/rad', 0.0, 50.0),
    Param('max_walk_speed_m_s', 0.5, 'walking speed limit, m/s', 0.05, 0.5),
    Param('max_yaw_rate_rad_s', 1.0, 'turning rate limit, rad/s', 0.05, 1.0),
    Param('walk_position_tolerance_m', 0.03, 'base goal position tolerance, m', 0.005, 0.3),
    Param('walk_yaw_tolerance_rad', 0.05, 'base goal heading tolerance, rad', 0.005, 0.5),
    Param('reach_x_m', 0.32, 'hand working point: forward of the pelvis, m', 0.15, 0.6),
    Param('hand_y_m', 0.14, 'hand working point: to the side of the pelvis, m', 0.0, 0.4),
    Param('reach_tolerance_x_m', 0.08, 'comfortable reach: +- forward, m', 0.01, 0.3),
    Param('reach_tolerance_y_m', 0.12, 'comfortable reach: +- sideways, m', 0.01, 0.3),
    Param('min_point_height_m', 0.45, 'trace points lower than this are unreachable, m', 0.0, 2.0),
    Param('max_point_height_m', 1.2, 'trace points higher than this are unreachable, m', 0.1, 3.0),
    Param('max_walk_m', 5.0, 'trace points farther than this are rejected, m', 0.5, 50.0),
    Param('grasp_standoff_m', 0.02, 'grasp pose offset along the palm normal, m', 0.0, 0.1),
    Param('grasp_height_m', 0.03, 'grasp pose offset above the object centre, m', -0.1, 0.1),
    Param('approach_height_m', 0.10, 'approach/retreat height, m', 0.02, 0.4),
    Param('grip_closure', 0.6, 'Dex3 closure to grasp (0 open .. 1 fist)', 0.05, 1.0),
    Param('release_closure', 0.33, 'closure the hand opens to gently before letting go', 0.0, 1.0),
    Param('use_waist', True, 'let the IK move the waist joints'),
    Param('collision_margin_m', 0.02, 'arm/torso clearance kept by the IK, m', 0.0, 0.1),
    Param(
        'search_waist_yaws_deg',
        [60.0, -60.0],
        'looking for what is not in view: waist yaws tried first, deg (+ left)',
    ),
    Param(
        'search_base_yaws_deg',
        [120.0, 180.0, 240.0],
        'then base headings turned to in place, deg from the start (+ left, steps < 180)',
    ),
    Param('search_time_budget_s', 120.0, 'looking around gives up after this long, s', 5.0, 600.0),
]


def unitree_config(p: dict[str, Any], domain: int) -> Any:
    """The unitree backend's settings from the node's parameters.

    Args:
        p: the declared parameters (name → value).
        domain: the DDS domain (``domain_id`` resolved).

    Returns:
        A :class:`~trace_executor.backends.unitree.UnitreeConfig`.
    """
    from trace_executor.backends.unitree import UnitreeConfig

    return UnitreeConfig(
        domain_id=domain,
        network_interface=p['network_interface'],
        loco_service=p['loco_service'],
        rate_hz=p['arm_rate_hz'],
        state_timeout_s=p['state_timeout_s'],
        ramp_in_s=p['ramp_in_s'],
        ramp_out_s=p['ramp_out_s'],
        fault_ramp_out_s=p['fault_ramp_out_s'],
        max_joint_velocity_rad_s=p['max_joint_velocity_rad_s'] * 1.2,
        kp_arm=p['kp_arm'],
        kd_arm=p['kd_arm'],
        kp_waist=p['kp_waist'],
        kd_waist=p['kd_waist'],
        walk=WalkLimits(
            max_speed_m_s=p['max_walk_speed_m_s'],
            max_yaw_rate_rad_s=p['max_yaw_rate_rad_s'],
            position_tolerance_m=p['walk_position_tolerance_m'],
            yaw_tolerance_rad=p['walk_yaw_tolerance_rad'],
        ),
        standing_pelvis_z_m=p['standing_pelvis_z_m'],
    )


def start_up_warning(missing: str, p: dict[str, Any]) -> str:
    """The executor's warning when the robot state is incomplete at start-up.

    Args:
        missing: what the backend says is missing (``UnitreeBackend.missing_state``).
        p: the declared parameters.

    Returns:
        One line: rt/lowstate comes from the robot, rt/odommodestate from its onboard state
        estimation service (which runs with the locomotion service), and what the
        ``standing_pelvis_z_m`` fallback does or would do.
    """
    z = p['standing_pelvis_z_m']
    if z > 0:
        fallback = (
            f'standing_pelvis_z_m is {z:g} m: arm-only goals plan with the standing pose at '
            'the odom origin until odometry arrives; walking is refused'
        )
    else:
        fallback = (
            'without odometry goals are refused; set standing_pelvis_z_m (the standing '
            "robot's pelvis height, about 0.79 m) to run arm-only goals without it"
        )
    return (
        'robot state incomplete after 10 s (rt/lowstate comes from the robot; '
        "rt/odommodestate from the robot's onboard state estimation service, which runs with "
        f'its locomotion service, not in debug or damping mode): {missing or "now complete"}. '
        + fallback
    )


def with_defaults(p: dict[str, Any]) -> dict[str, Any]:
    """``p`` with every parameter it lacks at the node's default (e.g. a YAML block)."""
    out = {prm.name: prm.default for prm in PARAMS}
    out.update(p)
    return out


def planner_config(p: dict[str, Any]) -> G1PlannerConfig:
    """The G1 planner's configuration from the node's parameters (missing ones: defaults)."""
    p = with_defaults(p)
    return G1PlannerConfig(
        odom_frame=p['odom_frame'],
        reach=ReachRegion(
            reach_x=p['reach_x_m'],
            hand_y=p['hand_y_m'],
            tolerance_back=p['reach_tolerance_x_m'],
            tolerance_front=p['reach_tolerance_x_m'],
            tolerance_y=p['reach_tolerance_y_m'],
        ),
        min_point_height_m=p['min_point_height_m'],
        max_point_height_m=p['max_point_height_m'],
        max_walk_m=p['max_walk_m'],
        grasp_standoff_m=p['grasp_standoff_m'],
        grasp_height_m=p['grasp_height_m'],
        approach_height_m=p['approach_height_m'],
        grip_closure=p['grip_closure'],
        release_closure=min(p['release_closure'], p['grip_closure'] * 0.9),
        use_waist=p['use_waist'],
        max_joint_velocity_rad_s=p['max_joint_velocity_rad_s'],
        max_joint_acceleration_rad_s2=p['max_joint_acceleration_rad_s2'],
        collision_margin_m=p['collision_margin_m'],
        sample_period_s=1.0 / p['arm_rate_hz'],
    )


def search_config(p: dict[str, Any]) -> SearchConfig:
    """The look-around's configuration from the node's parameters.

    Raises:
        ValueError: the search parameters cannot run (the message says which).
    """
    p = with_defaults(p)
    try:
        return SearchConfig(
            waist_yaws_deg=tuple(float(v) for v in p['search_waist_yaws_deg']),
            base_yaws_deg=tuple(float(v) for v in p['search_base_yaws_deg']),
            time_budget_s=float(p['search_time_budget_s']),
        )
    except ValueError as exc:
        raise ValueError(f'search parameters: {exc}') from exc
