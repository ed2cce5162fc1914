"""G1 29-DoF joint tables in the order the robot's DDS interface uses them.

``rt/lowstate`` / ``rt/lowcmd`` / ``rt/arm_sdk`` (unitree_hg ``LowState_``/``LowCmd_``) carry 35
motor slots. The first 29 are the body joints in the order of the SDK examples' ``G1JointIndex``
(unitree_sdk2_python ``example/g1/high_level/g1_arm7_sdk_dds_example.py``): legs 0-11, waist
12-14, left arm 15-21, right arm 22-28. Slot 29 (``kNotUsedJoint``) of an ``rt/arm_sdk``
command carries the arm_sdk weight in ``q``. The Dex3-1 hands (``rt/dex3/{left,right}/cmd``,
unitree_hg ``HandCmd_``) have 7 motors each, thumb 0-2, middle 0-1, index 0-1.

The joint names are those of example-robot-data's ``g1_29dof_with_hand_rev_1_0.urdf``.
"""

from __future__ import annotations

import numpy as np

NUM_MOTOR_SLOTS = 35
NUM_BODY_JOINTS = 29
WEIGHT_SLOT = 29  # G1JointIndex.kNotUsedJoint: motor_cmd[29].q is the arm_sdk weight

BODY_JOINTS: tuple[str, ...] = (
    # left leg 0-5
    'left_hip_pitch_joint',
    'left_hip_roll_joint',
    'left_hip_yaw_joint',
    'left_knee_joint',
    'left_ankle_pitch_joint',
    'left_ankle_roll_joint',
    # right leg 6-11
    'right_hip_pitch_joint',
    'right_hip_roll_joint',
    'right_hip_yaw_joint',
    'right_knee_joint',
    'right_ankle_pitch_joint',
    'right_ankle_roll_joint',
    # waist 12-14
    'waist_yaw_joint',
    'waist_roll_joint',
    'waist_pitch_joint',
    # left arm 15-21
    'left_shoulder_pitch_joint',
    'left_shoulder_roll_joint',
    'left_shoulder_yaw_joint',
    'left_elbow_joint',
    'left_wrist_roll_joint',
    'left_wrist_pitch_joint',
    'left_wrist_yaw_joint',
    # right arm 22-28
    'right_shoulder_pitch_joint',
    'right_shoulder_roll_joint',
    'right_shoulder_yaw_joint',
    'right_elbow_joint',
    'right_wrist_roll_joint',
    'right_wrist_pitch_joint',
    'right_wrist_yaw_joint',
)
LEG_SLOTS = np.arange(0, 12)
WAIST_SLOTS = np.arange(12, 15)
LEFT_ARM_SLOTS = np.arange(15, 22)
RIGHT_ARM_SLOTS = np.arange(22, 29)
#: The slots ``rt/arm_sdk`` commands: waist + both arms (what the weight blends).
UPPER_BODY_SLOTS = np.arange(12, 29)

HAND_SIDES = ('left', 'right')
#: Dex3-1 motor order (HandCmd_.motor_cmd / HandState_.motor_state index 0..6).
DEX3_FINGERS: tuple[str, ...] = (
    'thumb_0',
    'thumb_1',
    'thumb_2',
    'middle_0',
    'middle_1',
    'index_0',
    'index_1',
)
HAND_JOINTS: dict[str, tuple[str, ...]] = {
    side: tuple(f'{side}_hand_{f}_joint' for f in DEX3_FINGERS) for side in HAND_SIDES
}
NUM_HAND_MOTORS = len(DEX3_FINGERS)

#: Every actuated joint of the model with hands: 29 body joints, then left and right hand.
ALL_JOINTS: tuple[str, ...] = BODY_JOINTS + HAND_JOINTS['left'] + HAND_JOINTS['right']

#: Standing pose (rad) the locomotion controller holds when arm_sdk's weight is 0: knees
#: slightly bent, arms hanging at the sides, elbows bent (elbow 0 = forearm horizontal).
STANDING_POSE: dict[str, float] = {
    'left_hip_pitch_joint': -0.1,
    'left_knee_joint': 0.3,
    'left_ankle_pitch_joint': -0.2,
    'right_hip_pitch_joint': -0.1,
    'right_knee_joint': 0.3,
    'right_ankle_pitch_joint': -0.2,
    'left_shoulder_pitch_joint': 0.2,
    'left_shoulder_roll_joint': 0.15,
    'left_elbow_joint': 1.1,
    'right_shoulder_pitch_joint': 0.2,
    'right_shoulder_roll_joint': -0.15,
    'right_elbow_joint': 1.1,
}

#: Default PD gains of the body joints when nobody commands them (the locomotion controller's
#: upper-body gains; unitree_sdk2 examples use kp 60 / kd 1.5 for arm_sdk).
DEFAULT_KP = np.array([150.0] * 12 + [200.0] * 3 + [60.0] * 14)
DEFAULT_KD = np.array([2.0] * 12 + [5.0] * 3 + [1.5] * 14)
#: Default hand gains (Dex3 examples use kp 1.5 / kd 0.1 on the fingers).
DEFAULT_HAND_KP = 1.5
DEFAULT_HAND_KD = 0.1


def standing_pose_vector(names: tuple[str, ...] = BODY_JOINTS) -> np.ndarray:
    """Standing-pose positions for ``names`` (0 for joints the pose does not list).

    Args:
        names: joint names.

    Returns:
        Positions in radians, same order as ``names``.

    """
    return np.array([STANDING_POSE.get(n, 0.0) for n in names])
